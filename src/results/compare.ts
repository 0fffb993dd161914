/**
 * `nuksm compare`: two sides — two campaigns, or two kernel modes of one campaign — set side by
 * side per configuration, instance and metric, over their iterations (as mmtests'
 * compare-kernels). Each line has both means (the catalogue's mean type) with their 95% CI,
 * the change B vs A, Welch's t-test and a significance mark, and whether B is better or worse by
 * the metric's better-direction. Besides the catalogue's once-per-run metrics, each side carries
 * the paper's fairness per iteration (figures.ts fairnessPerIteration).
 */
import { metricDef, type Better } from '../core/metrics.ts';
import { fairnessPerIteration } from './figures.ts';
import type { ResultRow } from './store.ts';
import { significanceMark, summarizeMetric, welchTTest, type Summary, type WelchResult } from './stats.ts';

/** One side: a campaign's valid rows, restricted to one kernel mode when `mode` is set. */
export interface CompareSide {
  /** What the side is called in output: `<campaign>` or `<campaign>:<mode>`. */
  label: string;
  campaign: string;
  testbed: string;
  mode: string | null;
  rows: readonly ResultRow[];
}

export type Verdict =
  /** p < 0.05 and B is better (worse) than A by the metric's better-direction. */
  | 'better' | 'worse'
  /** p < 0.05 for a metric without a better-direction. */
  | 'differs'
  /** p ≥ 0.05. */
  | 'not-significant'
  /** Every iteration on both sides gave the same value: nothing to test. */
  | 'identical'
  /** No spread on either side but different values (a deterministic model): Welch's test is undefined. */
  | 'no-variance'
  /** Fewer than 2 iterations on a side. */
  | 'too-few-iterations';

export interface CompareLine {
  /** The step's instances (`vm0+vm1`): one configuration id may run in several setups. */
  setup: string;
  config: string;
  /** Kernel mode of a campaign comparison; empty when two modes are compared (they are the sides). */
  mode: string;
  instance: string;
  metric: string;
  unit: string;
  better: Better;
  a: Summary | null;
  b: Summary | null;
  /** (mean B − mean A) / |mean A| × 100. */
  changePct: number | null;
  /** mean B − mean A in the metric's unit (for a prediction next to a measurement: percentage points for a %). */
  difference: number | null;
  welch: WelchResult | null;
  mark: string;
  verdict: Verdict | null;
}

export interface Comparison {
  a: { label: string; campaign: string; testbed: string; mode: string | null };
  b: { label: string; campaign: string; testbed: string; mode: string | null };
  /**
   * 'prediction-vs-measured' when exactly one side ran on the model testbed (a `nuksm predict` campaign
   * next to a measured one); 'measured' when neither did; 'model' when both did.
   */
  kind: 'measured' | 'prediction-vs-measured' | 'model';
  lines: CompareLine[];
}

const FAIRNESS = 'fairness';

/**
 * The setup of each step: its instances' names (`vm0+vm1`, `p0+p1`). One configuration id may run
 * in several setups (RandomAccess in Fig. 3 on VMs, in Fig. 9 bare-metal), whose host values and
 * fairness must not be pooled; the experiment name cannot tell them (a step shared by Figs. 3 and 6
 * is stored under one experiment).
 */
function setupsOf(rows: readonly ResultRow[]): Map<string, string> {
  const names = new Map<string, Set<string>>();
  for (const r of rows) if (r.instance !== 'host') names.set(r.step, (names.get(r.step) ?? new Set()).add(r.instance));
  return new Map([...names].map(([step, set]) => [step, [...set].sort().join('+')]));
}

