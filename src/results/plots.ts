/**
 * The plot of every figure, keyed by the figure names of FIGURE_DEFS (src/results/figures.ts): a
 * Vega-Lite specification built from the figure's rows (the same rows its CSV holds), compiled
 * with vega-lite and rendered to SVG by vega's headless renderer, PNG by resvg (docs/plots.md).
 *
 * Each plot names its testbed (a model plot says it is a model output), the kernel of each kernel
 * mode, and what its error bars are (the 95% confidence interval of the mean, Student t over n
 * iterations: the figure CSVs' *_ci95 columns, drawn only where n ≥ 2).
 * Marks are named (`bars`, `err`, `points`, `lines`) so a test can count them in the SVG.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { TABLE3_ROWS, type Cell, type Row } from './figures.ts';

/** A Vega-Lite specification as plain JSON (compiled by vega-lite in the render worker). */
export type VlSpec = Record<string, unknown>;

export type PlotKind = 'grouped-bars' | 'stacked-locality' | 'series' | 'table';

export interface PlotDef {
  /** Figure name (FIGURE_DEFS). */
  figure: string;
  kind: PlotKind;
  title: string;
  /** The Vega-Lite spec for the figure's rows; null for a table or when there is nothing to draw. */
  spec(rows: readonly Row[]): VlSpec | null;
}

const MODE_LABEL: Record<string, string> = {
  'ksm-off': 'KSM off',
  ksm: 'KSM',
  'ksm-node-local': 'KSM merge_across_nodes=0',
  'ksm-numa-balancing': 'KSM + NUMA balancing',
  'nuksm-fair': 'nuKSM',
  'nuksm-priority': 'nuKSM priority',
  'nuksm-forest': 'nuKSM forest',
  uksm: 'UKSM',
};
export const modeLabel = (mode: string): string => MODE_LABEL[mode] ?? mode;
/** A mode run by the user-space placement engine says so in every legend (a kernel's own and the model's do not need to: the subtitle names them). */
const implementationSuffix = (r: Row): string => (str(r.implementation) === 'userspace' ? ' (user space)' : '');

const FONT = 'Liberation Sans, Arial, Helvetica, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: '#bbb' },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, orient: 'right', labelLimit: 400, titleLimit: 400 },
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#444', anchor: 'start', offset: 10 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  facet: { spacing: 28 },
};

const str = (c: Cell | undefined): string => (c === null || c === undefined ? '' : String(c));
const num = (c: Cell | undefined): number | null => (c === null || c === undefined || c === '' ? null : Number(c));
const distinct = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

/** The plot's header lines: testbed (model output said so), the kernel of each mode, error bars. */
function subtitle(rows: readonly Row[], errorBars: string | null): string[] {
  const testbeds = distinct(rows.map((r) => str(r.testbed)).filter(Boolean));
  const lines = testbeds.map((t) => (t === 'model' ? 'testbed: model — MODEL OUTPUT of the reference policy model, not a measurement' : `testbed: ${t} (measured)`));
  const pairs = distinct(rows.map((r) => `${modeLabel(str(r.kernel_mode))} on kernel ${str(r.kernel) || '?'} (${str(r.implementation) || '?'})`));
  lines.push(`kernel mode → kernel (implementation): ${pairs.join('; ')}`);
  if (errorBars !== null) lines.push(errorBars);
  return lines;
}

function errorNote(ns: readonly number[], widths: readonly (number | null)[] = []): string {
  const max = Math.max(0, ...ns);
  if (max < 2) return 'one iteration per bar: no error bars';
  const zero = widths.length > 0 && widths.every((w) => w === null || w === 0) ? ' (every interval is 0 here: the iterations agree, so the bars have no length)' : '';
  return `error bars: 95% confidence interval of the mean (Student t) over n = ${distinct(ns).sort().join('/')} iterations${zero}`;
}

/** Series label of a bar: mode (with kernel when a mode ran on several kernels) · instance. */
function seriesOf(rows: readonly Row[]): (r: Row) => string {
  const kernelsPerMode = new Map<string, Set<string>>();
  for (const r of rows) kernelsPerMode.set(str(r.kernel_mode), (kernelsPerMode.get(str(r.kernel_mode)) ?? new Set()).add(str(r.kernel)));
  return (r) => {
    const mode = str(r.kernel_mode);
    const k = (kernelsPerMode.get(mode)?.size ?? 0) > 1 ? ` [${str(r.kernel)}]` : '';
    return `${modeLabel(mode)}${implementationSuffix(r)}${k} · ${str(r.instance)}`;
  };
}

