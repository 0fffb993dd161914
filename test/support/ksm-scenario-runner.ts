/**
 * Compares runs of KSM scenarios (test/support/ksm-scenarios.ts) recorded on a real kernel by the
 * scenario driver (src/host/ksm/scenario-driver: build, prepare, run) with the reference model
 * (src/policy/scenario.ts). On kernels with KSM tracepoints (6.3+) the `ksm` trace of the run is also
 * compared merge by merge (kind, pair, pass, surviving node).
 */
import type { MachineLayout, RecordedRun } from '../../src/host/ksm/scenario-driver/index.ts';
import { defaultKsmModelConfig, type MergeEvent } from '../../src/policy/index.ts';
import { compareScenario, parseScenarioLog, scenarioModelConfig, type KernelRecord, type KsmScenario, type ScenarioComparison } from '../../src/policy/scenario.ts';
import { compareMerges, mmIdsFromEnters, nodeOfPfnFromMemoryBlocks, parseKsmTrace, parseNodeMemoryLinks } from '../../src/policy/trace.ts';

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
