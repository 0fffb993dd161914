/**
 * Figures are declared queries over the store: each one reads the valid rows of the steps that
 * feed it and writes results/<campaign-id>/figures/<name>.csv (columns: docs/figures.md).
 * Only this campaign's own rows are ever read, so a rerun cannot mix old and new data.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { HarnessError } from '../core/errors.ts';
import type { Scenario } from '../core/scenario.ts';
import type { ResultRow, ResultsStore } from './store.ts';
import { median } from 'simple-statistics';
import { combinedPerformance, fairness, localShare, madOutliers, round, slowdown, summarize, summarizeMetric } from './stats.ts';

export type Cell = string | number | null;
export type Row = Record<string, Cell>;

export interface FigureInput {
  rows: ResultRow[];
  /** Scenario of every step, by step id (instance nodes and nice values). */
  scenarios: Map<string, Scenario>;
}

export interface FigureDef {
  name: string;
  /** Which figure tag (steps' `figures`) feeds it. */
  source: string;
  columns: string[];
  /** Which of its values come from timings (runtimes, throughput, CPU time): on an emulated CPU
   * those measure the emulator, and the report says so next to the figure. */
  timingDerived?: string;
  build(input: FigureInput): Row[];
}

// `kernel` (the step's testbed-file kernel key) follows `kernel_mode` everywhere: a mode may run
// on several kernels, and rows of different kernels are never averaged together. `implementation`
// (kernel | userspace | model) follows `kernel`: which implementation of the mode produced the row.
const RUNTIME_COLUMNS = ['testbed', 'benchmark', 'kernel_mode', 'kernel', 'implementation', 'instance', 'runtime_s', 'runtime_sd', 'runtime_ci95', 'n', 'normalized_runtime', 'normalized_ci95'];
const LOCALITY_COLUMNS = ['testbed', 'benchmark', 'kernel_mode', 'kernel', 'implementation', 'instance', 'local_pct', 'remote_pct', 'local_pct_sd', 'local_pct_ci95', 'n', 'ksm_local_pct', 'ksm_local_pct_sd', 'ksm_local_pct_ci95', 'ksm_n'];
const SERIES_COLUMNS = ['testbed', 'config', 'kernel_mode', 'kernel', 'implementation', 'instance', 'node', 'iteration', 't', 'metric', 'unit', 'value'];
const MODE_ORDER = ['ksm-off', 'ksm', 'ksm-node-local', 'ksm-numa-balancing', 'nuksm-fair', 'nuksm-priority', 'nuksm-forest', 'uksm'];
export const TABLE3_ROWS = ['C-10:1', 'C-5:1', 'C-1:1', 'C-1:5', 'C-1:10'] as const;

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

/** Once-per-run values of one metric, as lists over iterations, by config|mode|kernel|instance. */
interface PerRun {
  values: Map<string, number[]>;
  /** Kernels in the order their rows come (plan order): the fallback order of `pick`. */
  kernels: string[];
}

const runKey = (config: string, mode: string, kernel: string, instance: string) => `${config}|${mode}|${kernel}|${instance}`;

function perRun(rows: readonly ResultRow[], metric: string): PerRun {
  const values = new Map<string, number[]>();
  for (const r of rows) {
    if (r.metric !== metric || r.t !== null) continue;
    const k = runKey(r.config, r.kernelMode, r.kernel, r.instance);
    values.set(k, [...(values.get(k) ?? []), r.value]);
  }
  return { values, kernels: kernelsOf(rows) };
}

/**
 * Values of config|mode|instance on `kernel` when it has them, else on the first kernel (plan
 * order) that has them: a reference (KSM off, stock KSM, C-1:1) may run on another kernel than
 * the row it normalises (on the Skylake file nuKSM runs on its own kernel).
 */
function pick(p: PerRun, config: string, mode: string, instance: string, kernel?: string): number[] {
  const own = kernel === undefined ? undefined : p.values.get(runKey(config, mode, kernel, instance));
  if (own?.length) return own;
  for (const k of p.kernels) {
    const v = p.values.get(runKey(config, mode, k, instance));
    if (v?.length) return v;
  }
  return [];
}

