/**
 * Adaptive repetition (docs/campaigns.md "Adaptive repetition"). The plan holds every iteration up
 * to the spec's cap; the iterations after `minIterations` carry a StepCondition. When the runner
 * reaches one, it reads the configuration's done iterations from the store and calls decide(): if
 * every target is met, the step becomes 'not-needed' with the decision as its reason (one journal
 * transaction, Journal.decideConditional); otherwise it runs.
 *
 * A configuration is the step key: experiment content × configuration × kernel mode (× kernel when
 * the mode runs on several), so a key's steps are exactly its iterations. The CI is the one of
 * src/results/stats.ts (summarizeMetric: the catalogue's mean type, Student t 95%).
 */
import { summarizeMetric } from '../results/stats.ts';

/** One experiment's stopping rule for a step (several when experiments share the step). */
export interface AdaptiveTarget {
  experiment: string;
  metric: string;
  /** Stop when the 95% CI half-width is at most this percentage of the mean. */
  ciPct: number;
  minIterations: number;
}

/** On a planned step that runs only while its configuration's CI is too wide. */
export interface StepCondition {
  /** The step is not needed when every target is met (an experiment still short of its target needs it). */
  targets: AdaptiveTarget[];
}

export interface InstanceSpread {
  instance: string;
  n: number;
  mean: number;
  ci95: number | null;
  /** ci95 / |mean| · 100; null when there is no CI (n < 2) or the mean is 0 with a spread. */
  ciPct: number | null;
}

export interface TargetCheck extends AdaptiveTarget {
  met: boolean;
  /** Per instance that has once-per-run values of the metric in the done iterations. */
  instances: InstanceSpread[];
  why: string;
}

export interface AdaptiveDecision {
  needed: boolean;
  /** Done iterations of the configuration the decision was made on. */
  n: number;
  checks: TargetCheck[];
  /** One line for status, the report and the log. */
  reason: string;
}

/** Once-per-run values (t and node null) of a metric in the done iterations, by instance, in iteration order. */
export type DoneValues = (metric: string) => Map<string, number[]>;

const pct = (x: number | null) => (x === null ? 'no CI' : `${Number(x.toPrecision(3))}%`);

function check(target: AdaptiveTarget, values: Map<string, number[]>): TargetCheck {
  const instances: InstanceSpread[] = [...values.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([instance, xs]) => {
      const s = summarizeMetric(target.metric, xs)!;
      const rel = s.ci95 === null ? null : s.ci95 === 0 ? 0 : s.mean === 0 ? null : (100 * s.ci95) / Math.abs(s.mean);
      return { instance, n: s.n, mean: s.mean, ci95: s.ci95, ciPct: rel };
    });
  const base = { ...target, instances };
  if (instances.length === 0) return { ...base, met: false, why: `no ${target.metric} value in the done iterations` };
  const short = instances.find((i) => i.n < target.minIterations);
  if (short) return { ...base, met: false, why: `${short.instance} has ${short.n} ${target.metric} value(s), fewer than minIterations ${target.minIterations}` };
  const wide = instances.filter((i) => i.ciPct === null || i.ciPct > target.ciPct);
  const worst = instances.reduce((a, b) => ((b.ciPct ?? Infinity) > (a.ciPct ?? Infinity) ? b : a));
  const text = `${target.metric} 95% CI ${pct(worst.ciPct)} of the mean (${worst.instance}, n=${worst.n})`;
  return wide.length ? { ...base, met: false, why: `${text} > ${target.ciPct}%` } : { ...base, met: true, why: `${text} ≤ ${target.ciPct}%${instances.length > 1 ? ' (widest instance)' : ''}` };
}

/** Whether a conditional step must run, from its configuration's done iterations. */
export function decide(condition: StepCondition, doneIterations: number, values: DoneValues): AdaptiveDecision {
  const checks = condition.targets.map((t) => check(t, values(t.metric)));
  const needed = checks.some((c) => !c.met);
  const shown = needed ? checks.filter((c) => !c.met) : checks;
  const reason = `${needed ? 'needed' : 'not needed'} after ${doneIterations} done iteration(s): ${shown.map((c) => `${condition.targets.length > 1 ? `${c.experiment}: ` : ''}${c.why}`).join('; ')}`;
  return { needed, n: doneIterations, checks, reason };
}

/**
 * The condition of iteration `iteration` of a step that the experiments share: null (always runs)
 * when some experiment needs it unconditionally (within its iterations and not adaptive, or at most
 * its minIterations); else a target for every experiment whose adaptive range holds it.
 */
export function conditionOf(iteration: number, experiments: readonly { name: string; iterations: number; adaptive: { metric: string; ciPct: number; minIterations: number } | null }[]): StepCondition | null {
  const targets: AdaptiveTarget[] = [];
  for (const e of experiments) {
    if (iteration > e.iterations) continue;
    if (!e.adaptive || iteration <= e.adaptive.minIterations) return null;
    targets.push({ experiment: e.name, metric: e.adaptive.metric, ciPct: e.adaptive.ciPct, minIterations: e.adaptive.minIterations });
  }
  return targets.length ? { targets } : null;
}
