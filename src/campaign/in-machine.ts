/**
 * Campaigns on the emulated testbed run INSIDE the two-node machine, as nuksm runs on a physical
 * server: the guest's journal is the campaign's, kernel switches reboot the guest and its
 * boot-resume hooks continue the campaign (src/campaign/boot-resume.ts). This host side is the
 * machine's power and console:
 *
 *  1. build (or reuse) the image, boot the machine on its persistent overlay;
 *  2. copy the spec files and the testbed file (marked `inside: true`) in, start `nuksm run` there;
 *  3. watch <campaign>/progress.json over SSH until the campaign completes: SSH drops while the guest
 *     reboots are waited out; a QEMU that dies (power loss) is started again and the guest's hook
 *     resumes the campaign (interrupted steps re-run from scratch); a guest unreachable for longer
 *     than timeouts.bootS is power-cycled; a boot-loop report from the guard ends the wait;
 *  4. copy the campaign directory (store, plan, logs, raw outputs) back into results/<id>/ and
 *     power the machine off. Figures are then exported from that store like any other.
 *
 * results/<id>/machine.json records how to reach the machine again, so `nuksm resume <id>` on this
 * host continues the wait (starting the machine if it is off) after the host process was stopped.
 */
import { writeFileDurable } from '../core/durable-file.ts';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { FINAL_EXITS, hookIdOf, PROGRESS_FILE, type CampaignProgress } from './boot-resume.ts';
import { harnessCommit, MACHINE_FILE } from './campaign.ts';

export { MACHINE_FILE };
import type { Plan } from './plan.ts';
import type { CampaignSpec } from './spec.ts';
import { ConfigError, HarnessError, failureClassOf } from '../core/errors.ts';
import type { KernelSpec, TestbedFile } from '../core/testbed-file.ts';
import { bootResumePaths } from '../host/boot-resume/index.ts';
import { ResultsStore, STORE_FILE } from '../results/store.ts';
import { Journal } from './journal.ts';
import { runDetached, type SshExecutor } from '../host/exec/index.ts';
import { buildEmulatedImage, GUEST_HARNESS_DIR, imageKernels, QemuMachine, type QemuMachineOptions } from '../testbeds/emulated/index.ts';

/** Inside the machine. */
export const GUEST_RESULTS_DIR = '/var/lib/nuksm/results';
export const GUEST_INPUTS_DIR = '/var/lib/nuksm/inputs';
const GUEST_NODE = '/usr/local/bin/node';
const RUNNER_GRACE_MS = 5 * 60_000;

/** What results/<id>/machine.json holds. */
export interface MachineRecord {
  campaign: string;
  testbedFile: string;
  machine: Omit<QemuMachineOptions, 'log'>;
  imageKey: string;
  /** The boot-resume hook id inside the guest (its boot-loop report is watched). */
  hookId: string;
  /** Arguments of the `nuksm run` started inside (started again if it crashes before any progress). */
  runArgs: string[];
  startedAt: string;
  /** The plan's wall-time estimate (s); the wait's deadline is derived from it (machineDeadlineMs), on a resume too. Absent in records of older harnesses. */
  estimateS?: number;
}

/** Deadline of a record without an estimate (written by an older harness). */
const LEGACY_DEADLINE_MS = 6 * 3_600_000;

/**
 * How long the host waits for the campaign inside the machine: 3 × the plan's estimate (which
 * counts its steps and boots: a step may be tried up to 3 times, and TCG runs slower than
 * planned) plus one boot timeout for the machine's own start, and at least 1 h. A resume waits
 * this long again: at most the whole plan is left.
 */
export function machineDeadlineMs(estimateS: number, bootS: number): number {
  return Math.max(3_600_000, Math.ceil((3 * estimateS + bootS) * 1000));
}

export interface MachineCampaignOptions {
  /** Host results root (the campaign goes to <resultsRoot>/<id>/). */
  resultsRoot: string;
  log: (line: string) => void;
  onProgress?: (p: CampaignProgress) => void;
  /** How often progress.json is read. */
  pollMs?: number;
  /** QEMU deaths (power losses), hung guests and vanished runners survived by restarting the machine. */
  maxPowerCycles?: number;
  /** Give up after this long (default: machineDeadlineMs of the plan's estimate). */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Called with the machine once it runs (tests pull the plug through it). */
  onMachine?: (m: QemuMachine) => void;
}

