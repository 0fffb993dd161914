/**
 * The report of a small model campaign (every figure; test/results/fixtures/report), written by
 * `nuksm run` and opened in a real headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core, started and stopped here): no console errors, no request but the file itself,
 * every figure a rendered SVG with as many marks as its CSV has values, every Table II / III row
 * in the reproduction table, a full-page screenshot (its path is printed), and the PNG exports
 * decoded (dimensions, not blank).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { harnessCommit, openCampaign } from '../../src/campaign/campaign.ts';
import { main } from '../../src/cli/main.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { readFig8Sweep, sweepCell } from '../../src/results/fig8-sweep.ts';
import { FIGURE_DEFS } from '../../src/results/figures.ts';
import { PAPER_NUMBERS } from '../../src/results/paper-numbers.ts';
import { PLOTS } from '../../src/results/plots.ts';
import { describeWith } from '../support/components.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'results', 'fixtures', 'report');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const CHROMIUM = '/usr/bin/chromium';
// Kept after the run (the screenshot is for people to look at); printed below.
const out = mkdtempSync(join(tmpdir(), 'nuksm-report-test-'));

type CsvRow = Record<string, string>;
const csv = (dir: string, name: string): CsvRow[] => parse(readFileSync(join(dir, 'figures', `${name}.csv`), 'utf8'), { columns: true }) as CsvRow[];
const has = (v: string | undefined) => v !== undefined && v !== '';

/** The marks a figure's plot must draw, counted from its CSV (independently of plots.ts). */
function expectedMarks(name: string, rows: CsvRow[]): Record<string, number> {
  const kind = PLOTS[name]!.kind;
  if (kind === 'grouped-bars') {
    const value = name === '7' ? 'normalized_to_c1_1' : 'normalized_runtime';
    const withValue = rows.filter((r) => has(r[value]));
    return { bars: withValue.length, err: withValue.filter((r) => Number(r.n) >= 2 && has(r.normalized_ci95)).length };
  }
  if (kind === 'stacked-locality') {
    return {
      bars: rows.filter((r) => has(r.local_pct)).length + rows.filter((r) => has(r.remote_pct)).length,
      err: rows.filter((r) => has(r.local_pct) && has(r.local_pct_ci95) && Number(r.n) >= 2).length,
      points: rows.filter((r) => has(r.ksm_local_pct)).length,
      pointerr: rows.filter((r) => has(r.ksm_local_pct) && has(r.ksm_local_pct_ci95) && Number(r.ksm_n) >= 2).length,
    };
  }
  // time series: one line per (config, mode, kernel, instance, node, metric, iteration)
  return { lines: new Set(rows.map((r) => [r.config, r.kernel_mode, r.kernel, r.instance, r.node, r.metric, r.iteration].join('|'))).size };
}

