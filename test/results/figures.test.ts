/** Figure queries on hand-built sample sets: fairness, combined performance, placement shares, normalisation, CSV columns. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createCampaign } from '../../src/campaign/campaign.ts';
import type { InstanceSpec, Scenario } from '../../src/core/scenario.ts';
import { exportFigures, FIGURE_DEFS, placementShares, table2, table3, type FigureInput } from '../../src/results/figures.ts';
import { combinedPerformance, fairness, localShare } from '../../src/results/stats.ts';
import Database from 'better-sqlite3';
import { ResultsStore, STORE_FILE, type ResultRow } from '../../src/results/store.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-fig-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function row(p: Partial<ResultRow> & Pick<ResultRow, 'config' | 'kernelMode' | 'instance' | 'metric' | 'value'>): ResultRow {
  return { campaign: 'c', step: `${p.config}|${p.kernelMode}|${p.iteration ?? 1}`, experiment: 'e', iteration: 1, testbed: 'model', workload: 'w', unit: '', t: null, node: null, ...p, kernel: p.kernel ?? 'k', implementation: p.implementation ?? 'model' };
}

const vm = (name: string, node: number, nice = 0): InstanceSpec => ({ name, kind: 'vm', node, vcpus: 4, memoryMiB: 1024, nice, template: 't', startAtS: 0 });
function scenario(configId: string, instances: InstanceSpec[]): Scenario {
  return {
    campaign: 'c', experiment: 'e', configId, kernelMode: 'nuksm-priority', instances, workloads: [], memoryHog: null, monitors: [], iteration: 1, seed: 1,
    ksm: { run: true, pagesToScan: 1, sleepMillisecs: 1, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
    timeline: { staggerS: 0, staggerFrom: 'launch', ksmdStart: 'step', mergeWait: { kind: 'fixed', seconds: 0 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 1 },
  };
}

describe('derived metrics', () => {
  it('fairness = min/max slowdown; combined performance = ratio of runtime sums; local share from per-node pages', () => {
    expect(fairness([1, 1.25])).toBeCloseTo(0.8, 12);
    expect(fairness([1.3, 1.3])).toBe(1);
    expect(combinedPerformance([105, 110], [100, 125])).toBeCloseTo(215 / 225, 12);
    expect(localShare(new Map([[0, 90], [1, 10]]), 0)).toBeCloseTo(90, 12);
    expect(localShare(new Map([[0, 90], [1, 10]]), 1)).toBeCloseTo(10, 12);
    expect(localShare(new Map([[0, 0]]), 0)).toBeNull();
  });
});

/** table2's added columns when no baseline ran (rows from row(): testbed and implementation 'model'). */
const NO_BASELINES = { testbed: 'model', implementation_ksm: 'model', implementation_nuksm: 'model', fairness_ksm_node_local: null, saved_gib_ksm_node_local: null, fairness_ksm_numa_balancing: null, saved_gib_ksm_numa_balancing: null };