export interface MachineCampaignResult {
  dir: string;
  /** Null when stopped by a signal before the campaign completed. */
  progress: CampaignProgress | null;
  powerCycles: number;
  /** Stopped by a signal: the machine was powered off, the results are still inside it. */
  stopped: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A nuksm command line inside the machine. The machine has no git checkout: the commit its harness
 * copy was made from goes with the runs. V8's trap-handler bounds checks for WebAssembly (tsx's
 * module lexer) misfired under TCG here ("memory access out of bounds", once a SIGSEGV): explicit
 * checks instead. The campaign's boot hooks carry both variables on to every resume.
 */
function guestNuksm(args: readonly string[]): string[] {
  return ['env', `NUKSM_HARNESS_COMMIT=${harnessCommit() ?? 'unknown'}`, 'NODE_OPTIONS=--disable-wasm-trap-handler', GUEST_NODE, `${GUEST_HARNESS_DIR}/bin/nuksm.js`, ...args];
}

/** Copy of the host's testbed file for the inside of the machine: local host, marked inside. */
export function insideTestbedYaml(file: TestbedFile, imageKernels: Record<string, KernelSpec> = {}): string {
  const { file: _path, modes, kernels, ...rest } = file;
  // Release and GRUB entry as built into this image (Debian moves kernel versions on); knobs as the file says.
  const actual = Object.fromEntries(Object.entries(kernels).map(([k, spec]) => [k, imageKernels[k] ? { ...spec, bootEntry: imageKernels[k].bootEntry, release: imageKernels[k].release } : spec]));
  const yamlModes = Object.fromEntries(Object.entries(modes).map(([m, spec]) => [m, { kernel: spec!.kernels, ksmKnobs: spec!.ksmKnobs, placement: spec!.placement }]));
  // Inside, the campaign must resume itself after its reboots: 'none' becomes systemd.
  return stringify({ ...rest, kernels: actual, modes: yamlModes, host: { kind: 'local' }, resume: rest.resume === 'none' ? 'systemd' : rest.resume, emulated: { ...rest.emulated!, inside: true } });
}

/** Spec files, relative to the campaign spec's directory (campaigns refer to experiments that way). */
function specFiles(spec: CampaignSpec): { rel: string; content: string }[] {
  const base = dirname(spec.file);
  const files = [...new Set([spec.file, ...spec.specs.map((s) => s.file)])];
  return files.map((f) => {
    const rel = relative(base, f);
    if (rel.startsWith('..')) throw new ConfigError(f, '', `experiment spec outside the campaign's directory ${base}: cannot be copied into the emulated machine`);
    return { rel, content: readFileSync(f, 'utf8') };
  });
}