/** Values over iterations by `setup|config|mode|instance|metric` (mode blank when the side is one mode). */
function samplesOf(side: CompareSide): Map<string, { unit: string; values: number[] }> {
  const setupOf = setupsOf(side.rows);
  const rowsWithSetup = side.rows.map((r) => ({ ...r, experiment: setupOf.get(r.step) ?? '' }));
  const out = new Map<string, { unit: string; values: number[] }>();
  const add = (key: string, unit: string, v: number) => {
    const e = out.get(key) ?? { unit, values: [] };
    e.values.push(v);
    out.set(key, e);
  };
  const modeKey = (mode: string) => (side.mode === null ? mode : '');
  // A mode that ran on several kernels keeps them apart (kernel after the mode): never averaged together.
  const kernelsOf = new Map<string, Set<string>>();
  for (const r of rowsWithSetup) kernelsOf.set(`${r.experiment}|${r.config}|${r.kernelMode}`, (kernelsOf.get(`${r.experiment}|${r.config}|${r.kernelMode}`) ?? new Set()).add(r.kernel));
  const modeLabel = (experiment: string, config: string, mode: string, kernel: string) => ((kernelsOf.get(`${experiment}|${config}|${mode}`)?.size ?? 0) > 1 ? `${modeKey(mode)}[${kernel}]` : modeKey(mode));
  const sorted = [...rowsWithSetup].sort((x, y) => x.iteration - y.iteration);
  for (const r of sorted) {
    if (r.t !== null || r.node !== null) continue;
    if (side.mode !== null && r.kernelMode !== side.mode) continue;
    const def = metricDef(r.metric);
    if (!def || def.unit === 'bool') continue; // flags (unsupported events, verification) are not measurements
    add(`${r.experiment}|${r.config}|${modeLabel(r.experiment, r.config, r.kernelMode, r.kernel)}|${r.instance}|${r.metric}`, r.unit, r.value);
  }
  // The paper's fairness, per iteration of each mode that de-duplicates (KSM off is its baseline).
  for (const experiment of new Set(rowsWithSetup.map((r) => r.experiment))) {
    const rows = rowsWithSetup.filter((r) => r.experiment === experiment);
    for (const config of new Set(rows.map((r) => r.config))) {
      const offKernels = [...new Set(rows.filter((r) => r.config === config && r.kernelMode === 'ksm-off' && r.metric === 'runtime_s').map((r) => r.kernel))];
      if (!offKernels.length) continue;
      for (const key of kernelsOf.keys()) {
        const [e, c, mode] = key.split('|') as [string, string, string];
        if (e !== experiment || c !== config || mode === 'ksm-off' || (side.mode !== null && mode !== side.mode)) continue;
        for (const kernel of kernelsOf.get(key)!) {
          const off = offKernels.includes(kernel) ? kernel : offKernels[0]!;
          for (const f of fairnessPerIteration(rows, config, mode, kernel, off)) add(`${experiment}|${config}|${modeLabel(experiment, config, mode, kernel)}|both|${FAIRNESS}`, '', f);
        }
      }
    }
  }
  return out;
}

function verdictOf(a: readonly number[], b: readonly number[], w: WelchResult, better: Better): Verdict {
  if (w.reason === 'too-few-iterations') return 'too-few-iterations';
  if (w.reason === 'no-variance') return Math.abs(w.meanA - w.meanB) <= 1e-12 * Math.max(Math.abs(w.meanA), Math.abs(w.meanB)) ? 'identical' : 'no-variance';
  if (w.p! >= 0.05) return 'not-significant';
  if (better === 'none') return 'differs';
  return (better === 'lower') === w.meanB < w.meanA ? 'better' : 'worse';
}

/** Side by side, every key either side has (a key one side lacks shows that side empty). */
export function compareSides(a: CompareSide, b: CompareSide): Comparison {
  const sa = samplesOf(a);
  const sb = samplesOf(b);
  const keys = [...new Set([...sa.keys(), ...sb.keys()])].sort();
  const lines: CompareLine[] = keys.map((key) => {
    const [setup, config, mode, instance, metric] = key.split('|') as [string, string, string, string, string];
    const def = metric === FAIRNESS ? { unit: '', better: 'higher' as const } : metricDef(metric)!;
    const va = sa.get(key)?.values ?? [];
    const vb = sb.get(key)?.values ?? [];
    const summaryA = summarizeMetric(metric, va);
    const summaryB = summarizeMetric(metric, vb);
    const both = summaryA !== null && summaryB !== null;
    const welch = both ? welchTTest(va, vb) : null;
    return {
      setup, config, mode, instance, metric, unit: sa.get(key)?.unit ?? sb.get(key)?.unit ?? def.unit, better: def.better,
      a: summaryA, b: summaryB,
      changePct: both && summaryA.mean !== 0 ? ((summaryB.mean - summaryA.mean) / Math.abs(summaryA.mean)) * 100 : null,
      difference: both ? summaryB.mean - summaryA.mean : null,
      welch, mark: significanceMark(welch?.p ?? null), verdict: welch ? verdictOf(va, vb, welch, def.better) : null,
    };
  });
  const info = (s: CompareSide) => ({ label: s.label, campaign: s.campaign, testbed: s.testbed, mode: s.mode });
  const models = [a, b].filter((s) => s.testbed === 'model').length;
  return { a: info(a), b: info(b), kind: models === 0 ? 'measured' : models === 1 ? 'prediction-vs-measured' : 'model', lines };
}

