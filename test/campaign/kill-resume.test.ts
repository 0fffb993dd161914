/**
 * Crash safety on the real model testbed: a campaign run by the CLI in a child process is
 * SIGKILLed at random moments (≥ 20 times) and resumed after each kill. The final store must
 * equal that of an uninterrupted run with the same seed: no row missing, none duplicated.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCampaign, executeCampaign, loadTestbedFile, openCampaign } from '../../src/campaign/campaign.ts';
import type { ResultRow } from '../../src/results/store.ts';
import { createTestbed } from '../../src/testbeds/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SPEC = join(ROOT, 'test', 'campaign', 'fixtures', 'small.yaml');
const TESTBED = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-kill-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Rows without the campaign id (two campaigns are compared), in a canonical order. */
function canonical(rows: ResultRow[]): string[] {
  return rows.map(({ campaign: _c, ...r }) => JSON.stringify(r)).sort();
}

/** Deterministic pseudo-random delays (the kill moments), so a failure can be replayed. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function startCli(args: string[]) {
  // NUKSM_PROGRESS=1: progress lines on stderr even without a TTY; the first one says a step started.
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NUKSM_PROGRESS: '1' } });
  let stderr = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  child.stderr.on('data', (d) => {
    stderr += String(d);
    const started = (stderr.match(/^\[\d+\/\d+[^\]]*\] \d{4}-/gm) ?? []).length;
    for (const w of waiters) if (started >= w.n) w.resolve();
  });
  /** Resolves when the child has started its n-th step (n-1 steps of this run are then finished). */
  const stepStarted = (n: number) => new Promise<void>((resolve) => waiters.push({ n, resolve }));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stepStarted, stderr: () => stderr };
}

describe('SIGKILL at random moments, then resume (model testbed)', () => {
  it('ends with exactly the store of an uninterrupted run', async () => {
    // Reference: uninterrupted, in process.
    const ref = createCampaign({ spec: SPEC, testbedFile: TESTBED, resultsDir: join(tmp, 'ref'), campaignId: 'ref' });
    const t0 = Date.now();
    const refResult = await executeCampaign(ref, await createTestbed(loadTestbedFile(TESTBED)), { retryDelayMs: 0 });
    const meanStepMs = (Date.now() - t0) / refResult.total;
    expect(refResult).toMatchObject({ outcome: 'complete', failed: 0 });
    const expected = canonical(ref.store.rows());
    ref.store.close();
    expect(expected.length).toBeGreaterThan(1000);

    // Killed: the CLI in a child process, SIGKILLed at a random moment after it started working
    // on a step (uniform over 1.5 mean step durations, so kills land inside steps, between steps
    // and around commits; every other run only after finishing a step, so progress is certain),
    // then resumed; until the campaign completes. Campaigns are repeated
    // until at least 20 kills have landed, and each one is compared with the reference.
    const random = lcg(20261129);
    let kills = 0;
    let interrupted = 0;
    let campaigns = 0;
    for (let k = 0; kills < 20; k++) {
      campaigns++;
      expect(k, 'too many campaigns needed to land 20 kills').toBeLessThan(8);
      const resultsDir = join(tmp, `killed-${k}`);
      const id = `killed-${k}`;
      for (let cycle = 0; ; cycle++) {
        expect(cycle, 'no progress').toBeLessThan(100);
        const args = cycle === 0 ? ['run', SPEC, '--testbed', TESTBED, '--campaign-id', id, '--results-dir', resultsDir] : ['resume', id, '--results-dir', resultsDir];
        const run = startCli(args);
        const delayMs = random() * 1.5 * meanStepMs;
        const outcome = await Promise.race([
          run.exited.then((code) => ({ code })),
          // Enough kills: let this campaign finish and be compared.
          ...(kills >= 20 ? [] : [
          // Every other run first finishes one step, so the campaign always makes progress.
          run.stepStarted(1 + (cycle % 2)).then(() => new Promise<null>((r) => setTimeout(() => r(null), delayMs))),
          ]),
        ]);
        if (outcome === null) {
          run.child.kill('SIGKILL');
          await run.exited;
          kills++;
          continue;
        }
        expect(outcome.code, run.stderr()).toBe(0);
        break; // the campaign completed
      }
      const killed = openCampaign(resultsDir, id);
      interrupted += (killed.store.db.prepare("SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'interrupted'").get() as { n: number }).n;
      const storedSamples = (killed.store.db.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number }).n;
      const rows = killed.store.rows();
      const states = killed.journal.counts();
      killed.store.close();
      expect(states).toEqual({ pending: 0, running: 0, done: refResult.total, failed: 0, 'not-needed': 0 });
      expect(canonical(rows)).toEqual(expected);
      // No leftover samples of interrupted attempts either.
      expect(storedSamples).toBe(rows.length);
    }
    console.info(`kill test: ${kills} SIGKILLs over ${campaigns} campaign(s), ${interrupted} interrupted attempts, mean step ${Math.round(meanStepMs)} ms`);
    expect(kills).toBeGreaterThanOrEqual(20);
    // Most kills must land inside a running step, or the test proves little.
    expect(interrupted).toBeGreaterThanOrEqual(12);
  }, 900_000);
});