describe('table2', () => {
  const runtime = (config: string, kernelMode: string, instance: string, value: number, iteration = 1) => row({ config, kernelMode, instance, metric: 'runtime_s', unit: 's', value, iteration, step: `${config}|${kernelMode}|${iteration}` });
  const saved = (config: string, kernelMode: string, value: number, iteration = 1) => row({ config, kernelMode, instance: 'host', workload: '', metric: 'memory_saved_gib', unit: 'GiB', value, iteration, step: `${config}|${kernelMode}|${iteration}` });
  const rows: ResultRow[] = [
    runtime('xsbench', 'ksm-off', 'vm0', 100), runtime('xsbench', 'ksm-off', 'vm1', 100),
    runtime('xsbench', 'ksm', 'vm0', 100), runtime('xsbench', 'ksm', 'vm1', 120),
    runtime('xsbench', 'ksm', 'vm0', 100, 2), runtime('xsbench', 'ksm', 'vm1', 130, 2), // mean 125
    runtime('xsbench', 'nuksm-fair', 'vm0', 105), runtime('xsbench', 'nuksm-fair', 'vm1', 110),
    saved('xsbench', 'ksm', 10.4), saved('xsbench', 'ksm', 10.6, 2), saved('xsbench', 'nuksm-fair', 10.7),
    // cg lacks its nuKSM run: its nuKSM columns stay empty rather than invented
    runtime('cg', 'ksm-off', 'vm0', 50), runtime('cg', 'ksm-off', 'vm1', 40), runtime('cg', 'ksm', 'vm0', 60), runtime('cg', 'ksm', 'vm1', 60),
  ];
  const input: FigureInput = { rows, scenarios: new Map() };

  it('computes fairness, combined performance and memory saved per benchmark (means over iterations)', () => {
    const t = table2(input);
    expect(t.find((r) => r.benchmark === 'xsbench')).toEqual({
      benchmark: 'xsbench',
      fairness_ksm: 0.8, // slowdowns 1.0 and 1.25
      fairness_nuksm: Number((1.05 / 1.1).toFixed(4)),
      perf_nuksm_over_ksm: Number((215 / 225).toFixed(4)),
      saved_gib_ksm: 10.5,
      saved_gib_nuksm: 10.7,
      // 95% CIs by hand: t(0.975, 1 dof) = 12.7062 (t table); half-width = t · sd / √n.
      // Fairness per KSM iteration: 100/120 and 100/130 → sd = |0.8333 − 0.7692| / √2.
      fairness_ksm_ci95: Number(((12.7062047 * Math.abs(1 / 1.2 - 1 / 1.3)) / Math.SQRT2 / Math.SQRT2).toFixed(4)),
      fairness_nuksm_ci95: null, // one iteration
      saved_gib_ksm_ci95: Number(((12.7062047 * 0.2) / 2).toFixed(4)), // 10.4, 10.6: sd = 0.2 / √2
      saved_gib_nuksm_ci95: null,
      ...NO_BASELINES,
    });
    // cg: slowdowns 1.2 and 1.5 → 0.8; no nuKSM rows → nulls
    expect(t.find((r) => r.benchmark === 'cg')).toEqual({ benchmark: 'cg', fairness_ksm: 0.8, fairness_ksm_ci95: null, fairness_nuksm: null, fairness_nuksm_ci95: null, perf_nuksm_over_ksm: null, saved_gib_ksm: null, saved_gib_ksm_ci95: null, saved_gib_nuksm: null, saved_gib_nuksm_ci95: null, ...NO_BASELINES });
  });

  it('Fig. 6a normalises to Instance-0 without KSM and reports the spread over iterations', () => {
    const def = FIGURE_DEFS.find((d) => d.name === '6a')!;
    const out = def.build(input);
    const vm1ksm = out.find((r) => r.benchmark === 'xsbench' && r.kernel_mode === 'ksm' && r.instance === 'vm1')!;
    expect(vm1ksm).toMatchObject({ runtime_s: 125, n: 2, normalized_runtime: 1.25, testbed: 'model' });
    expect(vm1ksm.runtime_sd).toBeCloseTo(Math.SQRT2 * 5, 4);
    // 120 and 130 s: half-width t(0.975, 1) · sd / √2 = 12.7062 × 5 (by hand, t from a table); normalised by Instance-0's 100 s.
    expect(vm1ksm.runtime_ci95).toBeCloseTo(63.531, 3);
    expect(vm1ksm.normalized_ci95).toBeCloseTo(0.6353, 4);
    expect(out.find((r) => r.benchmark === 'cg' && r.kernel_mode === 'ksm-off' && r.instance === 'vm1')!.normalized_runtime).toBe(0.8);
    expect(Object.keys(out[0]!)).toEqual(def.columns);
  });
});

