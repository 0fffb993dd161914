/**
 * How long KSM gets before the timed phase: a fixed time, or until pages_sharing has changed by
 * less than epsilonPct over the last windowS (bounded by maxS). The artifact used fixed sleeps
 * only (artifact.md §5.4); converging saves hours when merging finishes early.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { HarnessError } from '../../core/errors.ts';
import type { MergeWait } from '../../core/scenario.ts';

export interface MergeWaitResult {
  waitedS: number;
  converged: boolean;
  pagesSharing: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  delay(ms, undefined, { signal }).catch(() => {
    throw new HarnessError('timeout', 'merge wait aborted (step timeout or stop)');
  });

/** True when the last windowS of history changed by less than epsilonPct (history: [seconds, pages]). */
export function hasConverged(history: readonly [number, number][], windowS: number, epsilonPct: number): boolean {
  if (history.length < 2) return false;
  const [tNow, now] = history[history.length - 1];
  const old = [...history].reverse().find(([t]) => tNow - t >= windowS);
  if (!old) return false;
  const base = Math.max(Math.abs(old[1]), 1);
  return (Math.abs(now - old[1]) / base) * 100 < epsilonPct;
}

export async function waitForMerge(wait: MergeWait, readPagesSharing: () => Promise<number>, opts: { pollS: number; signal?: AbortSignal }): Promise<MergeWaitResult> {
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  if (wait.kind === 'fixed') {
    await sleep(wait.seconds * 1000, opts.signal);
    return { waitedS: elapsed(), converged: false, pagesSharing: await readPagesSharing() };
  }
  const history: [number, number][] = [];
  const pollS = Math.max(0.2, Math.min(opts.pollS, wait.windowS / 2));
  for (;;) {
    history.push([elapsed(), await readPagesSharing()]);
    if (hasConverged(history, wait.windowS, wait.epsilonPct)) return { waitedS: elapsed(), converged: true, pagesSharing: history[history.length - 1][1] };
    if (elapsed() >= wait.maxS) return { waitedS: elapsed(), converged: false, pagesSharing: history[history.length - 1][1] };
    await sleep(Math.min(pollS, Math.max(0, wait.maxS - elapsed())) * 1000, opts.signal);
  }
}
