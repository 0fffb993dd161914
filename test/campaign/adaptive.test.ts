/**
 * Adaptive repetition (docs/campaigns.md): iterations up to the cap are planned; those after the
 * minimum run only while the configuration's 95% CI is wider than the target. Driven by the double
 * testbed with seeded run-to-run variation (support/double-testbed.ts runtimeSpread).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createCampaign, executeCampaign, openCampaign, planCampaign, type OpenCampaign } from '../../src/campaign/campaign.ts';
import { Journal, type JournalStep } from '../../src/campaign/journal.ts';
import { mergeShards } from '../../src/campaign/merge.ts';
import { shardPlan } from '../../src/campaign/shard.ts';
import { openOrCreateShard } from '../../src/campaign/shard-campaign.ts';
import { formatPlan } from '../../src/cli/commands/plan.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { main } from '../../src/cli/main.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { exportFigures } from '../../src/results/figures.ts';
import { collectReport, reportHtml } from '../../src/results/report.ts';
import { summarizeMetric } from '../../src/results/stats.ts';
import { ResultsStore } from '../../src/results/store.ts';
import { writeTwoKernelTestbed } from './support/two-kernels.ts';
import { DoubleTestbed } from './support/double-testbed.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-adaptive-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const silent = pino({ level: 'silent' });
/** Relative runtime spread per configuration: 'low' ±0.2 %, 'high' ±60 % (uniform). */
const SPREAD = { low: 0.002, high: 0.6 };

type Obj = Record<string, unknown>;
let n = 0;
function writeSpec(over: Obj = {}, name = 'ad'): string {
  const file = join(tmp, `spec${n++}.yaml`);
  writeFileSync(
    file,
    stringify({
      kind: 'experiment',
      name,
      figures: ['3a'],
      kernelModes: ['ksm-off', 'ksm'],
      iterations: 8,
      adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 3 },
      instances: [
        { name: 'vm0', node: 0, vcpus: 1, memoryGiB: 1, template: 'guest-kvm' },
        { name: 'vm1', node: 1, vcpus: 1, memoryGiB: 1, template: 'guest-kvm' },
      ],
      timeline: { maxDurationS: 60, staggerS: 0 },
      configurations: [
        { id: 'low', workload: 'cg', estimatedTimedS: 10 },
        { id: 'high', workload: 'btree', estimatedTimedS: 10 },
      ],
      ...over,
    }),
  );
  return file;
}

const of = (steps: JournalStep[], config: string, mode: string) => steps.filter((s) => s.configId === config && s.kernelMode === mode);
const statesOf = (steps: JournalStep[]) => steps.map((s) => s.state);

/** Per instance: the CI % of runtime_s over the done iterations of (config, mode), by stats.ts. */
function ciPctOf(c: OpenCampaign, config: string, mode: string): Record<string, number> {
  const rows = c.store.rows({ metric: 'runtime_s' }).filter((r) => r.config === config && r.kernelMode === mode);
  const out: Record<string, number> = {};
  for (const inst of [...new Set(rows.map((r) => r.instance))]) {
    const s = summarizeMetric('runtime_s', rows.filter((r) => r.instance === inst).map((r) => r.value))!;
    out[inst] = (100 * s.ci95!) / s.mean;
  }
  return out;
}

