/**
 * Where a workload runs inside one instance, and how its commands are wrapped:
 * - 'process' (bare metal, Fig. 9): on the host, every phase under
 *   `nice -n N numactl --cpunodebind=N --membind=N`, tagged with NUKSM_INSTANCE=<marker> in its
 *   environment so the instance's processes can be found (for monitors) and killed (at teardown)
 *   whatever they fork (e.g. mysql's private mariadbd);
 * - 'vm': in the guest over SSH; placement is libvirt's job, the monitored PID is QEMU's.
 */
import { HarnessError } from '../../core/errors.ts';
import type { InstanceSpec } from '../../core/scenario.ts';
import type { Executor } from '../../host/exec/types.ts';
import type { LibvirtVm } from '../../host/libvirt/vm.ts';
import type { Phase } from '../../workloads/types.ts';

export interface InstanceRuntime {
  spec: InstanceSpec;
  /** Where the workload's phases run. */
  exec: Executor;
  /** Roots on that target. */
  installRoot: string;
  cacheDir: string;
  workDir: string;
  vm: LibvirtVm | null;
  /** QEMU's PID for VMs; null for processes (resolved from the marker once the timed phase runs). */
  qemuPid: number | null;
  marker: string;
}

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

/** argv of a phase as run on the target: cwd and env through `env`; binding and KSM registration for processes. */
export function wrapPhase(rt: Pick<InstanceRuntime, 'spec' | 'marker'>, phase: Pick<Phase, 'argv' | 'env' | 'cwd'>): string[] {
  const envArgs = Object.entries(phase.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const prefix = ['env', ...(phase.cwd ? ['-C', phase.cwd] : []), ...envArgs, `NUKSM_INSTANCE=${rt.marker}`];
  if (rt.spec.kind === 'vm') return [...prefix, ...phase.argv];
  const nice = rt.spec.nice !== 0 ? ['nice', '-n', String(rt.spec.nice)] : [];
  return [...prefix, ...nice, 'numactl', `--cpunodebind=${rt.spec.node}`, `--membind=${rt.spec.node}`, 'python3', '-c', KSM_REGISTER_WRAPPER, ...phase.argv];
}

// $1 = marker. Prints "<pid> <rss kB>" for every process whose environment carries the marker.
const FIND_SCRIPT = [
  'for d in /proc/[0-9]*; do',
  '  if tr "\\000" "\\n" < "$d/environ" 2>/dev/null | grep -qxF "NUKSM_INSTANCE=$1"; then',
  '    rss=$(awk \'/^VmRSS:/{print $2}\' "$d/status" 2>/dev/null)',
  '    echo "${d#/proc/} ${rss:-0}"',
  '  fi',
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
