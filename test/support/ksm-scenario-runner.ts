/**
 * Runs KSM scenarios (test/support/ksm-scenarios.ts) in a real machine through the ksm-scenario driver
 * (test/system/trace/ksm-scenario.c, built static on this host and copied in), and compares each run
 * with the reference model (src/policy/scenario.ts). On kernels with KSM tracepoints (6.3+) the
 * `ksm` trace of the run is also compared merge by merge (kind, pair, pass, surviving node).
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Executor } from '../../src/host/exec/index.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { defaultKsmModelConfig, type MergeEvent } from '../../src/policy/index.ts';
import { compareScenario, parseScenarioLog, scenarioModelConfig, scenarioScript, type KernelRecord, type KsmScenario, type ScenarioComparison } from '../../src/policy/scenario.ts';
import { compareMerges, mmIdsFromEnters, nodeOfPfnFromMemoryBlocks, parseKsmTrace, parseNodeMemoryLinks } from '../../src/policy/trace.ts';

export const SCENARIO_DRIVER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'system', 'trace', 'ksm-scenario.c');
const KSM = '/sys/kernel/mm/ksm';
const TRACING = '/sys/kernel/tracing';

/** Builds the driver (static) into outDir. */
export async function buildScenarioDriver(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, 'ksm-scenario');
  await new LocalExecutor().run(['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-static', '-o', out, SCENARIO_DRIVER_SOURCE], { timeoutMs: 120_000 });
  return out;
}

export interface MachineLayout {
  release: string;
  blockSizeBytes: number;
  nodeMemoryLinks: string;
  /** The kernel has KSM tracepoints (events/ksm). */
  ksmTracepoints: boolean;
  smartScanKnob: boolean;
}

async function sh(exec: Executor, script: string, timeoutMs = 120_000): Promise<string> {
  return (await exec.run(['sh', '-c', script], { timeoutMs })).stdout;
}

