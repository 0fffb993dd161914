import type { KsmCounters, KsmModelConfig, MergeEvent, MmRegistration, WakeStats } from './types.ts';

export function defaultKsmModelConfig(overrides: Partial<KsmModelConfig> = {}): KsmModelConfig {
  return {
    nodes: 2,
    pagesToScan: 100,
    sleepMillisecs: 20,
    mergeAcrossNodes: true,
    maxPageSharing: 256,
    compareOrder: 'upto-6.10',
    policy: 'ksm',
    forestPagesPerTree: null,
    seed: 1,
    ...overrides,
  };
}

/** Work in progress: the API is final, the implementation lands in the next commits. */
export class KsmModel {
  onMerge: ((e: MergeEvent) => void) | null = null;
  totalComparisons = 0;
  constructor(readonly cfg: KsmModelConfig) {}
  registerMm(_reg: MmRegistration): number { throw new Error('KsmModel: not implemented yet'); }
  unregisterMm(_mmId: number): void { throw new Error('KsmModel: not implemented yet'); }
  writePage(_mmId: number, _page: number, _newContent: number): void { throw new Error('KsmModel: not implemented yet'); }
  wake(): WakeStats { throw new Error('KsmModel: not implemented yet'); }
  counters(): KsmCounters { throw new Error('KsmModel: not implemented yet'); }
  pageNode(_mmId: number, _page: number): number { throw new Error('KsmModel: not implemented yet'); }
  isMerged(_mmId: number, _page: number): boolean { throw new Error('KsmModel: not implemented yet'); }
  mergedPagesPerNode(_mmId: number): number[] { throw new Error('KsmModel: not implemented yet'); }
}