const instancesOf = (rows: readonly ResultRow[]) => [...new Set(rows.filter((r) => r.instance !== 'host').map((r) => r.instance))].sort();
const configsOf = (rows: readonly ResultRow[]) => [...new Set(rows.map((r) => r.config))].sort();
const modesOf = (rows: readonly ResultRow[]) => [...new Set(rows.map((r) => r.kernelMode))].sort((a, b) => MODE_ORDER.indexOf(a) - MODE_ORDER.indexOf(b));
const kernelsOf = (rows: readonly ResultRow[]) => [...new Set(rows.map((r) => r.kernel))];
const testbedOf = (rows: readonly ResultRow[]) => rows[0]?.testbed ?? '';

/**
 * The implementation of each kernel mode in these rows. A campaign's testbed file maps a mode to one
 * implementation, so a figure's mode column names one; rows of one mode from two implementations
 * (stores merged by hand) are refused rather than averaged together.
 */
export function implementationsOf(rows: readonly ResultRow[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of rows) {
    const seen = out.get(r.kernelMode);
    if (seen === undefined) out.set(r.kernelMode, r.implementation);
    else if (seen !== r.implementation) {
      throw new HarnessError('config', `rows of kernel mode '${r.kernelMode}' come from two implementations (${seen} and ${r.implementation}, step ${r.step}): a figure never combines them; export the campaigns separately`);
    }
  }
  return out;
}

type Reference = (config: string, kernel: string, instance: string, byKey: PerRun) => number | null;

/** Runtime of each instance, normalised to a reference (default: the first instance with KSM off, as Figs. 3a/6a). */
function runtimeTable(rows: readonly ResultRow[], reference: Reference): Row[] {
  const byKey = perRun(rows, 'runtime_s');
  const impl = implementationsOf(rows);
  const out: Row[] = [];
  for (const config of configsOf(rows)) {
    for (const mode of modesOf(rows)) {
      for (const kernel of byKey.kernels) {
        for (const instance of instancesOf(rows)) {
          const s = summarizeMetric('runtime_s', byKey.values.get(runKey(config, mode, kernel, instance)) ?? []);
          if (!s) continue;
          const ref = reference(config, kernel, instance, byKey);
          out.push({
            testbed: testbedOf(rows), benchmark: config, kernel_mode: mode, kernel, implementation: impl.get(mode) ?? null, instance,
            runtime_s: round(s.mean), runtime_sd: round(s.sd), runtime_ci95: round(s.ci95), n: s.n,
            // The reference's own spread is not folded in: the interval is that of this row's runs, scaled.
            normalized_runtime: ref ? round(s.mean / ref) : null, normalized_ci95: ref && s.ci95 !== null ? round(s.ci95 / ref) : null,
          });
        }
      }
    }
  }
  return out;
}

/** Instance 0 with KSM off on the same kernel, else on any kernel that ran KSM off. */
const firstInstanceWithoutKsm =
  (rows: readonly ResultRow[]): Reference =>
  (config, kernel, _instance, byKey) =>
    summarizeMetric('runtime_s', pick(byKey, config, 'ksm-off', instancesOf(rows)[0] ?? '', kernel))?.mean ?? null;

/**
 * DRAM access locality (perf, where counters exist) and, next to it, where the instance's
 * de-duplicated pages live: the share on its own node (placementShares). The second is the paper's
 * cause of the first, and the one measurable without DRAM counters (emulated testbed).
 */
function localityTable({ rows, scenarios }: FigureInput): Row[] {
  const local = perRun(rows, 'local_access_pct');
  const remote = perRun(rows, 'remote_access_pct');
  const ksm = perRun(placementShares(rows, scenarios), 'ksm_local_pct');
  const impl = implementationsOf(rows);
  const out: Row[] = [];
  for (const config of configsOf(rows)) {
    for (const mode of modesOf(rows)) {
      for (const kernel of kernelsOf(rows)) {
        for (const instance of instancesOf(rows)) {
          const k = runKey(config, mode, kernel, instance);
          const l = summarizeMetric('local_access_pct', local.values.get(k) ?? []);
          const r = summarizeMetric('remote_access_pct', remote.values.get(k) ?? []);
          const p = summarizeMetric('ksm_local_pct', ksm.values.get(k) ?? []);
          if (!l && !r && !p) continue;
          out.push({
            testbed: testbedOf(rows), benchmark: config, kernel_mode: mode, kernel, implementation: impl.get(mode) ?? null, instance,
            local_pct: round(l?.mean), remote_pct: round(r?.mean), local_pct_sd: round(l?.sd), local_pct_ci95: round(l?.ci95), n: l?.n ?? r?.n ?? 0,
            ksm_local_pct: round(p?.mean), ksm_local_pct_sd: round(p?.sd), ksm_local_pct_ci95: round(p?.ci95), ksm_n: p?.n ?? 0,
          });
        }
      }
    }
  }
  return out;
}