describe('table3 and placement shares', () => {
  const pages = (config: string, instance: string, node: number, value: number) => row({ config, kernelMode: 'nuksm-priority', instance, metric: 'ksm_pages_on_node', unit: 'pages', value, node, step: config });
  const scenarios = new Map<string, Scenario>([
    ['mysql/C-10:1', scenario('mysql/C-10:1', [vm('vm0', 0, -20), vm('vm1', 1, -11)])],
    ['btree/C-10:1', scenario('btree/C-10:1', [vm('vm0', 0, -20), vm('vm1', 1, -11)])],
    ['btree/C-1:1', scenario('btree/C-1:1', [vm('vm0', 0, -20), vm('vm1', 1, -20)])],
  ]);
  const rows: ResultRow[] = [
    // mysql C-10:1: vm0's KSM pages 900 on node 0, 100 on node 1 → 90 % local; vm1 (node 1) → 10 %
    pages('mysql/C-10:1', 'vm0', 0, 900), pages('mysql/C-10:1', 'vm0', 1, 100),
    pages('mysql/C-10:1', 'vm1', 0, 900), pages('mysql/C-10:1', 'vm1', 1, 100),
    // btree C-10:1: 92 % / 8 %
    pages('btree/C-10:1', 'vm0', 0, 92), pages('btree/C-10:1', 'vm0', 1, 8),
    pages('btree/C-10:1', 'vm1', 0, 92), pages('btree/C-10:1', 'vm1', 1, 8),
    // btree C-1:1: no per-node counts, only the testbed's share → used as is
    row({ config: 'btree/C-1:1', kernelMode: 'nuksm-priority', instance: 'vm0', metric: 'ksm_local_pct', unit: '%', value: 51, step: 'btree/C-1:1' }),
    row({ config: 'btree/C-1:1', kernelMode: 'nuksm-priority', instance: 'vm1', metric: 'ksm_local_pct', unit: '%', value: 49, step: 'btree/C-1:1' }),
  ];

  it('computes shares from per-node page counts and the instance’s node', () => {
    const shares = placementShares(rows, scenarios);
    expect(shares.find((s) => s.step === 'mysql/C-10:1' && s.instance === 'vm0')!.value).toBeCloseTo(90, 10);
    expect(shares.find((s) => s.step === 'mysql/C-10:1' && s.instance === 'vm1')!.value).toBeCloseTo(10, 10);
    expect(shares.find((s) => s.step === 'btree/C-1:1' && s.instance === 'vm1')!.value).toBe(49);
  });

  it('3b/6b carry the merged-page placement share next to DRAM locality, also without DRAM counters', () => {
    const b3 = FIGURE_DEFS.find((d) => d.name === '3b')!;
    const t = b3.build({ rows, scenarios });
    const mysql = t.filter((r) => r.benchmark === 'mysql/C-10:1');
    expect(mysql.map((r) => [r.instance, r.ksm_local_pct, r.ksm_n, r.local_pct])).toEqual([['vm0', 90, 1, null], ['vm1', 10, 1, null]]);
    expect(Object.keys(t[0]!)).toEqual(b3.columns);
  });

  it('one row per configuration in paper order, nice → snice, shares averaged over benchmarks', () => {
    const t = table3({ rows, scenarios });
    expect(t.map((r) => r.config)).toEqual(['C-10:1', 'C-5:1', 'C-1:1', 'C-1:5', 'C-1:10']);
    expect(t[0]).toEqual({ config: 'C-10:1', nice_vm0: -20, nice_vm1: -11, snice_vm0: 1, snice_vm1: 10, local_pct_vm0: 91, local_pct_vm1: 9, testbed: 'model', implementation: 'model' });
    expect(t[2]).toEqual({ config: 'C-1:1', nice_vm0: -20, nice_vm1: -20, snice_vm0: 1, snice_vm1: 1, local_pct_vm0: 51, local_pct_vm1: 49, testbed: 'model', implementation: 'model' });
    expect(t[1]).toEqual({ config: 'C-5:1', nice_vm0: null, nice_vm1: null, snice_vm0: null, snice_vm1: null, local_pct_vm0: null, local_pct_vm1: null, testbed: 'model', implementation: null });
  });
});

