/**
 * Experiment specs (experiments/<name>.yaml, `kind: experiment`) and campaign specs
 * (`kind: campaign`, a list of experiments). Validated with zod; defaults follow the paper;
 * `follows: artifact` switches the two timeline choices where the artifact's scripts differ
 * (VM stagger 10 s instead of 60 s; sequential timed phases for MySQL and RandomAccess).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { METRICS } from '../core/metrics.ts';
import { KERNEL_MODES } from '../core/scenario.ts';
import { getWorkload } from '../workloads/index.ts';
import { PAPER_WORKLOAD_NAMES, WORKLOAD_NAMES } from '../workloads/types.ts';
import { durationS, parseWith, readYaml } from './config-error.ts';

export const FIGURES = ['3a', '3b', '4', '6a', '6b', 'table2', '7', 'table3', '8a', '8b', '8c', '9'] as const;
export type FigureName = (typeof FIGURES)[number];
export const MONITORS = ['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'perf-dram', 'throughput'] as const;

/** Stagger between instance starts: the paper says one minute, the artifact's scripts sleep 10 s. */
export const STAGGER_S = { paper: 60, artifact: 10 } as const;

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'use letters, digits and _ . : -');
const configId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, 'use letters, digits and _ . : / -');
const paramValue = z.union([z.string(), z.number(), z.boolean()]);

/** The KSM knobs are unsigned int (pages_to_scan, sleep_millisecs) or int (max_page_sharing) in the kernel. */
export const UINT_MAX = 2 ** 32 - 1;
export const INT_MAX = 2 ** 31 - 1;
/** Iterations per configuration at most: every iteration is a step of hours on a real testbed. */
export const MAX_ITERATIONS = 1000;
/** A KSM knob is a plain file name in /sys/kernel/mm/ksm (and its value one line without spaces). */
export const KNOB_NAME = /^[a-z][a-z0-9_]{0,63}$/;
export const knobsSchema = z
  .record(
    z.string().regex(KNOB_NAME, 'a KSM knob is a plain file name in /sys/kernel/mm/ksm: lowercase letters, digits and _'),
    z
      .union([z.string(), z.number().finite()])
      .transform(String)
      .refine((v) => /^[A-Za-z0-9_.,:+-]{1,256}$/.test(v), { message: 'a knob value is one word (letters, digits and _ . , : + -), as written to its sysfs file' }),
  )
  .default({});
const iterationsSchema = z.number().int().min(1, 'iterations must be at least 1').max(MAX_ITERATIONS, `iterations must be at most ${MAX_ITERATIONS} (each is a step per configuration and mode)`);

/**
 * Adaptive repetition (docs/campaigns.md): `iterations` is the cap; iterations after
 * `minIterations` run only while the 95% CI of `metric` (per instance, src/results/stats.ts) is
 * wider than `ciPct` % of its mean. Checked in checkAdaptive (ConfigError naming the key).
 */
const adaptiveSchema = z
  .object({
    metric: z.string().min(1),
    ciPct: z.number({ invalid_type_error: 'expected a percentage of the mean' }),
    minIterations: z.number().int().default(2),
  })
  .strict();
export type AdaptiveSpec = z.output<typeof adaptiveSchema>;

const instanceSchema = z
  .object({
    name,
    kind: z.enum(['vm', 'process']).default('vm'),
    node: z.number().int().min(0),
    vcpus: z.number().int().positive(),
    memoryGiB: z
      .number()
      .positive()
      .finite()
      .refine((g) => Math.round(g * 1024) >= 1, { message: 'rounds to 0 MiB (instances get whole MiB): at least 1/1024 GiB' }),
    nice: z.number().int().min(-20).max(19).default(0),
    template: z.string().min(1).nullable().default(null),
  })
  .strict();

const instanceOverrideSchema = z
  .object({ node: z.number().int().min(0).optional(), nice: z.number().int().min(-20).max(19).optional() })
  .strict();

const mergeWaitSchema = z.union([
  z.object({ fixedS: durationS(0) }).strict(),
  z
    .object({
      converged: z
        .object({
          maxS: durationS(),
          windowS: durationS().default(60),
          epsilonPct: z.number().positive().max(100).default(1),
        })
        .strict()
        .refine((c) => c.windowS <= c.maxS, { message: 'windowS must not exceed maxS', path: ['windowS'] }),
    })
    .strict(),
]);

