export type { Monitor, MonitorName, MonitoredInstance } from './types.ts';
export { startSampling, type Sampling, type SamplingOptions } from './sampler.ts';
export { KsmCountersMonitor, ksmCounterSamples, pageSizeOf } from './ksm.ts';
export { MeminfoMonitor, meminfoSamples } from './meminfo.ts';
export { KsmdCpuMonitor, findPidByComm } from './ksmd-cpu.ts';
export { NumaPlacementMonitor, placementSamples, readNumaPlacement } from './numa-placement.ts';
export { KsmPlacementMonitor, readKsmPlacement, ksmPlacementSamples, parseKsmPlacementOutput, type KsmPlacement } from './ksm-placement.ts';
export { parseMeminfo, parseProcStat, parseUptime, parseNumaMaps, cpuPercent, type ProcStat } from './parse.ts';
export { makeSample } from './sample.ts';
