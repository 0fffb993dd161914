/** Helpers shared by the workload parsers and parameter resolvers. */
import { z } from 'zod';
import { ConfigError, HarnessError } from '../core/errors.ts';
import { METRICS, type MetricName } from '../core/metrics.ts';
import type { Sample } from '../core/sample.ts';
import type { ParseOptions, WorkloadName, WorkloadParams, WorkloadVariant } from './types.ts';

export function makeSample(workload: WorkloadName, metric: MetricName, value: number, opts: ParseOptions, t: number | null = null): Sample {
  return {
    instance: opts.instance ?? '',
    workload,
    metric,
    value,
    unit: METRICS[metric].unit,
    t: t === null ? null : t + (opts.tOffsetS ?? 0),
    node: null,
  };
}

/** The tail of the output is what usually explains a failure (FATAL lines, usage text). */
export function parseError(workload: WorkloadName, why: string, output: string): HarnessError {
  const tail = output.split('\n').slice(-15).join('\n');
  return new HarnessError('parse-error', `${workload}: ${why}`, { workload, outputTail: tail });
}

/** First capture group of `re` as a number; parse-error naming `what` when absent or not numeric. */
export function requireNumber(workload: WorkloadName, output: string, re: RegExp, what: string): number {
  const value = optionalNumber(output, re);
  if (value === null) throw parseError(workload, `no ${what} in the output (expected a line matching ${re})`, output);
  return value;
}

export function optionalNumber(output: string, re: RegExp): number | null {
  const m = re.exec(output);
  if (!m || m[1] === undefined) return null;
  const value = Number(m[1].replace(/,/g, ''));
  return Number.isFinite(value) ? value : null;
}

/**
 * Builds resolveParams for a workload: variant defaults overlaid with overrides, validated by a
 * strict zod schema so a misspelt parameter is a ConfigError rather than silently ignored.
 */
export function paramResolver<S extends z.ZodObject<z.ZodRawShape>>(
  workload: WorkloadName,
  schema: S,
  variants: Record<WorkloadVariant, WorkloadParams>,
): (variant: WorkloadVariant, overrides?: WorkloadParams, source?: string) => WorkloadParams {
  return (variant, overrides = {}, source = `workload ${workload}`) => {
    const base = variants[variant];
    if (!base) throw new ConfigError(source, 'variant', `unknown variant '${variant}' (known: paper, small)`);
    const result = schema.strict().safeParse({ ...base, ...overrides });
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const key = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(',') : '');
      throw new ConfigError(source, `params.${key}`, issue.message);
    }
    return result.data as WorkloadParams;
  };
}

/** Numbers read from WorkloadParams after resolveParams validated them. */
export function num(params: WorkloadParams, key: string): number {
  const v = params[key];
  if (typeof v !== 'number') throw new HarnessError('config', `parameter ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function str(params: WorkloadParams, key: string): string {
  const v = params[key];
  if (typeof v !== 'string') throw new HarnessError('config', `parameter ${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(params: WorkloadParams, key: string): boolean {
  const v = params[key];
  if (typeof v !== 'boolean') throw new HarnessError('config', `parameter ${key} must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

export const positiveInt = z.number().int().positive();
export const positive = z.number().positive();
