import type { Sample } from '../../core/sample.ts';

/** Monitor names used in scenarios (see the testbed contract). */
export type MonitorName = 'ksm' | 'meminfo' | 'ksmd-cpu' | 'numa-placement' | 'ksm-placement' | 'perf-dram';

/** A process observed by per-instance monitors: a QEMU process (VM) or a benchmark process. */
export interface MonitoredInstance {
  /** Instance name from the scenario (Sample.instance). */
  name: string;
  /** Workload name (Sample.workload). */
  workload: string;
  pid: number;
  /** The NUMA node the instance is meant to live on (for on/off-node shares). */
  node: number;
}

/**
 * A monitor is sampled on a fixed period by startSampling(). `t` is seconds since the step
 * started. start() takes a baseline (e.g. ksmd's CPU ticks), stop() returns once-per-run samples
 * (t = null) if the monitor has any.
 */
export interface Monitor {
  readonly name: MonitorName;
  start(): Promise<void>;
  sample(t: number): Promise<Sample[]>;
  stop(): Promise<Sample[]>;
}