describeWith(['chromium'], 'report in headless Chromium', () => {
  let dir = '';
  let reportPath = '';
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];
  const failedRequests: string[] = [];
  const requests: string[] = [];
  let runMs = 0;

  beforeAll(async () => {
    let stdout = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const t = Date.now();
    let code: number;
    try {
      code = await main(['run', 'report', '--experiments-dir', FIXTURES, '--testbed', MODEL, '--results-dir', out, '--campaign-id', 'report-test']);
    } finally {
      write.mockRestore();
      err.mockRestore();
    }
    runMs = Date.now() - t;
    process.exitCode = undefined;
    expect(code, stdout).toBe(EXIT.ok); // the two UKSM steps fail as 'unsupported', which is not a failed campaign
    dir = join(out, 'report-test');
    const m = /^report: (\S+) \((\d+) plots/m.exec(stdout);
    expect(m, stdout).not.toBeNull();
    reportPath = m![1]!;
    expect(reportPath).toBe(join(dir, 'report.html'));

    const profile = mkdtempSync(join(out, 'chromium-profile-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1500, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (msg) => void (msg.type() === 'error' && consoleErrors.push(msg.text())));
    page.on('pageerror', (e) => void consoleErrors.push(String(e)));
    page.on('requestfailed', (r) => void failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on('request', (r) => void requests.push(r.url()));
    await page.goto(`file://${reportPath}`, { waitUntil: 'load' });
  }, 600_000);

  afterAll(async () => {
    await context?.close();
    process.stderr.write(`report test: campaign + report ${(runMs / 1000).toFixed(1)} s; report ${reportPath}; screenshot ${join(out, 'report.png')}\n`);
  });

  it('loads with no console error, no failed request and no request but the file itself', () => {
    expect(consoleErrors).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(requests).toEqual([`file://${reportPath}`]);
  });

  it('shows every figure: each plot a rendered SVG with the marks its CSV calls for, each table with its rows', async () => {
    const written = FIGURE_DEFS.filter((d) => existsSync(join(dir, 'figures', `${d.name}.csv`))).map((d) => d.name);
    expect(written).toEqual(FIGURE_DEFS.map((d) => d.name)); // the fixture campaign feeds every figure
    for (const name of written) {
      const rows = csv(dir, name);
      expect(rows.length, name).toBeGreaterThan(0);
      const section = page.locator(`section[data-figure="${name}"]`);
      expect(await section.count(), name).toBe(1);
      if (PLOTS[name]!.kind === 'table') {
        expect(await section.locator(`table[data-table="${name}"] tbody tr`).count(), name).toBe(rows.length);
        continue;
      }
      const svg = section.locator(`svg[data-figure="${name}"]`);
      expect(await svg.count(), name).toBe(1);
      const box = await svg.boundingBox();
      expect(box && box.width > 200 && box.height > 150, `${name}: ${JSON.stringify(box)}`).toBe(true);
      const counts = await svg.evaluate((el) => {
        const n = (sel: string) => el.querySelectorAll(sel).length;
        return {
          bars: n('g.bars_marks > path'),
          err: n('g.err_marks > line'),
          points: n('g.points_marks > path'),
          pointerr: n('g.pointerr_marks > line'),
          lines: n('g.lines_marks > path'),
          // every drawn bar and line has geometry
          empty: [...el.querySelectorAll('g.bars_marks > path, g.lines_marks > path')].filter((p) => !(p.getAttribute('d') ?? '').length).length,
          text: el.textContent ?? '',
        };
      });
      const expected = expectedMarks(name, rows);
      for (const [mark, count] of Object.entries(expected)) expect(counts[mark as keyof typeof counts], `${name} ${mark}`).toBe(count);
      expect(Object.values(expected).some((c) => c > 0), name).toBe(true);
      expect(counts.empty, name).toBe(0);
      // each plot names its testbed as a model output and the kernel of each mode
      expect(counts.text, name).toContain('MODEL OUTPUT');
      expect(counts.text, name).toContain('on kernel model');
    }
    // error bars exist where there are two iterations (r3/r6 run twice)
    expect(expectedMarks('6a', csv(dir, '6a')).err).toBeGreaterThan(0);
  });

  it('shows the model\'s Fig. 8 sweep below the campaign\'s Fig. 8: visible, labelled model output, one row per setting of docs/fig8-sweep.json', async () => {
    const read = readFig8Sweep();
    if (!('sweep' in read)) throw new Error(read.error);
    const section = page.locator('section#fig8-sweep');
    expect(await section.isVisible()).toBe(true);
    expect(await section.locator('.badge.model').innerText()).toMatch(/model output, not a measurement/i);
    const rows = await section.locator('table[data-table="fig8-sweep"] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows).toHaveLength(read.sweep.rows.length);
    read.sweep.rows.forEach((r, i) => expect(rows[i]!.slice(0, 5)).toEqual([String(r.vm1StartS), String(r.reserveGiB), String(r.comparisonCostFactor), sweepCell(r.ksm), sweepCell(r.nuksm)]));
    // After the last Fig. 8 figure, before the outliers.
    const order = await page.locator('section[id]').evaluateAll((ss) => ss.map((x) => x.id));
    expect(order.indexOf('fig8-sweep')).toBe(order.indexOf('figure-8c') + 1);
  });

  it('has every Table II and Table III row and every Fig. 3a/6a/8 number of the paper\'s text in the reproduction table, with this campaign\'s value', async () => {
    const rows = await page.locator('table.repro tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows).toHaveLength(PAPER_NUMBERS.length);
    const LABEL: Record<string, string> = { table2: 'Table II', table3: 'Table III', '3a': 'Fig. 3a', '6a': 'Fig. 6a', '8': 'Fig. 8' };
    const t2 = csv(dir, 'table2');
    const t3 = csv(dir, 'table3');
    const f3a = csv(dir, '3a');
    for (const p of PAPER_NUMBERS) {
      const row = rows.find((r) => r[0] === LABEL[p.figure] && r[1] === p.row && r[2]!.startsWith(p.label));
      expect(row, `${p.figure} ${p.row} ${p.label}`).toBeDefined();
      expect(Number(row![3]!.replace(/^[≈>≤]\s*/, ''))).toBe(p.value);
      if (p.figure === 'table2' || p.figure === 'table3') {
        const mine = (p.figure === 'table2' ? t2.find((r) => r.benchmark === p.row) : t3.find((r) => r.config === p.row))?.[p.column];
        if (has(mine)) {
          expect(Number(row![4]), `${p.row} ${p.column}`).toBe(Number(mine));
          expect(Number(row![5])).toBeCloseTo(Number(mine) - p.value, 4);
        } else expect(row![4]).toBe('not run');
      } else if (row![4] !== 'not run') expect(Number(row![5])).toBeCloseTo(Number(row![4]) - p.value, 4);
      expect(row![6]).toBe('model output');
    }
    // Fig. 3a's "VM-1 … slow down by 46% and 31%": read here from the 3a CSV, independently of paper-numbers.ts.
    for (const b of ['randomaccess', 'cg']) {
      const mine = f3a.find((r) => r.benchmark === b && r.kernel_mode === 'ksm' && r.instance === 'vm1')!.normalized_runtime;
      expect(Number(rows.find((r) => r[0] === 'Fig. 3a' && r[1] === b && r[2]!.startsWith('VM-1'))![4])).toBe(Number(mine));
    }
    // The fixture runs Table II's cg and randomaccess, all five Table III configurations, Fig. 3a's six
    // numbers (two benchmarks), Fig. 6a's RandomAccess (not MySQL) and Fig. 8's nuKSM (forest) series;
    // KSM's out-of-memory time only when its Fig. 8 step ran out of memory.
    const c = openCampaign(out, 'report-test');
    const ksmOom = c.store.rows({ figure: '8a', metric: 'oom' }).some((r) => r.kernelMode === 'ksm' && r.value > 0);
    c.store.close();
    expect(rows.filter((r) => r[4] !== 'not run')).toHaveLength(2 * 5 + 5 * 2 + 6 + 2 + 2 + (ksmOom ? 1 : 0));
  });

  it('shows the plan as run with the failure class, and the provenance', async () => {
    const plan = await page.locator('table.plan tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(plan).toHaveLength(31);
    expect(plan.filter((r) => r[7] === 'failed').map((r) => [r[4], r[9]])).toEqual([['uksm', 'unsupported'], ['uksm', 'unsupported']]);
    const provenance = await page.locator('#provenance').textContent();
    expect(provenance).toContain('model-ksm'); // the manifests' kernel release
    // the commit the steps recorded (the checkout may have moved on since they ran)
    const c = openCampaign(out, 'report-test');
    const recorded = c.journal.steps().filter((s) => s.state === 'done').map((s) => c.store.manifest(s.stepId)?.harnessCommit);
    c.store.close();
    expect(recorded.length).toBe(29);
    expect(provenance).toContain(`harness commit${[...new Set(recorded.map((x) => String(x)))].join(', ')}`);
    if (harnessCommit() !== null) expect(String(recorded[0])).toMatch(/^[0-9a-f]{40}/); // a git checkout: the commit is recorded
  });

  it('writes a full-page screenshot', async () => {
    const path = join(out, 'report.png');
    await page.screenshot({ path, fullPage: true });
    const png = PNG.sync.read(readFileSync(path));
    expect(png.width).toBeGreaterThanOrEqual(1500);
    expect(png.height).toBeGreaterThan(5000);
    process.stderr.write(`report screenshot: ${path}\n`);
  });

  it('exports every plot as a PNG that decodes to the plot at 2× with drawn content', () => {
    for (const name of FIGURE_DEFS.map((d) => d.name).filter((n) => PLOTS[n]!.kind !== 'table')) {
      const svg = readFileSync(join(dir, 'figures', `${name}.svg`), 'utf8');
      const [, w, h] = /^<svg[^>]* width="([\d.]+)" height="([\d.]+)"/.exec(svg)!;
      const png = PNG.sync.read(readFileSync(join(dir, 'figures', `${name}.png`)));
      expect(png.width, name).toBe(Math.round(Number(w) * 2));
      expect(png.height, name).toBe(Math.round(Number(h) * 2));
      let ink = 0;
      let coloured = 0;
      for (let i = 0; i < png.data.length; i += 4) {
        const [r, g, b] = [png.data[i]!, png.data[i + 1]!, png.data[i + 2]!];
        if (r < 240 || g < 240 || b < 240) ink += 1;
        if (Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured += 1; // bars and lines are coloured, text is grey
      }
      const pixels = png.width * png.height;
      expect(ink / pixels, `${name} ink`).toBeGreaterThan(0.01);
      expect(coloured, `${name} coloured pixels`).toBeGreaterThan(500);
    }
  });
});
