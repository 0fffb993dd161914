/**
 * Plots and the report on hand-built figure rows (no campaign, no browser; the browser test is
 * test/system/report-browser.test.ts): error bars from the *_ci95 columns, one line per iteration,
 * the PNG decoded, the reproduction table against the paper's numbers, a self-contained HTML.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { Plan } from '../../src/campaign/plan.ts';
import { readFig8Sweep } from '../../src/results/fig8-sweep.ts';
import { FIGURE_DEFS, type Row } from '../../src/results/figures.ts';
import { PAPER_NUMBERS } from '../../src/results/paper-numbers.ts';
import { PLOTS, render, renderSync } from '../../src/results/plots.ts';
import { reportHtml, reproductionRows, type ReportData } from '../../src/results/report.ts';

// `ci`: the 95% CI half-width of the runtime (s); the reference runtime is 100 s, so normalized_ci95 = ci / 100.
const runtimeRow = (benchmark: string, mode: string, instance: string, runtime: number, ci: number | null, n: number, norm: number): Row => ({
  testbed: 'physical', benchmark, kernel_mode: mode, kernel: mode === 'nuksm-fair' ? 'nuksm' : 'v5.4', instance, runtime_s: runtime, runtime_ci95: ci, n, normalized_runtime: norm, normalized_ci95: ci === null ? null : ci / 100,
});
const fig6a: Row[] = [
  runtimeRow('xsbench', 'ksm-off', 'vm0', 100, 2, 3, 1), runtimeRow('xsbench', 'ksm-off', 'vm1', 101, 3, 3, 1.01),
  runtimeRow('xsbench', 'ksm', 'vm0', 102, 1, 3, 1.02), runtimeRow('xsbench', 'ksm', 'vm1', 125, 4, 3, 1.25),
  runtimeRow('xsbench', 'nuksm-fair', 'vm0', 110, 2, 3, 1.1), runtimeRow('xsbench', 'nuksm-fair', 'vm1', 112, null, 1, 1.12),
];
const series = (iteration: number, instance: string): Row[] =>
  [10, 20, 30].map((t) => ({ testbed: 'model', config: 'btree-throughput', kernel_mode: 'ksm', kernel: 'model', instance, node: null, iteration, t, metric: 'throughput_ops', unit: 'ops/s', value: 1000 * t + iteration, nice: instance === 'vm1' ? -3 : 0 }));

const count = (svg: string, mark: string, el: string) => [...svg.matchAll(new RegExp(`<g class="[^"]*\\b${mark}_marks"[^>]*>(.*?)</g>`, 'gs'))].reduce((n, m) => n + (m[1]!.match(new RegExp(`<${el}\\b`, 'g'))?.length ?? 0), 0);

describe('plots', () => {
  it('grouped bars: one bar per row, 95% CI error bars only where n ≥ 2, measured testbed and kernels named; PNG decodes at 2×, not blank', async () => {
    const spec = PLOTS['6a']!.spec(fig6a)!;
    const [r] = await render([{ spec, png: 2 }]);
    expect(r!.warnings).toEqual([]);
    expect(count(r!.svg, 'bars', 'path')).toBe(6);
    expect(count(r!.svg, 'err', 'line')).toBe(5); // nuksm-fair vm1 ran once
    expect(r!.svg).toContain('testbed: physical (measured)');
    expect(r!.svg).toContain('nuKSM on kernel nuksm');
    expect(r!.svg).toContain('KSM on kernel v5.4');
    expect(r!.svg).toContain('n = 1/3');
    expect(r!.svg).toContain('95% confidence interval');
    // the longest error bar (ksm vm1: 1.25 ± 0.04) spans ±0.04 in the value's scale
    expect(JSON.stringify(spec)).toContain('"lo":1.21');
    expect(r!.svg).not.toContain('MODEL OUTPUT');
    const png = PNG.sync.read(Buffer.from(r!.png!));
    const [, w, h] = /^<svg[^>]* width="([\d.]+)" height="([\d.]+)"/.exec(r!.svg)!;
    expect([png.width, png.height]).toEqual([Number(w) * 2, Number(h) * 2]);
    let ink = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! < 200 || png.data[i + 1]! < 200 || png.data[i + 2]! < 200) ink += 1;
    expect(ink / (png.width * png.height)).toBeGreaterThan(0.02);
  });

  it('time series: one line per instance and iteration; a model plot says it is model output; the synchronous renderer gives the same SVG', async () => {
    const rows = [...series(1, 'vm0'), ...series(2, 'vm0'), ...series(1, 'vm1'), ...series(2, 'vm1')];
    const spec = PLOTS['4']!.spec(rows)!;
    const [a] = await render([{ spec }]);
    const [b] = renderSync([{ spec }]);
    expect(count(a!.svg, 'lines', 'path')).toBe(4);
    expect(a!.svg).toContain('MODEL OUTPUT');
    expect(a!.svg).toContain('vm1 (nice -3)');
    expect(a!.svg).toContain('throughput (ops/s)');
    expect(a!.svg).toContain('time since step start (s)');
    expect(b!.svg).toBe(a!.svg);
  });

  it('locality without DRAM counters (emulated): only the merged-page diamonds, with their CI, and the subtitle says why', async () => {
    const loc = (mode: string, instance: string, share: number | null, ci: number | null, n: number): Row => ({
      testbed: 'emulated', benchmark: 'randomaccess', kernel_mode: mode, kernel: 'bookworm', instance, local_pct: null, remote_pct: null, local_pct_ci95: null, n: 0, ksm_local_pct: share, ksm_local_pct_ci95: ci, ksm_n: n,
    });
    const rows = [loc('ksm-off', 'vm0', null, null, 0), loc('ksm', 'vm0', 0, 0, 2), loc('ksm', 'vm1', 100, 0, 2), loc('nuksm-fair', 'vm0', 48, 3, 2), loc('nuksm-fair', 'vm1', 52, 3, 2)];
    const [r] = await render([{ spec: PLOTS['3b']!.spec(rows)! }]);
    expect(r!.warnings).toEqual([]);
    expect(count(r!.svg, 'bars', 'path')).toBe(0);
    expect(count(r!.svg, 'points', 'path')).toBe(4);
    expect(count(r!.svg, 'pointerr', 'line')).toBe(4);
    expect(r!.svg).toContain('no DRAM counters on this testbed');
    expect(r!.svg).toContain('testbed: emulated (measured)');
  });

  it('locality legend: model rows are simulated accesses, not perf counters', async () => {
    const row = (testbed: string): Row => ({ testbed, benchmark: 'btree', kernel_mode: 'ksm', kernel: 'k', instance: 'vm0', local_pct: 60, remote_pct: 40, local_pct_ci95: null, n: 1, ksm_local_pct: 50, ksm_local_pct_ci95: null, ksm_n: 1 });
    const [model, physical] = await render([{ spec: PLOTS['6b']!.spec([row('model')])! }, { spec: PLOTS['6b']!.spec([row('physical')])! }]);
    expect(model!.svg).toContain('DRAM accesses (model, simulated)');
    expect(model!.svg).not.toContain('(perf)');
    expect(physical!.svg).toContain('DRAM accesses (perf)');
  });

  it('every figure has a plot definition; tables have none to draw', () => {
    expect(Object.keys(PLOTS).sort()).toEqual(FIGURE_DEFS.map((d) => d.name).sort());
    expect(PLOTS.table2!.spec([])).toBeNull();
    expect(PLOTS['3a']!.spec([])).toBeNull();
  });
});

describe('report', () => {
  const plan = { campaign: 'c1', spec: 'paper', specFile: 'experiments/paper.yaml', testbed: { file: 'tb.yaml', name: 'skylake', kind: 'physical' }, seed: 1, steps: [] } as unknown as Plan;
  const def = (name: string) => FIGURE_DEFS.find((d) => d.name === name)!;
  const data: ReportData = {
    dir: '/nonexistent',
    plan,
    record: null,
    steps: [],
    manifests: new Map(),
    generatedAt: '2026-01-01T00:00:00.000Z',
    figures: [
      { def: def('table2'), rows: [{ benchmark: 'xsbench', fairness_ksm: 0.8, fairness_nuksm: 0.99, perf_nuksm_over_ksm: 1.01, saved_gib_ksm: 10.5, saved_gib_nuksm: null }] },
      { def: def('table3'), rows: [{ config: 'C-10:1', nice_vm0: -20, nice_vm1: -11, snice_vm0: 1, snice_vm1: 10, local_pct_vm0: 90.5, local_pct_vm1: 9.5 }] },
    ],
  };

  it('reproduction table: every paper number, the campaign value and the difference where run, "not run" otherwise', () => {
    const rows = reproductionRows(data);
    expect(rows).toHaveLength(PAPER_NUMBERS.length);
    expect(rows).toHaveLength(5 * 5 + 5 * 2 + 6 + 3 + 3); // Tables II, III; the text's Fig. 3a, 6a, 8 numbers
    const get = (row: string, label: string) => rows.find((r) => r.row === row && r.label === label)!;
    expect(get('xsbench', 'fairness, KSM')).toMatchObject({ paper: 0.84, campaign: 0.8, diff: -0.04 });
    expect(get('xsbench', 'memory saved, nuKSM')).toMatchObject({ paper: 10.79, campaign: null, diff: null });
    expect(get('C-10:1', 'de-duplicated pages local to VM-1')).toMatchObject({ paper: 9, campaign: 9.5, diff: 0.5 });
    expect(get('cg', 'fairness, nuKSM')).toMatchObject({ paper: 0.99, campaign: null });
    expect(rows.filter((r) => r.figure === 'table2' || r.figure === 'table3').every((r) => r.source.startsWith('paper Table'))).toBe(true);
    expect(rows.filter((r) => r.figure === '3a' || r.figure === '6a' || r.figure === '8').every((r) => r.source.startsWith('paper §'))).toBe(true);
  });

  it('reproduction table: the text numbers of Figs. 3a, 6a and 8 from the figure rows', () => {
    const run = (benchmark: string, mode: string, instance: string, runtime: number, norm: number): Row => ({ testbed: 'model', benchmark, kernel_mode: mode, kernel: 'model', instance, runtime_s: runtime, n: 1, normalized_runtime: norm });
    const fig3a = [run('cg', 'ksm-off', 'vm0', 100, 1), run('cg', 'ksm-off', 'vm1', 100, 1), run('cg', 'ksm', 'vm0', 100, 1), run('cg', 'ksm', 'vm1', 130, 1.3), run('randomaccess', 'ksm', 'vm0', 50, 1), run('randomaccess', 'ksm', 'vm1', 70, 1.4)];
    const fig6a = [run('randomaccess', 'nuksm-fair', 'vm0', 52, 1.04), run('randomaccess', 'nuksm-fair', 'vm1', 53, 1.06)];
    const s8 = (mode: string, t: number, value: number): Row => ({ testbed: 'model', config: 'x', kernel_mode: mode, kernel: 'model', instance: 'host', node: null, iteration: 1, t, metric: 'memory_saved_gib', unit: 'GiB', value });
    const rows = reproductionRows({
      ...data,
      figures: [{ def: def('3a'), rows: fig3a }, { def: def('6a'), rows: fig6a }, { def: def('8b'), rows: [s8('nuksm-forest', 600, 5), s8('nuksm-forest', 900, 7), s8('nuksm-forest', 1500, 38), s8('ksm', 900, 1)] }],
      fig8End: new Map([['ksm', { oom: true, lastT: 880 }], ['nuksm-forest', { oom: false, lastT: 1500 }]]),
    });
    const get = (figure: string, row: string, label: string) => rows.find((r) => r.figure === figure && r.row === row && r.label.startsWith(label))!;
    expect(get('3a', 'cg', 'VM-1')).toMatchObject({ paper: 1.31, campaign: 1.3 });
    expect(get('3a', 'randomaccess', 'VM-0')).toMatchObject({ relation: '≈', paper: 1, campaign: 1 });
    // gaps (slower / faster − 1): cg 30 %, randomaccess 40 %
    expect(get('3a', 'all benchmarks', 'smallest')).toMatchObject({ paper: 16, campaign: 30 });
    expect(get('3a', 'all benchmarks', 'largest')).toMatchObject({ paper: 46, campaign: 40 });
    expect(get('6a', 'randomaccess', 'gap between the instances with nuKSM')).toMatchObject({ relation: '≤', paper: 4, campaign: Number(((53 / 52 - 1) * 100).toFixed(2)) });
    expect(get('6a', 'mysql', 'gap')).toMatchObject({ campaign: null });
    expect(get('8', 'ksm', 'KSM runs out of memory')).toMatchObject({ relation: '≈', paper: 900, campaign: 880 });
    expect(get('8', 'nuksm', 'nuKSM de-duplicated within 900 s')).toMatchObject({ relation: '>', paper: 6, campaign: 7 });
    expect(get('8', 'nuksm', 'nuKSM de-duplicated overall')).toMatchObject({ paper: 40, campaign: 38 });
    // A bound that holds is not highlighted: 1.92 % ≤ 4 %, 7 > 6 GiB.
    const html = reportHtml({ ...data, figures: [{ def: def('6a'), rows: fig6a }] }, new Map());
    expect(html).toMatch(/<span class="rel">≤<\/span> 4<\/td><td>1\.92<\/td><td><span class="near">/);
  });

  it('a figure derived from timings says so when its steps ran on an emulated CPU; a memory-only figure does not', () => {
    const section = (html: string, name: string) => html.slice(html.indexOf(`id="figure-${name}"`), html.indexOf('</section>', html.indexOf(`id="figure-${name}"`)));
    const steps = ['s1', 's2'].map((stepId) => ({ stepId, figures: ['table2', 'table3'] })) as unknown as ReportData['steps'];
    const emulated = { environment: { testbed: 'emulated', emulatedCpu: 'QEMU TCG: no locality cost' } };
    const html = reportHtml({ ...data, steps, manifests: new Map([['s1', emulated], ['s2', emulated]]) as ReportData['manifests'] }, new Map());
    expect(section(html, 'table2')).toContain('Caveat: 2 steps of this figure ran on an emulated CPU (QEMU TCG: no locality cost). Its fairness_ksm, fairness_nuksm and perf_nuksm_over_ksm');
    expect(section(html, 'table3')).not.toContain('Caveat');
    const native = reportHtml({ ...data, steps, manifests: new Map([['s1', { environment: { testbed: 'physical' } }]]) as ReportData['manifests'] }, new Map());
    expect(native).not.toContain('Caveat');
  });

  it('Fig. 8: the model sweep (docs/fig8-sweep.json) is shown as model output, every row; a bad sweep file is named, not thrown', () => {
    const read = readFig8Sweep();
    if (!('sweep' in read)) throw new Error(read.error);
    const withFig8 = { ...data, figures: [{ def: def('8a'), rows: [] }] };
    const html = reportHtml({ ...withFig8, fig8Sweep: read }, new Map());
    const section = html.slice(html.indexOf('id="fig8-sweep"'), html.indexOf('</section>', html.indexOf('id="fig8-sweep"')));
    expect(section).toContain('model output, not a measurement');
    expect((section.match(/<tr>/g) ?? []).length).toBe(read.sweep.rows.length + 1);
    expect(read.sweep.rows.length).toBeGreaterThanOrEqual(50);
    const paper = read.sweep.rows.filter((r) => r.ksm.oom && !r.nuksm.oom).length;
    expect(section).toContain(`holds in <b>${paper} of ${read.sweep.rows.length}</b> settings`);
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-sweep-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ format: 'nuksm-fig8-sweep', version: 2 }));
    const bad = readFig8Sweep(join(dir, 'bad.json'));
    expect(bad).toEqual({ error: `${join(dir, 'bad.json')}: version: Invalid literal value, expected 1` });
    expect(reportHtml({ ...withFig8, fig8Sweep: bad }, new Map())).toContain('No sweep to show');
    expect(reportHtml(data, new Map())).not.toContain('id="fig8-sweep"');
    rmSync(dir, { recursive: true });
  });

  it('HTML is self-contained: no script, no external reference; a measured testbed is labelled measured', () => {
    const html = reportHtml(data, new Map());
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)="(https?:)?\/\//i);
    expect(html).toContain("default-src 'none'");
    expect(html).toContain('testbed skylake (physical): measured');
    expect(html).not.toContain('model output');
    expect((html.match(/<tr>/g) ?? []).length).toBeGreaterThan(PAPER_NUMBERS.length);
  });
});