const fmt = (x: number | null | undefined, digits = 4): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : String(Number(x.toPrecision(digits))));
const meanCell = (s: Summary | null): string => (s === null ? '-' : `${fmt(s.mean, 5)}${s.ci95 === null ? '' : ` ± ${fmt(s.ci95, 3)}`} (n ${s.n})`);
const pCell = (l: CompareLine): string => (l.welch?.p !== null && l.welch?.p !== undefined ? (l.welch.p < 0.0001 ? '<0.0001' : fmt(l.welch.p, 3)) : '-');
const VERDICT_TEXT: Record<Verdict, string> = {
  better: 'B better', worse: 'B worse', differs: 'differs', 'not-significant': 'n.s.', identical: 'identical', 'no-variance': 'no variance: untested', 'too-few-iterations': 'n < 2: untested',
};

/** Column headers and cells of the text and HTML tables. */
export function comparisonTable(c: Comparison): { header: string[]; rows: string[][] } {
  const withMode = c.lines.some((l) => l.mode !== '');
  const side = (s: Comparison['a']) => (c.kind === 'prediction-vs-measured' ? (s.testbed === 'model' ? ' (model prediction)' : ' (measured)') : '');
  const header = ['setup', 'config', ...(withMode ? ['mode'] : []), 'instance', 'metric', `A: ${c.a.label}${side(c.a)}`, `B: ${c.b.label}${side(c.b)}`, 'B vs A', 'B − A', 'p (Welch)', 'sig', 'verdict'];
  const rows = c.lines.map((l) => [
    l.setup, l.config, ...(withMode ? [l.mode] : []), l.instance, `${l.metric}${l.unit ? ` (${l.unit})` : ''}`, meanCell(l.a), meanCell(l.b),
    l.changePct === null ? '-' : `${l.changePct >= 0 ? '+' : ''}${l.changePct.toFixed(2)}%`, l.difference === null ? '-' : `${l.difference >= 0 ? '+' : ''}${fmt(l.difference, 4)}`, pCell(l), l.mark, l.verdict ? VERDICT_TEXT[l.verdict] : '-',
  ]);
  return { header, rows };
}

export const COMPARE_LEGEND =
  "Means as the metric catalogue declares (harmonic for throughput) ± the 95% CI (Student t). p: two-sided Welch's t-test; * p < 0.05, ** p < 0.01, *** p < 0.001. Better/worse by the metric's better-direction. 'no variance: untested' = every iteration on each side gave one value and the sides differ: a t-test needs spread, so no significance is claimed.";

const esc = (s: unknown): string => String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The comparison as a report section (report.ts). */
export function compareHtml(c: Comparison): string {
  const { header, rows } = comparisonTable(c);
  const model = [c.a.testbed, c.b.testbed].includes('model') ? ' Model sides are outputs of the reference model, not measurements.' : '';
  return `<div class="compare" data-a="${esc(c.a.label)}" data-b="${esc(c.b.label)}"><h3>A = ${esc(c.a.label)} (${esc(c.a.testbed)}) vs B = ${esc(c.b.label)} (${esc(c.b.testbed)})</h3><p>${esc(COMPARE_LEGEND)}${esc(model)}</p>
<table class="compare"><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r, i) => `<tr data-verdict="${esc(c.lines[i]!.verdict ?? '')}">${r.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}
