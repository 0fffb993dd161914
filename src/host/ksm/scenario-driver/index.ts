/**
 * The KSM scenario driver (ksm-scenario.c beside this file): steps ksmd one batch at a time on a real
 * kernel and records, at every pass end and pinned batch, every KSM counter and each page's pfn and
 * kpageflags (the log format is in the C file). One implementation for every machine it runs on, reached
 * through an Executor: the emulated machine (the trace suite, over SSH) and a physical host (`nuksm trace
 * record`, locally or over SSH). The driver is built static with gcc on the machine running nuksm and
 * copied to the target, which needs no compiler.
 *
 * What runs change on the target and put back afterwards: every KSM knob (run last; `run` is put back to
 * what it was), transparent_hugepage/enabled, and the tracing state when tracepoints are used. They are
 * saved when a session opens (openScenarioSession; runScenario is a session of one) and put back when it
 * closes; between its runs only the saved knobs are written back. Starting a run unmerges every KSM page of
 * the target (run=2): the counters are only the scenario's from an empty KSM.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../../../core/errors.ts';
import { parseScenarioLog, scenarioScript, type KsmScenario } from '../../../policy/scenario.ts';
import { parseNodeMemoryLinks } from '../../../policy/trace.ts';
import { traceFromDriverLog, type TraceFile } from '../../../policy/trace-file.ts';
import { LocalExecutor } from '../../exec/index.ts';
import type { Executor } from '../../exec/types.ts';
import { sourceVersion, staticCompileArgv } from '../../native/static-c.ts';
import { KsmControl, KSM_SYSFS } from '../control.ts';

/** The C source, found next to this module at run time (like the placement helper's). */
export const SCENARIO_DRIVER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'ksm-scenario.c');
export const SCENARIO_DRIVER_BINARY = 'ksm-scenario';
const KSM = KSM_SYSFS;
const TRACING = '/sys/kernel/tracing';
const THP = '/sys/kernel/mm/transparent_hugepage/enabled';