export async function runCampaignInMachine(req: { plan: Plan; spec: CampaignSpec; testbed: TestbedFile; iterations?: number; interleave?: 'none' | 'abba' }, opts: MachineCampaignOptions & { stateDir?: string }): Promise<MachineCampaignResult> {
  const { plan, testbed } = req;
  if (!testbed.emulated) throw new ConfigError(testbed.file, 'emulated', 'not an emulated testbed file');
  const id = plan.campaign;
  const dir = resolve(opts.resultsRoot, id);
  if (existsSync(join(dir, MACHINE_FILE))) throw new ConfigError('command line', '--campaign-id', `campaign '${id}' already exists in ${dir}; use 'nuksm resume ${id}'`);
  const files = specFiles(req.spec);
  mkdirSync(dir, { recursive: true });
  const image = await buildEmulatedImage({ cacheDir: testbed.emulated.imageCacheDir, log: opts.log });
  const inputs = `${GUEST_INPUTS_DIR}/${id}`;
  const stateDir = resolve(opts.stateDir ?? join(testbed.emulated.imageCacheDir, 'machines', testbed.name.replace(/[^A-Za-z0-9._-]+/g, '_')));
  const record: MachineRecord = {
    campaign: id,
    testbedFile: testbed.file,
    machine: {
      baseDisk: image.disk,
      stateDir,
      shape: { nodes: testbed.nodes.length, cpusPerNode: testbed.emulated.cpusPerNode, memoryMiBPerNode: testbed.emulated.memoryMiBPerNode },
      sshPort: testbed.emulated.sshPort,
      identityFile: image.identityFile,
      knownHostsFile: image.knownHostsFile,
      bootTimeoutS: testbed.timeouts.bootS,
      shutdownTimeoutS: testbed.timeouts.vmShutdownS,
      commandTimeoutS: testbed.timeouts.commandS,
    },
    imageKey: image.key,
    hookId: hookIdOf(id),
    estimateS: plan.estimate.totalS,
    runArgs: ['run', `${inputs}/${files[0]!.rel}`, '--testbed', `${inputs}/testbed.yaml`, '--experiments-dir', inputs, '--campaign-id', id, '--results-dir', GUEST_RESULTS_DIR, '--json', ...(req.iterations !== undefined ? ['--iterations', String(req.iterations)] : []), ...(req.interleave ? ['--interleave', req.interleave] : [])],
    startedAt: new Date().toISOString(),
  };
  claimMachine(stateDir, dir);
  const machine = new QemuMachine({ ...record.machine, log: opts.log });
  // A new campaign starts from the image as built: nothing of an earlier campaign (hooks, files) inside.
  await machine.resetDisk();
  const consoleDir = join(dir, 'machine', 'console');
  let exec = await machine.start(consoleDir);
  opts.onMachine?.(machine);
  try {
    await exec.run(['mkdir', '-p', inputs, GUEST_RESULTS_DIR], { timeoutMs: 30_000 });
    for (const f of files) {
      await exec.run(['mkdir', '-p', dirname(`${inputs}/${f.rel}`)], { timeoutMs: 30_000 });
      await exec.writeFile(`${inputs}/${f.rel}`, f.content);
    }
    const built = imageKernels(image);
    for (const [k, spec] of Object.entries(testbed.kernels)) {
      if (built[k] && built[k].release !== spec.release) opts.log(`kernel '${k}': the image has ${built[k].release} (${testbed.file} says ${spec.release}); using the image's`);
    }
    await exec.writeFile(`${inputs}/testbed.yaml`, insideTestbedYaml(testbed, built));
    // The resume depends on it: durable before the campaign starts inside (issue 10 item 7).
    writeFileDurable(join(dir, MACHINE_FILE), `${JSON.stringify(record, null, 2)}\n`);
    await runDetached(exec, guestNuksm(record.runArgs), { workDir: inputs, id: 'first-run' });
    opts.log(`campaign ${id} started inside the machine (${plan.steps.length} steps, ${plan.reboots} kernel boots planned)`);
    return await watchAndCollect(machine, exec, record, dir, consoleDir, { ...opts, deadlineMs: opts.deadlineMs ?? deadlineOf(record) });
  } catch (err) {
    await machine.stop().catch(() => undefined);
    throw err;
  }
}

function deadlineOf(record: MachineRecord): number {
  return record.estimateS === undefined ? LEGACY_DEADLINE_MS : machineDeadlineMs(record.estimateS, record.machine.bootTimeoutS ?? 600);
}

/**
 * One machine (state dir: overlay disk, QMP socket, pid file) holds one campaign at a time. The
 * owner file names the host campaign directory; a campaign there that was never copied back is
 * still in the machine, and a new one would wipe it.
 */
function claimMachine(stateDir: string, dir: string): void {
  const owner = join(stateDir, 'campaign');
  if (existsSync(owner)) {
    const other = readFileSync(owner, 'utf8').trim();
    if (other !== dir && existsSync(join(other, MACHINE_FILE)) && !existsSync(join(other, STORE_FILE))) {
      throw new ConfigError('command line', '--testbed', `the machine in ${stateDir} still holds campaign ${other} (not finished): 'nuksm resume' it, or delete ${owner} to give it up`);
    }
  }
  mkdirSync(stateDir, { recursive: true });
  writeFileDurable(owner, `${dir}\n`);
}

