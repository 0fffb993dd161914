// Reference model of Linux KSM and the nuKSM placement policies (PACT 2021). Public API.
export type {
  PlacementPolicy,
  CompareOrder,
  KsmModelConfig,
  MmRegistration,
  WakeStats,
  KsmCounters,
  MergeEvent,
} from './types.ts';
export { NOT_PRESENT } from './types.ts';
export { KsmModel, defaultKsmModelConfig } from './model.ts';
// Seeded randomness for callers that must draw like the model does (the model testbed's run-to-run noise).
export { SplitMix32 } from './random.ts';
export { mix32 } from './hash.ts';
export {
  parseKsmTrace,
  parseTraceLine,
  mmIdsFromEnters,
  nodeOfPfnFromMemoryBlocks,
  compareMerges,
  compareTracedRun,
  replayInModel,
  registrationPoint,
  compareKeptPages,
  pageOwnersFromPagemaps,
  parsePagemapWords,
  parseNodeMemoryLinks,
  type TracedRun,
  type TracedRunComparison,
  type KeptPageComparison,
  type RegistrationPoint,
  type KernelMerge,
  type KsmEnter,
  type ParsedKsmTrace,
  type TraceLine,
  type MergeComparison,
  type MergeMismatch,
} from './trace.ts';
