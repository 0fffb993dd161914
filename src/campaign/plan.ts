/**
 * The planner: experiment specs × testbed file → ordered steps (experiment × kernel mode ×
 * configuration × kernel of the mode × iteration). Identical steps requested by several experiments (Fig. 3 and
 * Fig. 6 both need KSM-off and KSM runs of the same benchmarks) run once and feed every figure.
 * Steps are grouped by kernel so each kernel is booted once (or once per iteration with ABBA
 * interleaving). The wall-time estimate is documented in docs/campaigns.md.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.ts';
import type { Implementation, InstanceSpec, KernelMode, KsmSettings, MergeWait, Scenario, WorkloadRun } from '../core/scenario.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import { conditionOf, type StepCondition } from './adaptive.ts';
import { STAGGER_S, type CampaignSpec, type ExperimentSpec, type FigureName } from './spec.ts';

/** Constants of the estimate (docs/campaigns.md). */
export const ESTIMATE = {
  vmBootS: 60, // the artifact's own fixed boot wait; our readiness probe is usually faster
  processStartS: 1,
  teardownS: 30,
  /** KSM needs about two full scans of the registered memory to merge identical pages (unstable, then stable tree). */
  scansToConverge: 2,
  pageBytes: 4096,
} as const;

export interface PlannedStep {
  stepId: string;
  seq: number;
  /** Content hash of what the step runs (plus the kernel when its mode runs on several); equal keys are one step. */
  key: string;
  scenario: Scenario;
  experiments: string[];
  figures: FigureName[];
  /** Kernel (testbed file `kernels` key) the step needs; null when the testbed lacks the mode. */
  kernel: string | null;
  boot: number | null;
  unsupported: string | null;
  estimateS: number;
  /** Which implementation produces the step's results (implementationOf). */
  implementation: Implementation;
  /**
   * Adaptive repetition: an iteration after the spec's minIterations runs only while its
   * configuration's CI is too wide (src/campaign/adaptive.ts); null (or absent in plans made
   * before adaptive repetition) when it always runs.
   */
  adaptive?: StepCondition | null;
}

export interface PlannedBoot {
  index: number;
  kernel: string;
  bootEntry: string;
  release: string;
  steps: number;
}

export interface PinEntry {
  experiment: string;
  configId: string;
  instance: string;
  kind: 'vm' | 'process';
  node: number;
  cpus: number[];
  memoryGiB: number;
  nice: number;
}

export interface Plan {
  campaign: string;
  spec: string;
  specFile: string;
  testbed: { file: string; name: string; kind: TestbedFile['kind'] };
  seed: number;
  interleave: 'none' | 'abba';
  steps: PlannedStep[];
  boots: PlannedBoot[];
  /** Reboots between kernels (the first boot is counted: the host may be on another kernel). */
  reboots: number;
  estimate: { stepsS: number; rebootsS: number; totalS: number };
  pinMap: PinEntry[];
}