/** `nuksm resume <id>` of an emulated campaign: start the machine if it is off and wait again. */
export async function resumeCampaignInMachine(dir: string, opts: MachineCampaignOptions): Promise<MachineCampaignResult> {
  const record = JSON.parse(readFileSync(join(dir, MACHINE_FILE), 'utf8')) as MachineRecord;
  if (!existsSync(record.machine.baseDisk)) throw new HarnessError('config', `${dir}: the machine's image ${record.machine.baseDisk} is gone (image cache pruned?); the campaign cannot continue`);
  const machine = new QemuMachine({ ...record.machine, log: opts.log });
  const consoleDir = join(dir, 'machine', 'console');
  const exec = await machine.start(consoleDir);
  opts.onMachine?.(machine);
  try {
    if (record.estimateS === undefined && opts.deadlineMs === undefined) opts.log(`${MACHINE_FILE} has no plan estimate (written by an older harness): waiting up to ${LEGACY_DEADLINE_MS / 3_600_000} h`);
    return await watchAndCollect(machine, exec, record, dir, consoleDir, { ...opts, deadlineMs: opts.deadlineMs ?? deadlineOf(record) });
  } catch (err) {
    await machine.stop().catch(() => undefined);
    throw err;
  }
}

async function watchAndCollect(machine: QemuMachine, exec: SshExecutor, record: MachineRecord, dir: string, consoleDir: string, opts: MachineCampaignOptions & { deadlineMs: number }): Promise<MachineCampaignResult> {
  const id = record.campaign;
  const progressPath = `${GUEST_RESULTS_DIR}/${id}/${PROGRESS_FILE}`;
  let firstRun = `${GUEST_INPUTS_DIR}/${id}/first-run`;
  let firstRuns = 0;
  const guard = bootResumePaths({ id: record.hookId });
  const bootS = record.machine.bootTimeoutS ?? 600;
  const deadline = Date.now() + opts.deadlineMs;
  const maxPowerCycles = opts.maxPowerCycles ?? 3;
  let powerCycles = 0;
  let lastSeen = Date.now();
  let last = '';
  // Since when progress says 'running' but no runner process exists (a runner killed inside, e.g. by the OOM killer).
  let noRunnerSince: number | null = null;
  const powerCycle = async (why: string) => {
    if (++powerCycles > maxPowerCycles) throw new HarnessError('boot', `campaign ${id}: ${why}, and the machine was already started again ${maxPowerCycles} times`);
    opts.log(`${why}: starting the machine again (power cycle ${powerCycles}/${maxPowerCycles}); the guest's boot hook resumes the campaign`);
    await machine.kill();
    exec = await machine.start(consoleDir);
    opts.onMachine?.(machine);
    lastSeen = Date.now();
  };
  for (;;) {
    if (opts.signal?.aborted) {
      // A clean power-off: the runner inside gets SIGTERM, puts its step back to pending and keeps
      // its boot hooks, so the campaign continues when the machine is started again.
      const how = await machine.stop();
      opts.log(`stopped: machine ${how}; 'nuksm resume ${id}' starts it again and continues`);
      return { dir, progress: null, powerCycles, stopped: true };
    }
    if (Date.now() > deadline) throw new HarnessError('timeout', `campaign ${id} did not complete within ${(opts.deadlineMs / 3_600_000).toFixed(1)} h`);
    if (!machine.running) {
      await powerCycle('QEMU exited (power loss)');
      continue;
    }
    let text: string | null = null;
    try {
      const r = await exec.run(['sh', '-c', 'cat "$1" 2>/dev/null; echo; echo ---; cat "$2" 2>/dev/null; echo ---; cat "$3/exit" 2>/dev/null; echo ---; tail -c 2000 "$3/stderr" 2>/dev/null', 'sh', progressPath, guard.reportFile, firstRun], { timeoutMs: 30_000 });
      text = r.stdout;
      lastSeen = Date.now();
    } catch {
      // Rebooting into the next kernel, or hung: waited out up to the boot timeout.
      noRunnerSince = null;
      if (Date.now() - lastSeen > bootS * 1000) await powerCycle(`no SSH for ${bootS} s`);
      else await sleep(opts.pollMs ?? 5_000);
      continue;
    }
    const [progressText = '', report = '', exitText = '', stderr = ''] = text.split('---\n');
    if (report.trim()) throw new HarnessError('boot', `campaign ${id} stopped by the boot-loop guard inside the machine: ${report.trim()}`);
    const progress = progressText.trim() ? (JSON.parse(progressText) as CampaignProgress) : null;
    if (progress) {
      const line = `${progress.outcome} ${progress.done} done, ${progress.failed} failed, ${progress.notNeeded ? `${progress.notNeeded} not needed, ` : ''}${progress.pending} pending of ${progress.total}${progress.current ? `; running ${progress.current}` : ''}`;
      if (line !== last) {
        opts.log(`campaign ${id}: ${line}`);
        last = line;
        opts.onProgress?.(progress);
      }
      if (progress.outcome === 'complete') {
        // The runner writes 'complete' before it removes its hooks, exports and closes the store:
        // copy only once no nuksm process of this campaign is left.
        if ((await campaignProcessRunning(exec, id)) !== false) {
          await sleep(2_000);
          continue;
        }
        await collect(exec, id, dirname(dir));
        await collectBootResume(exec, guard.stateDir, guard, dir);
        consolesIntoSteps(dir, consoleDir);
        const how = await machine.stop();
        opts.log(`campaign ${id} complete; results copied to ${dir}; machine ${how}`);
        return { dir, progress, powerCycles, stopped: false };
      }
      if (progress.outcome === 'error') {
        await collect(exec, id, join(dir, 'machine', 'partial')).catch(() => undefined);
        throw new HarnessError('benchmark-error', `campaign ${id} failed inside the machine: ${progress.message ?? 'no message'} (its state as it was: ${dir}/machine/partial/)`);
      }
      // After a boot the guard starts the runner within a minute or so (and reruns one that
      // crashed). Progress unfinished and no runner for RUNNER_GRACE_MS: reboot the machine so
      // the guard tries again; its boot-loop check ends a campaign that never gets anywhere.
      const runner = progress.outcome === 'running' || progress.outcome === 'rebooting' ? await campaignProcessRunning(exec, id) : true;
      if (runner === false) {
        noRunnerSince ??= Date.now();
        if (Date.now() - noRunnerSince > RUNNER_GRACE_MS) {
          if (++powerCycles > maxPowerCycles) {
            await collect(exec, id, join(dir, 'machine', 'partial')).catch(() => undefined);
            throw new HarnessError('benchmark-error', `campaign ${id}: no runner inside the machine for ${RUNNER_GRACE_MS / 60_000} min although it is not finished, again after ${maxPowerCycles} restarts (its state: ${dir}/machine/partial/, consoles: ${dir}/machine/console/)`);
          }
          opts.log(`no runner inside the machine for ${RUNNER_GRACE_MS / 60_000} min although the campaign is not finished (crashed?): rebooting it (${powerCycles}/${maxPowerCycles}) so the boot hook resumes again`);
          await exec.run(['systemctl', 'reboot'], { timeoutMs: 30_000, allowFailure: true }).catch(() => undefined);
          noRunnerSince = null;
          lastSeen = Date.now();
        }
      } else if (runner === true) noRunnerSince = null;
    } else if (exitText.trim() !== '' && exitText.trim() !== '3') {
      // The first `nuksm run` exited before writing any progress: bad input (final), or a crash —
      // started again (as a resume once the campaign exists), like the boot hook does.
      const rc = Number(exitText.trim());
      if (FINAL_EXITS.includes(rc) || ++firstRuns > 3) throw new HarnessError('config', `nuksm run inside the machine exited ${rc} before starting: ${stderr.trim()}`);
      opts.log(`nuksm run inside the machine crashed (exit ${rc}) before starting: ${stderr.trim().split('\n').slice(-3).join(' | ')}; starting it again (${firstRuns}/3)`);
      const store = await exec.run(['test', '-e', `${GUEST_RESULTS_DIR}/${id}/${STORE_FILE}`], { timeoutMs: 30_000, allowFailure: true });
      const args = store.exitCode === 0 ? ['resume', id, '--results-dir', GUEST_RESULTS_DIR, '--json'] : record.runArgs;
      firstRun = (await runDetached(exec, guestNuksm(args), { workDir: `${GUEST_INPUTS_DIR}/${id}`, id: `first-run-${firstRuns}` })).dir;
    }
    await sleep(opts.pollMs ?? 5_000);
  }
}