/** One bar per row with a value: x = `group`, offset/colour = series, ± the 95% CI (`ciCol`, in the value's scale) where n ≥ 2. */
export interface BarDatum {
  group: string;
  facet: string;
  series: string;
  value: number;
  lo: number | null;
  hi: number | null;
  n: number;
  mode: string;
  instance: string;
}

function barData(rows: readonly Row[], valueCol: string, groupCol: string, facetCol: string | null, ciCol = 'normalized_ci95'): BarDatum[] {
  const series = seriesOf(rows);
  const out: BarDatum[] = [];
  for (const r of rows) {
    const value = num(r[valueCol]);
    if (value === null) continue;
    const n = num(r.n) ?? 0;
    // The CI of the normalised value (figures.ts): the row's own interval scaled by its normalisation.
    const ci = num(r[ciCol]);
    const e = ci !== null && n >= 2 ? ci : null;
    out.push({ group: str(r[groupCol]), facet: facetCol ? str(r[facetCol]) : '', series: series(r), value, lo: e === null ? null : value - e, hi: e === null ? null : value + e, n, mode: str(r.kernel_mode), instance: str(r.instance) });
  }
  return out;
}

// Colour pairs by kernel mode, the same in every figure (light = first instance, dark = second):
// KSM off blue, KSM green, nuKSM orange, nuKSM priority purple, nuKSM forest red, UKSM brown.
// The baselines (KSM merge_across_nodes=0 teal, KSM + NUMA balancing grey) come last so the others keep their colours.
const PAIR_OF_MODE = ['ksm-off', 'ksm', 'nuksm-fair', 'nuksm-priority', 'nuksm-forest', 'uksm', 'ksm-node-local', 'ksm-numa-balancing'];
const PALETTE = ['#a6cee3', '#1f78b4', '#b2df8a', '#33a02c', '#fdbf6f', '#ff7f00', '#cab2d6', '#6a3d9a', '#fb9a99', '#e31a1c', '#dfc27d', '#b15928', '#80cdc1', '#01665e', '#bdbdbd', '#525252'];

function seriesColours(data: readonly BarDatum[], order: readonly string[]): string[] {
  const instances = distinct(data.map((d) => d.instance)).sort();
  const used = new Set<string>();
  return order.map((series, i) => {
    const d = data.find((x) => x.series === series)!;
    const pair = PAIR_OF_MODE.indexOf(d.mode);
    let c = pair >= 0 && instances.length <= 2 ? PALETTE[2 * pair + Math.max(0, instances.indexOf(d.instance))]! : PALETTE[i % PALETTE.length]!;
    // a mode on several kernels would repeat its pair: fall back to the next free colour
    for (let k = 0; used.has(c) && k < PALETTE.length; k += 1) c = PALETTE[(PALETTE.indexOf(c) + 1) % PALETTE.length]!;
    used.add(c);
    return c;
  });
}

