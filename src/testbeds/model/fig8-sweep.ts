/**
 * The Fig. 8 sensitivity sweep on the model (issue 13; bench/fig8-sweep.ts runs the grid): whether KSM and nuKSM
 * run out of memory as a function of VM-1's start, the host reserve per node and the cost of one comparison.
 *
 * Most of the grid is derived rather than simulated. The host reserve enters the simulation in one place only:
 * free memory = node − reserve − used. So two runs that differ only in the reserve see the same merges, with free
 * memory shifted by the difference, as long as the two make the same LRU decisions: reclaim sorts a node's pages
 * when its free memory is at or below the low watermark (simulation.ts LruState), which a shifted run may reach
 * at other ticks. deriveAtReserve replays the shift over a simulated run's trajectory and gives up (null) at the
 * first tick where the two runs' reclaim differs; such points are simulated. test/model/fig8-sweep.test.ts
 * checks derived points against direct runs.
 */
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { Sample } from '../../core/sample.ts';
import { fig8Scenario } from './scenarios.ts';
import { lowWatermarkGiB, simulateScenario, type SimulatedHost } from './simulation.ts';

export interface Fig8Point {
  mode: KernelMode;
  vm1StartS: number;
  hogStartS: number;
  reserveGiB: number;
  comparisonCostFactor: number;
}

export interface Fig8Outcome {
  oom: boolean;
  /** The sample time free memory reached zero on a node (the step stops there). */
  oomAtS: number | null;
  minFreeNode0GiB: number | null;
  savedAt900GiB: number | null;
  /** null: simulated at this reserve; else the reserve of the simulated run this outcome was derived from. */
  derivedFromReserveGiB: number | null;
}

/** What deriveAtReserve needs of a simulated run: free memory per node at every sample tick, up to its end. */
export interface Fig8Trajectory {
  reserveGiB: number;
  t: number[];
  /** [tick][node], as the simulation's meminfo monitor reported it (clamped at 0, which only the OOM tick can be). */
  freeGiB: number[][];
  watermarkGiB: number[];
  /** memory_saved_gib at each tick. */
  savedGiB: number[];
}

/** The step of a sweep point: experiments/fig8.yaml's, with VM-1's start and the hog's start moved. */
export function fig8PointScenario(p: Fig8Point): Scenario {
  const base = fig8Scenario(p.mode);
  return {
    ...base,
    instances: base.instances.map((i, k) => (k === 1 ? { ...i, startAtS: p.vm1StartS } : i)),
    memoryHog: { ...base.memoryHog!, startAtS: p.hogStartS },
  };
}

/**
 * Simulates one point until the hog's last allocation, or 900 s (the paper's "by 900 s" reading) if later: after
 * the last allocation nothing allocates any more, free memory only grows as ksmd merges, so the OOM outcome is
 * decided by then.
 */
export async function simulateFig8Point(p: Fig8Point, host: SimulatedHost): Promise<{ outcome: Fig8Outcome; trajectory: Fig8Trajectory }> {
  const scenario = fig8PointScenario(p);
  const hog = scenario.memoryHog!;
  const lastAllocS = hog.startAtS + (Math.ceil(hog.maxGiB / hog.stepGiB) - 1) * hog.everyS + hog.stepGiB + 5;
  const samples: Sample[] = [];
  const summary = await simulateScenario(scenario, host, (s) => samples.push(...s), {
    hostReservedGiBPerNode: p.reserveGiB,
    comparisonCostFactor: p.comparisonCostFactor,
    stopAtS: Math.max(900, lastAllocS),
  });
  const nodes = host.memoryGiBPerNode.length;
  const byTick = new Map<number, number[]>();
  const savedAt = new Map<number, number>();
  for (const s of samples) {
    if (s.t === null) continue;
    if (s.metric === 'memory_saved_gib') savedAt.set(s.t, s.value);
    if (s.metric !== 'mem_free_gib' || s.node === null) continue;
    let row = byTick.get(s.t);
    if (!row) byTick.set(s.t, (row = new Array<number>(nodes).fill(Number.NaN)));
    row[s.node] = s.value;
  }
  const t = [...byTick.keys()].sort((a, b) => a - b);
  const trajectory: Fig8Trajectory = {
    reserveGiB: p.reserveGiB,
    t,
    freeGiB: t.map((x) => byTick.get(x)!),
    watermarkGiB: lowWatermarkGiB(host.memoryGiBPerNode),
    savedGiB: t.map((x) => savedAt.get(x) ?? Number.NaN),
  };
  const node0 = trajectory.freeGiB.map((r) => r[0]!);
  return {
    outcome: { oom: summary.oom, oomAtS: summary.oomAtS, minFreeNode0GiB: node0.length > 0 ? Math.min(...node0) : null, savedAt900GiB: savedBy900(trajectory, t.length - 1), derivedFromReserveGiB: null },
    trajectory,
  };
}

/**
 * The outcome at a larger reserve, from a run simulated at a smaller one (see the file comment), or null when
 * the two runs' reclaim would differ at some tick before the outcome is decided.
 */
export function deriveAtReserve(run: Fig8Trajectory, reserveGiB: number): Fig8Outcome | null {
  const shift = reserveGiB - run.reserveGiB;
  if (!(shift >= 0)) throw new RangeError(`deriveAtReserve: reserve ${reserveGiB} GiB is below the simulated run's ${run.reserveGiB} GiB`);
  let minNode0 = Infinity;
  for (let k = 0; k < run.t.length; k++) {
    const base = run.freeGiB[k]!;
    const shifted = base.map((f) => f - shift);
    minNode0 = Math.min(minNode0, Math.max(0, shifted[0]!));
    // The step stops at this tick: what reclaim would do here no longer matters.
    if (shifted.some((f) => f <= 0)) return { oom: true, oomAtS: run.t[k]!, minFreeNode0GiB: minNode0, savedAt900GiB: savedBy900(run, k), derivedFromReserveGiB: run.reserveGiB };
    if (shifted.some((f, n) => f <= run.watermarkGiB[n]! !== base[n]! <= run.watermarkGiB[n]!)) return null;
  }
  return { oom: false, oomAtS: null, minFreeNode0GiB: minNode0 === Infinity ? null : minNode0, savedAt900GiB: savedBy900(run, run.t.length - 1), derivedFromReserveGiB: run.reserveGiB };
}

/** Memory saved at the last tick up to 900 s and up to tick `last` (where the step stopped). */
function savedBy900(run: Fig8Trajectory, last: number): number | null {
  for (let k = last; k >= 0; k--) if (run.t[k]! <= 900) return run.savedGiB[k]!;
  return null;
}