/**
 * The guard's state (boots.log: one line per boot and hook, resume.log) → <dir>/machine/boot-resume/,
 * with hooks-left.txt listing any hook file still installed (empty: removed at the end as they must be).
 */
async function collectBootResume(exec: SshExecutor, stateDir: string, hook: { unitFile: string; cronFile: string }, dir: string): Promise<void> {
  const out = join(dir, 'machine', 'boot-resume');
  mkdirSync(out, { recursive: true });
  for (const f of ['boots.log', 'resume.log']) {
    const text = await exec.run(['cat', `${stateDir}/${f}`], { timeoutMs: 30_000, allowFailure: true });
    writeFileSync(join(out, f), text.stdout);
  }
  const left = await exec.run(['sh', '-c', 'for f in "$@"; do [ -e "$f" ] && echo "$f"; done; true', 'sh', hook.unitFile, hook.cronFile], { timeoutMs: 30_000 });
  writeFileSync(join(out, 'hooks-left.txt'), left.stdout);
}

/** Whether a nuksm run/resume of the campaign runs inside; null when the machine did not answer in time (slow under TCG, rebooting): ask again later. */
async function campaignProcessRunning(exec: SshExecutor, id: string): Promise<boolean | null> {
  const pattern = `nuksm\\.js (run|resume) .*${id.replace(/[^A-Za-z0-9_-]/g, '.')}( |$)`;
  const r = await exec.run(['pgrep', '-f', '--', pattern], { timeoutMs: 30_000, allowFailure: true }).catch((err: unknown) => {
    const cls = failureClassOf(err);
    if (cls === 'timeout' || cls === 'guest-unreachable') return null;
    throw err;
  });
  return r === null ? null : r.exitCode === 0;
}