/** Copies the driver into the machine (base64 over the command channel) and reads the memory layout. */
export async function prepareMachine(exec: Executor, driverPath: string, guestDir: string): Promise<MachineLayout> {
  await sh(exec, `mkdir -p '${guestDir}'`);
  await exec.writeFile(`${guestDir}/ksm-scenario.b64`, readFileSync(driverPath).toString('base64'), { timeoutMs: 300_000 });
  await sh(exec, `base64 -d '${guestDir}/ksm-scenario.b64' > '${guestDir}/ksm-scenario' && chmod +x '${guestDir}/ksm-scenario' && rm '${guestDir}/ksm-scenario.b64'`);
  const release = (await sh(exec, 'uname -r')).trim();
  const blockSizeBytes = parseInt((await sh(exec, 'cat /sys/devices/system/memory/block_size_bytes')).trim(), 16);
  const nodeMemoryLinks = await sh(exec, 'ls -d /sys/devices/system/node/node*/memory*');
  await sh(exec, `[ -d ${TRACING}/events ] || mount -t tracefs nodev ${TRACING} 2>/dev/null; true`);
  const ksmTracepoints = (await sh(exec, `[ -d ${TRACING}/events/ksm ] && echo yes || echo no`)).trim() === 'yes';
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

/** Runs one scenario: KSM emptied (run=2), THP off, the driver fed the script; returns its log (and trace). */
export async function runScenario(exec: Executor, layout: MachineLayout, guestDir: string, s: KsmScenario): Promise<RecordedRun> {
  const prep = [
    `echo 0 > ${KSM}/run`,
    `echo 2 > ${KSM}/run`,
    `i=0; while [ "$(cat ${KSM}/pages_shared)" != 0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`,
    `echo 0 > ${KSM}/run`,
    `echo 0 > ${KSM}/use_zero_pages`,
    `[ -w /sys/kernel/mm/transparent_hugepage/enabled ] && echo never > /sys/kernel/mm/transparent_hugepage/enabled; true`,
  ];
  if (layout.ksmTracepoints) {
    prep.push(
      `echo 0 > ${TRACING}/tracing_on`,
      `echo 8192 > ${TRACING}/buffer_size_kb`,
      `[ -e ${TRACING}/options/hash-ptr ] && echo 0 > ${TRACING}/options/hash-ptr; true`,
      `echo 1 > ${TRACING}/events/ksm/enable`,
      `echo > ${TRACING}/trace`,
      `echo 1 > ${TRACING}/tracing_on`,
    );
  }
  await sh(exec, prep.join(' && '));
  const r = await exec.run([`${guestDir}/ksm-scenario`], { input: scenarioScript(s, { smartScanKnob: layout.smartScanKnob }), timeoutMs: 700_000, allowFailure: true });
  let trace: string | null = null;
  if (layout.ksmTracepoints) {
    await sh(exec, `echo 0 > ${TRACING}/tracing_on`);
    trace = await sh(exec, `cat ${TRACING}/trace`, 300_000);
    await sh(exec, `echo 0 > ${TRACING}/events/ksm/enable; echo > ${TRACING}/trace`);
  }
  await sh(exec, `echo 2 > ${KSM}/run; true`);
  if (r.exitCode !== 0) throw new Error(`ksm-scenario ${s.name} exited ${r.exitCode}: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  return { scenario: s.name, release: layout.release, log: r.stdout, trace };
}

export interface TraceAgreement {
  kernelMerges: number;
  modelMerges: number;
  /** Merges equal in kind, scanned and other instance, surviving node and pass, position by position. */
  exact: number;
  firstMismatch: string | null;
}

export interface ScenarioResult {
  comparison: ScenarioComparison;
  trace: TraceAgreement | null;
}

/** Compares a recorded run with the model (and its trace, when there is one). */
export function checkRecordedRun(s: KsmScenario, run: RecordedRun, layout: Pick<MachineLayout, 'blockSizeBytes' | 'nodeMemoryLinks'>, configOverrides: Partial<ReturnType<typeof defaultKsmModelConfig>> = {}): ScenarioResult {
  const log: KernelRecord[] = parseScenarioLog(run.log);
  const nodeOfPfn = nodeOfPfnFromMemoryBlocks(layout.blockSizeBytes, parseNodeMemoryLinks(layout.nodeMemoryLinks));
  const config = { ...scenarioModelConfig(s, run.release, defaultKsmModelConfig({ nodes: 2 })), ...configOverrides };
  const events: MergeEvent[] = [];
  const comparison = compareScenario(s, log, config, nodeOfPfn, 8, (model) => {
    model.onMerge = (e) => events.push(e);
  });
  let trace: TraceAgreement | null = null;
  if (run.trace !== null) {
    const parsed = parseKsmTrace(run.trace);
    const pidOfProc = new Map<number, number>();
    for (const r of log) if (r.t === 'reg') pidOfProc.set(r.pid, r.i);
    const mmIds = mmIdsFromEnters(parsed, pidOfProc);
    const mapped = events.map((e) => ({ ...e, scannedMm: comparison.procOfMm[e.scannedMm]!, keptMm: comparison.procOfMm[e.keptMm]!, otherMm: comparison.procOfMm[e.otherMm]! }));
    const cmp = compareMerges(parsed.merges, mapped, mmIds, nodeOfPfn, 2, Number.MAX_SAFE_INTEGER);
    const stops = parsed.scans.filter((x) => x.kind === 'stop');
    const bad = new Map(cmp.mismatches.map((m) => [m.index, m] as const));
    let exact = 0;
    let firstMismatch: string | null = null;
    for (let i = 0; i < cmp.compared; i++) {
      const kPass = stops.filter((x) => x.timestamp < parsed.merges[i]!.timestamp).length;
      const m = bad.get(i);
      if (!m && kPass === mapped[i]!.fullScans) exact++;
      else firstMismatch ??= m ? `merge ${i}: ${m.field} kernel ${JSON.stringify(m.kernel)} model ${JSON.stringify(m.model)}` : `merge ${i}: pass kernel ${kPass} model ${mapped[i]!.fullScans}`;
    }
    if (cmp.kernelMerges !== cmp.modelMerges) firstMismatch ??= `merge count kernel ${cmp.kernelMerges} model ${cmp.modelMerges}`;
    if (parsed.unparsed.length > 0) firstMismatch ??= `unparsed trace lines: ${parsed.unparsed.slice(0, 2).join(' | ')}`;
    trace = { kernelMerges: parsed.merges.length, modelMerges: mapped.length, exact, firstMismatch };
  }
  return { comparison, trace };
}

/** One row of the agreement table. */
export function agreementRow(kernel: string, s: KsmScenario, r: ScenarioResult): string {
  const c = r.comparison;
  const t = r.trace;
  const tr = t ? `${t.exact}/${Math.max(t.kernelMerges, t.modelMerges)}` : 'n/a (no tracepoints)';
  return `| ${s.family} | ${s.name} | ${kernel} | ${c.countersExact}/${c.stops.length} | ${c.pagesExact}/${c.pagesCompared} | ${tr} | ${c.exact && (!t || t.exact === Math.max(t.kernelMerges, t.modelMerges)) ? 'exact' : 'DIFFERS'} |`;
}

export const AGREEMENT_HEADER = '| family | scenario | kernel | stops with every counter equal | page states equal (merged, survivor, node) | trace merges equal (kind, pair, node, pass) | verdict |\n|---|---|---|---|---|---|---|';