/** Builds the driver (static, stamped with its source hash) into outDir on this machine; returns its path. */
export async function buildScenarioDriver(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, SCENARIO_DRIVER_BINARY);
  const version = sourceVersion(readFileSync(SCENARIO_DRIVER_SOURCE, 'utf8'));
  const r = await new LocalExecutor().run(staticCompileArgv(SCENARIO_DRIVER_SOURCE, out, version), { timeoutMs: 120_000, allowFailure: true }).catch((err: Error) => ({ exitCode: -1, stderr: err.message }));
  if (r.exitCode !== 0) {
    throw new HarnessError('unsupported', `cannot build the KSM scenario driver on this machine (needs gcc and a static libc, e.g. Debian's gcc and libc6-dev): ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  }
  return out;
}

export interface MachineLayout {
  release: string;
  blockSizeBytes: number;
  nodeMemoryLinks: string;
  /** The run records the kernel's KSM tracepoints (events/ksm exist and were asked for). */
  ksmTracepoints: boolean;
  smartScanKnob: boolean;
}

async function sh(exec: Executor, script: string, timeoutMs = 120_000): Promise<string> {
  return (await exec.run(['sh', '-c', script], { timeoutMs })).stdout;
}

/**
 * Whether the target can run the driver: root, KSM in sysfs, /proc/kpageflags, and no other process with
 * KSM-mergeable memory (ksmd would scan it too, so the counters would not be the scenario's). Throws
 * HarnessError('unsupported') naming what is missing; changes nothing.
 */
export async function checkScenarioTarget(exec: Executor): Promise<void> {
  const t = exec.target;
  const probe = await sh(
    exec,
    [
      'echo "uid $(id -u)"',
      `[ -w ${KSM}/run ] && echo ksm-writable || { [ -e ${KSM}/run ] && echo ksm-readonly || echo ksm-missing; }`,
      '[ -r /proc/kpageflags ] && [ -r /proc/kpagecount ] && echo kpageflags || echo no-kpageflags',
      `echo "arch $(uname -m)"`,
    ].join('; '),
    30_000,
  );
  if (!/^uid 0$/m.test(probe)) throw new HarnessError('unsupported', `recording a KSM scenario on ${t} needs root (KSM knobs, /proc/kpageflags, pagemap pfns); it runs as uid ${/^uid (\S+)/m.exec(probe)?.[1] ?? '?'}`);
  if (/ksm-missing/.test(probe)) throw new HarnessError('unsupported', `KSM is not available on ${t}: ${KSM}/run does not exist (kernel built without CONFIG_KSM)`);
  if (/ksm-readonly/.test(probe)) throw new HarnessError('unsupported', `KSM is not writable on ${t}: ${KSM}/run is read-only (a container without access to /sys/kernel/mm?)`);
  if (/no-kpageflags/.test(probe)) throw new HarnessError('unsupported', `/proc/kpageflags or /proc/kpagecount is not readable on ${t} (CONFIG_PROC_PAGE_MONITOR off?): the driver reads each page's KSM bit there`);
  const arch = /^arch (\S+)/m.exec(probe)?.[1];
  if (arch !== process.arch.replace('x64', 'x86_64').replace('arm64', 'aarch64')) {
    throw new HarnessError('unsupported', `${t} is ${arch ?? '?'}, the driver is built here for ${process.arch}: run nuksm on a machine of the same architecture`);
  }
  await checkNoOtherMergeable(exec);
}

/** Refuses when some process on the target has KSM-mergeable memory (VmFlags 'mg' in smaps). */
async function checkNoOtherMergeable(exec: Executor): Promise<void> {
  const out = await sh(exec, `for f in /proc/[0-9]*/smaps; do grep -qs '^VmFlags:.* mg' "$f" && { p=\${f#/proc/}; p=\${p%/smaps}; echo "$p $(cat /proc/$p/comm 2>/dev/null)"; }; done; true`, 60_000);
  const found = out.split('\n').filter((l) => l.trim() !== '');
  if (found.length > 0) {
    throw new HarnessError(
      'unsupported',
      `on ${exec.target}, process(es) ${found.slice(0, 5).join(', ')}${found.length > 5 ? ` and ${found.length - 5} more` : ''} have KSM-mergeable memory: ksmd would scan them too and the counters would not be the scenario's. Stop them (or record on another host) and try again`,
    );
  }
}

/** Copies the driver to the target (base64 over the command channel) and reads its memory layout. */
export async function prepareMachine(exec: Executor, driverPath: string, dir: string, opts: { tracepoints?: boolean } = {}): Promise<MachineLayout> {
  await sh(exec, `mkdir -p '${dir}'`);
  await exec.writeFile(`${dir}/${SCENARIO_DRIVER_BINARY}.b64`, readFileSync(driverPath).toString('base64'), { timeoutMs: 300_000 });
  await sh(exec, `base64 -d '${dir}/${SCENARIO_DRIVER_BINARY}.b64' > '${dir}/${SCENARIO_DRIVER_BINARY}' && chmod +x '${dir}/${SCENARIO_DRIVER_BINARY}' && rm '${dir}/${SCENARIO_DRIVER_BINARY}.b64'`);
  const release = (await sh(exec, 'uname -r')).trim();
  const blockSizeBytes = parseInt((await sh(exec, 'cat /sys/devices/system/memory/block_size_bytes')).trim(), 16);
  const nodeMemoryLinks = await sh(exec, 'ls -d /sys/devices/system/node/node*/memory*');
  let ksmTracepoints = false;
  if (opts.tracepoints !== false) {
    await sh(exec, `[ -d ${TRACING}/events ] || mount -t tracefs nodev ${TRACING} 2>/dev/null; true`);
    ksmTracepoints = (await sh(exec, `[ -d ${TRACING}/events/ksm ] && echo yes || echo no`)).trim() === 'yes';
  }
  const smartScanKnob = (await sh(exec, `[ -w ${KSM}/smart_scan ] && echo yes || echo no`)).trim() === 'yes';
  return { release, blockSizeBytes, nodeMemoryLinks, ksmTracepoints, smartScanKnob };
}

export interface RecordedRun {
  scenario: string;
  release: string;
  log: string;
  /** The ksm trace of the run (kernels with KSM tracepoints), else null. */
  trace: string | null;
}

/** What a run changes besides the KSM knobs, read before it starts. */
async function saveOtherState(exec: Executor, tracepoints: boolean): Promise<string> {
  const files = [THP, ...(tracepoints ? [`${TRACING}/tracing_on`, `${TRACING}/buffer_size_kb`, `${TRACING}/options/hash-ptr`, `${TRACING}/events/ksm/enable`] : [])];
  const out = await sh(exec, files.map((f) => `[ -r ${f} ] && echo "${f}=$(cat ${f})"`).join('; ') + '; true', 30_000);
  const restore: string[] = [];
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const file = line.slice(0, eq);
    const raw = line.slice(eq + 1).trim();
    // THP prints every choice with the active one bracketed; events/*/enable may print X (mixed): leave those.
    const value = /\[([^\]]+)\]/.exec(raw)?.[1] ?? raw;
    if (!/^[A-Za-z0-9_-]+$/.test(value)) continue;
    restore.push(`[ -w ${file} ] && echo ${value} > ${file}`);
  }
  return restore.length > 0 ? `${restore.join('; ')}; true` : 'true';
}