/**
 * Each attempt's raw directory gets the serial console of the machine start it ran under
 * (console-<start ms>.log: the latest start before the attempt's), as console.log — the kernel's
 * own output around the step, boots and panics included.
 */
function consolesIntoSteps(dir: string, consoleDir: string): void {
  const starts = existsSync(consoleDir)
    ? readdirSync(consoleDir).map((f) => ({ f, t: Number(/^console-(\d+)\.log$/.exec(f)?.[1]) })).filter((c) => Number.isFinite(c.t)).sort((a, b) => a.t - b.t)
    : [];
  const store = new ResultsStore(dir);
  try {
    for (const a of new Journal(store).attempts()) {
      const raw = join(dir, 'raw', a.stepId, `attempt-${a.number}`);
      const serial = starts.filter((c) => c.t <= Date.parse(a.startedAt)).at(-1);
      if (serial && existsSync(raw)) copyFileSync(join(consoleDir, serial.f), join(raw, 'console.log'));
    }
  } finally {
    store.close();
  }
}

/**
 * The guest's campaign directory → <into>/<id>/ (store, plan, logs, raw outputs): the results root
 * when complete; machine/partial/ of the campaign for a look at one that failed (the host campaign
 * directory then has no store, so 'nuksm resume' still goes to the machine).
 */
async function collect(exec: SshExecutor, id: string, into: string): Promise<void> {
  await copyDirectoryOut(exec, GUEST_RESULTS_DIR, id, into);
}

/**
 * <root>/<name> on the far side → <into>/<name>: `tar -czf -` streamed over SSH into a file next
 * to the target (any size; never one string in memory), then unpacked. tar runs without a pipe
 * on either side, so its own exit status is checked at both ends: a member it cannot read (or a
 * missing directory) fails the copy, naming tar's message, instead of unpacking a partial archive.
 */
export async function copyDirectoryOut(exec: SshExecutor, root: string, name: string, into: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  mkdirSync(into, { recursive: true });
  const archive = join(into, `.${name}.copy-${process.pid}.tar.gz`);
  try {
    const r = await exec.runToFile(['tar', '-C', root, '-czf', '-', '--', name], archive, { timeoutMs: opts.timeoutMs ?? 3_600_000, allowFailure: true });
    if (r.exitCode !== 0) throw new HarnessError('benchmark-error', `copying ${root}/${name} out of ${exec.target} failed: tar exited ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`, { exitCode: r.exitCode });
    const unpack = await execa('tar', ['-xzf', archive, '-C', into], { reject: false });
    if (unpack.exitCode !== 0) throw new HarnessError('benchmark-error', `unpacking ${root}/${name} from ${exec.target} into ${into} failed: tar exited ${unpack.exitCode}: ${unpack.stderr.trim()}`);
  } finally {
    rmSync(archive, { force: true });
  }
}
