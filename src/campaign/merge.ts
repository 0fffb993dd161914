/**
 * `nuksm merge <campaign-id>`: the shard stores `<id>.shard<k>of<N>` (src/campaign/shard-campaign.ts)
 * become one campaign store `<id>`, as if one server had run the whole plan: same step ids, the
 * valid attempt's samples, manifests and raw outputs of every step. Refused (ConfigError, nothing
 * written) when a shard is missing, unfinished, or from another spec, seed, plan or harness.
 * The merged store is built in a temporary directory and renamed into place: a crash leaves no
 * half-merged campaign.
 */
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../core/errors.ts';
import { ResultsStore, STORE_FILE } from '../results/store.ts';
import { checkCampaignId, openCampaign, resultsRoot, writeFileAtomic } from './campaign.ts';
import { Journal } from './journal.ts';
import type { Plan, PlannedBoot, PlannedStep } from './plan.ts';
import type { RecordedShardPlan } from './shard-campaign.ts';

export interface MergeResult {
  campaign: string;
  dir: string;
  shards: string[];
  steps: number;
  samples: number;
}

/** Shard campaign ids of `id` found under the results root, by shard count. */
export function findShards(root: string, id: string): Map<number, { index: number; id: string }[]> {
  const re = new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.shard(\\d+)of(\\d+)$`);
  const out = new Map<number, { index: number; id: string }[]>();
  if (!existsSync(root)) return out;
  for (const d of readdirSync(root).sort()) {
    const m = re.exec(d);
    if (!m || !existsSync(join(root, d, STORE_FILE))) continue;
    const count = Number(m[2]);
    out.set(count, [...(out.get(count) ?? []), { index: Number(m[1]), id: d }]);
  }
  for (const list of out.values()) list.sort((a, b) => a.index - b.index);
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function mergeShards(opts: { resultsDir?: string; campaignId: string }): MergeResult {
  const id = checkCampaignId(opts.campaignId, 'campaign-id');
  const root = resultsRoot(opts.resultsDir);
  const dest = join(root, id);
  if (existsSync(join(dest, STORE_FILE))) throw new ConfigError('command line', 'campaign-id', `campaign '${id}' already exists in ${dest}: it was merged before (or is an unsharded campaign)`);
  const found = findShards(root, id);
  if (found.size === 0) throw new ConfigError('command line', 'campaign-id', `no shard stores '${id}.shard<k>of<N>' in ${root}`);
  if (found.size > 1) throw new ConfigError('command line', 'campaign-id', `shards of '${id}' with different shard counts in ${root} (${[...found.keys()].map((n) => `of ${n}`).join(', ')}): remove the stale ones`);
  const [count, list] = [...found.entries()][0]!;
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((k) => !list.some((s) => s.index === k));
  if (missing.length) throw new ConfigError('command line', 'campaign-id', `shard(s) ${missing.join(', ')} of ${count} of '${id}' are missing in ${root}`);

  const opened = list.map((s) => openCampaign(opts.resultsDir, s.id));
  try {
    const plans = opened.map((c) => c.plan as RecordedShardPlan);
    const first = plans[0]!;
    const manifestCommits = new Set<string>();
    opened.forEach((c, i) => {
      const p = plans[i]!;
      const refuse = (why: string) => new ConfigError(join(c.dir, STORE_FILE), 'plan.shard', `${why}; shards of one campaign must come from one plan and one harness`);
      if (!p.shard || p.shard.parent !== id) throw refuse(`not a shard of '${id}'`);
      if (p.seed !== first.seed) throw refuse(`seed ${p.seed} differs from shard ${first.shard.index}'s seed ${first.seed}`);
      if (p.spec !== first.spec || p.specHash !== first.specHash) throw refuse(`spec '${p.spec}' (hash ${p.specHash?.slice(0, 12)}) differs from shard ${first.shard.index}'s '${first.spec}' (${first.specHash?.slice(0, 12)})`);
      if (p.shard.planDigest !== first.shard.planDigest) throw refuse(`planned from another whole plan (digest ${p.shard.planDigest} vs ${first.shard.planDigest}: testbed, iterations or interleave differ)`);
      if (!same(p.shard.harness, first.shard.harness)) throw refuse(`harness ${JSON.stringify(p.shard.harness)} differs from shard ${first.shard.index}'s ${JSON.stringify(first.shard.harness)}`);
    });
    // Then (all shards are of one plan) that each is finished.
    opened.forEach((c, i) => {
      const p = plans[i]!;
      const n = c.journal.counts();
      if (n.pending + n.running > 0) throw new ConfigError(join(c.dir, STORE_FILE), 'steps', `shard ${p.shard.index} is not finished (${n.pending} pending, ${n.running} running): resume it (nuksm slurm resubmit resubmits unfinished shards)`);
      for (const st of c.journal.steps()) {
        const commit = c.store.manifest(st.stepId)?.harnessCommit;
        if (st.state === 'done') manifestCommits.add(JSON.stringify(commit ?? null));
      }
    });
    if (manifestCommits.size > 1) throw new ConfigError(root, `${id}.shard*`, `steps were run by different harness commits (${[...manifestCommits].join(', ')})`);

    // Every step of the whole plan exactly once.
    const steps: PlannedStep[] = [];
    const boots: PlannedBoot[] = [];
    const seen = new Map<string, number>();
    plans.forEach((p) => {
      const offset = boots.length;
      boots.push(...p.boots.map((b) => ({ ...b, index: b.index + offset })));
      for (const st of p.steps) {
        const prev = seen.get(st.stepId);
        if (prev !== undefined) throw new ConfigError(root, `${id}.shard${p.shard.index}of${count}`, `step ${st.stepId} is also in shard ${prev}`);
        seen.set(st.stepId, p.shard.index);
        steps.push({ ...st, boot: st.boot === null ? null : st.boot + offset });
      }
    });
    steps.sort((a, b) => a.seq - b.seq);
    if (steps.length !== first.shard.totalSteps || steps.some((s, i) => s.seq !== i + 1)) {
      throw new ConfigError(root, `${id}.shard*`, `the shards hold ${steps.length} steps, the plan has ${first.shard.totalSteps}: they do not cover it exactly`);
    }
    const { shard: _s, ...base } = first;
    const stepsS = plans.reduce((s, p) => s + p.estimate.stepsS, 0);
    const rebootsS = plans.reduce((s, p) => s + p.estimate.rebootsS, 0);
    const merged: Plan & Record<string, unknown> = {
      ...base,
      campaign: id,
      testbed: first.shard.planTestbed,
      steps,
      boots,
      reboots: plans.reduce((s, p) => s + p.reboots, 0),
      estimate: { stepsS, rebootsS, totalS: stepsS + rebootsS },
      pinMap: first.pinMap,
      merged: {
        shards: plans.map((p) => ({ campaign: p.campaign, index: p.shard.index, machine: p.shard.machine, testbedFile: p.shard.testbedFile, steps: p.steps.length, reboots: p.reboots, estimateS: p.estimate.totalS })),
        makespanS: Math.max(...plans.map((p) => p.estimate.totalS)),
        harness: first.shard.harness,
      },
    };
    // Merged pin map: every shard's (a configuration's pins are the same in each).
    const pins = new Map<string, Plan['pinMap'][number]>();
    for (const p of plans) for (const e of p.pinMap) pins.set(`${e.experiment}/${e.configId}/${e.instance}`, e);
    merged.pinMap = [...pins.values()];

    const tmp = join(root, `.${id}.merging-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    let samples = 0;
    const store = new ResultsStore(tmp);
    try {
      const journal = new Journal(store);
      journal.create(merged);
      writeFileAtomic(join(tmp, 'plan.json'), `${JSON.stringify(merged, null, 2)}\n`);
      const db = store.db;
      db.transaction(() => {
        // decision_json: an adaptive iteration's decision (the reason of 'not-needed'), as its shard made it.
        const setStep = db.prepare('UPDATE steps SET state = ?, attempts = ?, valid_attempt = ?, failure_class = ?, failure_message = ?, started_at = ?, ended_at = ?, decision_json = ? WHERE step_id = ?');
        const addAttempt = db.prepare('INSERT INTO attempts (attempt_id, step_id, number, started_at, ended_at, outcome, failure_class, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
        const addSample = db.prepare('INSERT INTO samples (attempt_id, step_id, instance, workload, metric, value, unit, t, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
        const addManifest = db.prepare('INSERT INTO manifests (step_id, attempt_id, manifest_json) VALUES (?, ?, ?)');
        for (const c of opened) {
          const src = c.store.db;
          for (const r of src.prepare('SELECT step_id, state, attempts, valid_attempt, failure_class, failure_message, started_at, ended_at, decision_json FROM steps').all() as Record<string, unknown>[]) {
            setStep.run(r.state, r.attempts, r.valid_attempt, r.failure_class, r.failure_message, r.started_at, r.ended_at, r.decision_json, r.step_id);
          }
          for (const r of src.prepare('SELECT attempt_id, step_id, number, started_at, ended_at, outcome, failure_class, message FROM attempts').all() as Record<string, unknown>[]) {
            addAttempt.run(r.attempt_id, r.step_id, r.number, r.started_at, r.ended_at, r.outcome, r.failure_class, r.message);
          }
          const valid = src
            .prepare("SELECT x.attempt_id, x.step_id, x.instance, x.workload, x.metric, x.value, x.unit, x.t, x.node FROM samples x JOIN steps s ON s.step_id = x.step_id AND s.valid_attempt = x.attempt_id AND s.state = 'done'")
            .raw()
            .all() as unknown[][];
          for (const r of valid) addSample.run(...r);
          samples += valid.length;
          for (const r of src.prepare('SELECT step_id, attempt_id, manifest_json FROM manifests').all() as Record<string, unknown>[]) addManifest.run(r.step_id, r.attempt_id, r.manifest_json);
        }
      })();
      // Raw outputs of every step, as the shards kept them.
      for (const c of opened) {
        const raw = join(c.dir, 'raw');
        if (existsSync(raw)) cpSync(raw, join(tmp, 'raw'), { recursive: true });
      }
      store.db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      store.close();
    }
    if (existsSync(dest)) {
      // A directory without a store (e.g. Slurm's submission record): keep its files, add the store.
      // The store last: it is what makes the directory a campaign.
      const files = readdirSync(tmp).sort((a, b) => Number(a === STORE_FILE) - Number(b === STORE_FILE));
      for (const f of files) renameSync(join(tmp, f), join(dest, f));
      rmSync(tmp, { recursive: true, force: true });
    } else renameSync(tmp, dest);
    return { campaign: id, dir: dest, shards: list.map((s) => s.id), steps: steps.length, samples };
  } finally {
    for (const c of opened) c.store.close();
  }
}
