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
  let onStep: () => void = () => {};
  const stepStarted = new Promise<void>((resolve) => (onStep = resolve));
  child.stderr.on('data', (d) => {
    stderr += String(d);
    if (/\] \d{4}-/.test(stderr)) onStep();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stepStarted, stderr: () => stderr };
}

describe('SIGKILL at random moments, then resume (model testbed)', () => {
  it('ends with exactly the store of an uninterrupted run', async () => {
    // Reference: uninterrupted, in process.
    const ref = createCampaign({ spec: SPEC, testbedFile: TESTBED, resultsDir: join(tmp, 'ref'), campaignId: 'ref' });
    const refResult = await executeCampaign(ref, await createTestbed(loadTestbedFile(TESTBED)), { retryDelayMs: 0 });
    expect(refResult).toMatchObject({ outcome: 'complete', failed: 0 });
    const expected = canonical(ref.store.rows());
    ref.store.close();
    expect(expected.length).toBeGreaterThan(1000);

    // Killed: the CLI in a child process, SIGKILLed at random moments, resumed each time.
    const resultsDir = join(tmp, 'killed');
    const random = lcg(20261129);
    let kills = 0;
    let cycles = 0;
    while (kills < 20) {
      cycles++;
      expect(cycles, 'the campaign finished before 20 kills could land').toBeLessThan(60);
      const args = cycles === 1 ? ['run', SPEC, '--testbed', TESTBED, '--campaign-id', 'killed', '--results-dir', resultsDir] : ['resume', 'killed', '--results-dir', resultsDir];
      const run = startCli(args);
      // The kill moment: a random time (0-2.5 s) after the child started working on a step.
      const delayMs = random() * 2500;
      const outcome = await Promise.race([
        run.exited.then((code) => ({ code })),
        run.stepStarted.then(() => new Promise<null>((r) => setTimeout(() => r(null), delayMs))),
      ]);
      if (outcome === null) {
        run.child.kill('SIGKILL');
        await run.exited;
        kills++;
      } else {
        expect(outcome.code, run.stderr()).toBe(0);
        break; // finished before the kill: nothing left to interrupt
      }
    }
    const final = startCli(['resume', 'killed', '--results-dir', resultsDir]);
    expect(await final.exited, final.stderr()).toBe(0);

    const killed = openCampaign(resultsDir, 'killed');
    const interrupted = killed.store.db.prepare("SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'interrupted'").get() as { n: number };
    const storedSamples = killed.store.db.prepare('SELECT COUNT(*) AS n FROM samples').get() as { n: number };
    const rows = killed.store.rows();
    const states = killed.journal.counts();
    killed.store.close();

    expect(states).toEqual({ pending: 0, running: 0, done: 18, failed: 0 });
    expect(canonical(rows)).toEqual(expected);
    expect(kills).toBeGreaterThanOrEqual(20);
    // Most kills must land inside a running step, or the test proves little.
    expect(interrupted.n).toBeGreaterThanOrEqual(12);
    // No leftover samples of interrupted attempts either.
    expect(storedSamples.n).toBe(rows.length);
  }, 600_000);
});
