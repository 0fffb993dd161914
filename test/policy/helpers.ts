import { KsmModel, defaultKsmModelConfig, type KsmModelConfig, type MmRegistration } from '../../src/policy/index.ts';

export function makeModel(overrides: Partial<KsmModelConfig> = {}): KsmModel {
  return new KsmModel(defaultKsmModelConfig(overrides));
}

/** An mm whose pages all sit on one node, with the given content ids. */
export function mmOnNode(name: string, node: number, contents: ArrayLike<number>, opts: { nice?: number; active?: ArrayLike<number> | number } = {}): MmRegistration {
  const n = contents.length;
  const active = new Uint8Array(n);
  if (typeof opts.active === 'number') active.fill(opts.active);
  else if (opts.active) active.set(opts.active);
  return { name, nice: opts.nice ?? 0, contents: Uint32Array.from(contents), nodes: new Uint8Array(n).fill(node), active };
}

/** Content ids first..first+n-1 (distinct pages). */
export function range(n: number, first = 0): number[] {
  return Array.from({ length: n }, (_, i) => first + i);
}

/** Wake until `passes` more full passes have ended. */
export function runPasses(model: KsmModel, passes: number): void {
  const target = model.counters().fullScans + passes;
  let guard = 0;
  while (model.counters().fullScans < target) {
    model.wake();
    if (++guard > 1e8) throw new Error('runPasses: no progress');
  }
}

export function share(perNode: number[], node: number): number {
  const total = perNode.reduce((a, b) => a + b, 0);
  return total === 0 ? NaN : perNode[node] / total;
}