/**
 * Scenario runs on one target, one after another. open: saves the KSM knobs, THP and tracing state and
 * checks that no other process has KSM-mergeable memory (checkNoOtherMergeable), once. run: KSM emptied
 * (run=2), the saved knobs written back (so one scenario's knobs never leak into the next), ksmd stopped,
 * THP off, advisor off, the driver fed the script; returns its log (and its ksm trace when the layout uses
 * tracepoints). close (always, also after a failed run): every KSM knob (run last), THP and the tracing
 * state put back as they were, after unmerging the scenarios' pages.
 * Call order: openScenarioSession() → run() any number of times → close().
 */
export interface ScenarioSession {
  run(s: KsmScenario, opts?: { timeoutMs?: number }): Promise<RecordedRun>;
  close(): Promise<void>;
}

export async function openScenarioSession(exec: Executor, layout: MachineLayout, dir: string): Promise<ScenarioSession> {
  const ksm = new KsmControl(exec);
  const savedKnobs = await ksm.save();
  const restoreOther = await saveOtherState(exec, layout.ksmTracepoints);
  await checkNoOtherMergeable(exec);
  // Knobs first that need no KSM page (the run=2 wait comes before), `run` never: ksmd stays stopped.
  const knobWrites = Object.entries(savedKnobs)
    .filter(([k, v]) => k !== 'run' && /^[a-z0-9_]+$/.test(k) && /^[A-Za-z0-9_ -]*$/.test(v))
    .map(([k, v]) => `{ [ ! -w ${KSM}/${k} ] || [ "$(cat ${KSM}/${k})" = '${v}' ] || echo '${v}' > ${KSM}/${k}; }`);
  return {
    async run(s, opts = {}) {
      const prep = [
        `echo 0 > ${KSM}/run`,
        `echo 2 > ${KSM}/run`,
        `i=0; while [ "$(cat ${KSM}/pages_shared)" != 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`,
        ...knobWrites,
        `echo 0 > ${KSM}/run`,
        // The advisor (6.8+) rewrites pages_to_scan itself: a batch would no longer be the scenario's.
        `{ [ ! -w ${KSM}/advisor_mode ] || echo none > ${KSM}/advisor_mode; }`,
        `echo 0 > ${KSM}/use_zero_pages`,
        `{ [ ! -w ${THP} ] || echo never > ${THP}; }`,
      ];
      if (layout.ksmTracepoints) {
        prep.push(
          `echo 0 > ${TRACING}/tracing_on`,
          `echo 8192 > ${TRACING}/buffer_size_kb`,
          `{ [ ! -e ${TRACING}/options/hash-ptr ] || echo 0 > ${TRACING}/options/hash-ptr; }`,
          `echo 1 > ${TRACING}/events/ksm/enable`,
          `echo > ${TRACING}/trace`,
          `echo 1 > ${TRACING}/tracing_on`,
        );
      }
      await sh(exec, prep.join(' && '));
      // The driver has its own 600 s deadline (and 120 s per batch); this one covers a wedged target.
      const r = await exec.run([`${dir}/${SCENARIO_DRIVER_BINARY}`], { input: scenarioScript(s, { smartScanKnob: layout.smartScanKnob }), timeoutMs: opts.timeoutMs ?? 700_000, allowFailure: true });
      let trace: string | null = null;
      if (layout.ksmTracepoints) {
        await sh(exec, `echo 0 > ${TRACING}/tracing_on`);
        trace = await sh(exec, `cat ${TRACING}/trace`, 300_000);
        await sh(exec, `echo 0 > ${TRACING}/events/ksm/enable; echo > ${TRACING}/trace`);
      }
      if (r.exitCode !== 0) throw new HarnessError('benchmark-error', `ksm-scenario ${s.name} on ${exec.target} exited ${r.exitCode}: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
      return { scenario: s.name, release: layout.release, log: r.stdout, trace };
    },
    async close() {
      // reset: run=2 until no KSM page is left, then every knob as saved (run last).
      try {
        await ksm.reset(savedKnobs);
        await sh(exec, restoreOther, 30_000);
      } catch (err) {
        throw new HarnessError('unsupported', `could not put the KSM knobs / THP back on ${exec.target} (saved: ${JSON.stringify(savedKnobs)}): ${(err as Error).message}`, {}, { cause: err });
      }
    },
  };
}

/** One scenario in a session of its own (openScenarioSession); a failed restore is reported after the run's own error. */
export async function runScenario(exec: Executor, layout: MachineLayout, dir: string, s: KsmScenario, opts: { timeoutMs?: number } = {}): Promise<RecordedRun> {
  const session = await openScenarioSession(exec, layout, dir);
  let failed: unknown = null;
  try {
    return await session.run(s, opts);
  } catch (err) {
    failed = err;
    throw err;
  } finally {
    await session.close().catch((err: unknown) => {
      throw failed ? new HarnessError('unsupported', `${(failed as Error).message}; and then ${(err as Error).message}`, {}, { cause: err }) : err;
    });
  }
}

/**
 * Records one scenario on a real kernel reached through `exec` as a trace file (docs/trace.md, producer
 * 'kernel'): checks the target (checkScenarioTarget), builds the driver here, copies it into a fresh
 * directory under `workRoot` on the target, runs the scenario (knobs put back afterwards) and removes the
 * directory. Counters and page states at every stop; no merge records (the tracepoints name mm pointers
 * and rmap items, not pages: the page states at every stop already show each merge's pass and survivor).
 */
export async function recordScenarioTrace(exec: Executor, s: KsmScenario, opts: { workRoot: string; source: string }): Promise<TraceFile> {
  await checkScenarioTarget(exec);
  const local = await mkdtemp(join(tmpdir(), 'nuksm-ksm-driver-'));
  let dir: string | null = null;
  try {
    const driver = await buildScenarioDriver(local);
    dir = (await sh(exec, `mkdir -p '${opts.workRoot}' && mktemp -d '${opts.workRoot}/ksm-trace.XXXXXX'`, 30_000)).trim();
    const layout = await prepareMachine(exec, driver, dir, { tracepoints: false });
    const nodes = new Set(parseNodeMemoryLinks(layout.nodeMemoryLinks).values());
    s.procs.forEach((p, i) => {
      if (!nodes.has(p.node)) throw new HarnessError('config', `scenario ${s.name}: instance ${i} is bound to node ${p.node}, but ${exec.target} has memory on node(s) ${[...nodes].sort((a, b) => a - b).join(', ')} only`);
    });
    const run = await runScenario(exec, layout, dir, s);
    return traceFromDriverLog(s, parseScenarioLog(run.log), layout, opts.source);
  } finally {
    if (dir !== null && dir.startsWith(`${opts.workRoot}/ksm-trace.`)) await exec.run(['rm', '-rf', dir], { timeoutMs: 30_000, allowFailure: true }).catch(() => undefined);
    await rm(local, { recursive: true, force: true });
  }
}
