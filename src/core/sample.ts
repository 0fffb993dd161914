/**
 * One measurement, in tidy long form. Every testbed (model, emulated, physical) emits the same
 * shape; the campaign adds campaign/step/iteration/kernel-mode/testbed columns when storing it.
 */
export interface Sample {
  /** VM or process name from the scenario, or 'host' for host-wide metrics (KSM counters, MemFree). */
  instance: string;
  /** Workload name ('xsbench', 'mysql', …), or '' for host-wide metrics. */
  workload: string;
  /** A name from METRICS (src/core/metrics.ts). */
  metric: string;
  value: number;
  /** Must equal METRICS[metric].unit; checked when stored. */
  unit: string;
  /** Seconds since the step started, for time series; null for once-per-run results. */
  t: number | null;
  /** NUMA node the value refers to (per-node memory, per-node KSM pages), else null. */
  node: number | null;
}

export type SampleSink = (samples: Sample[]) => void;
