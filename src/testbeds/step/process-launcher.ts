/**
 * Node-bound processes as instances (the paper's bare-metal runs, Fig. 9; and every instance in
 * the emulated machine): each phase runs on the host under
 * `nice -n N numactl --cpunodebind=N --membind=N`, registered with KSM unless the program
 * registers its memory itself (Phase.registersItself), and tagged with NUKSM_INSTANCE=<marker> in
 * its environment so the instance's processes can be found (monitors) and killed (teardown,
 * reclaim after a kill) whatever they fork (e.g. mysql's private mariadbd).
 */
import { HarnessError } from '../../core/errors.ts';
import type { InstanceSpec } from '../../core/scenario.ts';
import type { Executor } from '../../host/exec/types.ts';
import type { Phase } from '../../workloads/types.ts';
import type { InstanceLauncher, LaunchContext, LaunchedInstance } from './types.ts';

/**
 * Registers the whole process with KSM before exec'ing the command: prctl(PR_SET_MEMORY_MERGE, 1)
 * (Linux 6.4+), kept across fork and exec. QEMU registers guest RAM itself (mem-merge); a stock
 * benchmark binary does not, and the paper's bare-metal runs (Fig. 9) registered their memory with
 * madvise. On older kernels prctl fails (EINVAL): a warning is printed and the command runs
 * unregistered, so there the benchmark must madvise(MADV_MERGEABLE) itself.
 */
export const KSM_REGISTER_WRAPPER = [
  'import ctypes, os, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'if libc.prctl(67, 1, 0, 0, 0) != 0:',
  '    sys.stderr.write("nuksm: prctl(PR_SET_MEMORY_MERGE) failed (errno %d): process not registered with KSM\\n" % ctypes.get_errno())',
  'os.execvp(sys.argv[1], sys.argv[1:])',
].join('\n');

/**
 * argv of a phase as run on the target: cwd and env through `env`, the instance marker; for
 * processes also nice, node binding and KSM registration (skipped when the program registers its
 * memory itself). A VM's phases run in the guest unbound: libvirt pins the guest.
 */
export function wrapPhase(
  rt: { spec: Pick<InstanceSpec, 'kind' | 'node' | 'nice'>; marker: string },
  phase: Pick<Phase, 'argv' | 'env' | 'cwd'>,
  opts: { registersItself?: boolean } = {},
): string[] {
  const envArgs = Object.entries(phase.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const prefix = ['env', ...(phase.cwd ? ['-C', phase.cwd] : []), ...envArgs, `NUKSM_INSTANCE=${rt.marker}`];
  if (rt.spec.kind === 'vm') return [...prefix, ...phase.argv];
  const nice = rt.spec.nice !== 0 ? ['nice', '-n', String(rt.spec.nice)] : [];
  const register = opts.registersItself ? [] : ['python3', '-c', KSM_REGISTER_WRAPPER];
  return [...prefix, ...nice, 'numactl', `--cpunodebind=${rt.spec.node}`, `--membind=${rt.spec.node}`, ...register, ...phase.argv];
}

// $1 = marker. Prints "<pid> <rss kB>" for every process whose environment carries the marker.
// One grep reads every /proc/<pid>/environ (NUL-separated: -z, whole entry: -x). Two forks per
// process made each call 20× slower on a plain host, and far slower in the TCG machine.
// Processes that exit during the scan are skipped (their files vanish: errors to /dev/null).
const FIND_SCRIPT = [
  'grep -lzxF -e "NUKSM_INSTANCE=$1" /proc/[0-9]*/environ 2>/dev/null | while IFS= read -r f; do',
  '  d=${f%/environ}',
  '  rss=$(awk \'/^VmRSS:/{print $2}\' "$d/status" 2>/dev/null)',
  '  echo "${d#/proc/} ${rss:-0}"',
  'done',
].join('\n');

export async function processesWithMarker(exec: Executor, marker: string): Promise<{ pid: number; rssKiB: number }[]> {
  const res = await exec.run(['sh', '-c', FIND_SCRIPT, 'sh', marker], { timeoutMs: 30_000, allowFailure: true });
  return res.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([pid]) => Number.isInteger(pid) && pid > 0)
    .map(([pid, rss]) => ({ pid, rssKiB: rss ?? 0 }));
}

/**
 * The process that holds the instance's memory: the largest resident one carrying the marker
 * (mariadbd rather than sysbench; the benchmark rather than the numactl/env wrappers, which exec).
 * Polls because a detached timed phase takes a moment to start.
 */
export async function mainProcessOf(exec: Executor, marker: string, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const procs = (await processesWithMarker(exec, marker)).filter((p) => p.rssKiB > 0);
    // Ignore the short-lived shells of the detached wrapper (sh ~1 MiB) when something bigger exists.
    if (procs.length > 0) return procs.reduce((a, b) => (b.rssKiB > a.rssKiB ? b : a)).pid;
    if (Date.now() > deadline) throw new HarnessError('benchmark-error', `no process of instance ${marker} found on ${exec.target}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** SIGKILL everything still carrying the marker (teardown: leftovers of a failed run). */
export async function killMarked(exec: Executor, marker: string): Promise<number> {
  const procs = await processesWithMarker(exec, marker);
  if (procs.length === 0) return 0;
  await exec.run(['kill', '-KILL', ...procs.map((p) => String(p.pid))], { timeoutMs: 10_000, allowFailure: true });
  return procs.length;
}

export interface ProcessLauncherOptions {
  /** Roots on the host for the instances' installs, the offline cache and per-step work. */
  installRoot: string;
  cacheDir: string;
  workRoot: string;
  /** Nodes the host has (an instance on another node is refused before anything starts). */
  nodes: readonly number[];
  /** For error messages: the testbed file. */
  sourceFile: string;
}

/** A node-bound process on the host the executor reaches (a server, or the emulated machine from inside). */
export class ProcessLauncher implements InstanceLauncher {
  readonly kind = 'process' as const;
  constructor(
    private readonly exec: Executor,
    private readonly opts: ProcessLauncherOptions,
  ) {}

  check(instances: readonly InstanceSpec[]): void {
    for (const i of instances) {
      if (i.kind === 'process' && !this.opts.nodes.includes(i.node)) {
        throw new HarnessError('config', `${this.opts.sourceFile}: instance ${i.name} is bound to node ${i.node}, which this testbed does not have`);
      }
    }
  }

  async launch(spec: InstanceSpec, ctx: LaunchContext): Promise<LaunchedInstance> {
    const marker = `${ctx.stepTag}/${spec.name}`;
    const exec = this.exec;
    // Before anything runs under the marker: a kill from here on leaves a ledger naming it.
    ctx.ledger.record({ kind: 'processes', marker });
    return {
      spec,
      exec,
      installRoot: this.opts.installRoot,
      cacheDir: this.opts.cacheDir,
      workDir: `${this.opts.workRoot}/${ctx.stepTag}/${spec.name}`,
      residentPid: null,
      wrap: (phase, o) => wrapPhase({ spec, marker }, phase, o),
      memoryPid: () => mainProcessOf(exec, marker),
      stop: async () => {
        await killMarked(exec, marker);
      },
    };
  }
}