function seriesTable(rows: readonly ResultRow[], metrics: readonly string[]): Row[] {
  const kernels = kernelsOf(rows);
  implementationsOf(rows); // refuses mixed implementations of one mode
  return rows
    .filter((r) => r.t !== null && metrics.includes(r.metric))
    .sort((a, b) => a.config.localeCompare(b.config) || MODE_ORDER.indexOf(a.kernelMode) - MODE_ORDER.indexOf(b.kernelMode) || kernels.indexOf(a.kernel) - kernels.indexOf(b.kernel) || a.instance.localeCompare(b.instance) || a.iteration - b.iteration || a.metric.localeCompare(b.metric) || (a.node ?? -1) - (b.node ?? -1) || a.t! - b.t!)
    .map((r) => ({ testbed: r.testbed, config: r.config, kernel_mode: r.kernelMode, kernel: r.kernel, implementation: r.implementation, instance: r.instance, node: r.node, iteration: r.iteration, t: r.t, metric: r.metric, unit: r.unit, value: round(r.value, 6) }));
}

/**
 * Share (%) of de-duplicated pages local to each instance, per step: computed from the
 * per-node page counts (ksm_pages_on_node) and the instance's node; the testbed's own
 * ksm_local_pct is used only when no per-node counts were recorded.
 */
export function placementShares(rows: readonly ResultRow[], scenarios: Map<string, Scenario>): ResultRow[] {
  const out: ResultRow[] = [];
  for (const [key, group] of groupBy(rows.filter((r) => r.t === null && (r.metric === 'ksm_pages_on_node' || r.metric === 'ksm_local_pct')), (r) => `${r.step}|${r.instance}`)) {
    const [step, instance] = key.split('|') as [string, string];
    const inst = scenarios.get(step)?.instances.find((i) => i.name === instance);
    const perNode = new Map<number, number>();
    for (const r of group) if (r.metric === 'ksm_pages_on_node' && r.node !== null) perNode.set(r.node, (perNode.get(r.node) ?? 0) + r.value);
    let share = inst && perNode.size > 0 ? localShare(perNode, inst.node) : null;
    if (share === null) share = group.find((r) => r.metric === 'ksm_local_pct')?.value ?? null;
    if (share !== null) out.push({ ...group[0]!, metric: 'ksm_local_pct', unit: '%', value: share, node: null });
  }
  return out;
}

/** Once-per-run values of `metric` by config|mode|kernel|instance, then by iteration. */
function perIteration(rows: readonly ResultRow[], metric: string): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const r of rows) {
    if (r.metric !== metric || r.t !== null) continue;
    const k = runKey(r.config, r.kernelMode, r.kernel, r.instance);
    if (!out.has(k)) out.set(k, new Map());
    out.get(k)!.set(r.iteration, r.value);
  }
  return out;
}

/**
 * Fairness of each iteration of `mode` (iterations where every instance has a runtime), each
 * instance's slowdown taken against its mean KSM-off runtime: the spread of these values is the
 * spread of the mode's runs. Used for Table II's CI and by `nuksm compare`.
 */
export function fairnessPerIteration(rows: readonly ResultRow[], config: string, mode: string, kernel: string, offKernel: string): number[] {
  const instances = instancesOf(rows.filter((r) => r.config === config));
  const runs = perIteration(rows, 'runtime_s');
  const byKey = perRun(rows, 'runtime_s');
  const off = instances.map((i) => summarizeMetric('runtime_s', pick(byKey, config, 'ksm-off', i, offKernel))?.mean ?? null);
  if (instances.length < 2 || off.some((x) => x === null)) return [];
  const iterations = [...new Set(instances.flatMap((i) => [...(runs.get(runKey(config, mode, kernel, i))?.keys() ?? [])]))].sort((a, b) => a - b);
  const out: number[] = [];
  for (const it of iterations) {
    const xs = instances.map((i) => runs.get(runKey(config, mode, kernel, i))?.get(it));
    if (xs.every((x): x is number => x !== undefined)) out.push(fairness(xs.map((x, j) => slowdown(x, off[j]!))));
  }
  return out;
}