/** The model testbed's rows come from the model; elsewhere the mode's `placement` decides (kernel unless userspace). */
export function implementationOf(tb: Pick<TestbedFile, 'kind' | 'modes'>, mode: KernelMode): Implementation {
  if (tb.kind === 'model') return 'model';
  return tb.modes[mode]?.placement === 'userspace' ? 'userspace' : 'kernel';
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Cross-file checks: what the spec asks of the testbed. Throws ConfigError naming the spec key. */
export function checkSpecAgainstTestbed(spec: ExperimentSpec, tb: TestbedFile): void {
  const nodes = new Map(tb.nodes.map((n) => [n.id, n]));
  const known = [...nodes.keys()].join(', ');
  spec.instances.forEach((inst, i) => {
    if (inst.kind === 'vm' && tb.kind === 'physical' && tb.guests === null) {
      throw new ConfigError(spec.file, `instances[${i}].kind`, `a VM needs the testbed's 'guests' (SSH access to the VMs), and ${tb.file} has none: it runs bare-metal process instances only`);
    }
    const node = nodes.get(inst.node);
    if (!node) throw new ConfigError(spec.file, `instances[${i}].node`, `node ${inst.node} does not exist in testbed ${tb.file} (nodes: ${known})`);
    if (inst.memoryGiB > node.memoryGiB) {
      throw new ConfigError(spec.file, `instances[${i}].memoryGiB`, `${inst.memoryGiB} GiB is more than node ${node.id} has (${node.memoryGiB} GiB in ${tb.file})`);
    }
    if (inst.vcpus > node.cpus.length) {
      throw new ConfigError(spec.file, `instances[${i}].vcpus`, `${inst.vcpus} vCPUs but node ${node.id} has ${node.cpus.length} CPUs in ${tb.file}`);
    }
  });
  checkVcpuOvercommit(spec, tb);
  spec.configurations.forEach((c, i) => {
    for (const [inst, o] of Object.entries(c.instances)) {
      if (o.node !== undefined && !nodes.has(o.node)) {
        throw new ConfigError(spec.file, `configurations[${i}].instances.${inst}.node`, `node ${o.node} does not exist in testbed ${tb.file} (nodes: ${known})`);
      }
    }
    if (c.memoryHog && !nodes.has(c.memoryHog.node)) {
      throw new ConfigError(spec.file, `configurations[${i}].memoryHog.node`, `node ${c.memoryHog.node} does not exist in testbed ${tb.file} (nodes: ${known})`);
    }
  });
  if (spec.monitors.includes('perf-dram') && tb.kind === 'physical' && tb.perfEventSet === 'none') {
    throw new ConfigError(spec.file, 'monitors', `'perf-dram' needs a perf event set, but ${tb.file} has perfEventSet: none`);
  }
}

/**
 * More VM vCPUs pinned to a node than it has CPUs, in any configuration (the VMs share the
 * node's CPUs), is refused unless the spec says `allowVcpuOvercommit: true`: the runs would
 * measure CPU contention, not memory placement. Processes (`kind: process`) share their node's
 * CPUs by design and are not counted.
 */
function checkVcpuOvercommit(spec: ExperimentSpec, tb: TestbedFile): void {
  if (spec.allowVcpuOvercommit) return;
  const cpusOf = new Map(tb.nodes.map((n) => [n.id, n.cpus.length]));
  const over = (nodeOf: (i: number) => number) => {
    const used = new Map<number, number>();
    for (let j = 0; j < spec.instances.length; j++) {
      if (spec.instances[j]!.kind !== 'vm') continue;
      const node = nodeOf(j);
      const total = (used.get(node) ?? 0) + spec.instances[j]!.vcpus;
      used.set(node, total);
      const cpus = cpusOf.get(node);
      if (cpus !== undefined && total > cpus) return { j, node, total, cpus };
    }
    return null;
  };
  const base = over((j) => spec.instances[j]!.node);
  if (base) {
    throw new ConfigError(spec.file, `instances[${base.j}].vcpus`, `node ${base.node} would run ${base.total} vCPUs on its ${base.cpus} CPUs in ${tb.file}; set allowVcpuOvercommit: true to run it anyway`);
  }
  spec.configurations.forEach((c, i) => {
    const o = over((j) => c.instances[spec.instances[j]!.name]?.node ?? spec.instances[j]!.node);
    if (o) {
      const name = spec.instances[o.j]!.name;
      const key = c.instances[name]?.node !== undefined ? `configurations[${i}].instances.${name}.node` : `instances[${o.j}].vcpus`;
      throw new ConfigError(spec.file, key, `configuration '${c.id}': node ${o.node} would run ${o.total} vCPUs on its ${o.cpus} CPUs in ${tb.file}; set allowVcpuOvercommit: true to run it anyway`);
    }
  });
}

function ksmFor(spec: ExperimentSpec, mode: KernelMode): KsmSettings {
  return {
    run: mode !== 'ksm-off',
    pagesToScan: spec.ksm.pagesToScan,
    sleepMillisecs: spec.ksm.sleepMillisecs,
    // ksm-node-local is stock KSM without cross-node merging, whatever the spec's default.
    mergeAcrossNodes: mode === 'ksm-node-local' ? false : spec.ksm.mergeAcrossNodes,
    maxPageSharing: spec.ksm.maxPageSharing,
    forestMibPerTree: mode.startsWith('nuksm') ? spec.ksm.forestMibPerTree : null,
    extraKnobs: spec.ksm.extraKnobs,
  };
}

function mergeWaitOf(w: ExperimentSpec['timeline']['mergeWait']): MergeWait {
  return 'fixedS' in w ? { kind: 'fixed', seconds: w.fixedS } : { kind: 'converged', ...w.converged };
}

/** Seconds the merge wait is expected to take: fixed, or ~2 scans of the registered memory capped at maxS. */
export function estimateMergeWaitS(s: Scenario): number {
  if (!s.ksm.run) return 0;
  if (s.timeline.mergeWait.kind === 'fixed') return s.timeline.mergeWait.seconds;
  const registeredBytes = s.instances.reduce((sum, inst) => {
    const run = s.workloads.find((w) => w.instance === inst.name);
    // A VM registers all of its RAM with KSM (QEMU mem-merge); a process only its footprint.
    const gib = inst.kind === 'vm' ? inst.memoryMiB / 1024 : Number(run?.params.footprintGiB ?? inst.memoryMiB / 1024);
    return sum + gib * 2 ** 30;
  }, 0);
  const pagesPerS = s.ksm.sleepMillisecs === 0 ? Infinity : (s.ksm.pagesToScan * 1000) / s.ksm.sleepMillisecs;
  const converge = (ESTIMATE.scansToConverge * registeredBytes) / ESTIMATE.pageBytes / pagesPerS;
  return Math.min(s.timeline.mergeWait.maxS, converge);
}

export function estimateStepS(s: Scenario, timedS: number, prepareS: number): number {
  const start = s.instances.some((i) => i.kind === 'vm') ? ESTIMATE.vmBootS : ESTIMATE.processStartS;
  const lastStart = Math.max(0, ...s.instances.map((i) => i.startAtS));
  const timed = s.timeline.timedPhases === 'sequential' ? timedS * s.instances.length : timedS;
  return Math.min(s.timeline.maxDurationS, start + lastStart + prepareS + estimateMergeWaitS(s) + timed + ESTIMATE.teardownS);
}

interface Draft {
  key: string;
  scenario: Omit<Scenario, 'campaign' | 'iteration' | 'seed'>;
  experiments: string[];
  figures: FigureName[];
  mode: KernelMode;
  estimateS: number;
  order: number;
}

function draftsOf(spec: ExperimentSpec, order: { n: number }): Draft[] {
  const drafts: Draft[] = [];
  for (const config of spec.configurations) {
    const instances: InstanceSpec[] = spec.instances.map((inst, i) => {
      const o = config.instances[inst.name] ?? {};
      return {
        name: inst.name,
        kind: inst.kind,
        node: o.node ?? inst.node,
        vcpus: inst.vcpus,
        memoryMiB: Math.round(inst.memoryGiB * 1024),
        nice: o.nice ?? inst.nice,
        template: inst.kind === 'vm' ? inst.template : null,
        startAtS: i * (spec.timeline.staggerS ?? STAGGER_S[spec.follows]),
      };
    });
    const workloads: WorkloadRun[] = instances.map((inst) => ({ instance: inst.name, workload: config.workload, params: { ...config.params } }));
    const timedPhases = config.timedPhases ?? spec.timeline.timedPhases ?? 'concurrent';
    for (const mode of spec.kernelModes) {
      const mergeWait: MergeWait = mode === 'ksm-off' ? { kind: 'fixed', seconds: 0 } : mergeWaitOf(config.mergeWait ?? spec.timeline.mergeWait);
      const scenario = {
        experiment: spec.name,
        configId: config.id,
        kernelMode: mode,
        ksm: ksmFor(spec, mode),
        instances,
        workloads,
        timeline: { staggerS: spec.timeline.staggerS ?? STAGGER_S[spec.follows], staggerFrom: spec.timeline.staggerFrom, ksmdStart: spec.timeline.ksmdStart, mergeWait, timedPhases, samplePeriodS: spec.timeline.samplePeriodS, maxDurationS: spec.timeline.maxDurationS },
        memoryHog: config.memoryHog,
        monitors: [...spec.monitors].sort(),
      };
      const { experiment: _e, ...content } = scenario;
      // A default staggerFrom or ksmdStart is left out of the key, so plans made before the field existed keep their keys.
      const keyTimeline: Partial<typeof content.timeline> = { ...content.timeline };
      if (keyTimeline.staggerFrom === 'launch') delete keyTimeline.staggerFrom;
      if (keyTimeline.ksmdStart === 'step') delete keyTimeline.ksmdStart;
      const key = sha(JSON.stringify({ ...content, timeline: keyTimeline })).slice(0, 16);
      const full = { ...scenario, campaign: '', iteration: 0, seed: 0 };
      drafts.push({ key, scenario, experiments: [spec.name], figures: [...spec.figures], mode, estimateS: estimateStepS(full, config.estimatedTimedS, config.estimatedPrepareS), order: order.n++ });
    }
  }
  return drafts;
}

export function seedFor(campaignSeed: number, key: string, iteration: number): number {
  return parseInt(sha(`${campaignSeed}/${key}/${iteration}`).slice(0, 8), 16);
}

export function buildPlan(campaign: CampaignSpec, tb: TestbedFile, campaignId: string): Plan {
  for (const spec of campaign.specs) checkSpecAgainstTestbed(spec, tb);
  const order = { n: 0 };
  const byKey = new Map<string, Draft>();
  for (const spec of campaign.specs) {
    for (const d of draftsOf(spec, order)) {
      const prev = byKey.get(d.key);
      if (prev) {
        prev.experiments.push(...d.experiments.filter((e) => !prev.experiments.includes(e)));
        prev.figures.push(...d.figures.filter((f) => !prev.figures.includes(f)));
      } else byKey.set(d.key, d);
    }
  }
  const iterationsOf = new Map(campaign.specs.map((s) => [s.name, s.iterations]));
  const specOf = new Map(campaign.specs.map((s) => [s.name, s]));
  const conditionFor = (d: Draft, iteration: number) => conditionOf(iteration, d.experiments.map((e) => ({ name: e, iterations: specOf.get(e)?.iterations ?? 1, adaptive: specOf.get(e)?.adaptive ?? null })));
  const drafts = [...byKey.values()];
  const kernelsOf = (mode: KernelMode): string[] => tb.modes[mode]?.kernels ?? [];
  // Kernels in the order the specs first ask for them (a mode's kernels in the file's list order).
  const kernels: string[] = [];
  for (const d of drafts) for (const k of kernelsOf(d.mode)) if (!kernels.includes(k)) kernels.push(k);
  const maxIterations = Math.max(...drafts.map((d) => Math.max(...d.experiments.map((e) => iterationsOf.get(e) ?? 1))));
  type Slot = { kernel: string | null; iteration: number | null };
  const slots: Slot[] = [];
  if (campaign.interleave === 'abba') {
    for (let it = 1; it <= maxIterations; it++) {
      const ks = it % 2 === 1 ? kernels : [...kernels].reverse();
      for (const k of ks) slots.push({ kernel: k, iteration: it });
    }
  } else for (const k of kernels) slots.push({ kernel: k, iteration: null });
  slots.push({ kernel: null, iteration: null }); // modes the testbed lacks: recorded as unsupported

  const steps: PlannedStep[] = [];
  const boots: PlannedBoot[] = [];
  for (const slot of slots) {
    let boot: PlannedBoot | null = null;
    for (const d of drafts) {
      const modeKernels = kernelsOf(d.mode);
      if (slot.kernel === null ? modeKernels.length > 0 : !modeKernels.includes(slot.kernel)) continue;
      // A mode on several kernels is several steps: the kernel is part of their key and id. A mode
      // on one kernel keeps the content key and id it always had (and so the same seeds).
      const several = slot.kernel !== null && modeKernels.length > 1;
      const key = several ? sha(`${d.key}/kernel/${slot.kernel}`).slice(0, 16) : d.key;
      const iterations = Math.max(...d.experiments.map((e) => iterationsOf.get(e) ?? 1));
      const its = slot.iteration === null ? Array.from({ length: iterations }, (_, i) => i + 1) : slot.iteration <= iterations ? [slot.iteration] : [];
      for (const iteration of its) {
        if (slot.kernel !== null && !boot) {
          const last = boots[boots.length - 1];
          if (last && last.kernel === slot.kernel) boot = last;
          else {
            const k = tb.kernels[slot.kernel]!;
            boot = { index: boots.length, kernel: slot.kernel, bootEntry: k.bootEntry, release: k.release, steps: 0 };
            boots.push(boot);
          }
        }
        if (boot) boot.steps++;
        const seq = steps.length + 1;
        // Seeded by the content key, not the per-kernel key: the kernels of one mode see the same
        // workload inputs (common random numbers), so they differ only by the kernel.
        const scenario: Scenario = { ...d.scenario, campaign: campaignId, iteration, seed: seedFor(campaign.seed, d.key, iteration) };
        const safe = (x: string) => x.replace(/[^A-Za-z0-9_.-]/g, '_');
        steps.push({
          stepId: `${String(seq).padStart(4, '0')}-${d.scenario.experiment}-${safe(d.scenario.configId)}-${d.mode}-i${iteration}${several ? `-${safe(slot.kernel!)}` : ''}`,
          seq,
          key,
          scenario,
          experiments: d.experiments,
          figures: d.figures,
          kernel: slot.kernel,
          boot: boot?.index ?? null,
          unsupported: slot.kernel === null ? `testbed ${tb.file} has no kernel for mode '${d.mode}' (modes: ${Object.keys(tb.modes).join(', ') || 'none'})` : null,
          estimateS: slot.kernel === null ? 0 : d.estimateS,
          implementation: implementationOf(tb, d.mode),
          // An unsupported step runs nothing: it is a failure row whatever the CI.
          adaptive: slot.kernel === null ? null : conditionFor(d, iteration),
        });
      }
    }
  }
  const pinMap = pinMapOf(steps, tb);
  // The model has nothing to boot; emulated and physical machines reboot into each kernel.
  const reboots = tb.kind === 'model' ? 0 : boots.length;
  const stepsS = steps.reduce((s, st) => s + st.estimateS, 0);
  const rebootsS = reboots * tb.timeouts.bootS;
  return {
    campaign: campaignId,
    spec: campaign.name,
    specFile: campaign.file,
    testbed: { file: tb.file, name: tb.name, kind: tb.kind },
    seed: campaign.seed,
    interleave: campaign.interleave,
    steps,
    boots,
    reboots,
    estimate: { stepsS, rebootsS, totalS: stepsS + rebootsS },
    pinMap,
  };
}

/** Planned pinning: each instance gets the first free CPUs of its node (per configuration). */
function pinMapOf(steps: PlannedStep[], tb: TestbedFile): PinEntry[] {
  const seen = new Set<string>();
  const out: PinEntry[] = [];
  for (const st of steps) {
    const s = st.scenario;
    const id = `${s.experiment}/${s.configId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const used = new Map<number, number>();
    for (const inst of s.instances) {
      const node = tb.nodes.find((n) => n.id === inst.node)!;
      const from = used.get(inst.node) ?? 0;
      used.set(inst.node, from + inst.vcpus);
      out.push({ experiment: s.experiment, configId: s.configId, instance: inst.name, kind: inst.kind, node: inst.node, cpus: node.cpus.slice(from, from + inst.vcpus), memoryGiB: inst.memoryMiB / 1024, nice: inst.nice });
    }
  }
  return out;
}
