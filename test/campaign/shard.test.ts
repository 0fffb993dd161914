/**
 * Sharding (src/campaign/shard.ts, fleet.ts, shard-campaign.ts, merge.ts): deterministic splits
 * that keep kernels together and route them to machines booted into them; `nuksm plan --shards`;
 * shards run in process on the model testbed and merged equal an unsharded run row for row; merge
 * refuses shards of another seed, spec or harness.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCampaignFromPlan, openCampaign } from '../../src/campaign/campaign.ts';
import { campaignStatus, type SlurmRecord } from '../../src/campaign/slurm.ts';
import { loadCampaignSpec } from '../../src/campaign/spec.ts';
import { ResultsStore } from '../../src/results/store.ts';
import { mergeShards } from '../../src/campaign/merge.ts';
import { parseShardSpec, shardCampaignId } from '../../src/campaign/shard.ts';
import { openOrCreateShard, planShards } from '../../src/campaign/shard-campaign.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { duration } from '../../src/cli/format.ts';
import { main } from '../../src/cli/main.ts';
import { ConfigError } from '../../src/core/errors.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SKYLAKE = join(ROOT, 'experiments', 'testbeds', 'physical-skylake.yaml');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const FLEET = join(ROOT, 'experiments', 'fleets', 'skylake-lab.yaml');
const SMALL = join(ROOT, 'test', 'campaign', 'fixtures', 'small.yaml');
const EXPERIMENTS = join(ROOT, 'experiments');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-shard-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const paper = (extra: { shards: number; fleetFile?: string; testbedFile?: string }) => planShards({ spec: 'paper', testbedFile: SKYLAKE, experimentsDir: EXPERIMENTS, campaignId: 'p', ...extra });

describe('sharding the plan', () => {
  it('one machine per kernel (fleet): every kernel on the machine running it, 0 reboots, every step once', () => {
    const { plan, sharding, fleet } = paper({ shards: 3, fleetFile: FLEET });
    expect(sharding.shards.map((s) => s.reboots)).toEqual([0, 0, 0]);
    sharding.shards.forEach((s, i) => {
      const kernels = new Set(s.steps.map((st) => st.kernel).filter(Boolean));
      expect([...kernels]).toEqual([fleet!.machines[i]!.running]);
    });
    const ids = sharding.shards.flatMap((s) => s.steps.map((st) => st.stepId)).sort();
    expect(ids).toEqual(plan.steps.map((s) => s.stepId).sort());
    // Same ids, keys and seeds as the whole plan: a shard runs the steps the unsharded campaign would.
    const whole = new Map(plan.steps.map((s) => [s.stepId, s]));
    for (const st of sharding.shards.flatMap((s) => s.steps)) {
      expect(st.key).toBe(whole.get(st.stepId)!.key);
      expect(st.scenario.seed).toBe(whole.get(st.stepId)!.scenario.seed);
    }
    expect(sharding.makespanS).toBe(Math.max(...sharding.shards.map((s) => s.estimate.stepsS)));
    expect(sharding.makespanS).toBeLessThan(sharding.oneServerS);
  });

  it('without a fleet, steps sharing a kernel stay in one shard and each shard counts its first boot', () => {
    const { sharding } = paper({ shards: 3 });
    const owner = new Map<string, number>();
    for (const s of sharding.shards) {
      for (const st of s.steps) {
        if (st.kernel === null) continue;
        expect(owner.get(st.kernel) ?? s.shard.index).toBe(s.shard.index);
        owner.set(st.kernel, s.shard.index);
      }
      expect(s.reboots).toBe(s.boots.length);
    }
    expect(owner.size).toBe(3);
  });

  it('is deterministic', () => {
    const a = paper({ shards: 3, fleetFile: FLEET }).sharding.shards.map((s) => s.steps.map((st) => st.stepId));
    const b = paper({ shards: 3, fleetFile: FLEET }).sharding.shards.map((s) => s.steps.map((st) => st.stepId));
    expect(a).toEqual(b);
  });

  it('on the model testbed (no reboots) single steps are balanced', () => {
    const { sharding } = paper({ shards: 3, testbedFile: MODEL });
    const longest = Math.max(...sharding.shards.flatMap((s) => s.steps.map((st) => st.estimateS)));
    expect(sharding.makespanS).toBeLessThanOrEqual(sharding.oneServerS / 3 + longest);
    expect(sharding.shards.every((s) => s.steps.length > 0 && s.reboots === 0)).toBe(true);
  });

  it('bad fleets and shard specs are ConfigErrors naming the key', () => {
    const bad = (name: string, body: string) => {
      const f = join(tmp, name);
      writeFileSync(f, body);
      return f;
    };
    const machine = (running: string) => `  - { name: m${running.length}, testbed: ${SKYLAKE}, running: ${running} }\n`;
    const head = 'kind: fleet\nname: lab\nmachines:\n';
    expect(() => paper({ shards: 1, fleetFile: bad('k.yaml', head + machine('v6.0')) })).toThrow(/machines\[0\]\.running.*'v6.0' is not a kernel/);
    expect(() => paper({ shards: 2, fleetFile: bad('n.yaml', head + machine('v5.4')) })).toThrow(/--shards 2 but the fleet has 1 machine/);
    expect(() => paper({ shards: 1, fleetFile: bad('t.yaml', `${head}  - { name: a, testbed: ${MODEL} }\n`) })).toThrow(/machines\[0\]\.testbed.*other kernels or modes/);
    expect(() => paper({ shards: 2, fleetFile: bad('d.yaml', `${head}  - { name: a, testbed: ${SKYLAKE} }\n  - { name: a, testbed: ${SKYLAKE} }\n`) })).toThrow(/machines\[1\]\.name/);
    expect(() => paper({ shards: 0 })).toThrow(ConfigError);
    expect(() => parseShardSpec('4/3')).toThrow(/--shard/);
    expect(parseShardSpec('2/3')).toEqual({ index: 2, count: 3 });
  });
});

describe('nuksm plan --shards', () => {
  let out = '';
  beforeEach(() => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('paper on physical-skylake, 3 shards, one machine per kernel: 0 reboots and the makespan', async () => {
    expect(await main(['plan', 'paper', '--testbed', SKYLAKE, '--shards', '3', '--fleet', FLEET])).toBe(EXIT.ok);
    const { sharding } = paper({ shards: 3, fleetFile: FLEET });
    expect(out).toContain('Reboots: 0 in all');
    expect(out).toContain(`Estimated makespan: ${duration(sharding.makespanS)}`);
    expect(out).toContain(`one server: ${duration(sharding.oneServerS)}`);
    for (const m of ['sky-v54', 'sky-single', 'sky-multi']) expect(out).toMatch(new RegExp(`\\n\\d+\\s+${m}\\s+\\S+\\s+\\S+\\s+\\d+\\s+0\\s`));
  });
});

describe('shards run on the model and merged', () => {
  const results = join(tmp, 'results');
  const run = async (args: string[]) => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      return await main([...args, '--results-dir', results]);
    } finally {
      vi.restoreAllMocks();
      process.exitCode = undefined;
    }
  };

  it('equal an unsharded run with the same seed, row for row', { timeout: 400_000 }, async () => {
    const one = ['--testbed', MODEL, '--iterations', '1'];
    for (const k of [1, 2, 3]) expect(await run(['run', SMALL, ...one, '--shard', `${k}/3`, '--campaign-id', 'm'])).toBe(EXIT.ok);
    expect(await run(['run', SMALL, ...one, '--campaign-id', 'whole'])).toBe(EXIT.ok);
    // Run again, a complete shard is opened, not re-created or re-run.
    expect(await run(['run', SMALL, ...one, '--shard', '2/3', '--campaign-id', 'm'])).toBe(EXIT.ok);
    expect(await run(['merge', 'm'])).toBe(EXIT.ok);
    const rows = (id: string) => {
      const c = openCampaign(results, id);
      const r = c.store.rows().map(({ campaign: _c, ...rest }) => rest);
      c.store.close();
      return r;
    };
    const merged = rows('m');
    expect(merged.length).toBeGreaterThan(100);
    expect(merged).toEqual(rows('whole'));
    const csv = (id: string) => readdirSync(join(results, id, 'figures')).filter((f) => f.endsWith('.csv')).sort().map((f) => [f, readFileSync(join(results, id, 'figures', f), 'utf8')]);
    expect(csv('m')).toEqual(csv('whole'));
    expect(await run(['merge', 'm'])).toBe(EXIT.config); // merged already
  });

  it('refuses shards of another seed or harness, and unfinished shards', () => {
    const dirs = [1, 2].map((seed) => {
      const d = join(tmp, `exp-seed${seed}`);
      mkdirSync(d, { recursive: true });
      copyFileSync(SMALL, join(d, 'small.yaml'));
      writeFileSync(join(d, 'c.yaml'), `kind: campaign\nname: c\nexperiments: [small]\nseed: ${seed}\ninterleave: none\n`);
      return d;
    });
    const req = (dir: string, id: string) => ({ spec: 'c', testbedFile: MODEL, experimentsDir: dir, campaignId: id, shards: 2, resultsDir: results });
    openOrCreateShard(req(dirs[0]!, 'x'), 1).store.close();
    openOrCreateShard(req(dirs[1]!, 'x'), 2).store.close();
    expect(() => mergeShards({ resultsDir: results, campaignId: 'x' })).toThrow(/seed 2 differs from shard 1's seed 1/);
    // The same shard asked for from another spec: refused, not mixed into the store.
    expect(() => openOrCreateShard(req(dirs[1]!, 'x'), 1)).toThrow(/other spec files|another campaign plan/);

    openOrCreateShard(req(dirs[0]!, 'y'), 1).store.close();
    const c2 = openOrCreateShard(req(dirs[0]!, 'y'), 2);
    c2.store.db.prepare("UPDATE campaign SET plan_json = json_set(plan_json, '$.shard.harness.commit', 'another-commit')").run();
    c2.store.close();
    expect(() => mergeShards({ resultsDir: results, campaignId: 'y' })).toThrow(/harness .*another-commit/);

    openOrCreateShard(req(dirs[0]!, 'z'), 1).store.close();
    expect(() => mergeShards({ resultsDir: results, campaignId: 'z' })).toThrow(/shard\(s\) 2 of 2 of 'z' are missing/);
    openOrCreateShard(req(dirs[0]!, 'z'), 2).store.close();
    expect(() => mergeShards({ resultsDir: results, campaignId: 'z' })).toThrow(/shard 1 is not finished/);
  });

  it('a shard whose creation was cut short (store, no plan yet) reads as not started, and its next job creates it', async () => {
    // What `nuksm slurm collect` saw in CI: the next job had just created the store of its shard.
    const id = shardCampaignId('cut', 1, 2);
    new ResultsStore(join(results, id)).close();
    const record: SlurmRecord = { campaign: 'cut', resultsRoot: results, spec: 'c', submittedAt: '', shards: [1, 2].map((k) => ({ index: k, campaign: shardCampaignId('cut', k, 2), script: '', timeLimitMin: 1, constraint: null, nodelist: null, jobs: [] })) };
    const before = await campaignStatus(record);
    expect(before.map((s) => [s.progress, s.complete])).toEqual([[null, false], [null, false]]);
    const c = openOrCreateShard({ spec: SMALL, testbedFile: MODEL, campaignId: 'cut', shards: 2, resultsDir: results, iterations: 1 }, 1);
    const steps = c.journal.steps().length;
    c.store.close();
    expect(steps).toBeGreaterThan(0);
    const [after] = await campaignStatus(record);
    expect(after!.progress).toMatchObject({ done: 0, pending: steps, total: steps });
    // A planned campaign is still never created twice.
    expect(() => createCampaignFromPlan(openCampaign(results, id).plan, loadCampaignSpec(SMALL, EXPERIMENTS), results)).toThrow(/already exists/);
  });
});