const timelineSchema = z
  .object({
    staggerS: durationS(0).optional(),
    staggerFrom: z.enum(['launch', 'workload']).default('launch'),
    ksmdStart: z.enum(['step', 'all-registered']).default('step'),
    mergeWait: mergeWaitSchema.default({ converged: { maxS: 1800, windowS: 60, epsilonPct: 1 } }),
    timedPhases: z.enum(['concurrent', 'sequential']).optional(),
    samplePeriodS: durationS().default(10),
    maxDurationS: durationS().default(4 * 3600),
  })
  .strict();

const ksmSchema = z
  .object({
    pagesToScan: z.number().int().positive().max(UINT_MAX, `pages_to_scan is an unsigned int in the kernel: at most ${UINT_MAX}`).default(1000),
    sleepMillisecs: z.number().int().min(0).max(UINT_MAX, `sleep_millisecs is an unsigned int in the kernel: at most ${UINT_MAX}`).default(100),
    mergeAcrossNodes: z.boolean().default(true),
    maxPageSharing: z.number().int().min(2).max(INT_MAX, `max_page_sharing is an int in the kernel: at most ${INT_MAX}`).default(256),
    /** nuKSM forest (nuKSM_MultiTree): MiB of memory per tree; applied to nuksm-* modes only. */
    forestMibPerTree: z.number().int().positive().max(INT_MAX).nullable().default(null),
    extraKnobs: knobsSchema,
  })
  .strict();

const memoryHogSchema = z
  .object({
    node: z.number().int().min(0),
    stepGiB: z.number().positive().finite(),
    everyS: durationS(),
    maxGiB: z.number().positive().finite(),
    startAtS: durationS(0).default(0),
  })
  .strict()
  .refine((h) => h.stepGiB <= h.maxGiB, { message: 'stepGiB must not exceed maxGiB', path: ['stepGiB'] });

const configurationSchema = z
  .object({
    id: configId,
    workload: z.enum(WORKLOAD_NAMES),
    params: z.record(z.string(), paramValue).default({}),
    instances: z.record(z.string(), instanceOverrideSchema).default({}),
    timedPhases: z.enum(['concurrent', 'sequential']).optional(),
    mergeWait: mergeWaitSchema.optional(),
    memoryHog: memoryHogSchema.nullable().default(null),
    /** Expected duration of one instance's timed phase on the paper's server (for `nuksm plan`). */
    estimatedTimedS: durationS(),
    /** Expected duration of the untimed phases (install, load, prepare). */
    estimatedPrepareS: durationS(0).default(60),
  })
  .strict();

export const experimentSpecSchema = z
  .object({
    kind: z.literal('experiment'),
    name,
    description: z.string().default(''),
    follows: z.enum(['paper', 'artifact']).default('paper'),
    figures: z.array(z.enum(FIGURES)).min(1),
    kernelModes: z.array(z.enum(KERNEL_MODES)).min(1),
    iterations: iterationsSchema.default(1),
    /** Adaptive repetition: `iterations` is then the cap (adaptiveSchema). */
    adaptive: adaptiveSchema.nullable().default(null),
    /** More vCPUs on a node than it has CPUs (in one configuration) is refused unless this is set. */
    allowVcpuOvercommit: z.boolean().default(false),
    ksm: ksmSchema.default({}),
    instances: z.array(instanceSchema).min(1),
    timeline: timelineSchema.default({}),
    monitors: z.array(z.enum(MONITORS)).default(['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement']),
    configurations: z.array(configurationSchema).min(1),
  })
  .strict();

export const campaignSpecSchema = z
  .object({
    kind: z.literal('campaign'),
    name,
    description: z.string().default(''),
    /** Experiment spec names (experiments/<name>.yaml) or paths relative to this file. */
    experiments: z.array(z.string().min(1)).min(1),
    iterations: iterationsSchema.optional(),
    seed: z.number().int().min(0).default(1),
    /** 'abba': alternate the kernel order across iterations (mode A,B then B,A) to spread drift. */
    interleave: z.enum(['none', 'abba']).default('none'),
  })
  .strict();

export type ExperimentSpecInput = z.input<typeof experimentSpecSchema>;
export type ExperimentSpec = z.output<typeof experimentSpecSchema> & { file: string };
export type CampaignSpec = z.output<typeof campaignSpecSchema> & { file: string; specs: ExperimentSpec[] };

/**
 * The configuration id is what figures show in their `benchmark` column, so it must not name a
 * benchmark that did not run: an id mentioning a paper benchmark (xsbench, mysql, btree,
 * randomaccess, cg) must run that benchmark, or say `native` when it runs the stand-in.
 */