/** The baselines' table2 columns: fairness_<mode> and saved_gib_<mode>, '-' written '_'. */
const BASELINE_MODES = ['ksm-node-local', 'ksm-numa-balancing'] as const;
const TABLE2_BASELINE_COLUMNS = BASELINE_MODES.flatMap((m) => [`fairness_${m.replaceAll('-', '_')}`, `saved_gib_${m.replaceAll('-', '_')}`]);

export function table2(input: FigureInput): Row[] {
  const { rows } = input;
  const runtimes = perRun(rows, 'runtime_s');
  const saved = perRun(rows, 'memory_saved_gib');
  const impl = implementationsOf(rows);
  const out: Row[] = [];
  for (const benchmark of configsOf(rows)) {
    const instances = instancesOf(rows.filter((r) => r.config === benchmark));
    // One kernel per mode (the model and Skylake files have one): a mode's first kernel in plan
    // order, so two kernels are never averaged; the KSM-off baseline prefers that same kernel.
    const kernelOf = (mode: string) => runtimes.kernels.find((k) => instances.some((i) => runtimes.values.get(runKey(benchmark, mode, k, i))?.length));
    const runtimesFor = (mode: string, kernel = kernelOf(mode)) => instances.map((i) => summarizeMetric('runtime_s', pick(runtimes, benchmark, mode, i, kernel))?.mean ?? null);
    const ksm = runtimesFor('ksm');
    const nu = runtimesFor('nuksm-fair');
    const complete = (xs: (number | null)[]): xs is number[] => xs.length > 0 && xs.every((x) => x !== null);
    const fair = (mode: string, xs: (number | null)[]) => {
      const off = runtimesFor('ksm-off', kernelOf(mode));
      return complete(xs) && complete(off) ? fairness(xs.map((x, i) => slowdown(x, off[i]!))) : null;
    };
    const fairCi = (mode: string) => {
      const kernel = kernelOf(mode);
      const offKernel = kernelOf('ksm-off');
      if (kernel === undefined || offKernel === undefined) return null;
      const ownOff = instances.every((i) => runtimes.values.get(runKey(benchmark, 'ksm-off', kernel, i))?.length) ? kernel : offKernel;
      return round(summarize(fairnessPerIteration(rows, benchmark, mode, kernel, ownOff))?.ci95);
    };
    const savedOf = (mode: string) => summarizeMetric('memory_saved_gib', pick(saved, benchmark, mode, 'host', kernelOf(mode)));
    const [savedKsm, savedNu] = [savedOf('ksm'), savedOf('nuksm-fair')];
    out.push({
      benchmark,
      fairness_ksm: round(fair('ksm', ksm)),
      fairness_ksm_ci95: fairCi('ksm'),
      fairness_nuksm: round(fair('nuksm-fair', nu)),
      fairness_nuksm_ci95: fairCi('nuksm-fair'),
      perf_nuksm_over_ksm: complete(nu) && complete(ksm) ? round(combinedPerformance(nu, ksm)) : null,
      saved_gib_ksm: round(savedKsm?.mean),
      saved_gib_ksm_ci95: round(savedKsm?.ci95),
      saved_gib_nuksm: round(savedNu?.mean),
      saved_gib_nuksm_ci95: round(savedNu?.ci95),
      // Linux's own answers (docs/baselines.md), and which implementation each side ran.
      testbed: testbedOf(rows),
      implementation_ksm: impl.get('ksm') ?? null,
      implementation_nuksm: impl.get('nuksm-fair') ?? null,
      ...Object.fromEntries(BASELINE_MODES.flatMap((mode) => {
        const col = mode.replaceAll('-', '_');
        return [
          [`fairness_${col}`, round(fair(mode, runtimesFor(mode)))],
          [`saved_gib_${col}`, round(savedOf(mode)?.mean)],
        ];
      })),
    });
  }
  return out;
}

/** Config label of a Fig. 7 step: 'mysql/C-10:1' → 'C-10:1'. */
const labelOf = (configId: string) => configId.slice(configId.lastIndexOf('/') + 1);