describe('export from the store', () => {
  it('reads only valid attempts of this campaign and writes the exact table2 header', () => {
    const c = createCampaign({ spec: join(ROOT, 'test', 'campaign', 'fixtures', 'small.yaml'), testbedFile: join(ROOT, 'experiments', 'testbeds', 'model.yaml'), resultsDir: tmp, campaignId: 'fig' });
    const steps = c.journal.steps().filter((s) => s.configId === 'cg' && s.iteration === 1);
    const values: Record<string, [number, number]> = { 'ksm-off': [100, 100], ksm: [100, 150], 'nuksm-fair': [110, 115] };
    for (const s of steps) {
      const abandoned = c.journal.beginAttempt(s.stepId);
      c.store.addSamples(s.stepId, abandoned, [{ instance: 'vm0', workload: 'cg', metric: 'runtime_s', value: 9999, unit: 's', t: null, node: null }]);
      const ok = c.journal.beginAttempt(s.stepId);
      const [r0, r1] = values[s.kernelMode]!;
      c.store.addSamples(s.stepId, ok, [
        { instance: 'vm0', workload: 'cg', metric: 'runtime_s', value: r0, unit: 's', t: null, node: null },
        { instance: 'vm1', workload: 'cg', metric: 'runtime_s', value: r1, unit: 's', t: null, node: null },
        { instance: 'host', workload: '', metric: 'memory_saved_gib', value: 2.5, unit: 'GiB', t: null, node: null },
      ]);
      c.journal.completeStep(s.stepId, ok, {});
    }
    const written = exportFigures(c.store);
    // Every figure the steps feed is written; without DRAM-locality samples 3b/6b hold only their header.
    expect(written.map((w) => [w.name, w.rows])).toEqual([['3a', 6], ['3b', 0], ['6a', 6], ['6b', 0], ['table2', 1]]);
    const csv = readFileSync(join(c.dir, 'figures', 'table2.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('benchmark,fairness_ksm,fairness_ksm_ci95,fairness_nuksm,fairness_nuksm_ci95,perf_nuksm_over_ksm,saved_gib_ksm,saved_gib_ksm_ci95,saved_gib_nuksm,saved_gib_nuksm_ci95,testbed,implementation_ksm,implementation_nuksm,fairness_ksm_node_local,saved_gib_ksm_node_local,fairness_ksm_numa_balancing,saved_gib_ksm_numa_balancing');
    // One iteration: no interval (empty cells), not a zero-width one.
    expect(csv[1]).toBe(`cg,${Number((1 / 1.5).toFixed(4))},,${Number((1.1 / 1.15).toFixed(4))},,${Number((225 / 250).toFixed(4))},2.5,,2.5,,model,model,model,,,,`);
    expect(readFileSync(join(c.dir, 'figures', '3a.csv'), 'utf8')).not.toContain('9999');
    c.store.close();
  });

  it('table3.csv has exactly the documented columns', () => {
    expect(FIGURE_DEFS.find((d) => d.name === 'table3')!.columns.join(',')).toBe('config,nice_vm0,nice_vm1,snice_vm0,snice_vm1,local_pct_vm0,local_pct_vm1,testbed,implementation');
  });
});

describe('time-series figures', () => {
  it('8a keeps host-wide and per-node values apart with a node column', () => {
    const rows = [
      row({ config: 'x', kernelMode: 'ksm', instance: 'host', metric: 'mem_free_gib', value: 181, t: 10 }),
      row({ config: 'x', kernelMode: 'ksm', instance: 'host', metric: 'mem_free_gib', value: 1, t: 10, node: 0 }),
      row({ config: 'x', kernelMode: 'ksm', instance: 'host', metric: 'mem_free_gib', value: 180, t: 10, node: 1 }),
    ];
    const def = FIGURE_DEFS.find((d) => d.name === '8a')!;
    expect(def.columns).toContain('node');
    const out = def.build({ rows, scenarios: new Map() } satisfies FigureInput);
    expect(out.map((r) => [r.node, r.value])).toEqual([[null, 181], [0, 1], [1, 180]]);
  });
});

describe('a mode on several kernels', () => {
  const runtime = (kernelMode: string, kernel: string, instance: string, value: number, iteration = 1) =>
    row({ config: 'xsbench', kernelMode, kernel, instance, metric: 'runtime_s', unit: 's', value, iteration, step: `xsbench|${kernelMode}|${kernel}|${iteration}` });
  // KSM off on bookworm only; stock KSM on bookworm and backports (the emulated testbed file).
  const base: ResultRow[] = [
    runtime('ksm-off', 'bookworm', 'vm0', 100), runtime('ksm-off', 'bookworm', 'vm1', 100),
    runtime('ksm', 'bookworm', 'vm0', 100), runtime('ksm', 'bookworm', 'vm1', 130),
    runtime('ksm', 'backports', 'vm0', 110), runtime('ksm', 'backports', 'vm1', 150),
    runtime('ksm', 'backports', 'vm1', 170, 2),
  ];
  const build = (name: string, rows: ResultRow[]) => FIGURE_DEFS.find((d) => d.name === name)!.build({ rows, scenarios: new Map() });

  it('every figure with a kernel_mode column has kernel right after it', () => {
    const withMode = FIGURE_DEFS.filter((d) => d.columns.includes('kernel_mode'));
    expect(withMode.map((d) => d.name)).toEqual(['3a', '3b', '4', '6a', '6b', '7', '8a', '8b', '8c', '9']);
    for (const d of withMode) expect(d.columns[d.columns.indexOf('kernel_mode') + 1], d.name).toBe('kernel');
  });

  it('3a: one row per (mode, kernel, instance), never averaged across kernels; the KSM-off reference falls back to the kernel that has it', () => {
    const out = build('3a', base);
    expect(out.map((r) => [r.kernel_mode, r.kernel, r.instance, r.runtime_s, r.n, r.normalized_runtime])).toEqual([
      ['ksm-off', 'bookworm', 'vm0', 100, 1, 1],
      ['ksm-off', 'bookworm', 'vm1', 100, 1, 1],
      ['ksm', 'bookworm', 'vm0', 100, 1, 1],
      ['ksm', 'bookworm', 'vm1', 130, 1, 1.3],
      ['ksm', 'backports', 'vm0', 110, 1, 1.1],
      ['ksm', 'backports', 'vm1', 160, 2, 1.6], // mean of 150 and 170 on backports only
    ]);
    expect(Object.keys(out[0]!)).toEqual(FIGURE_DEFS.find((d) => d.name === '3a')!.columns);
  });

  it('3a: the KSM-off reference prefers the same kernel', () => {
    const rows = [...base, runtime('ksm-off', 'backports', 'vm0', 125), runtime('ksm-off', 'backports', 'vm1', 120)];
    const out = build('3a', rows);
    const at = (mode: string, kernel: string, instance: string) => out.find((r) => r.kernel_mode === mode && r.kernel === kernel && r.instance === instance)!;
    expect(at('ksm', 'backports', 'vm1').normalized_runtime).toBe(160 / 125);
    expect(at('ksm', 'bookworm', 'vm1').normalized_runtime).toBe(1.3);
    expect(at('ksm-off', 'backports', 'vm1').normalized_runtime).toBe(0.96);
  });

  it('9: normalised to stock KSM on the same kernel, else on the kernel that ran it', () => {
    const rows = [
      runtime('ksm', 'v5.4', 'vm0', 100), runtime('nuksm-fair', 'nuKSM_SingleTree', 'vm0', 90),
      runtime('ksm', 'backports', 'vm0', 200), runtime('nuksm-fair', 'backports', 'vm0', 150),
    ];
    const out = build('9', rows);
    expect(out.map((r) => [r.kernel_mode, r.kernel, r.normalized_runtime])).toEqual([
      ['ksm', 'v5.4', 1],
      ['ksm', 'backports', 1],
      ['nuksm-fair', 'nuKSM_SingleTree', 0.9], // no KSM run on this kernel: the first kernel's
      ['nuksm-fair', 'backports', 0.75],
    ]);
  });

  it('time series carry the kernel and keep kernels apart', () => {
    const rows = [
      row({ config: 'x', kernelMode: 'ksm', kernel: 'backports', instance: 'host', metric: 'memory_saved_gib', unit: 'GiB', value: 2, t: 10 }),
      row({ config: 'x', kernelMode: 'ksm', kernel: 'bookworm', instance: 'host', metric: 'memory_saved_gib', unit: 'GiB', value: 1, t: 10 }),
      row({ config: 'x', kernelMode: 'ksm', kernel: 'bookworm', instance: 'host', metric: 'memory_saved_gib', unit: 'GiB', value: 1.5, t: 20 }),
    ];
    // Kernels in the order their rows come (plan order): backports first here.
    expect(build('8b', rows).map((r) => [r.kernel, r.t, r.value])).toEqual([['backports', 10, 2], ['bookworm', 10, 1], ['bookworm', 20, 1.5]]);
  });

  it('Table II keeps its columns and takes one kernel per mode (the first), with the KSM-off baseline of that kernel', () => {
    const t = table2({ rows: base, scenarios: new Map() });
    expect(t).toEqual([{ benchmark: 'xsbench', fairness_ksm: round4(1 / 1.3), fairness_ksm_ci95: null, fairness_nuksm: null, fairness_nuksm_ci95: null, perf_nuksm_over_ksm: null, saved_gib_ksm: null, saved_gib_ksm_ci95: null, saved_gib_nuksm: null, saved_gib_nuksm_ci95: null, ...NO_BASELINES, implementation_nuksm: null }]);
  });

  it('export from a store: the kernel column is the step’s testbed-file kernel key', () => {
    const tbFile = join(tmp, 'two-kernel-model.yaml');
    writeFileSync(tbFile, readFileSync(join(ROOT, 'experiments', 'testbeds', 'model.yaml'), 'utf8'));
    const tb = parseYaml(readFileSync(tbFile, 'utf8')) as { kernels: Record<string, unknown>; modes: Record<string, { kernel: string | string[] }> };
    const first = tb.modes.ksm!.kernel as string;
    tb.kernels['second'] = { bootEntry: 'second', release: 'second' };
    tb.modes.ksm!.kernel = [first, 'second'];
    writeFileSync(tbFile, stringifyYaml(tb));
    const c = createCampaign({ spec: join(ROOT, 'test', 'campaign', 'fixtures', 'small.yaml'), testbedFile: tbFile, resultsDir: tmp, campaignId: 'fig-kernels' });
    const steps = c.journal.steps().filter((s) => s.configId === 'cg' && s.iteration === 1 && s.kernel !== null);
    const value: Record<string, number> = { 'ksm-off': 100, ksm: 120, second: 140, 'nuksm-fair': 110 };
    for (const s of steps) {
      const ok = c.journal.beginAttempt(s.stepId);
      const v = s.kernel === 'second' ? value.second! : value[s.kernelMode]!;
      c.store.addSamples(s.stepId, ok, ['vm0', 'vm1'].map((instance) => ({ instance, workload: 'cg', metric: 'runtime_s', value: v, unit: 's', t: null, node: null })));
      c.journal.completeStep(s.stepId, ok, {});
    }
    expect(c.store.rows().every((r) => r.kernel === c.journal.steps().find((s) => s.stepId === r.step)!.kernel)).toBe(true);
    exportFigures(c.store, undefined, ['3a']);
    const csv = readFileSync(join(c.dir, 'figures', '3a.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('testbed,benchmark,kernel_mode,kernel,implementation,instance,runtime_s,runtime_sd,runtime_ci95,n,normalized_runtime,normalized_ci95');
    const ksmRows = csv.filter((l) => l.startsWith('model,cg,ksm,'));
    expect(ksmRows).toEqual([`model,cg,ksm,${first},model,vm0,120,,,1,1.2,`, `model,cg,ksm,${first},model,vm1,120,,,1,1.2,`, 'model,cg,ksm,second,model,vm0,140,,,1,1.4,', 'model,cg,ksm,second,model,vm1,140,,,1,1.4,']);
    c.store.close();
  });
});

const round4 = (x: number) => Number(x.toFixed(4));

describe('a store made before the kernel column', () => {
  it('gets the results view rebuilt with the kernel column when opened', () => {
    const dir = mkdtempSync(join(tmp, 'old-store-'));
    new ResultsStore(dir).close();
    const db = new Database(join(dir, STORE_FILE));
    // The view as it was before the kernel column.
    db.exec(`DROP VIEW results;
      CREATE VIEW results AS SELECT c.id AS campaign, s.step_id AS step, s.experiment, s.iteration, s.kernel_mode AS kernelMode,
        c.testbed_kind AS testbed, s.config_id AS config, x.instance, x.workload, x.metric, x.value, x.unit, x.t, x.node
        FROM samples x JOIN steps s ON s.step_id = x.step_id AND s.valid_attempt = x.attempt_id AND s.state = 'done' CROSS JOIN campaign c;`);
    expect((db.prepare("SELECT name FROM pragma_table_info('results')").all() as { name: string }[]).map((c) => c.name)).not.toContain('kernel');
    db.close();
    const columns = () => {
      const store = new ResultsStore(dir);
      try {
        return (store.db.prepare("SELECT name FROM pragma_table_info('results')").all() as { name: string }[]).map((c) => c.name);
      } finally {
        store.close();
      }
    };
    expect(columns()).toContain('kernel');
    expect(columns().indexOf('kernel')).toBe(columns().indexOf('kernelMode') + 1);
  });
});

describe('implementation column and baselines', () => {
  const runtime = (kernelMode: string, instance: string, value: number, implementation = 'kernel') =>
    row({ config: 'ra', kernelMode, instance, metric: 'runtime_s', unit: 's', value, implementation, testbed: 'emulated' });
  const saved = (kernelMode: string, value: number, implementation = 'kernel') =>
    row({ config: 'ra', kernelMode, instance: 'host', workload: '', metric: 'memory_saved_gib', unit: 'GiB', value, implementation, testbed: 'emulated' });
  const rows: ResultRow[] = [
    runtime('ksm-off', 'p0', 10), runtime('ksm-off', 'p1', 10),
    runtime('ksm', 'p0', 10), runtime('ksm', 'p1', 15), saved('ksm', 3),
    runtime('ksm-node-local', 'p0', 10), runtime('ksm-node-local', 'p1', 10.5), saved('ksm-node-local', 2),
    runtime('ksm-numa-balancing', 'p0', 10), runtime('ksm-numa-balancing', 'p1', 14), saved('ksm-numa-balancing', 3),
    runtime('nuksm-fair', 'p0', 12, 'userspace'), runtime('nuksm-fair', 'p1', 12, 'userspace'), saved('nuksm-fair', 3, 'userspace'),
  ];

  it('table2 puts both baselines next to KSM and nuKSM, and names the implementation of each side', () => {
    const [t] = table2({ rows, scenarios: new Map() });
    expect(t).toMatchObject({
      testbed: 'emulated', implementation_ksm: 'kernel', implementation_nuksm: 'userspace',
      fairness_ksm: round4(1 / 1.5), saved_gib_ksm: 3, fairness_nuksm: 1, saved_gib_nuksm: 3,
      fairness_ksm_node_local: round4(1 / 1.05), saved_gib_ksm_node_local: 2,
      fairness_ksm_numa_balancing: round4(1 / 1.4), saved_gib_ksm_numa_balancing: 3,
    });
  });

  it('every per-mode figure carries the implementation right after the kernel', () => {
    for (const d of FIGURE_DEFS.filter((x) => x.columns.includes('kernel_mode'))) expect(d.columns[d.columns.indexOf('kernel') + 1], d.name).toBe('implementation');
    const out = FIGURE_DEFS.find((d) => d.name === '6a')!.build({ rows, scenarios: new Map() });
    expect(out.filter((r) => r.kernel_mode === 'nuksm-fair').map((r) => r.implementation)).toEqual(['userspace', 'userspace']);
    expect(out.filter((r) => r.kernel_mode === 'ksm-node-local').map((r) => r.implementation)).toEqual(['kernel', 'kernel']);
  });

  it('rows of one mode from two implementations are refused, never averaged', () => {
    const mixed = [...rows, row({ config: 'ra', kernelMode: 'nuksm-fair', instance: 'p0', metric: 'runtime_s', unit: 's', value: 11, implementation: 'kernel', step: 'other' })];
    for (const name of ['6a', 'table2']) expect(() => FIGURE_DEFS.find((d) => d.name === name)!.build({ rows: mixed, scenarios: new Map() }), name).toThrow(/two implementations \(userspace and kernel/);
  });

  it('a store made before the implementation column gets it (model rows: model, other testbeds: kernel)', () => {
    const dir = mkdtempSync(join(tmp, 'old-impl-'));
    const db = new Database(join(dir, STORE_FILE));
    // steps as they were before the column (no implementation), plus one valid sample.
    db.exec(`CREATE TABLE campaign (id TEXT PRIMARY KEY, spec TEXT NOT NULL, spec_file TEXT NOT NULL, testbed_file TEXT NOT NULL, testbed_kind TEXT NOT NULL, seed INTEGER NOT NULL, created_at TEXT NOT NULL, plan_json TEXT NOT NULL);
      CREATE TABLE steps (step_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, step_key TEXT NOT NULL, experiment TEXT NOT NULL, config_id TEXT NOT NULL, kernel_mode TEXT NOT NULL, iteration INTEGER NOT NULL, kernel TEXT, boot INTEGER, scenario_json TEXT NOT NULL, estimate_s REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, valid_attempt TEXT, failure_class TEXT, failure_message TEXT, started_at TEXT, ended_at TEXT);
      CREATE TABLE samples (attempt_id TEXT NOT NULL, step_id TEXT NOT NULL, instance TEXT NOT NULL, workload TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, t REAL, node INTEGER);
      INSERT INTO campaign VALUES ('old', 's', 's', 't', 'emulated', 1, 'now', '{}');
      INSERT INTO steps (step_id, seq, step_key, experiment, config_id, kernel_mode, iteration, scenario_json, estimate_s, state, valid_attempt) VALUES ('s1', 1, 'k', 'e', 'c', 'ksm', 1, '{}', 1, 'done', 'a1');
      INSERT INTO samples VALUES ('a1', 's1', 'host', '', 'memory_saved_gib', 1, 'GiB', NULL, NULL);`);
    db.close();
    const store = new ResultsStore(dir);
    try {
      expect(store.rows().map((r) => r.implementation)).toEqual(['kernel']);
    } finally {
      store.close();
    }
  });
});
