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

export interface MergeProgress {
  pagesSharing: number;
  fullScans: number;
}

/**
 * A page needs two visits before it can merge (the checksum gate), so pages_sharing can sit at 0
 * through the whole first pass. Convergence therefore only counts once `minFullScans` full passes
 * have completed since the wait began; with KSM off (`ksmRunning` false) there is nothing to wait for.
 */
export async function waitForMerge(
  wait: MergeWait,
  readProgress: () => Promise<MergeProgress>,
  opts: { pollS: number; signal?: AbortSignal; ksmRunning: boolean; minFullScans?: number },
): Promise<MergeWaitResult> {
  const minFullScans = opts.minFullScans ?? 2;
  const readPagesSharing = async () => (await readProgress()).pagesSharing;
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  if (wait.kind === 'fixed') {
    await sleep(wait.seconds * 1000, opts.signal);
    return { waitedS: elapsed(), converged: false, pagesSharing: await readPagesSharing() };
  }
  if (!opts.ksmRunning) return { waitedS: 0, converged: true, pagesSharing: await readPagesSharing() };
  const startScans = (await readProgress()).fullScans;
  const history: [number, number][] = [];
  const pollS = Math.max(0.2, Math.min(opts.pollS, wait.windowS / 2));
  for (;;) {
    const progress = await readProgress();
    const passesDone = progress.fullScans - startScans >= minFullScans;
    // The window only starts once enough passes are done; earlier history says nothing.
    if (passesDone) history.push([elapsed(), progress.pagesSharing]);
    if (passesDone && hasConverged(history, wait.windowS, wait.epsilonPct)) return { waitedS: elapsed(), converged: true, pagesSharing: history[history.length - 1][1] };
    if (elapsed() >= wait.maxS) return { waitedS: elapsed(), converged: false, pagesSharing: progress.pagesSharing };
    await sleep(Math.min(pollS, Math.max(0, wait.maxS - elapsed())) * 1000, opts.signal);
  }
}
