/** Statistics across iterations: the catalogue's mean types, Student-t intervals against hand-computed values, MAD outliers, Welch's t-test. */
import { describe, expect, it } from 'vitest';
import { madOutliers, significanceMark, summarize, summarizeMetric, tQuantile975, welchTTest } from '../../src/results/stats.ts';

describe('means as the metric catalogue declares', () => {
  it('throughput (ops/s) is averaged harmonically: 100 and 300 ops/s → 150 ops/s, not 200', () => {
    // Same work at 100 and at 300 ops/s: total time 1/100 + 1/300 per op-pair → 2 / (1/100 + 1/300) = 150.
    expect(summarizeMetric('throughput_ops', [100, 300])!.mean).toBeCloseTo(150, 10);
    expect(summarizeMetric('runtime_s', [100, 300])!.mean).toBeCloseTo(200, 10);
    // A counter read at the end of each run ('last' within a run) is averaged arithmetically across runs.
    expect(summarizeMetric('ksm_pages_sharing', [10, 30])!.mean).toBe(20);
    expect(summarize([1, 4], 'geometric')!.mean).toBeCloseTo(2, 12);
  });
});

describe('95% confidence intervals (Student t)', () => {
  it('matches a hand computation: 10, 12, 14 → 12 ± 4.303 × 2 / √3 = 12 ± 4.9683', () => {
    // sd = 2; t(0.975, 2 dof) = 4.3027 (t table); half-width = 4.3027 × 2 / 1.7321 = 4.9683.
    const s = summarize([10, 12, 14])!;
    expect(s.mean).toBe(12);
    expect(s.sd).toBeCloseTo(2, 12);
    expect(s.ci95).toBeCloseTo(4.9683, 3);
    expect(tQuantile975(2)).toBeCloseTo(4.3027, 4);
    expect(tQuantile975(30)).toBeCloseTo(2.0423, 4);
  });

  it('has no interval from one iteration, and a zero-width one from identical iterations', () => {
    expect(summarize([5])!.ci95).toBeNull();
    expect(summarize([5, 5, 5])!.ci95).toBe(0);
  });

  it('harmonic mean interval by the delta method on the reciprocals', () => {
    // 1/x = 0.01, 0.005 → sd = 0.0035355; H = 133.33; half-width = 12.7062 × H² × sd / √2 = 564.7.
    const s = summarizeMetric('throughput_ops', [100, 200])!;
    expect(s.mean).toBeCloseTo(133.333, 3);
    expect(s.ci95).toBeCloseTo((12.7062047 * (400 / 3) ** 2 * (0.005 / Math.SQRT2)) / Math.SQRT2, 2);
  });
});

describe('MAD outliers', () => {
  it('flags the value far from the median (modified z > 3.5) and nothing in a tight set', () => {
    expect(madOutliers([100, 101, 99, 100.5, 140])).toEqual([4]);
    expect(madOutliers([100, 101, 99, 100.5, 102])).toEqual([]);
    // MAD = 0 (most values equal): the mean absolute deviation from the median stands in:
    // 7 × 50 and 80 → mean deviation 3.75, z = 0.6745 × 30 / (1.2533 × 3.75) = 4.3 → flagged;
    // 3 × 50 and 80 → mean deviation 7.5, z = 2.15 → not (one odd value in four is not enough).
    expect(madOutliers([50, 50, 50, 50, 50, 50, 50, 80])).toEqual([7]);
    expect(madOutliers([50, 50, 50, 80])).toEqual([]);
    expect(madOutliers([7, 7, 7])).toEqual([]);
    expect(madOutliers([1, 100])).toEqual([]); // two values: no majority to judge against
    expect(summarize([100, 101, 99, 100.5, 140])!.outliers).toEqual([4]);
  });
});

describe("Welch's t-test", () => {
  it('matches a hand computation', () => {
    // a: mean 20, var 2.5 (n 5); b: mean 22, var 10 (n 5): t = −2 / √(0.5 + 2) = −1.2649,
    // dof = 2.5² / (0.5²/4 + 2²/4) = 6.25 / 1.0625 = 5.882; two-sided p ≈ 0.254.
    const r = welchTTest([18, 19, 20, 21, 22], [18, 20, 22, 24, 26]);
    expect(r.t).toBeCloseTo(-1.2649, 4);
    expect(r.dof).toBeCloseTo(5.882, 3);
    expect(r.p).toBeGreaterThan(0.24);
    expect(r.p).toBeLessThan(0.27);
    expect(significanceMark(r.p)).toBe('');
    const far = welchTTest([10, 10.1, 9.9, 10.05], [12, 12.1, 11.9, 12.05]);
    expect(far.p).toBeLessThan(0.001);
    expect(significanceMark(far.p)).toBe('***');
  });

  it('gives no p-value without spread or with one iteration, and says why', () => {
    expect(welchTTest([5, 5, 5], [5, 5, 5])).toMatchObject({ p: null, reason: 'no-variance' });
    expect(welchTTest([5, 5, 5], [6, 6, 6])).toMatchObject({ p: null, reason: 'no-variance', meanA: 5, meanB: 6 });
    expect(welchTTest([5], [6, 7])).toMatchObject({ p: null, reason: 'too-few-iterations' });
  });
});