function groupedBars(opts: { figure: string; title: string; rows: readonly Row[]; value: string; yTitle: string; group: string; groupTitle: string; groupOrder?: readonly string[]; facet?: string; reference?: number }): VlSpec | null {
  const data = barData(opts.rows, opts.value, opts.group, opts.facet ?? null);
  if (data.length === 0) return null;
  const seriesOrder = distinct(data.map((d) => d.series));
  const groups = opts.groupOrder ? opts.groupOrder.filter((g) => data.some((d) => d.group === g)) : distinct(data.map((d) => d.group));
  const facets = distinct(data.map((d) => d.facet));
  const barWidth = 16;
  const cellWidth = Math.max(facets.length > 1 ? 200 : 320, groups.length * (seriesOrder.length * barWidth + 14));
  const x = { field: 'group', type: 'nominal', title: opts.groupTitle, sort: groups, axis: { labelAngle: 0, labelLimit: 110 }, scale: { paddingInner: 0.2 } };
  const xOffset = { field: 'series', type: 'nominal', sort: seriesOrder };
  const layers: VlSpec[] = [
    {
      name: 'bars',
      mark: { type: 'bar' },
      encoding: {
        x, xOffset,
        y: { field: 'value', type: 'quantitative', title: opts.yTitle, scale: { zero: true } },
        color: { field: 'series', type: 'nominal', title: 'kernel mode · instance', sort: seriesOrder, scale: { domain: seriesOrder, range: seriesColours(data, seriesOrder) } },
        tooltip: [{ field: 'series' }, { field: 'group' }, { field: 'value', format: '.4f' }, { field: 'n' }],
      },
    },
  ];
  if (data.some((d) => d.lo !== null)) {
    layers.push({
      name: 'err',
      transform: [{ filter: 'datum.lo !== null' }],
      mark: { type: 'rule', color: 'black', strokeWidth: 1.2 },
      encoding: { x, xOffset, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
    });
  }
  if (opts.reference !== undefined) {
    layers.push({ name: 'reference', data: { values: [{ ref: opts.reference }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#666' }, encoding: { y: { field: 'ref', type: 'quantitative' } } });
  }
  const unit: VlSpec = { width: cellWidth, height: 260, layer: layers };
  const title = { text: opts.title, subtitle: subtitle(opts.rows, errorNote(data.map((d) => d.n), data.map((d) => (d.lo === null || d.hi === null ? null : d.hi - d.lo)))) };
  if (opts.facet && facets.length > 1) {
    return { title, data: { values: data }, facet: { column: { field: 'facet', type: 'nominal', title: null, sort: facets, header: { labelFontSize: 13, labelFontWeight: 'bold' } } }, spec: unit, resolve: { scale: { y: 'shared' } }, config: CONFIG };
  }
  return { title, data: { values: data }, ...unit, config: CONFIG };
}

/** 3b / 6b: per benchmark (column), per mode · instance, local and remote DRAM access % stacked, and the merged-page share on the own node. */
export interface LocalityDatum {
  benchmark: string;
  series: string;
  part: 'local DRAM accesses' | 'remote DRAM accesses';
  pct: number;
}

function localitySpec(figure: string, title: string, rows: readonly Row[]): VlSpec | null {
  if (rows.length === 0) return null;
  const series = seriesOf(rows);
  const order = distinct(rows.map(series));
  const benchmarks = distinct(rows.map((r) => str(r.benchmark)));
  const stacked: (LocalityDatum & { lo: number | null; hi: number | null })[] = [];
  const points: { benchmark: string; series: string; pct: number; lo: number | null; hi: number | null; what: string }[] = [];
  for (const r of rows) {
    const l = num(r.local_pct);
    const rem = num(r.remote_pct);
    const ci = num(r.local_pct_ci95);
    const n = num(r.n) ?? 0;
    const e = ci !== null && n >= 2 ? ci : null;
    if (l !== null) stacked.push({ benchmark: str(r.benchmark), series: series(r), part: 'local DRAM accesses', pct: l, lo: e === null ? null : l - e, hi: e === null ? null : l + e });
    if (rem !== null) stacked.push({ benchmark: str(r.benchmark), series: series(r), part: 'remote DRAM accesses', pct: rem, lo: null, hi: null });
    const k = num(r.ksm_local_pct);
    const kci = num(r.ksm_local_pct_ci95);
    const kn = num(r.ksm_n) ?? 0;
    if (k !== null) points.push({ benchmark: str(r.benchmark), series: series(r), pct: k, lo: kci !== null && kn >= 2 ? k - kci : null, hi: kci !== null && kn >= 2 ? k + kci : null, what: 'merged (KSM) pages on own node' });
  }
  const x = { field: 'series', type: 'nominal', title: null, sort: order, axis: { labelAngle: -40, labelLimit: 320 } };
  const y = { type: 'quantitative', title: 'share (%)', scale: { domain: [0, 100] } };
  const layers: VlSpec[] = [];
  if (stacked.length) {
    layers.push({
      name: 'bars',
      data: { values: stacked },
      mark: { type: 'bar' },
      encoding: {
        x, y: { ...y, field: 'pct', stack: 'zero' },
        // Model rows are simulated access counts, not perf counters: the legend says which.
        color: { field: 'part', type: 'nominal', title: rows.every((r) => str(r.testbed) === 'model') ? 'DRAM accesses (model, simulated)' : 'DRAM accesses (perf)', scale: { domain: ['local DRAM accesses', 'remote DRAM accesses'], range: ['#1f78b4', '#fb9a99'] } },
        order: { field: 'part', sort: 'ascending' },
        tooltip: [{ field: 'series' }, { field: 'part' }, { field: 'pct', format: '.2f' }],
      },
    });
    if (stacked.some((d) => d.lo !== null)) {
      layers.push({ name: 'err', data: { values: stacked.filter((d) => d.lo !== null) }, mark: { type: 'rule', color: 'black' }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' } } });
    }
  }
  if (points.length) {
    layers.push({
      name: 'points',
      data: { values: points },
      mark: { type: 'point', shape: 'diamond', filled: true, size: 70, color: '#000', stroke: '#fff', strokeWidth: 1 },
      encoding: { x, y: { ...y, field: 'pct' }, shape: { field: 'what', type: 'nominal', title: 'placement', scale: { range: ['diamond'] } }, tooltip: [{ field: 'series' }, { field: 'what' }, { field: 'pct', format: '.2f' }] },
    });
    if (points.some((d) => d.lo !== null)) layers.push({ name: 'pointerr', data: { values: points.filter((d) => d.lo !== null) }, mark: { type: 'rule', color: '#000' }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' } } });
  }
  // facet needs one data source: put every layer's values in one table and filter per layer.
  const all = layers.flatMap((l, i) => ((l.data as { values: Record<string, unknown>[] } | undefined)?.values ?? []).map((v) => ({ ...v, _layer: i })));
  for (const [i, l] of layers.entries()) {
    delete l.data;
    l.transform = [{ filter: `datum._layer === ${i}` }];
  }
  const ns = rows.map((r) => num(r.n) ?? 0).concat(rows.map((r) => num(r.ksm_n) ?? 0));
  const widths = [...stacked, ...points].map((d) => (d.lo === null || d.hi === null ? null : d.hi - d.lo));
  const note = stacked.length === 0 ? `no DRAM counters on this testbed: only the merged-page placement is shown; ${errorNote(ns.filter((n) => n > 0), widths)}` : errorNote(ns.filter((n) => n > 0), widths);
  const cellWidth = Math.max(100, order.length * 34);
  return {
    title: { text: title, subtitle: subtitle(rows, note) },
    data: { values: all },
    facet: { column: { field: 'benchmark', type: 'nominal', title: null, sort: benchmarks, header: { labelFontSize: 13, labelFontWeight: 'bold' } } },
    spec: { width: cellWidth, height: 240, layer: layers },
    config: CONFIG,
  };
}

/** A time-series line: one per (config, mode, kernel, instance, node, metric, iteration). */
export interface SeriesDatum {
  t: number;
  value: number;
  colour: string;
  dash: string;
  line: string;
}

const METRIC_LABEL: Record<string, string> = {
  mem_free_gib: 'free memory',
  hog_registered_gib: 'memory registered by the hog',
  memory_saved_gib: 'de-duplicated memory',
  ksmd_cpu_pct: 'ksmd CPU',
  throughput_ops: 'throughput',
};

export const seriesKey = (r: Row): string => [r.config, r.kernel_mode, r.kernel, r.instance, r.node, r.metric, r.iteration].map(str).join('|');

function seriesSpec(figure: string, title0: string, rows: readonly Row[], yTitle: string, colourBy: 'instance' | 'mode'): VlSpec | null {
  if (rows.length === 0) return null;
  const modes = distinct(rows.map((r) => str(r.kernel_mode)));
  const configs = distinct(rows.map((r) => str(r.config)));
  const metrics = distinct(rows.map((r) => `${str(r.metric)}|${str(r.node)}`));
  const iterations = distinct(rows.map((r) => str(r.iteration)));
  const quantity = (r: Row) => `${METRIC_LABEL[str(r.metric)] ?? str(r.metric)}${r.node === null || r.node === '' ? (str(r.instance) === 'host' ? ' (host)' : '') : ` (node ${str(r.node)})`}`;
  const colourOf = (r: Row) => {
    const parts: string[] = [];
    if (colourBy === 'instance') {
      parts.push(`${str(r.instance)}${r.nice !== undefined && r.nice !== null ? ` (nice ${str(r.nice)})` : ''}`);
      if (modes.length > 1) parts.push(`${modeLabel(str(r.kernel_mode))}${implementationSuffix(r)}`);
    } else parts.push(`${modeLabel(str(r.kernel_mode))}${implementationSuffix(r)} (kernel ${str(r.kernel)})`);
    if (configs.length > 1) parts.push(str(r.config));
    return parts.join(' · ');
  };
  const data: SeriesDatum[] = [];
  for (const r of rows) {
    const value = num(r.value);
    const t = num(r.t);
    if (value === null || t === null) continue;
    data.push({ t, value, colour: colourOf(r), dash: metrics.length > 1 ? quantity(r) : iterations.length > 1 ? `iteration ${str(r.iteration)}` : quantity(r), line: seriesKey(r) });
  }
  const values = data.map((d) => d.value);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  // A flat series (e.g. nothing de-duplicated) still gets a readable axis from 0.
  const yScale = lo === hi ? { domain: [Math.min(0, lo), Math.max(1, hi * 1.1)] } : { zero: true };
  const flat = lo === hi ? ` — every value is ${lo} (${METRIC_LABEL[str(rows[0]!.metric)] ?? str(rows[0]!.metric)} did not change)` : '';
  const note = `${iterations.length > 1 ? `one line per iteration (${iterations.length} iterations)` : 'one iteration'}${flat}`;
  const dashRange = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3], [1, 3], [10, 2]];
  // Several quantities under several modes (8a): one panel per mode, colour = quantity, so that
  // identical curves of two modes cannot hide each other. Otherwise colour = instance or mode,
  // and each colour also gets its own dash for the same reason.
  const panels = metrics.length > 1 && modes.length > 1;
  if (panels) {
    for (const [i, r] of rows.filter((x) => num(x.value) !== null && num(x.t) !== null).entries()) {
      data[i]!.colour = quantity(r);
      data[i]!.dash = iterations.length > 1 ? `iteration ${str(r.iteration)}` : '—';
      (data[i] as SeriesDatum & { panel?: string }).panel = `${modeLabel(str(r.kernel_mode))}${implementationSuffix(r)} (kernel ${str(r.kernel)})${configs.length > 1 ? ` · ${str(r.config)}` : ''}`;
    }
  }
  // One quantity, one iteration: the dash follows the colour (one merged legend).
  const dashField = !panels && metrics.length === 1 && iterations.length === 1 ? 'colour' : 'dash';
  const colours = distinct(data.map((d) => d.colour));
  const dashes = distinct(data.map((d) => d[dashField]));
  const colourTitle = panels ? 'quantity' : colourBy === 'instance' ? 'instance' : 'kernel mode';
  const unit: VlSpec = {
    width: panels ? 420 : 560,
    height: 260,
    layer: [
      {
        name: 'lines',
        mark: { type: 'line', strokeWidth: 1.6, interpolate: 'linear' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'time since step start (s)' },
          y: { field: 'value', type: 'quantitative', title: yTitle, scale: yScale, ...(yTitle.includes('ops/s') ? { axis: { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~s')" } } : {}) },
          color: { field: 'colour', type: 'nominal', title: colourTitle, sort: colours, scale: { domain: colours, range: ['#1f78b4', '#e31a1c', '#33a02c', '#ff7f00', '#6a3d9a', '#b15928'] } },
          strokeDash: { field: dashField, type: 'nominal', title: dashField === 'colour' ? colourTitle : iterations.length > 1 ? 'iteration' : 'quantity', sort: dashes, scale: { domain: dashes, range: dashRange.slice(0, dashes.length) }, legend: dashField === 'colour' || dashes.length > 1 ? {} : null },
          detail: { field: 'line', type: 'nominal' },
          tooltip: [{ field: 'colour', title: 'series' }, { field: 't' }, { field: 'value', format: '.3f' }],
        },
      },
    ],
  };
  const title = { text: title0, subtitle: subtitle(rows, note) };
  if (panels) {
    const panelsOrder = distinct(data.map((d) => (d as SeriesDatum & { panel?: string }).panel ?? ''));
    return { title, data: { values: data }, facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panelsOrder, header: { labelFontSize: 13, labelFontWeight: 'bold' } } }, spec: unit, config: CONFIG };
  }
  return { title, data: { values: data }, ...unit, config: CONFIG };
}

const normalisedBars = (figure: string, title: string, yTitle: string, reference: number) => (rows: readonly Row[]) =>
  groupedBars({ figure, title, rows, value: 'normalized_runtime', yTitle, group: 'benchmark', groupTitle: 'benchmark', reference });

/** The plot of each figure, by FIGURE_DEFS name. */
export const PLOTS: Record<string, PlotDef> = {
  '3a': { figure: '3a', kind: 'grouped-bars', title: 'Fig. 3a — runtime of two identical instances, KSM off vs KSM', spec: normalisedBars('3a', 'Fig. 3a — runtime of two identical instances, KSM off vs KSM', 'runtime / vm0 with KSM off', 1) },
  '3b': { figure: '3b', kind: 'stacked-locality', title: 'Fig. 3b — local / remote DRAM accesses and merged-page placement', spec: (rows) => localitySpec('3b', 'Fig. 3b — local / remote DRAM accesses and merged-page placement', rows) },
  '4': { figure: '4', kind: 'series', title: 'Fig. 4 — BTree throughput over time, two priorities', spec: (rows) => seriesSpec('4', 'Fig. 4 — BTree throughput over time, two priorities', rows, 'throughput (ops/s)', 'instance') },
  '6a': { figure: '6a', kind: 'grouped-bars', title: 'Fig. 6a — runtime under KSM and nuKSM', spec: normalisedBars('6a', 'Fig. 6a — runtime under KSM and nuKSM', 'runtime / vm0 with KSM off', 1) },
  '6b': { figure: '6b', kind: 'stacked-locality', title: 'Fig. 6b — local / remote DRAM accesses and merged-page placement, KSM vs nuKSM', spec: (rows) => localitySpec('6b', 'Fig. 6b — local / remote DRAM accesses and merged-page placement, KSM vs nuKSM', rows) },
  table2: { figure: 'table2', kind: 'table', title: 'Table II — fairness, combined performance and memory saved', spec: () => null },
  '7': {
    figure: '7',
    kind: 'grouped-bars',
    title: 'Fig. 7 — runtime under the five priority configurations',
    spec: (rows) => groupedBars({ figure: '7', title: 'Fig. 7 — runtime under the five priority configurations', rows, value: 'normalized_to_c1_1', yTitle: 'runtime / same instance in C-1:1', group: 'config', groupTitle: 'priority configuration (VM-0 : VM-1)', groupOrder: TABLE3_ROWS, facet: 'benchmark', reference: 1 }),
  },
  table3: { figure: 'table3', kind: 'table', title: 'Table III — priority configurations and merged-page placement', spec: () => null },
  '8a': { figure: '8a', kind: 'series', title: 'Fig. 8a — free memory while a hog registers unique memory', spec: (rows) => seriesSpec('8a', 'Fig. 8a — free memory while a hog registers unique memory', rows, 'memory (GiB)', 'mode') },
  '8b': { figure: '8b', kind: 'series', title: 'Fig. 8b — de-duplicated memory over time', spec: (rows) => seriesSpec('8b', 'Fig. 8b — de-duplicated memory over time', rows, 'de-duplicated memory (GiB)', 'mode') },
  '8c': { figure: '8c', kind: 'series', title: 'Fig. 8c — ksmd CPU over time', spec: (rows) => seriesSpec('8c', 'Fig. 8c — ksmd CPU over time', rows, 'ksmd CPU (% of one core)', 'mode') },
  '9': {
    figure: '9',
    kind: 'grouped-bars',
    title: 'Fig. 9 — UKSM, KSM and nuKSM on bare metal',
    spec: (rows) => {
      const spec = normalisedBars('9', 'Fig. 9 — UKSM, KSM and nuKSM on bare metal', 'runtime / same instance under KSM', 1)(rows);
      if (spec && !rows.some((r) => r.kernel_mode === 'uksm')) (spec.title as { subtitle: string[] }).subtitle.push('no UKSM bars: no UKSM kernel ran in this campaign (see the plan)');
      return spec;
    },
  },
};

export interface Rendered {
  svg: string;
  png?: Uint8Array;
  /** Vega-Lite / Vega warnings while compiling and rendering (expected: none). */
  warnings: string[];
}

// The renderer runs in a worker thread: vega renders asynchronously, and the end of `nuksm run`
// (finishCampaign) is synchronous, so the synchronous path blocks on the worker (Atomics.wait,
// receiveMessageOnPort) while the asynchronous path awaits it. One implementation for both.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
(async () => {
  const { port, signal, jobs, urls } = workerData;
  const results = [];
  let error = null;
  try {
    const vega = await import(urls.vega);
    const vl = await import(urls.vegaLite);
    const resvg = jobs.some((j) => j.png) ? await import(urls.resvg) : null;
    for (const job of jobs) {
      const warnings = [];
      const logger = { level() { return this; }, warn(...a) { warnings.push(a.join(' ')); return this; }, info() { return this; }, debug() { return this; }, error(...a) { warnings.push('error: ' + a.join(' ')); return this; } };
      const compiled = vl.compile(job.spec, { logger }).spec;
      const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
      const svg = await view.toSVG();
      view.finalize();
      let png;
      if (job.png) {
        const Resvg = resvg.Resvg ?? resvg.default.Resvg;
        png = new Resvg(svg, { fitTo: { mode: 'zoom', value: job.png }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'Liberation Sans' } }).render().asPng();
      }
      results.push({ svg, png, warnings });
    }
  } catch (e) {
    error = String(e && e.stack || e);
  }
  port.postMessage({ results, error });
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
})();
`;

export interface RenderJob {
  spec: VlSpec;
  /** PNG zoom factor (e.g. 2); no PNG when absent. */
  png?: number;
}

function moduleUrls(): { vega: string; vegaLite: string; resvg: string } {
  // import.meta.resolve where the loader has it; else Node's CommonJS resolution of the same packages.
  const req = createRequire(import.meta.url);
  const resolve = (id: string) => (typeof import.meta.resolve === 'function' ? import.meta.resolve(id) : pathToFileURL(req.resolve(id)).href);
  return { vega: resolve('vega'), vegaLite: resolve('vega-lite'), resvg: resolve('@resvg/resvg-js') };
}

function startRender(jobs: readonly RenderJob[]) {
  const { port1, port2 } = new MessageChannel();
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { port: port2, signal, jobs, urls: moduleUrls() }, transferList: [port2] });
  return { worker, port: port1, signal };
}

function unpack(msg: { results: Rendered[]; error: string | null } | undefined): Rendered[] {
  if (!msg) throw new Error('plot renderer: worker ended without a result');
  if (msg.error) throw new Error(`plot renderer: ${msg.error}`);
  return msg.results.map((r) => ({ ...r, png: r.png ? new Uint8Array(r.png) : undefined }));
}

/** Renders Vega-Lite specs to SVG (and PNG when asked), blocking until done. */
export function renderSync(jobs: readonly RenderJob[]): Rendered[] {
  if (jobs.length === 0) return [];
  const { worker, port, signal } = startRender(jobs);
  try {
    // Wait in slices so a worker that died without notifying cannot hang the process.
    for (let waited = 0; Atomics.load(signal, 0) === 0; waited += 1) {
      Atomics.wait(signal, 0, 0, 1000);
      if (waited > 600) throw new Error('plot renderer: no result after 600 s');
    }
    return unpack(receiveMessageOnPort(port)?.message as { results: Rendered[]; error: string | null } | undefined);
  } finally {
    port.close();
    void worker.terminate();
  }
}

/** Renders Vega-Lite specs to SVG (and PNG when asked). */
export async function render(jobs: readonly RenderJob[]): Promise<Rendered[]> {
  if (jobs.length === 0) return [];
  const { worker, port } = startRender(jobs);
  try {
    const msg = await new Promise<{ results: Rendered[]; error: string | null }>((resolve, reject) => {
      port.once('message', resolve);
      worker.once('error', reject);
      // The worker may exit before its message is delivered here: take it off the port then.
      worker.once('exit', (code) => {
        const late = receiveMessageOnPort(port)?.message as { results: Rendered[]; error: string | null } | undefined;
        if (late) resolve(late);
        else reject(new Error(`plot renderer: worker exited (${code}) without a result`));
      });
    });
    return unpack(msg);
  } finally {
    port.close();
    void worker.terminate();
  }
}

/** Data behind a plot, for tests and tooltips: the bars / points / lines it draws. */
export function plotSpecFor(figure: string, rows: readonly Row[]): VlSpec | null {
  return PLOTS[figure]?.spec(rows) ?? null;
}
