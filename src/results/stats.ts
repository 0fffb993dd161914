/**
 * The paper's derived metrics, computed by the harness from stored samples (definitions in
 * docs/figures.md): slowdown, fairness, combined performance, placement shares, mean ± spread.
 */
import { mean, sampleStandardDeviation } from 'simple-statistics';

export interface Summary {
  mean: number;
  /** Sample standard deviation over iterations; null with a single iteration. */
  sd: number | null;
  n: number;
}

export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  return { mean: mean([...values]), sd: values.length >= 2 ? sampleStandardDeviation([...values]) : null, n: values.length };
}

/** slowdown = runtime with de-duplication / runtime with KSM off (same instance). */
export function slowdown(runtimeS: number, baselineS: number): number {
  return runtimeS / baselineS;
}

/** fairness(I0, I1) = min(slowdown0, slowdown1) / max(slowdown0, slowdown1); 1 = perfectly fair. */
export function fairness(slowdowns: readonly number[]): number {
  return Math.min(...slowdowns) / Math.max(...slowdowns);
}

/** Combined performance = (sum of the instances' runtimes under nuKSM) / (same under KSM). */
export function combinedPerformance(runtimesNuksm: readonly number[], runtimesKsm: readonly number[]): number {
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  return sum(runtimesNuksm) / sum(runtimesKsm);
}

/** Share (%) of an instance's de-duplicated pages that sit on its own node, from per-node page counts. */
export function localShare(pagesOnNode: ReadonlyMap<number, number>, ownNode: number): number | null {
  let total = 0;
  for (const v of pagesOnNode.values()) total += v;
  if (total === 0) return null;
  return (100 * (pagesOnNode.get(ownNode) ?? 0)) / total;
}

export const round = (x: number | null | undefined, digits = 4): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));
