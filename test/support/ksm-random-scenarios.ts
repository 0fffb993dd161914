/**
 * Randomized differential scenarios (issue 13): small seeded KSM scenarios run through the kernel and
 * the model by test/system/emulated-trace-suite.test.ts exactly as the hand-written ones. Deterministic
 * from (seed, index); the name `rand-<seed>-<index>` is enough to regenerate a scenario that disagreed.
 * Not tuned to avoid the tree-shape effects of docs/policy.md §8: exits and writes land at any batch.
 */
import type { KsmScenario } from '../../src/policy/scenario.ts';
import { seeded } from '../campaign/support/double-testbed.ts';

export const RANDOM_SEED = 13;
export const RANDOM_COUNT = 50;

const rng = seeded;

export function randomScenario(seed: number, index: number): KsmScenario {
  const r = rng(seed * 1_000_003 + index);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const nProcs = int(2, 5);
  const pool = int(6, 20); // shared content ids 1..pool: overlaps between and inside instances
  const procs = Array.from({ length: nProcs }, () => {
    const n = int(4, 16);
    const contents = Array.from({ length: n }, (_, k) => (r() < 0.75 ? int(1, pool) : 1000 + index * 100 + k));
    return { node: int(0, 1), contents };
  });
  const pagesToScan = pick([3, 4, 5, 8]);
  const total = procs.reduce((a, p) => a + p.contents.length, 0);
  const batchesPerPass = Math.ceil(total / pagesToScan);
  const nInitial = int(1, nProcs);
  const initial = Array.from({ length: nInitial }, (_, i) => i);
  const endPass = int(3, 5);
  const events: KsmScenario['events'] = [];
  for (let i = nInitial; i < nProcs; i++) events.push({ at: r() < 0.6 ? { batch: int(1, batchesPerPass * 2) } : { pass: int(1, 2) }, action: { kind: 'register', proc: i } });
  const nWrites = int(0, 4);
  for (let w = 0; w < nWrites; w++) {
    const proc = int(0, nInitial - 1); // registered from the start: always live unless it exited
    const page = int(0, procs[proc]!.contents.length - 1);
    const content = r() < 0.4 ? procs[proc]!.contents[page]! : r() < 0.5 ? int(1, pool) : 50_000 + index * 10 + w;
    events.push({ at: r() < 0.7 ? { pass: int(1, endPass - 1) } : { batch: int(1, batchesPerPass * 2) }, action: { kind: 'write', proc, page, content } });
  }
  if (nInitial >= 3 && r() < 0.35) {
    const proc = nInitial - 1;
    const idx = events.findIndex((e) => e.action.kind === 'write' && e.action.proc === proc);
    if (idx < 0) events.push({ at: r() < 0.5 ? { batch: int(1, batchesPerPass * 2) } : { pass: int(1, endPass - 1) }, action: { kind: 'exit', proc } });
  }
  return {
    name: `rand-${seed}-${index}`,
    family: 0,
    knobs: { pages_to_scan: pagesToScan, merge_across_nodes: r() < 0.75 ? 1 : 0, max_page_sharing: pick([2, 3, 256, 256]), smart_scan: 0, stable_node_chains_prune_millisecs: pick([0, 3_600_000]) },
    procs,
    initial,
    events,
    endPass,
  };
}

export function randomScenarios(seed = RANDOM_SEED, count = RANDOM_COUNT): KsmScenario[] {
  return Array.from({ length: count }, (_, i) => randomScenario(seed, i));
}