export function misleadingConfigId(id: string, workload: string): string | null {
  const tokens = id.toLowerCase().split(/[^a-z0-9]+/);
  const named = PAPER_WORKLOAD_NAMES.filter((w) => tokens.includes(w));
  const native = workload.endsWith('-native');
  for (const w of named) {
    if (native ? !tokens.includes('native') || !workload.startsWith(`${w}-`) : w !== workload) {
      return `the id names '${w}' but the configuration runs '${workload}'; figures would label ${workload}'s rows as ${w} (name it after what runs${native ? `, e.g. '${workload}'` : ''})`;
    }
  }
  return null;
}

/**
 * The adaptive keys of an experiment against its cap. `capSource` names where the cap came from
 * when it is not the spec's own `iterations` (a campaign file's `iterations`, the --iterations flag).
 */
export function checkAdaptive(spec: ExperimentSpec, capSource?: { file: string; keyPath: string }): void {
  const a = spec.adaptive;
  if (!a) return;
  const f = spec.file;
  if (!(a.metric in METRICS)) throw new ConfigError(f, 'adaptive.metric', `unknown metric '${a.metric}' (not in src/core/metrics.ts; e.g. runtime_s, throughput_ops, memory_saved_gib)`);
  if (!Number.isFinite(a.ciPct) || a.ciPct <= 0) throw new ConfigError(f, 'adaptive.ciPct', `must be a finite percentage of the mean above 0, got ${String(a.ciPct)}`);
  if (a.minIterations < 2) throw new ConfigError(f, 'adaptive.minIterations', `must be at least 2 (a confidence interval needs two iterations), got ${a.minIterations}`);
  if (a.minIterations > spec.iterations) {
    const why = `adaptive.minIterations ${a.minIterations} is more than the cap of ${spec.iterations} iterations`;
    if (capSource) throw new ConfigError(capSource.file, capSource.keyPath, `${why} it sets for experiment '${spec.name}' (${f})`);
    throw new ConfigError(f, 'adaptive.minIterations', `${why} (iterations is the cap)`);
  }
}

function checkExperiment(spec: ExperimentSpec): void {
  const f = spec.file;
  checkAdaptive(spec);
  const names = new Set<string>();
  spec.instances.forEach((inst, i) => {
    if (names.has(inst.name)) throw new ConfigError(f, `instances[${i}].name`, `duplicate instance name '${inst.name}'`);
    names.add(inst.name);
    if (inst.kind === 'vm' && inst.template === null) throw new ConfigError(f, `instances[${i}].template`, 'a VM needs a template (vm-templates/<name>)');
  });
  const ids = new Set<string>();
  spec.configurations.forEach((c, i) => {
    if (ids.has(c.id)) throw new ConfigError(f, `configurations[${i}].id`, `duplicate configuration id '${c.id}'`);
    ids.add(c.id);
    const lie = misleadingConfigId(c.id, c.workload);
    if (lie) throw new ConfigError(f, `configurations[${i}].id`, lie);
    for (const inst of Object.keys(c.instances)) {
      if (!names.has(inst)) throw new ConfigError(f, `configurations[${i}].instances.${inst}`, `no instance named '${inst}' (known: ${[...names].join(', ')})`);
    }
  });
  const t = spec.timeline;
  const stagger = t.staggerS ?? STAGGER_S[spec.follows];
  const lastStart = (spec.instances.length - 1) * stagger;
  if (lastStart >= t.maxDurationS) {
    throw new ConfigError(f, t.staggerS !== undefined ? 'timeline.staggerS' : 'follows', `the last of ${spec.instances.length} instances would start at ${lastStart} s (${stagger} s apart), at or after the step's limit maxDurationS ${t.maxDurationS} s`);
  }
  spec.configurations.forEach((c, i) => {
    if (c.memoryHog && c.memoryHog.startAtS >= t.maxDurationS) {
      throw new ConfigError(f, `configurations[${i}].memoryHog.startAtS`, `${c.memoryHog.startAtS} s is at or after the step's limit maxDurationS ${t.maxDurationS} s`);
    }
    checkWorkloadParams(spec, c, i);
  });
  const modes = new Set<string>();
  spec.kernelModes.forEach((m, i) => {
    if (modes.has(m)) throw new ConfigError(f, `kernelModes[${i}]`, `kernel mode '${m}' listed twice`);
    modes.add(m);
    // The baseline is stock KSM with merge_across_nodes=0: with the spec's own setting at 0, every mode runs that way.
    if (m === 'ksm-node-local' && !spec.ksm.mergeAcrossNodes) {
      throw new ConfigError(f, `kernelModes[${i}]`, "'ksm-node-local' is stock KSM with merge_across_nodes=0, but ksm.mergeAcrossNodes is false, so 'ksm' already runs that way: drop one of them");
    }
    const written = spec.ksm.extraKnobs.merge_across_nodes;
    if (m === 'ksm-node-local' && written !== undefined && written !== '0') {
      throw new ConfigError(f, 'ksm.extraKnobs.merge_across_nodes', `'ksm-node-local' runs with merge_across_nodes=0; the extra knobs would write ${written} over it`);
    }
  });
}

