/** The terminal progress display: a live bar on a TTY (step, phase, done/total, plan ETA), plain lines otherwise. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/campaign/runner.ts';
import { progressReporter } from '../../src/cli/progress.ts';

function stream(isTTY: boolean) {
  let out = '';
  const s = new Writable({ write: (chunk, _enc, cb) => ((out += String(chunk)), cb()) }) as unknown as NodeJS.WriteStream & { text(): string };
  Object.assign(s, { isTTY, columns: 160, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => out });
  return s;
}
const progress = (done: number, stepId: string, etaS: number, notNeeded = 0): Progress => ({ step: { stepId } as Progress['step'], done, failed: 0, notNeeded, total: 4, etaS });

describe('progress', () => {
  const saved = process.env.NUKSM_PROGRESS;
  afterEach(() => {
    if (saved === undefined) delete process.env.NUKSM_PROGRESS;
    else process.env.NUKSM_PROGRESS = saved;
  });

  it('not a TTY: one plain line per step, no escape codes', () => {
    delete process.env.NUKSM_PROGRESS;
    const s = stream(false);
    const r = progressReporter(s);
    r.onProgress(progress(0, '0001-a', 125));
    r.onLog('merge wait done');
    r.onProgress(progress(1, '0002-b', 60));
    r.stop(2);
    expect(s.text()).toBe('[0/4] 0001-a  ETA 2 min 05 s\n[1/4] 0002-b  ETA 1 min 00 s\n');
  });

  it('counts adaptive iterations decided away as finished, and says so', () => {
    delete process.env.NUKSM_PROGRESS;
    const s = stream(false);
    progressReporter(s).onProgress(progress(1, '0004-d', 0, 2));
    expect(s.text()).toBe('[3/4, 2 not needed] 0004-d  ETA 0 s\n');
  });

  it('a TTY: a live bar with done/total, the step, its phase from the log and the plan ETA', async () => {
    delete process.env.NUKSM_PROGRESS;
    const s = stream(true);
    const r = progressReporter(s);
    r.onProgress(progress(1, '0002-pair-btree-ksm-i1', 3700));
    // The bar redraws at most 4 times a second (cli-progress fps): let a frame pass.
    await new Promise((resolve) => setTimeout(resolve, 600));
    r.onLog('timed phase started (detached)');
    r.stop(4);
    const text = s.text();
    expect(text).toContain('1/4 | 0002-pair-btree-ksm-i1 | starting | ETA 1 h 01 min');
    expect(text).toContain('1/4 | 0002-pair-btree-ksm-i1 | timed phase started (detached) | ETA 1 h 01 min');
    expect(text).toContain('4/4 | finished');
    expect(text).toContain('\u001b['); // cursor control: it redraws in place
  });
});