describe('adaptive repetition', () => {
  it('plans every iteration up to the cap; those after the minimum are conditional', () => {
    const { plan, testbed } = planCampaign({ spec: writeSpec(), testbedFile: MODEL });
    expect(plan.steps).toHaveLength(2 * 2 * 8);
    for (const s of plan.steps) {
      if (s.scenario.iteration <= 3) expect(s.adaptive).toBeNull();
      else expect(s.adaptive).toEqual({ targets: [{ experiment: 'ad', metric: 'runtime_s', ciPct: 5, minIterations: 3 }] });
    }
    const text = formatPlan(plan);
    expect(text).toMatch(/0004-ad-low-ksm-off-i4 .* if runtime_s CI > 5%\n/);
    expect(text).toMatch(/0003-ad-low-ksm-off-i3 .* always\n/);
    expect(text).toContain("20 step(s) are adaptive iterations ('runs')");
    // On the model (no reboots) single steps are balanced over shards, but an adaptive configuration's iterations stay together.
    const sharding = shardPlan(plan, testbed, 3);
    for (const key of new Set(plan.steps.map((s) => s.key))) {
      expect(sharding.shards.filter((sh) => sh.steps.some((s) => s.key === key))).toHaveLength(1);
    }
  });

  it('a step two experiments share is conditional only where neither needs it unconditionally', () => {
    const fixed = writeSpec({ adaptive: null, iterations: 4 }, 'fixed');
    const adaptive = writeSpec({ adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 2 }, iterations: 6 }, 'adapt');
    const camp = join(tmp, 'shared.yaml');
    writeFileSync(camp, stringify({ kind: 'campaign', name: 'shared', experiments: [fixed, adaptive] }));
    const { plan } = planCampaign({ spec: camp, testbedFile: MODEL });
    const first = plan.steps.filter((s) => s.scenario.configId === 'low' && s.scenario.kernelMode === 'ksm');
    expect(first.map((s) => [s.scenario.iteration, s.adaptive?.targets.map((t) => t.experiment) ?? null])).toEqual([
      [1, null], [2, null], [3, null], [4, null], // 'fixed' runs 4 iterations whatever the CI
      [5, ['adapt']], [6, ['adapt']],
    ]);
  });

  it('a low-variance configuration stops at the minimum; a high-variance one runs to the cap', async () => {
    const c = createCampaign({ spec: writeSpec(), testbedFile: MODEL, resultsDir: tmp, campaignId: 'ab' });
    const double = new DoubleTestbed({ runtimeSpread: SPREAD });
    const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent });
    const steps = c.journal.steps();
    expect(result).toMatchObject({ outcome: 'complete', done: 2 * 3 + 2 * 8, failed: 0, notNeeded: 2 * 5, pending: 0, total: 32 });
    for (const mode of ['ksm-off', 'ksm']) {
      // (a) low: iterations 1–3 done, 4–8 not needed, never run (no attempt), each with its reason.
      const low = of(steps, 'low', mode);
      expect(statesOf(low)).toEqual(['done', 'done', 'done', 'not-needed', 'not-needed', 'not-needed', 'not-needed', 'not-needed']);
      expect(low.filter((s) => s.state === 'not-needed').every((s) => s.attempts === 0 && s.failureClass === null)).toBe(true);
      expect(double.calls.run.filter((k) => k === `low|${mode}`)).toHaveLength(3);
      const ci = ciPctOf(c, 'low', mode);
      const decision = low[3]!.decision!;
      expect(decision).toMatchObject({ needed: false, n: 3 });
      expect(decision.checks[0]!.instances.map((i) => [i.instance, i.n, i.ciPct])).toEqual(Object.entries(ci).map(([inst, pct]) => [inst, 3, pct]));
      expect(Math.max(...Object.values(ci))).toBeLessThanOrEqual(5);
      expect(decision.reason).toMatch(/^not needed after 3 done iteration\(s\): runtime_s 95% CI [\d.]+% of the mean \(vm\d, n=3\) ≤ 5%/);
      // (b) high: all 8 done; every extra iteration was decided needed, with the CI that made it so.
      const high = of(steps, 'high', mode);
      expect(statesOf(high)).toEqual(Array(8).fill('done'));
      expect(double.calls.run.filter((k) => k === `high|${mode}`)).toHaveLength(8);
      expect(high.slice(0, 3).every((s) => s.decision === null)).toBe(true);
      for (const s of high.slice(3)) {
        expect(s.decision).toMatchObject({ needed: true, n: s.iteration - 1 });
        expect(Math.max(...s.decision!.checks[0]!.instances.map((i) => i.ciPct!))).toBeGreaterThan(5);
      }
      console.info(`adaptive ${mode}: low used ${low.filter((s) => s.state === 'done').length}/8 (CI ${Object.values(ci).map((x) => x.toFixed(3)).join(', ')} %), high used ${high.length}/8 (CI at 8: ${Object.values(ciPctOf(c, 'high', mode)).map((x) => x.toFixed(1)).join(', ')} %)`);
    }
    // The boot-loop guard's progress measure (plain-JS script) and `nuksm status` count them as finished, not failed.
    expect(c.journal.finishedSteps()).toBe(32);
    expect(execFileSync(process.execPath, [join(ROOT, 'bin', 'finished-steps.cjs'), join(c.dir, 'campaign.sqlite')], { encoding: 'utf8' }).trim()).toBe('32');
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    try {
      expect(await main(['status', 'ab', '--results-dir', tmp])).toBe(EXIT.ok);
    } finally {
      write.mockRestore();
    }
    expect(out).toMatch(/^campaign ab \(ad on model-skylake\): 22 done, 0 failed, 10 not needed \(adaptive repetition\), 0 running, 0 pending/);
    expect(out).toMatch(/0004-ad-low-ksm-off-i4 +not-needed +0 +not needed after 3 done iteration/);
    // Figures: not-needed steps contribute nothing (n = iterations used); the report lists them with the reason.
    exportFigures(c.store);
    const fig3a = readFileSync(join(c.dir, 'figures', '3a.csv'), 'utf8');
    expect(fig3a.split('\n').filter((l) => l.includes(',low,')).every((l) => l.split(',')[9] === '3')).toBe(true);
    expect(fig3a.split('\n').filter((l) => l.includes(',high,')).every((l) => l.split(',')[9] === '8')).toBe(true);
    const html = reportHtml(collectReport(c), new Map());
    expect(html).toMatch(/22 done, 0 failed, 10 not-needed, 0 pending, 0 running/);
    expect(html).toContain('<h3>Adaptive repetition</h3>');
    expect(html).toMatch(/<td>ad<\/td><td>low<\/td><td>ksm-off<\/td><td>model<\/td><td>runtime_s CI ≤ 5% \(min 3\)<\/td><td>3<\/td><td>8<\/td><td>5<\/td><td>0<\/td><td>not needed after 3 done/);
    expect(html).toMatch(/<td>ad<\/td><td>high<\/td><td>ksm<\/td><td>model<\/td><td>runtime_s CI ≤ 5% \(min 3\)<\/td><td>8<\/td><td>8<\/td><td>0<\/td><td>0<\/td><td>cap reached; last decision: needed after 7 done/);
    c.store.close();
  });

  it('a kernel whose remaining steps are all not needed is never asked for (no reboot into it)', async () => {
    const testbedFile = writeTwoKernelTestbed(join(tmp, 'two-kernels.yaml'), { 'ksm-off': { kernel: 'old' }, ksm: { kernel: 'new' } });
    const only = { configurations: [{ id: 'low', workload: 'cg', estimatedTimedS: 10 }] };
    const ensures = async (over: Obj, id: string) => {
      const c = createCampaign({ spec: writeSpec({ ...only, ...over }), testbedFile, resultsDir: tmp, campaignId: id, interleave: 'abba' });
      const double = new DoubleTestbed({ runtimeSpread: SPREAD });
      const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent });
      c.store.close();
      return { result, ensure: double.calls.ensure, boots: c.plan.boots.length };
    };
    const adaptive = await ensures({ iterations: 6, adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 2 } }, 'k-adaptive');
    const two = await ensures({ iterations: 2, adaptive: null }, 'k-two');
    expect(adaptive.result).toMatchObject({ outcome: 'complete', done: 4, notNeeded: 8 });
    expect(adaptive.boots).toBe(7); // planned: the kernels alternate (ABBA) over 6 iterations
    // Only the kernels of iterations 1–2 were asked for, exactly as in a 2-iteration campaign.
    expect(adaptive.ensure).toEqual(two.ensure);
    expect(adaptive.ensure).toEqual(['ksm-off@old', 'ksm@new', 'ksm-off@old']);
  });

  it('a kernel that stops booting: its conditional steps already decidable are not-needed, the others fail with class boot', async () => {
    const testbedFile = writeTwoKernelTestbed(join(tmp, 'two-kernels-b.yaml'), { 'ksm-off': { kernel: 'old' }, ksm: { kernel: 'new' } });
    const c = createCampaign({ spec: writeSpec({ iterations: 4, adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 2 } }), testbedFile, resultsDir: tmp, campaignId: 'k-fails', interleave: 'abba' });
    // 'new' is made ready once (iterations 1 and 2 share its boot under ABBA), then never boots again.
    const double = new DoubleTestbed({ runtimeSpread: SPREAD, bootsBeforeFailure: { new: 1 } });
    const result = await executeCampaign(c, double, { retryDelayMs: 1, log: silent });
    const steps = c.journal.steps();
    c.store.close();
    expect(statesOf(of(steps, 'low', 'ksm'))).toEqual(['done', 'done', 'not-needed', 'not-needed']);
    expect(of(steps, 'high', 'ksm').map((s) => [s.state, s.failureClass])).toEqual([['done', null], ['done', null], ['failed', 'boot'], ['failed', 'boot']]);
    expect(statesOf(of(steps, 'high', 'ksm-off'))).toEqual(['done', 'done', 'done', 'done']);
    expect(result).toMatchObject({ outcome: 'complete', failed: 2, notNeeded: 4 });
  });

  it('on the model testbed through the CLI: exit 0, every configuration at least at its minimum, every not-needed step with its CI within the target', { timeout: 300_000 }, async () => {
    // Holds whatever run-to-run variation the model has: none today (every configuration then stops at the minimum).
    const spec = writeSpec({ iterations: 4, adaptive: { metric: 'runtime_s', ciPct: 2, minIterations: 2 }, timeline: { maxDurationS: 3600, staggerS: 10 }, configurations: [{ id: 'cg', workload: 'cg', params: { footprintGiB: 0.5, threads: 1 }, estimatedTimedS: 60 }] });
    const results = join(tmp, 'cli');
    const quiet = [vi.spyOn(process.stdout, 'write').mockImplementation(() => true), vi.spyOn(process.stderr, 'write').mockImplementation(() => true)];
    let code: number;
    try {
      code = await main(['run', spec, '--testbed', MODEL, '--campaign-id', 'model-ad', '--results-dir', results]);
    } finally {
      for (const q of quiet) q.mockRestore();
      process.exitCode = undefined;
    }
    expect(code).toBe(EXIT.ok);
    const c = openCampaign(results, 'model-ad');
    const steps = c.journal.steps();
    c.store.close();
    expect(steps.every((s) => s.state === 'done' || s.state === 'not-needed')).toBe(true);
    for (const mode of ['ksm-off', 'ksm']) {
      const its = of(steps, 'cg', mode);
      expect(its.filter((s) => s.state === 'done').length).toBeGreaterThanOrEqual(2);
      for (const s of its.filter((x) => x.state === 'not-needed')) {
        expect(s.attempts).toBe(0);
        for (const i of s.decision!.checks[0]!.instances) expect(i.ciPct!).toBeLessThanOrEqual(2);
      }
      console.info(`model testbed, cg ${mode}: ${its.filter((s) => s.state === 'done').length} of 4 iterations used`);
    }
  });

  it('SIGKILLed at random moments and resumed: every decision kept, nothing re-run or duplicated', { timeout: 600_000 }, async () => {
    const spec = writeSpec({ iterations: 6, adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 2 } });
    const ref = createCampaign({ spec, testbedFile: MODEL, resultsDir: tmp, campaignId: 'kill-ref' });
    await executeCampaign(ref, new DoubleTestbed({ runtimeSpread: SPREAD }), { retryDelayMs: 0, log: silent });
    const canonical = (c: OpenCampaign) => ({
      steps: c.journal.steps().map((s) => [s.stepId, s.state, s.decision?.needed ?? null, s.decision?.reason ?? null]),
      rows: c.store.rows().map(({ campaign: _c, ...r }) => JSON.stringify(r)).sort(),
    });
    const expected = canonical(ref);
    ref.store.close();
    expect(expected.steps.filter((s) => s[1] === 'not-needed')).toHaveLength(8);

    const killed = createCampaign({ spec, testbedFile: MODEL, resultsDir: tmp, campaignId: 'kill' });
    killed.store.close();
    let random = 20261202;
    const next = () => ((random = (Math.imul(random, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    let kills = 0;
    for (let cycle = 0; ; cycle++) {
      expect(cycle, 'no progress').toBeLessThan(60);
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'run-ts.js'), join(ROOT, 'test', 'campaign', 'support', 'run-double-campaign.ts'), tmp, 'kill', JSON.stringify(SPREAD), '40'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // Every other run first starts two steps (so the campaign progresses); kills land inside steps, around decisions and commits.
      const want = 1 + (cycle % 2);
      const started = new Promise<void>((resolve) => child.stderr.on('data', (d) => ((stderr += String(d)), (stderr.match(/^step /gm) ?? []).length >= want && resolve())));
      const outcome = await Promise.race([exited.then((code) => ({ code })), ...(kills < 8 ? [started.then(() => new Promise<null>((r) => setTimeout(() => r(null), next() * 60)))] : [])]);
      if (outcome === null) {
        child.kill('SIGKILL');
        await exited;
        kills++;
        continue;
      }
      expect(outcome.code, stderr).toBe(0);
      break;
    }
    const c = openCampaign(tmp, 'kill');
    const got = canonical(c);
    const attempts = c.journal.attempts();
    const samples = (c.store.db.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number }).n;
    const steps = c.journal.steps();
    c.store.close();
    console.info(`adaptive kill test: ${kills} SIGKILLs, ${attempts.filter((a) => a.outcome === 'interrupted').length} interrupted attempts`);
    expect(kills).toBeGreaterThanOrEqual(8);
    expect(got.steps).toEqual(expected.steps); // same states, same decisions and reasons
    expect(got.rows).toEqual(expected.rows); // no row missing or duplicated
    expect(samples).toBe(got.rows.length);
    // A not-needed step never ran; a done step has exactly one completed attempt.
    for (const s of steps) {
      const done = attempts.filter((a) => a.stepId === s.stepId && a.outcome === 'done').length;
      expect(done, s.stepId).toBe(s.state === 'done' ? 1 : 0);
      if (s.state === 'not-needed') expect(attempts.some((a) => a.stepId === s.stepId), s.stepId).toBe(false);
    }
  });

  it('shards keep an adaptive configuration together; merged, they equal an unsharded run with the same decisions', async () => {
    const spec = writeSpec({ iterations: 5, adaptive: { metric: 'runtime_s', ciPct: 5, minIterations: 2 } });
    const results = join(tmp, 'sharded');
    const req = { spec, testbedFile: MODEL, campaignId: 'sh', shards: 2, resultsDir: results };
    for (const k of [1, 2]) {
      const c = openOrCreateShard(req, k);
      await executeCampaign(c, new DoubleTestbed({ runtimeSpread: SPREAD }), { retryDelayMs: 0, log: silent });
      c.store.close();
    }
    mergeShards({ resultsDir: results, campaignId: 'sh' });
    const whole = createCampaign({ spec, testbedFile: MODEL, resultsDir: results, campaignId: 'whole' });
    await executeCampaign(whole, new DoubleTestbed({ runtimeSpread: SPREAD }), { retryDelayMs: 0, log: silent });
    const merged = openCampaign(results, 'sh');
    const view = (c: OpenCampaign) => c.journal.steps().map((s) => [s.stepId, s.state, s.decision?.reason ?? null]);
    expect(view(merged)).toEqual(view(whole));
    expect(merged.journal.counts()).toEqual({ pending: 0, running: 0, done: 2 * 2 + 2 * 5, failed: 0, 'not-needed': 2 * 3 });
    merged.store.close();
    whole.store.close();
  });

  describe('bad adaptive keys are refused at plan time, naming the file and the key', () => {
    const refused = (spec: string, extra: { iterations?: number } = {}): ConfigError => {
      try {
        planCampaign({ spec, testbedFile: MODEL, ...extra });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return err as ConfigError;
      }
      throw new Error('accepted');
    };
    const base = { metric: 'runtime_s', ciPct: 5, minIterations: 3 };
    it.each([
      ['an unknown metric', { ...base, metric: 'runtime' }, 'adaptive.metric', /unknown metric 'runtime'/],
      ['ciPct 0', { ...base, ciPct: 0 }, 'adaptive.ciPct', /finite percentage of the mean above 0, got 0/],
      ['a negative ciPct', { ...base, ciPct: -2 }, 'adaptive.ciPct', /above 0, got -2/],
      ['minIterations above the cap', { ...base, minIterations: 9 }, 'adaptive.minIterations', /minIterations 9 is more than the cap of 8 iterations/],
      ['minIterations 1 (no CI)', { ...base, minIterations: 1 }, 'adaptive.minIterations', /at least 2/],
      ['a key that does not exist', { ...base, ciPercent: 5 }, 'adaptive.ciPercent', /unknown key/],
      ['no ciPct', { metric: 'runtime_s' }, 'adaptive.ciPct', /Required/],
    ])('%s', (_what, adaptive, key, why) => {
      const file = writeSpec({ adaptive });
      const e = refused(file);
      expect([e.file, e.keyPath]).toEqual([file, key]);
      expect(e.message).toContain(`${file}: ${key}: `);
      expect(e.message).toMatch(why);
    });

    it.each([['.inf'], ['.nan']])('ciPct %s (YAML)', (value) => {
      const file = writeSpec({ adaptive: { ...base, ciPct: 777 } });
      writeFileSync(file, readFileSync(file, 'utf8').replace('ciPct: 777', `ciPct: ${value}`));
      const e = refused(file);
      expect([e.file, e.keyPath]).toEqual([file, 'adaptive.ciPct']);
    });

    it('a cap lowered below minIterations by a campaign file or --iterations names that key', () => {
      const file = writeSpec();
      const camp = join(tmp, 'capped.yaml');
      writeFileSync(camp, stringify({ kind: 'campaign', name: 'capped', experiments: [file], iterations: 2 }));
      const e = refused(camp);
      expect([e.file, e.keyPath]).toEqual([camp, 'iterations']);
      expect(e.message).toMatch(/minIterations 3 is more than the cap of 2 iterations it sets for experiment 'ad'/);
      const flag = refused(file, { iterations: 2 });
      expect([flag.file, flag.keyPath]).toEqual(['command line', '--iterations']);
    });
  });

  it('a store made before the not-needed state (and the implementation column) opens, keeps its rows and takes the new state', () => {
    const dir = join(tmp, 'old-store');
    mkdirSync(dir, { recursive: true });
    // The schema as src/results/store.ts created it before adaptive repetition and before the implementation column.
    const old = new Database(join(dir, 'campaign.sqlite'));
    old.exec(`
      CREATE TABLE campaign (id TEXT PRIMARY KEY, spec TEXT NOT NULL, spec_file TEXT NOT NULL, testbed_file TEXT NOT NULL,
        testbed_kind TEXT NOT NULL, seed INTEGER NOT NULL, created_at TEXT NOT NULL, plan_json TEXT NOT NULL);
      CREATE TABLE steps (step_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, step_key TEXT NOT NULL, experiment TEXT NOT NULL,
        config_id TEXT NOT NULL, kernel_mode TEXT NOT NULL, iteration INTEGER NOT NULL, kernel TEXT, boot INTEGER,
        scenario_json TEXT NOT NULL, estimate_s REAL NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending','running','done','failed')),
        attempts INTEGER NOT NULL DEFAULT 0, valid_attempt TEXT, failure_class TEXT, failure_message TEXT, started_at TEXT, ended_at TEXT);
      CREATE TABLE step_figures (step_id TEXT NOT NULL, figure TEXT NOT NULL, PRIMARY KEY (step_id, figure));
      CREATE TABLE attempts (attempt_id TEXT PRIMARY KEY, step_id TEXT NOT NULL, number INTEGER NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, failure_class TEXT, message TEXT);
      CREATE TABLE samples (attempt_id TEXT NOT NULL, step_id TEXT NOT NULL, instance TEXT NOT NULL, workload TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, t REAL, node INTEGER);
      CREATE TABLE manifests (step_id TEXT PRIMARY KEY, attempt_id TEXT NOT NULL, manifest_json TEXT NOT NULL);
      CREATE VIEW results AS SELECT c.id AS campaign, s.step_id AS step, s.experiment, s.iteration, s.kernel_mode AS kernelMode, c.testbed_kind AS testbed, s.config_id AS config, x.instance, x.workload, x.metric, x.value, x.unit, x.t, x.node
        FROM samples x JOIN steps s ON s.step_id = x.step_id AND s.valid_attempt = x.attempt_id AND s.state = 'done' CROSS JOIN campaign c;
      INSERT INTO campaign VALUES ('old', 'ad', 'ad.yaml', 'model.yaml', 'model', 1, '2026-11-01T00:00:00Z', '{"campaign":"old","steps":[]}');
      INSERT INTO steps (step_id, seq, step_key, experiment, config_id, kernel_mode, iteration, kernel, boot, scenario_json, estimate_s, state, attempts, valid_attempt)
        VALUES ('0001-a', 1, 'k', 'ad', 'low', 'ksm', 1, 'model', 0, '{}', 10, 'done', 1, 'at1'), ('0002-a', 2, 'k', 'ad', 'low', 'ksm', 2, 'model', 0, '{}', 10, 'pending', 0, NULL);
      INSERT INTO attempts VALUES ('at1', '0001-a', 1, '2026-11-01T00:00:01Z', '2026-11-01T00:00:02Z', 'done', NULL, NULL);
      INSERT INTO samples VALUES ('at1', '0001-a', 'vm0', 'cg', 'runtime_s', 101.5, 's', NULL, NULL);
    `);
    old.close();
    const store = new ResultsStore(dir);
    const journal = new Journal(store);
    expect(journal.steps().map((s) => [s.stepId, s.state, s.adaptive, s.decision])).toEqual([['0001-a', 'done', null, null], ['0002-a', 'pending', null, null]]);
    expect(store.rows().map((r) => [r.step, r.value, r.kernel, r.implementation])).toEqual([['0001-a', 101.5, 'model', 'model']]);
    expect(journal.counts()).toEqual({ pending: 1, running: 0, done: 1, failed: 0, 'not-needed': 0 });
    // The rebuilt table takes the new state (the old CHECK would refuse it) and its reason.
    const decision = journal.decideConditional('0002-a', (n) => ({ needed: false, n, checks: [], reason: `not needed after ${n} done iteration(s): test` }));
    expect(decision?.n).toBe(1);
    expect(journal.finishedSteps()).toBe(2);
    store.close();
    // Opening again migrates nothing twice and keeps everything.
    const again = new ResultsStore(dir);
    expect(new Journal(again).steps().map((s) => [s.state, s.decision?.reason ?? null])).toEqual([['done', null], ['not-needed', 'not needed after 1 done iteration(s): test']]);
    expect(again.rows()).toHaveLength(1);
    again.close();
  });
});