/**
 * A configuration's workload parameters, checked against the workload's own schema now rather
 * than when the step runs hours later: unknown names, strings where numbers go ('4GiB'), values out
 * of range. `variant` (small | paper) picks the defaults, as the step engine does; the variant
 * does not change what is valid. A given footprint must fit every instance that runs it.
 */
function checkWorkloadParams(spec: ExperimentSpec, c: ExperimentSpec['configurations'][number], i: number): void {
  const f = spec.file;
  const { variant, ...given } = c.params;
  if (variant !== undefined && variant !== 'small' && variant !== 'paper') {
    throw new ConfigError(f, `configurations[${i}].params.variant`, `'${String(variant)}' is not a variant (small | paper)`);
  }
  try {
    getWorkload(c.workload).resolveParams(variant ?? 'paper', given, f);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(f, `configurations[${i}].${err.keyPath}`, String(err.details.why ?? err.message));
    throw err;
  }
  const footprint = given.footprintGiB;
  if (typeof footprint === 'number') {
    spec.instances.forEach((inst) => {
      if (footprint > inst.memoryGiB) {
        throw new ConfigError(f, `configurations[${i}].params.footprintGiB`, `${footprint} GiB does not fit instance '${inst.name}' (memoryGiB ${inst.memoryGiB})`);
      }
    });
  }
}

export function parseExperimentSpec(file: string, data: unknown): ExperimentSpec {
  const spec = { ...parseWith(file, experimentSpecSchema, data), file };
  checkExperiment(spec);
  return spec;
}

/** `paper` → experiments/paper.yaml; a path is taken as is. */
export function resolveSpecPath(nameOrPath: string, experimentsDir: string, relativeTo?: string): string {
  if (nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml') || nameOrPath.includes('/')) {
    if (isAbsolute(nameOrPath)) return nameOrPath;
    return relativeTo ? resolve(dirname(relativeTo), nameOrPath) : resolve(nameOrPath);
  }
  return join(experimentsDir, `${nameOrPath}.yaml`);
}

/**
 * Loads a campaign: either a `kind: campaign` file (with its experiments) or a single
 * experiment file, which becomes a campaign of one.
 */
export function loadCampaignSpec(nameOrPath: string, experimentsDir = 'experiments'): CampaignSpec {
  const file = resolveSpecPath(nameOrPath, experimentsDir);
  if (!existsSync(file)) throw new ConfigError(file, '', `no such spec (looked for '${nameOrPath}' in ${experimentsDir}/)`);
  const data = readYaml(file);
  const kind = (data as { kind?: unknown } | null)?.kind;
  if (kind === 'experiment') {
    const spec = parseExperimentSpec(file, data);
    return { kind: 'campaign', name: spec.name, description: spec.description, experiments: [spec.name], seed: 1, interleave: 'none', file, specs: [spec] };
  }
  if (kind !== 'campaign') throw new ConfigError(file, 'kind', "must be 'experiment' or 'campaign'");
  const campaign = parseWith(file, campaignSpecSchema, data);
  const seen = new Set<string>();
  const specs = campaign.experiments.map((ref, i) => {
    const path = resolveSpecPath(ref, dirname(file), file);
    if (!existsSync(path)) throw new ConfigError(file, `experiments[${i}]`, `no experiment spec '${ref}' (${path})`);
    const d = readYaml(path);
    if ((d as { kind?: unknown } | null)?.kind !== 'experiment') throw new ConfigError(path, 'kind', "must be 'experiment' (campaigns do not nest)");
    const spec = parseExperimentSpec(path, d);
    if (seen.has(spec.name)) throw new ConfigError(file, `experiments[${i}]`, `experiment '${spec.name}' included twice`);
    seen.add(spec.name);
    if (campaign.iterations === undefined) return spec;
    const capped = { ...spec, iterations: campaign.iterations };
    checkAdaptive(capped, { file, keyPath: 'iterations' });
    return capped;
  });
  return { ...campaign, file, specs };
}