export function table3(input: FigureInput): Row[] {
  const shares = placementShares(input.rows, input.scenarios);
  const out: Row[] = [];
  for (const label of TABLE3_ROWS) {
    const steps = [...new Set(input.rows.filter((r) => labelOf(r.config) === label).map((r) => r.step))];
    const scenario = steps.length ? input.scenarios.get(steps[0]!) : undefined;
    const [vm0, vm1] = scenario ? [...scenario.instances].sort((a, b) => a.name.localeCompare(b.name)) : [];
    const impls = [...new Set(input.rows.filter((r) => labelOf(r.config) === label).map((r) => r.implementation))];
    const shareOf = (name: string | undefined) => (name ? summarizeMetric('ksm_local_pct', shares.filter((s) => labelOf(s.config) === label && s.instance === name).map((s) => s.value))?.mean : null);
    out.push({
      config: label,
      nice_vm0: vm0?.nice ?? null,
      nice_vm1: vm1?.nice ?? null,
      snice_vm0: vm0 ? vm0.nice + 21 : null,
      snice_vm1: vm1 ? vm1.nice + 21 : null,
      local_pct_vm0: round(shareOf(vm0?.name), 2),
      local_pct_vm1: round(shareOf(vm1?.name), 2),
      testbed: testbedOf(input.rows),
      implementation: impls.join('+') || null,
    });
  }
  return out;
}

function fig7(input: FigureInput): Row[] {
  const { rows } = input;
  const byKey = perRun(rows, 'runtime_s');
  const impl = implementationsOf(rows);
  const out: Row[] = [];
  for (const config of configsOf(rows)) {
    const benchmark = config.includes('/') ? config.slice(0, config.lastIndexOf('/')) : config;
    const scenario = input.scenarios.get(rows.find((r) => r.config === config)!.step);
    for (const mode of modesOf(rows)) {
      for (const kernel of byKey.kernels) {
        for (const instance of instancesOf(rows)) {
          const s = summarizeMetric('runtime_s', byKey.values.get(runKey(config, mode, kernel, instance)) ?? []);
          if (!s) continue;
          const ref = summarizeMetric('runtime_s', pick(byKey, `${benchmark}/C-1:1`, mode, instance, kernel))?.mean;
          out.push({
            testbed: testbedOf(rows),
            benchmark,
            config: labelOf(config),
            kernel_mode: mode,
            kernel,
            implementation: impl.get(mode) ?? null,
            instance,
            nice: scenario?.instances.find((i) => i.name === instance)?.nice ?? null,
            runtime_s: round(s.mean),
            runtime_sd: round(s.sd),
            runtime_ci95: round(s.ci95),
            n: s.n,
            normalized_to_c1_1: ref ? round(s.mean / ref) : null,
            normalized_ci95: ref && s.ci95 !== null ? round(s.ci95 / ref) : null,
          });
        }
      }
    }
  }
  return out;
}

function fig4(input: FigureInput): Row[] {
  return seriesTable(input.rows, ['throughput_ops']).map((r) => ({
    ...r,
    nice: input.scenarios.get(input.rows.find((x) => x.config === r.config)!.step)?.instances.find((i) => i.name === r.instance)?.nice ?? null,
  }));
}

