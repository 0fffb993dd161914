export { KsmControl, type KsmControlOptions, type KsmCounters, type KsmKnobValues, KSM_SYSFS, KSM_STAT_FILES, KNOBS_NEEDING_UNMERGE, parseGrepDump, countersFromDump, planKnobWrites, normalizeKnobValue } from './control.ts';
export { stepKsmKnobs } from './step-knobs.ts';
export { waitForMerge, hasConverged, type MergeProgress, type MergeWaitResult } from './merge-wait.ts';
