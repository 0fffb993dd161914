/**
 * The per-step summary `nuksm predict` prints (and a test reads): each step's merged-page placement
 * per instance and the host's KSM counters at the end, from a campaign's rows. The same function
 * reads a measured campaign, so a prediction and a measurement are summarised alike.
 */
import type { ResultRow } from './store.ts';

export interface PlacementLine {
  step: string;
  experiment: string;
  config: string;
  mode: string;
  kernel: string;
  implementation: string;
  instance: string;
  /** Share of the instance's merged pages on its own node (ksm_local_pct), null when nothing merged. */
  ksmLocalPct: number | null;
  /** Merged pages of the instance per node (ksm_pages_on_node at the end of the run). */
  pagesOnNode: Record<number, number>;
}

export interface CounterLine {
  step: string;
  config: string;
  mode: string;
  kernel: string;
  pagesSharing: number | null;
  pagesShared: number | null;
  fullScans: number | null;
  /** Points in the step's time series (t != null): the timeline the store holds. */
  timelinePoints: number;
}

export function placementLines(rows: readonly ResultRow[]): PlacementLine[] {
  const out = new Map<string, PlacementLine>();
  for (const r of rows) {
    if (r.t !== null || r.instance === 'host' || (r.metric !== 'ksm_local_pct' && r.metric !== 'ksm_pages_on_node')) continue;
    const key = `${r.step}|${r.instance}`;
    const line = out.get(key) ?? { step: r.step, experiment: r.experiment, config: r.config, mode: r.kernelMode, kernel: r.kernel, implementation: r.implementation, instance: r.instance, ksmLocalPct: null, pagesOnNode: {} };
    if (r.metric === 'ksm_local_pct') line.ksmLocalPct = r.value;
    else if (r.node !== null) line.pagesOnNode[r.node] = r.value;
    out.set(key, line);
  }
  return [...out.values()].sort((a, b) => a.step.localeCompare(b.step) || a.instance.localeCompare(b.instance));
}

export function counterLines(rows: readonly ResultRow[]): CounterLine[] {
  const out = new Map<string, CounterLine>();
  for (const r of rows) {
    const line = out.get(r.step) ?? { step: r.step, config: r.config, mode: r.kernelMode, kernel: r.kernel, pagesSharing: null, pagesShared: null, fullScans: null, timelinePoints: 0 };
    out.set(r.step, line);
    if (r.t !== null) {
      line.timelinePoints++;
      continue;
    }
    if (r.instance !== 'host' || r.node !== null) continue;
    if (r.metric === 'ksm_pages_sharing') line.pagesSharing = r.value;
    else if (r.metric === 'ksm_pages_shared') line.pagesShared = r.value;
    else if (r.metric === 'ksm_full_scans') line.fullScans = r.value;
  }
  return [...out.values()].sort((a, b) => a.step.localeCompare(b.step));
}
