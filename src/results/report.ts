/**
 * The campaign report: one static, self-contained HTML file (inline SVG and CSS, no script, no
 * external request) in the campaign directory, with every figure's plot (src/results/plots.ts),
 * Tables II and III, the reproduction table (the paper's numbers, src/results/paper-numbers.ts,
 * next to this campaign's), the plan as run and the provenance recorded in the step manifests.
 * Next to it, figures/<name>.svg and figures/<name>.png for papers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CampaignRecord, Journal, JournalStep } from '../campaign/journal.ts';
import type { Plan } from '../campaign/plan.ts';
import { figureInput, FIGURE_DEFS, iterationOutliers, type Cell, type FigureDef, type IterationOutlier, type Row } from './figures.ts';
import { compareHtml, compareSides, type Comparison } from './compare.ts';
import { readFig8Sweep, sweepCell } from './fig8-sweep.ts';
import { PAPER_NUMBERS, type CampaignTables, type PaperNumber } from './paper-numbers.ts';
import { PLOTS, render, renderSync, type Rendered, type RenderJob } from './plots.ts';
import type { ResultsStore } from './store.ts';

export const REPORT_FILE = 'report.html';
/** PNG zoom: 2 × the SVG's CSS pixels. */
const PNG_ZOOM = 2;
const SVG_SCALE = 1.25;

export interface ReportCampaign {
  dir: string;
  store: ResultsStore;
  journal: Journal;
  plan: Plan;
}

export interface ReportData {
  dir: string;
  plan: Plan;
  record: CampaignRecord | null;
  steps: JournalStep[];
  manifests: Map<string, Record<string, unknown>>;
  /** Every figure the campaign has rows for, in FIGURE_DEFS order. */
  figures: { def: FigureDef; rows: Row[] }[];
  /** How each kernel mode's Fig. 8 steps ended (for the paper's Fig. 8 numbers); empty without Fig. 8. */
  fig8End?: CampaignTables['fig8End'];
  /** Iterations flagged as MAD outliers (figures.ts iterationOutliers). */
  outliers?: IterationOutlier[];
  /** Comparisons shown as sections: KSM vs each nuKSM mode of the campaign. */
  comparisons?: Comparison[];
  /** The model's Fig. 8 sensitivity sweep (docs/fig8-sweep.json), shown when the campaign has Fig. 8. */
  fig8Sweep?: ReturnType<typeof readFig8Sweep>;
  generatedAt: string;
}

export interface ReportResult {
  path: string;
  plots: { name: string; svg: string; png: string }[];
  ms: number;
}

/** Everything the report shows, read from the store (synchronously; the store may be closed afterwards). */
export function collectReport(c: ReportCampaign): ReportData {
  const figures: ReportData['figures'] = [];
  for (const def of FIGURE_DEFS) {
    const input = figureInput(c.store, def.source);
    if (input.rows.length === 0) continue;
    figures.push({ def, rows: def.build(input) });
  }
  const fig8End = new Map<string, { oom: boolean; lastT: number }>();
  for (const r of c.store.rows({ figure: '8a' })) {
    const e = fig8End.get(r.kernelMode) ?? { oom: false, lastT: 0 };
    if (r.metric === 'oom' && r.t === null && r.value > 0) e.oom = true;
    if (r.t !== null) e.lastT = Math.max(e.lastT, r.t);
    fig8End.set(r.kernelMode, e);
  }
  const all = c.store.rows();
  const outliers = iterationOutliers(all);
  // KSM against each nuKSM mode the campaign ran, within the campaign (as `nuksm compare C:ksm C:<mode>`).
  const side = (mode: string) => ({ label: `${c.plan.campaign}:${mode}`, campaign: c.plan.campaign, testbed: c.plan.testbed.kind, mode, rows: all });
  const modes = new Set(all.map((r) => r.kernelMode));
  // Only what both modes measured (a configuration that ran one mode has nothing to compare).
  const comparisons = modes.has('ksm')
    ? [...modes].filter((m) => m.startsWith('nuksm')).sort().map((m) => {
        const c = compareSides(side('ksm'), side(m));
        return { ...c, lines: c.lines.filter((l) => l.a !== null && l.b !== null) };
      }).filter((c) => c.lines.length > 0)
    : [];
  const steps = c.journal.steps();
  const manifests = new Map<string, Record<string, unknown>>();
  for (const s of steps) {
    const m = c.store.manifest(s.stepId);
    if (m) manifests.set(s.stepId, m);
  }
  const fig8Sweep = figures.some((f) => FIG8_FIGURES.has(f.def.name)) ? readFig8Sweep() : undefined;
  return { dir: c.dir, plan: c.plan, record: c.journal.campaign(), steps, manifests, figures, fig8End, outliers, comparisons, fig8Sweep, generatedAt: new Date().toISOString() };
}

