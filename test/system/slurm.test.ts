/**
 * Issue 14 on a real one-machine Slurm cluster (test/support/slurm-cluster.ts): the model-testbed
 * `paper` campaign in 3 shards through `nuksm slurm submit`; one shard's job is cancelled with
 * `scancel` mid-run, `nuksm slurm collect` refuses, `nuksm slurm resubmit` resumes it from its
 * journal; `nuksm slurm collect` then merges, and every figure CSV and every result row equals an
 * unsharded run of the same spec and seed (run once, next to the jobs, to share the machine's time).
 * The one node is exclusive, so the three jobs run one after another. Times go to stderr.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openCampaign } from '../../src/campaign/campaign.ts';
import { campaignStatus, loadRecord, type ShardStatus } from '../../src/campaign/slurm.ts';
import { EXIT } from '../../src/core/exit-codes.ts';
import { describeWith } from '../support/components.ts';
import { startSlurmCluster, type SlurmCluster } from '../support/slurm-cluster.ts';
import { testLog } from '../support/log.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const report = testLog('slurm');
const since = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(0)} s`;

describeWith(['slurm', 'root'], 'a sharded paper campaign through a real Slurm cluster', () => {
  let cluster: SlurmCluster;
  let results = '';
  let reference: Promise<{ exitCode?: number; stderr: string }>;
  const t0 = Date.now();
  const nuksm = (args: string[]) => execa(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), ...args, '--results-dir', results], { cwd: ROOT, env: cluster.env, reject: false, timeout: 1_500_000 });

  beforeAll(async () => {
    results = mkdtempSync(join(tmpdir(), 'nuksm-slurm-results-'));
    cluster = await startSlurmCluster({ features: ['nuksm-kernel-model'] });
    process.env.SLURM_CONF = cluster.conf;
    report(`cluster up in ${since(t0)} (${cluster.dir})`);
    // The unsharded reference, once, while the shards run (two cores: it takes the other one).
    reference = nuksm(['run', 'paper', '--testbed', MODEL, '--campaign-id', 'reference', '--json']);
  });

  afterAll(async () => {
    await reference?.catch(() => undefined);
    await cluster?.stop();
    delete process.env.SLURM_CONF;
    rmSync(results, { recursive: true, force: true });
    report(`total ${since(t0)}`);
  });

  const status = () => campaignStatus(loadRecord(results, 'sharded'));
  async function waitFor(what: string, deadlineS: number, ok: (s: ShardStatus[]) => boolean): Promise<ShardStatus[]> {
    const end = Date.now() + deadlineS * 1000;
    for (;;) {
      const s = await status();
      if (ok(s)) return s;
      if (Date.now() > end) throw new Error(`${what}: not within ${deadlineS} s; status ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  it('3 shards, one scancel-ed and resubmitted, merge to the unsharded figures row for row', { timeout: 1_800_000 }, async () => {
    // The daemons listen on loopback only.
    const listening = (await execa('ss', ['-ltnpH'])).stdout.split('\n').filter((l) => /"slurm(ctld|d)"/.test(l));
    expect(listening.length).toBeGreaterThanOrEqual(2);
    for (const l of listening) expect(l.split(/\s+/)[3], l).toMatch(/^127\.0\.0\.1:\d+$/);

    const submitted = await nuksm(['slurm', 'submit', 'paper', '--testbed', MODEL, '--shards', '3', '--campaign-id', 'sharded', '--json']);
    expect(submitted.exitCode, submitted.stderr).toBe(EXIT.ok);
    const record = JSON.parse(submitted.stdout) as ReturnType<typeof loadRecord>;
    expect(record.shards.map((s) => s.index)).toEqual([1, 2, 3]);
    for (const s of record.shards) {
      expect(s.jobs).toHaveLength(1);
      expect(s.constraint).toBe('nuksm-kernel-model');
      const script = readFileSync(s.script, 'utf8');
      expect(script).toContain('#SBATCH --exclusive');
      expect(script).toContain('#SBATCH --constraint=nuksm-kernel-model');
      expect(script).toContain(`#SBATCH --time=${s.timeLimitMin}`);
      expect(script).toContain(`--shard' '${s.index}/3'`);
    }
    // Slurm has the jobs as written: exclusive, with the time limit and the feature.
    const shown = await execa('scontrol', ['show', 'job', '-o', record.shards[0]!.jobs[0]!], { env: cluster.env });
    expect(shown.stdout).toMatch(/OverSubscribe=NO/);
    expect(shown.stdout).toContain('Features=nuksm-kernel-model');
    report(`submitted at ${since(t0)}`);

    // The first job to run: cancel it once it has finished two steps and is inside the next.
    const running = await waitFor('a shard with 2 steps done and one running', 600, (s) => s.some((x) => x.job?.state === 'RUNNING' && (x.progress?.done ?? 0) >= 2 && x.progress?.current !== null));
    const victim = running.find((x) => x.job?.state === 'RUNNING')!;
    const victimJob = victim.job!.job;
    await execa('scancel', [victimJob], { env: cluster.env });
    await waitFor('the cancelled job to end', 120, (s) => !s.find((x) => x.index === victim.index)!.active);
    const before = openCampaign(results, victim.campaign);
    const doneBefore = new Map(before.journal.steps().filter((s) => s.state === 'done').map((s) => [s.stepId, s.validAttempt]));
    const countsBefore = before.journal.counts();
    before.store.close();
    report(`shard ${victim.index} (job ${victimJob}) cancelled at ${since(t0)} with ${doneBefore.size} steps done, ${countsBefore.pending + countsBefore.running} left`);
    expect(doneBefore.size).toBeGreaterThanOrEqual(2);
    expect(countsBefore.pending + countsBefore.running).toBeGreaterThan(0);

    const early = await nuksm(['slurm', 'collect', 'sharded']);
    expect(early.exitCode).toBe(EXIT.stopped);
    expect(early.stderr).toContain(`shard(s) ${victim.index}`);
    expect(early.stderr).toContain('nuksm slurm resubmit sharded');

    const again = await nuksm(['slurm', 'resubmit', 'sharded', '--json']);
    expect(again.exitCode, again.stderr).toBe(EXIT.ok);
    const jobs = JSON.parse(again.stdout) as { shard: number; job: string }[];
    expect(jobs.map((j) => j.shard)).toEqual([victim.index]);

    const final = await waitFor('every shard complete', 900, (s) => s.every((x) => x.complete && !x.active));
    report(`all shards complete at ${since(t0)}`);
    for (const s of final) expect(s.job!.state).toBe('COMPLETED');
    expect(final.find((x) => x.index === victim.index)!.submissions).toBe(2);
    const shown2 = await nuksm(['slurm', 'status', 'sharded']);
    expect(shown2.stdout).toContain('COMPLETED');

    // Nothing lost or duplicated in the resumed shard: the steps done before kept their attempts.
    const after = openCampaign(results, victim.campaign);
    const steps = after.journal.steps();
    expect(steps.every((s) => s.state === 'done' || s.failureClass === 'unsupported')).toBe(true);
    for (const [id, attempt] of doneBefore) expect(steps.find((s) => s.stepId === id)!.validAttempt).toBe(attempt);
    after.store.close();

    const ref = await reference;
    expect(ref.exitCode, ref.stderr).toBe(EXIT.ok);
    report(`reference done by ${since(t0)}`);
    const collected = await nuksm(['slurm', 'collect', 'sharded', '--json']);
    expect(collected.exitCode, collected.stderr).toBe(EXIT.ok);
    report(`collected at ${since(t0)}`);

    const figs = (id: string) => readdirSync(join(results, id, 'figures')).filter((f) => f.endsWith('.csv')).sort();
    expect(figs('sharded')).toEqual(figs('reference'));
    expect(figs('reference').length).toBeGreaterThanOrEqual(12);
    for (const f of figs('reference')) expect(readFileSync(join(results, 'sharded', 'figures', f), 'utf8'), f).toBe(readFileSync(join(results, 'reference', 'figures', f), 'utf8'));

    const rows = (id: string) => {
      const c = openCampaign(results, id);
      const r = c.store.rows().map(({ campaign: _c, ...rest }) => rest);
      const states = c.journal.steps().map((s) => [s.stepId, s.state, s.failureClass]);
      c.store.close();
      return { r, states };
    };
    const a = rows('sharded');
    const b = rows('reference');
    expect(a.r.length).toBe(b.r.length);
    expect(a.r).toEqual(b.r);
    expect(a.states).toEqual(b.states);
  });
});