export const FIGURE_DEFS: FigureDef[] = [
  { name: '3a', source: '3a', columns: RUNTIME_COLUMNS, timingDerived: 'runtimes', build: ({ rows }) => runtimeTable(rows, firstInstanceWithoutKsm(rows)) },
  { name: '3b', source: '3b', columns: LOCALITY_COLUMNS, build: localityTable },
  { name: '4', source: '4', columns: [...SERIES_COLUMNS, 'nice'], timingDerived: 'the throughput series', build: fig4 },
  { name: '6a', source: '6a', columns: RUNTIME_COLUMNS, timingDerived: 'runtimes', build: ({ rows }) => runtimeTable(rows, firstInstanceWithoutKsm(rows)) },
  { name: '6b', source: '6b', columns: LOCALITY_COLUMNS, build: localityTable },
  { name: 'table2', source: 'table2', timingDerived: 'fairness_ksm, fairness_nuksm and perf_nuksm_over_ksm (from runtimes; memory saved is not)', columns: ['benchmark', 'fairness_ksm', 'fairness_ksm_ci95', 'fairness_nuksm', 'fairness_nuksm_ci95', 'perf_nuksm_over_ksm', 'saved_gib_ksm', 'saved_gib_ksm_ci95', 'saved_gib_nuksm', 'saved_gib_nuksm_ci95', 'testbed', 'implementation_ksm', 'implementation_nuksm', ...TABLE2_BASELINE_COLUMNS], build: table2 },
  { name: '7', source: '7', timingDerived: 'runtimes', columns: ['testbed', 'benchmark', 'config', 'kernel_mode', 'kernel', 'implementation', 'instance', 'nice', 'runtime_s', 'runtime_sd', 'runtime_ci95', 'n', 'normalized_to_c1_1', 'normalized_ci95'], build: fig7 },
  { name: 'table3', source: 'table3', columns: ['config', 'nice_vm0', 'nice_vm1', 'snice_vm0', 'snice_vm1', 'local_pct_vm0', 'local_pct_vm1', 'testbed', 'implementation'], build: table3 },
  { name: '8a', source: '8a', columns: SERIES_COLUMNS, build: ({ rows }) => seriesTable(rows, ['mem_free_gib', 'hog_registered_gib']) },
  { name: '8b', source: '8b', columns: SERIES_COLUMNS, build: ({ rows }) => seriesTable(rows, ['memory_saved_gib']) },
  { name: '8c', source: '8c', columns: SERIES_COLUMNS, timingDerived: 'ksmd CPU share', build: ({ rows }) => seriesTable(rows, ['ksmd_cpu_pct']) },
  {
    name: '9',
    source: '9',
    columns: RUNTIME_COLUMNS,
    // Normalised to the same instance under stock KSM (on the same kernel when it ran KSM, else on the kernel that did).
    build: ({ rows }) => runtimeTable(rows, (config, kernel, instance, byKey) => summarizeMetric('runtime_s', pick(byKey, config, 'ksm', instance, kernel))?.mean ?? null),
  },
];

export function figureInput(store: ResultsStore, source: string): FigureInput {
  const rows = store.rows({ figure: source });
  const scenarios = new Map<string, Scenario>();
  const q = store.db.prepare('SELECT scenario_json FROM steps WHERE step_id = ?');
  for (const step of new Set(rows.map((r) => r.step))) {
    const r = q.get(step) as { scenario_json: string };
    scenarios.set(step, JSON.parse(r.scenario_json) as Scenario);
  }
  return { rows, scenarios };
}

export function toCsv(def: FigureDef, rows: Row[]): string {
  return stringify(rows.map((r) => def.columns.map((c) => r[c] ?? '')), { header: true, columns: def.columns });
}

/** Writes every figure the campaign has rows for; returns name → path and row count. */
export function exportFigures(store: ResultsStore, outDir = join(store.dir, 'figures'), only?: readonly string[]): { name: string; path: string; rows: number }[] {
  mkdirSync(outDir, { recursive: true });
  const written: { name: string; path: string; rows: number }[] = [];
  for (const def of FIGURE_DEFS) {
    if (only && !only.includes(def.name)) continue;
    const input = figureInput(store, def.source);
    if (input.rows.length === 0) continue;
    const rows = def.build(input);
    const path = join(outDir, `${def.name}.csv`);
    writeFileSync(path, toCsv(def, rows));
    written.push({ name: def.name, path, rows: rows.length });
  }
  return written;
}

export interface IterationOutlier {
  config: string;
  kernelMode: string;
  kernel: string;
  instance: string;
  metric: string;
  unit: string;
  iteration: number;
  value: number;
  /** Median of the iterations it was judged against. */
  median: number;
  n: number;
}

/**
 * Iterations whose once-per-run value of a metric is a MAD outlier among the iterations of the
 * same configuration, mode, kernel and instance (stats.ts madOutliers; 3 iterations at least).
 * The report flags them; figures still average every iteration (an outlier is shown, not dropped).
 */
export function iterationOutliers(rows: readonly ResultRow[]): IterationOutlier[] {
  const groups = groupBy(rows.filter((r) => r.t === null && r.node === null), (r) => `${runKey(r.config, r.kernelMode, r.kernel, r.instance)}|${r.metric}`);
  const out: IterationOutlier[] = [];
  for (const group of groups.values()) {
    const sorted = [...group].sort((a, b) => a.iteration - b.iteration);
    const values = sorted.map((r) => r.value);
    const flagged = madOutliers(values);
    if (!flagged.length) continue;
    const mid = median(values);
    for (const i of flagged) {
      const r = sorted[i]!;
      out.push({ config: r.config, kernelMode: r.kernelMode, kernel: r.kernel, instance: r.instance, metric: r.metric, unit: r.unit, iteration: r.iteration, value: r.value, median: mid, n: values.length });
    }
  }
  return out;
}
