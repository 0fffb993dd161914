import { METRICS, type MetricName } from '../../core/metrics.ts';
import type { Sample } from '../../core/sample.ts';

/** A Sample with the catalogue's unit for the metric. */
export function makeSample(instance: string, workload: string, metric: MetricName, value: number, t: number | null, node: number | null = null): Sample {
  return { instance, workload, metric, value, unit: METRICS[metric].unit, t, node };
}

export const GIB = 1024 ** 3;
export const MIB = 1024 ** 2;