/** The render jobs of the report: one per figure with a plot and something to draw. */
export function reportJobs(data: ReportData): { name: string; job: RenderJob }[] {
  const jobs: { name: string; job: RenderJob }[] = [];
  for (const { def, rows } of data.figures) {
    const spec = PLOTS[def.name]?.spec(rows);
    if (spec) jobs.push({ name: def.name, job: { spec, png: PNG_ZOOM } });
  }
  return jobs;
}

const esc = (s: unknown): string => String(s ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const cell = (c: Cell | undefined): string => (c === null || c === undefined ? '<span class="na">—</span>' : esc(c));

function htmlTable(headers: readonly string[], rows: readonly (readonly string[])[], attrs = ''): string {
  return `<table${attrs}><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** Vega's SVGs carry no ids today; prefix any so that several inline SVGs can never clash. */
function scopeSvg(svg: string, name: string): string {
  const p = `fig-${name.replace(/[^A-Za-z0-9]/g, '_')}-`;
  return svg
    .replace(/\sid="([^"]+)"/g, ` id="${p}$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${p}$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${p}$1"`)
    .replace(/^<svg /, `<svg data-figure="${esc(name)}" role="img" aria-label="figure ${esc(name)}" `)
    // Shown 1.25 × the plot's own size (the viewBox keeps the drawing; the PNG is rendered separately).
    .replace(/^(<svg[^>]*?) width="([\d.]+)" height="([\d.]+)"/, (_m, head: string, w: string, h: string) => `${head} width="${Math.round(Number(w) * SVG_SCALE)}" height="${Math.round(Number(h) * SVG_SCALE)}"`);
}

const testbedKind = (d: ReportData) => d.plan.testbed.kind;
const isModel = (d: ReportData) => testbedKind(d) === 'model';

function testbedBadge(d: ReportData): string {
  return isModel(d)
    ? `<span class="badge model">testbed ${esc(d.plan.testbed.name)} (model): model output, not a measurement</span>`
    : `<span class="badge measured">testbed ${esc(d.plan.testbed.name)} (${esc(testbedKind(d))}): measured</span>`;
}

const FIGURE_LABEL: Record<PaperNumber['figure'], string> = { table2: 'Table II', table3: 'Table III', '3a': 'Fig. 3a', '6a': 'Fig. 6a', '8': 'Fig. 8' };
const SOURCES = [...new Set(PAPER_NUMBERS.map((p) => p.source))];

/** The reproduction table: every number the paper publishes that a campaign table holds. */
export function reproductionRows(d: ReportData): { figure: string; row: string; label: string; relation: string; paper: number; campaign: number | null; diff: number | null; unit: string; source: string }[] {
  const tables = new Map(d.figures.map((f) => [f.def.name, f.rows]));
  const ctx: CampaignTables = { tables, fig8End: d.fig8End ?? new Map() };
  return PAPER_NUMBERS.map((p) => {
    let campaign: number | null;
    if (p.campaign) campaign = p.campaign(ctx);
    else {
      const key = p.figure === 'table2' ? 'benchmark' : 'config';
      const v = (tables.get(p.figure) ?? []).find((r) => r[key] === p.row)?.[p.column];
      campaign = v === null || v === undefined || v === '' ? null : Number(v);
    }
    return { figure: p.figure, row: p.row, label: p.label, relation: p.relation ?? '=', paper: p.value, campaign, diff: campaign === null ? null : Number((campaign - p.value).toFixed(4)), unit: p.unit, source: p.source };
  });
}

/** Highlighted: beyond max(0.05, 10 % of the paper's value), unless the paper's bound (> or ≤) holds. */
function far(r: { relation: string; diff: number | null; paper: number }): boolean {
  if (r.diff === null) return false;
  if ((r.relation === '>' && r.diff > 0) || (r.relation === '≤' && r.diff <= 0)) return false;
  return Math.abs(r.diff) > Math.max(0.05, 0.1 * Math.abs(r.paper));
}

function reproductionSection(d: ReportData): string {
  const rows = reproductionRows(d);
  const body = rows.map((r) => [
    esc(FIGURE_LABEL[r.figure as PaperNumber['figure']] ?? r.figure),
    esc(r.row),
    esc(r.label + (r.unit ? ` (${r.unit})` : '')),
    `${r.relation === '=' ? '' : `<span class="rel">${esc(r.relation)}</span> `}${esc(r.paper)}`,
    r.campaign === null ? '<span class="na">not run</span>' : esc(r.campaign),
    r.diff === null ? '<span class="na">—</span>' : `<span class="${far(r) ? 'far' : 'near'}">${r.diff > 0 ? '+' : ''}${esc(r.diff)}</span>`,
    esc(isModel(d) ? 'model output' : `measured (${testbedKind(d)})`),
    `<span class="src">${esc(r.source.replace(/ \(.*$/, ''))}<sup>${SOURCES.indexOf(r.source) + 1}</sup></span>`,
  ]);
  const sources = SOURCES.map((s, i) => `<li value="${i + 1}">${esc(s)}</li>`).join('');
  return `<section id="reproduction"><h2>Reproduction: the paper's numbers next to this campaign's</h2>
<p>${testbedBadge(d)} Difference = this campaign − paper. A difference is highlighted when it exceeds max(0.05, 10 % of the paper's value) (for a bound, > or ≤, only when the bound is not met). ≈ the paper says "about", &gt; "more than", ≤ "at most"; a gap between instances is (slower / faster − 1) × 100. The paper's numbers were measured on a two-socket Xeon Gold 6140 (paper Table I)${isModel(d) ? '; this campaign\'s are outputs of the reference model, not measurements' : ''}.</p>
${htmlTable(['table', 'row', 'number', 'paper', 'this campaign', 'difference', `this campaign's testbed: ${d.plan.testbed.name}`, 'paper source'], body, ' class="repro"')}<ol class="src">${sources}</ol></section>`;
}

const FIG8_FIGURES = new Set(['8a', '8b', '8c']);

/** The model's Fig. 8 sweep: how the OOM outcome moves with the model's estimates (always model output). */
function fig8SweepSection(d: ReportData): string {
  const r = d.fig8Sweep;
  if (!r) return '';
  const head = `<section id="fig8-sweep"><h2>Fig. 8 on the model: how robust the OOM outcome is</h2>`;
  if ('error' in r) return `${head}<p class="na">No sweep to show: ${esc(r.error)}.</p></section>`;
  const s = r.sweep;
  const derived = s.rows.length * 2 - s.simulated;
  const paper = s.rows.filter((x) => x.ksm.oom && !x.nuksm.oom).length;
  const body = s.rows.map((x) => [esc(x.vm1StartS), esc(x.reserveGiB), esc(x.comparisonCostFactor), `<span class="${x.ksm.oom ? 'far' : 'near'}">${esc(sweepCell(x.ksm))}</span>`, `<span class="${x.nuksm.oom ? 'far' : 'near'}">${esc(sweepCell(x.nuksm))}</span>`, esc(x.ksm.oom && !x.nuksm.oom ? 'yes' : 'no')]);
  return `${head}<p><span class="badge model">model output, not a measurement</span> The paper's Fig. 8 step (experiments/fig8.yaml, hog from ${esc(s.rows[0]!.hogStartS)} s) on the model testbed over VM-1's start, the host reserve per node and the cost of one tree comparison (× 0.54 µs): KSM and nuKSM (forest). The paper's outcome (KSM runs out of memory, nuKSM does not) holds in <b>${esc(paper)} of ${esc(s.rows.length)}</b> settings. ${esc(s.source)}, ${esc(s.date)} on ${esc(s.host)}; ${esc(s.simulated)} outcomes simulated, ${esc(derived)} derived from a run at a smaller reserve (exact: docs/model.md), ${esc(s.wallS.toFixed(0))} s.</p>
${htmlTable(['VM-1 start (s)', 'host reserve (GiB/node)', 'comparison cost', 'KSM', 'nuKSM (forest)', 'paper outcome'], body, ' class="data" data-table="fig8-sweep"')}</section>`;
}

/** Iterations that are MAD outliers among their configuration's iterations: shown, never dropped. */
function outlierSection(d: ReportData): string {
  const o = d.outliers ?? [];
  const head = `<section id="outliers"><h2>Outliers across iterations (MAD)</h2><p>An iteration is flagged when its modified z-score 0.6745 · |x − median| / MAD exceeds 3.5 among the iterations (3 at least) of the same configuration, kernel mode, kernel and instance. Flagged values are still averaged into the figures; look at the step before trusting the mean.</p>`;
  if (!o.length) return `${head}<p>${d.steps.some((s) => s.iteration >= 3) ? 'No outlier.' : 'Fewer than 3 iterations per configuration: no outlier can be told.'}</p></section>`;
  const body = o.map((x) => [esc(x.config), esc(x.kernelMode), esc(x.kernel), esc(x.instance), esc(x.metric), esc(x.iteration), `<span class="far">${esc(Number(x.value.toPrecision(6)))}</span>`, esc(Number(x.median.toPrecision(6))), esc(x.unit), esc(x.n)]);
  return `${head}${htmlTable(['config', 'kernel mode', 'kernel', 'instance', 'metric', 'iteration', 'value', 'median', 'unit', 'n'], body, ' class="outliers"')}</section>`;
}

function figureTable(def: FigureDef, rows: readonly Row[]): string {
  return htmlTable(def.columns, rows.map((r) => def.columns.map((c) => cell(r[c]))), ` class="data" data-table="${esc(def.name)}"`);
}

/**
 * Per adaptive configuration (step key with a conditional iteration): iterations run of the cap and
 * the decision that ended it (the first not-needed step's reason, else the last decision made).
 */
function adaptiveTable(steps: readonly JournalStep[]): string {
  const keys = [...new Set(steps.filter((s) => s.adaptive).map((s) => s.key))];
  if (!keys.length) return '';
  const body = keys.map((key) => {
    const its = steps.filter((s) => s.key === key);
    const first = its[0]!;
    const target = its.find((s) => s.adaptive)!.adaptive!.targets.map((t) => `${t.metric} CI ≤ ${t.ciPct}% (min ${t.minIterations}${its.some((s) => (s.adaptive?.targets.length ?? 1) > 1) ? `, ${t.experiment}` : ''})`).join('; ');
    const ended = its.find((s) => s.state === 'not-needed') ?? [...its].reverse().find((s) => s.decision);
    const count = (st: string) => its.filter((s) => s.state === st).length;
    const reason = ended?.decision?.reason ?? 'no decision yet';
    // Every iteration ran (none was decided away): the cap ended it, not the target.
    const capped = count('not-needed') === 0 && count('done') + count('failed') === its.length;
    return [esc(first.experiment), esc(first.configId), esc(first.kernelMode), esc(first.kernel ?? ''), esc(target), esc(count('done')), esc(its.length), esc(count('not-needed')), esc(count('failed')), esc(capped ? `cap reached; last decision: ${reason}` : reason)];
  });
  return `<h3>Adaptive repetition</h3><p>Iterations after the minimum run only while the 95% CI of the metric (per instance, the catalogue's mean type) is wider than the target; the others are <em>not-needed</em>: they contribute nothing to the figures and are not failures.</p>
${htmlTable(['experiment', 'config', 'kernel mode', 'kernel', 'target', 'iterations used', 'cap', 'not needed', 'failed', 'decision'], body, ' class="adaptive"')}`;
}

function planSection(d: ReportData): string {
  const failed = d.steps.filter((s) => s.state === 'failed');
  const states = ['done', 'failed', 'not-needed', 'pending', 'running'].filter((st) => st !== 'not-needed' || d.steps.some((s) => s.state === st));
  const counts = states.map((st) => `${d.steps.filter((s) => s.state === st).length} ${st}`).join(', ');
  const adaptive = d.steps.some((s) => s.adaptive);
  const body = d.steps.map((s) => [
    esc(s.seq), esc(s.stepId), esc(s.experiment), esc(s.configId), esc(s.kernelMode), esc(s.kernel ?? ''), esc(s.iteration),
    `<span class="state ${esc(s.state)}">${esc(s.state)}</span>`, esc(s.attempts), esc(s.failureClass ?? ''), esc(s.failureMessage ?? ''),
    ...(adaptive ? [esc(s.decision?.reason ?? (s.adaptive ? 'conditional' : ''))] : []), esc(s.figures.join(' ')),
  ]);
  return `<section id="plan"><h2>The plan as run</h2><p>${esc(d.steps.length)} steps: ${esc(counts)}. ${failed.length ? `Failures by class: ${esc([...new Set(failed.map((s) => s.failureClass ?? 'unknown'))].map((k) => `${k} × ${failed.filter((s) => (s.failureClass ?? 'unknown') === k).length}`).join(', '))}.` : 'No failures.'}</p>
${adaptiveTable(d.steps)}
${htmlTable(['#', 'step', 'experiment', 'config', 'kernel mode', 'kernel', 'iter', 'state', 'attempts', 'failure class', 'failure', ...(adaptive ? ['adaptive repetition'] : []), 'figures'], body, ' class="plan"')}</section>`;
}

function provenanceSection(d: ReportData): string {
  const kernels = new Map<string, Set<string>>();
  const commits = new Set<string>();
  const hosts = new Set<string>();
  const specHashes = new Set<string>();
  const warnings: string[] = [];
  for (const s of d.steps) {
    const m = d.manifests.get(s.stepId);
    if (!m) continue;
    const env = (m.environment ?? {}) as Record<string, unknown>;
    const key = `${s.kernel ?? '?'} (${s.kernelMode})`;
    kernels.set(key, (kernels.get(key) ?? new Set()).add(String(m.kernelRelease ?? env.kernelRelease ?? '?')));
    if (m.harnessCommit) commits.add(String(m.harnessCommit));
    if (env.host) hosts.add(String(env.host));
    if (m.specHash) specHashes.add(String(m.specHash));
    for (const w of [m.warnings, env.warnings]) if (Array.isArray(w)) for (const x of w) warnings.push(`${s.stepId}: ${String(x)}`);
  }
  const rec = d.record;
  const rows: [string, string][] = [
    ['campaign', d.plan.campaign],
    ['spec', `${d.plan.spec} (${d.plan.specFile})`],
    ['testbed', `${d.plan.testbed.name} — kind ${d.plan.testbed.kind} — ${d.plan.testbed.file}`],
    ['host', [...hosts].join('; ') || '—'],
    ['created', rec?.createdAt ?? '—'],
    ['seed', String(d.plan.seed)],
    ['harness commit', [...commits].join(', ') || '—'],
    ['spec hash', [...specHashes].join(', ') || '—'],
    ['report written', d.generatedAt],
  ];
  return `<section id="provenance"><h2>Provenance (step manifests)</h2>
${htmlTable(['field', 'value'], rows.map(([k, v]) => [esc(k), esc(v)]), ' class="kv"')}
<h3>Kernels</h3>${htmlTable(['kernel (mode)', 'kernel release'], [...kernels].map(([k, v]) => [esc(k), esc([...v].join(', '))]))}
<h3>Environment warnings</h3>${warnings.length ? `<ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '<p>None recorded in the manifests.</p>'}</section>`;
}

const CSS = `
body{font-family:"Liberation Sans",Arial,Helvetica,sans-serif;margin:24px auto;max-width:1500px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:24px;margin:0 0 6px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.badge{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:bold;font-size:13px}.badge.model{background:#fff3cd;color:#7a4d00;border:1px solid #e0b84a}.badge.measured{background:#dff0d8;color:#24572b;border:1px solid #8fbf8f}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}
td:nth-child(n){font-variant-numeric:tabular-nums}.na{color:#999}.far{color:#b00020;font-weight:bold}.near{color:#1b5e20}.src{color:#555;font-size:11.5px}.rel{color:#555}ol.src{margin:0;padding-left:22px}
.caveat{background:#fdecea;border-left:4px solid #b00020;padding:6px 10px;font-size:13px}.state.failed{color:#b00020;font-weight:bold}.state.done{color:#1b5e20}.state.not-needed{color:#666}
figure{margin:14px 0 26px;overflow-x:auto}figure svg{max-width:none;height:auto}figcaption{font-size:12.5px;color:#444;margin-top:4px}
details{margin:4px 0 10px}summary{cursor:pointer;color:#1f4e9a;font-size:13px}
nav a{margin-right:12px;font-size:13px}table.plan td{font-size:11.5px}
`;

/** A caveat on a figure whose values come from timings when steps feeding it ran on an emulated CPU. */
function timingCaveat(d: ReportData, def: FigureDef): string {
  if (!def.timingDerived) return '';
  const why = new Map<string, number>();
  for (const s of d.steps) {
    if (!s.figures.includes(def.source)) continue;
    const env = (d.manifests.get(s.stepId)?.environment ?? {}) as { emulatedCpu?: unknown };
    if (typeof env.emulatedCpu === 'string') why.set(env.emulatedCpu, (why.get(env.emulatedCpu) ?? 0) + 1);
  }
  if (!why.size) return '';
  const steps = [...why.values()].reduce((a, b) => a + b, 0);
  return `<p class="caveat">Caveat: ${esc(steps)} step${steps === 1 ? '' : 's'} of this figure ran on an emulated CPU (${esc([...why.keys()].join('; '))}). Its ${esc(def.timingDerived)} are measured, but they say nothing about the paper's hardware.</p>`;
}

/** The report HTML from the collected data and each plot's SVG (by figure name). */
export function reportHtml(d: ReportData, svgs: ReadonlyMap<string, string>): string {
  const sections: string[] = [];
  const figureNames = d.figures.map((f) => f.def.name);
  const lastFig8 = figureNames.filter((n) => FIG8_FIGURES.has(n)).at(-1);
  for (const { def, rows } of d.figures) {
    const plot = PLOTS[def.name];
    const title = plot?.title ?? def.name;
    const svg = svgs.get(def.name);
    const body = plot?.kind === 'table'
      ? figureTable(def, rows)
      : svg
        ? `${scopeSvg(svg, def.name)}<figcaption>${esc(title)}. Files: figures/${esc(def.name)}.csv, figures/${esc(def.name)}.svg, figures/${esc(def.name)}.png.</figcaption><details><summary>data (${rows.length} rows)</summary>${figureTable(def, rows.slice(0, 400))}${rows.length > 400 ? `<p>… ${rows.length - 400} more rows in figures/${esc(def.name)}.csv</p>` : ''}</details>`
        : `<p class="na">nothing to draw (no values in ${rows.length} rows)</p>${figureTable(def, rows)}`;
    sections.push(`<section class="figure" id="figure-${esc(def.name)}" data-figure="${esc(def.name)}" data-kind="${esc(plot?.kind ?? 'table')}"><h2>${esc(title)}</h2>${timingCaveat(d, def)}<figure>${body}</figure></section>`);
    if (def.name === lastFig8) sections.push(fig8SweepSection(d));
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>nuksm report — ${esc(d.plan.campaign)}</title><style>${CSS}</style></head>
<body>
<h1>nuksm report — campaign ${esc(d.plan.campaign)}</h1>
<p>${testbedBadge(d)} spec <b>${esc(d.plan.spec)}</b> · ${esc(d.steps.length)} steps · written ${esc(d.generatedAt)}</p>
<nav><a href="#reproduction">reproduction</a>${figureNames.map((n) => `<a href="#figure-${esc(n)}">${esc(n)}</a>`).join('')}${d.fig8Sweep ? '<a href="#fig8-sweep">fig8 sweep</a>' : ''}<a href="#outliers">outliers</a>${d.comparisons?.length ? '<a href="#compare">compare</a>' : ''}<a href="#plan">plan</a><a href="#provenance">provenance</a></nav>
${reproductionSection(d)}
${sections.join('\n')}
${outlierSection(d)}
${d.comparisons?.length ? `<section id="compare"><h2>KSM vs nuKSM in this campaign (Welch's t-test over iterations)</h2>${d.comparisons.map((c) => compareHtml(c)).join('\n')}</section>` : ''}
${planSection(d)}
${provenanceSection(d)}
</body></html>
`;
}

function writeFiles(d: ReportData, names: readonly string[], rendered: readonly Rendered[], started: number): ReportResult {
  const figDir = join(d.dir, 'figures');
  mkdirSync(figDir, { recursive: true });
  const svgs = new Map<string, string>();
  const plots: ReportResult['plots'] = [];
  names.forEach((name, i) => {
    const r = rendered[i]!;
    svgs.set(name, r.svg);
    const svgPath = join(figDir, `${name}.svg`);
    const pngPath = join(figDir, `${name}.png`);
    writeFileSync(svgPath, r.svg);
    if (r.png) writeFileSync(pngPath, r.png);
    plots.push({ name, svg: svgPath, png: pngPath });
  });
  const path = join(d.dir, REPORT_FILE);
  writeFileSync(path, reportHtml(d, svgs));
  return { path, plots, ms: Date.now() - started };
}

/** Writes report.html and figures/<name>.svg|png; blocks until the plots are rendered (for the synchronous end of `nuksm run`). */
export function writeReportSync(c: ReportCampaign): ReportResult {
  const started = Date.now();
  const d = collectReport(c);
  const jobs = reportJobs(d);
  return writeFiles(d, jobs.map((j) => j.name), renderSync(jobs.map((j) => j.job)), started);
}

/** Writes report.html and figures/<name>.svg|png. */
export async function writeReport(c: ReportCampaign): Promise<ReportResult> {
  const started = Date.now();
  const d = collectReport(c);
  const jobs = reportJobs(d);
  return writeFiles(d, jobs.map((j) => j.name), await render(jobs.map((j) => j.job)), started);
}

/** One line for the terminal: where the report is. */
export const describeReport = (r: ReportResult): string => `report: ${r.path} (${r.plots.length} plots, ${(r.ms / 1000).toFixed(1)} s)\n`;

/** The report is a view of the results: a failure to write it is printed, never a failed campaign. */
export function reportOrWarning(write: () => ReportResult): ReportResult | null {
  try {
    return write();
  } catch (e) {
    process.stderr.write(`report not written: ${e instanceof Error ? e.message : String(e)}\n`);
    return null;
  }
}

export async function reportOrWarningAsync(write: () => Promise<ReportResult>): Promise<ReportResult | null> {
  try {
    return await write();
  } catch (e) {
    process.stderr.write(`report not written: ${e instanceof Error ? e.message : String(e)}\n`);
    return null;
  }
}
