// The selftest runner's one retry (withOneRetry): a pass runs once; a failure runs once more and both results
// reach the report; a second failure is still a failure.
import { describe, expect, it } from 'vitest';
import { withOneRetry } from './ksm-selftests.ts';

function runs(exitCodes: number[]): { run: () => Promise<{ exitCode: number; n: number }>; calls: () => number } {
  let n = 0;
  return { run: async () => ({ exitCode: exitCodes[n]!, n: n++ }), calls: () => n };
}

describe('withOneRetry', () => {
  const passed = (r: { exitCode: number }) => r.exitCode === 0;

  it('a pass runs once and reports no first failure', async () => {
    const r = runs([0]);
    const out = await withOneRetry(r.run, passed);
    expect([r.calls(), out.last.n, out.firstFailure]).toEqual([1, 0, null]);
  });

  it('a failure then a pass: two runs, the pass is the result, the failure is kept for the report', async () => {
    const r = runs([1, 0]);
    const seen: number[] = [];
    const out = await withOneRetry(r.run, passed, (f) => seen.push(f.exitCode));
    expect([r.calls(), out.last.exitCode, out.firstFailure?.exitCode, seen]).toEqual([2, 0, 1, [1]]);
  });

  it('two failures: still a failure, and no third run', async () => {
    const r = runs([1, 4, 0]);
    const out = await withOneRetry(r.run, passed);
    expect([r.calls(), passed(out.last), out.last.exitCode, out.firstFailure?.exitCode]).toEqual([2, false, 4, 1]);
  });
});
