/**
 * The paper's derived metrics, computed by the harness from stored samples (definitions in
 * docs/figures.md), and the statistics across iterations: the catalogue's mean type
 * (src/core/metrics.ts), a 95% confidence interval (Student t), MAD outliers and Welch's t-test.
 * Means, medians and deviations come from simple-statistics; the t distribution from jstat.
 */
import jstat from 'jstat';
import { geometricMean, harmonicMean, mean, median, sampleStandardDeviation } from 'simple-statistics';
import { metricDef, type MeanType } from '../core/metrics.ts';

const { studentt } = jstat.jStat;

export interface Summary {
  /** The mean of the metric's declared type (arithmetic, harmonic, geometric). */
  mean: number;
  /** Sample standard deviation over iterations; null with a single iteration. */
  sd: number | null;
  /** Half-width of the 95% confidence interval of `mean` (Student t, n − 1 dof); null below 2 iterations. */
  ci95: number | null;
  n: number;
  /** Indices (into the values given) of MAD outliers (see madOutliers). */
  outliers: number[];
}

/**
 * Averages over iterations as the metric's mean type says. `last` describes a value read at the
 * end of a run (a counter); across iterations such values are averaged arithmetically.
 * The CI of a harmonic mean is taken on the reciprocals and carried back by the delta method
 * (half-width ≈ t · H² · sd(1/x) / √n), that of a geometric mean on the logs (t · G · sd(ln x) / √n):
 * the same transformation that defines the mean.
 */
/**
 * Spread below this fraction of the mean is floating-point rounding (the same value computed in
 * another order), not variation between iterations: it counts as none.
 */
const RELATIVE_EPSILON = 1e-12;
const spread = (xs: number[]): number => {
  const sd = sampleStandardDeviation(xs);
  return sd <= RELATIVE_EPSILON * Math.abs(mean(xs)) ? 0 : sd;
};

export function summarize(values: readonly number[], type: MeanType = 'arithmetic'): Summary | null {
  if (values.length === 0) return null;
  const xs = [...values];
  const n = xs.length;
  const sd = n >= 2 ? spread(xs) : null;
  const t = n >= 2 ? tQuantile975(n - 1) : null;
  const positive = xs.every((x) => x > 0);
  let m: number;
  let ci95: number | null;
  if (type === 'harmonic' && positive) {
    m = harmonicMean(xs);
    ci95 = t === null ? null : (t * m * m * spread(xs.map((x) => 1 / x))) / Math.sqrt(n);
  } else if (type === 'geometric' && positive) {
    m = geometricMean(xs);
    ci95 = t === null ? null : (t * m * (sd === 0 ? 0 : sampleStandardDeviation(xs.map(Math.log)))) / Math.sqrt(n);
  } else {
    // Arithmetic (also for 'last', and for harmonic/geometric data with a zero or negative value, where those means are undefined).
    m = mean(xs);
    ci95 = t === null || sd === null ? null : (t * sd) / Math.sqrt(n);
  }
  return { mean: m, sd, ci95, n, outliers: madOutliers(xs) };
}

/** summarize() with the mean type the catalogue declares for `metric` (arithmetic when unknown). */
export function summarizeMetric(metric: string, values: readonly number[]): Summary | null {
  return summarize(values, metricDef(metric)?.mean ?? 'arithmetic');
}

/** The 97.5% quantile of Student's t with `dof` degrees of freedom (two-sided 95% interval). */
export function tQuantile975(dof: number): number {
  return studentt.inv(0.975, dof);
}

/** Modified z-score above which a value is an outlier (Iglewicz & Hoaglin, 1993). */
export const MAD_THRESHOLD = 3.5;

/**
 * Outliers by the median absolute deviation: modified z = 0.6745 · (x − median) / MAD, flagged
 * when |z| > 3.5. With MAD = 0 (most values equal) the mean absolute deviation from the median
 * scaled by 1.2533 stands in (as IBM SPSS does); when that is 0 too, all values are equal and
 * none is an outlier. Fewer than 3 values: no outlier can be told apart.
 */
export function madOutliers(values: readonly number[]): number[] {
  if (values.length < 3) return [];
  const xs = [...values];
  const med = median(xs);
  const deviations = xs.map((x) => Math.abs(x - med));
  const mad = median(deviations);
  const scale = mad > 0 ? mad / 0.6745 : (1.253314 * mean(deviations)) / 0.6745;
  if (!(scale > 0)) return [];
  return xs.flatMap((x, i) => (Math.abs(x - med) / scale > MAD_THRESHOLD ? [i] : []));
}

export interface WelchResult {
  meanA: number;
  meanB: number;
  /** t statistic of (mean A − mean B); null when it is undefined (see `reason`). */
  t: number | null;
  /** Welch–Satterthwaite degrees of freedom. */
  dof: number | null;
  /** Two-sided p-value. */
  p: number | null;
  /** Why there is no p-value: too few iterations, or no spread on either side. */
  reason: 'too-few-iterations' | 'no-variance' | null;
}

/**
 * Welch's unequal-variances t-test on two sets of iterations (arithmetic means). Undefined when
 * either side has fewer than 2 values, or when both have zero variance: then `reason` says so
 * and no p-value is invented (equal constants are not "not significant", they are untested).
 */
export function welchTTest(a: readonly number[], b: readonly number[]): WelchResult {
  const meanA = a.length ? mean([...a]) : NaN;
  const meanB = b.length ? mean([...b]) : NaN;
  if (a.length < 2 || b.length < 2) return { meanA, meanB, t: null, dof: null, p: null, reason: 'too-few-iterations' };
  const va = spread([...a]) ** 2 / a.length;
  const vb = spread([...b]) ** 2 / b.length;
  if (va + vb === 0) return { meanA, meanB, t: null, dof: null, p: null, reason: 'no-variance' };
  const t = (meanA - meanB) / Math.sqrt(va + vb);
  const dof = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const p = 2 * (1 - studentt.cdf(Math.abs(t), dof));
  return { meanA, meanB, t, dof, p: Math.min(1, Math.max(0, p)), reason: null };
}

/** Significance marks as in mmtests' compare-kernels: *** p < 0.001, ** p < 0.01, * p < 0.05. */
export function significanceMark(p: number | null): string {
  if (p === null) return '';
  return p < 0.001 ? '***' : p < 0.01 ? '**' : p < 0.05 ? '*' : '';
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
