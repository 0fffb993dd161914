export { loadEventSets, eventSet, selectEventSet, parseCpuinfo, perfEventArgs, EVENT_SETS_FILE, type PerfEvent, type PerfEventSet, type CpuIdentity } from './events.ts';
export { parsePerfStatIntervals, totalsByEvent, type PerfIntervalRow, type EventTotal } from './parse.ts';
export { PerfDramMonitor, dramTotals, dramSamples, type DramTotals, type PerfDramOptions } from './monitor.ts';
