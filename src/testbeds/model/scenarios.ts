/**
 * Scenario builders for the model testbed's own tests and `npm run bench`: the paper's fairness experiment
 * (§V-B, Table II) and the Fig. 8 scalability experiment (§V-D). The campaign planner (src/campaign) builds the
 * real steps from experiment specs; these mirror the paper's settings directly.
 */
import type { KernelMode, KsmSettings, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { PLATFORM } from './profiles.ts';

export const PAPER_WORKLOADS = ['xsbench', 'btree', 'mysql', 'cg', 'randomaccess'] as const;

export function ksmSettingsFor(mode: KernelMode, pagesToScan: number, sleepMillisecs: number): KsmSettings {
  const nuksm = mode.startsWith('nuksm');
  return {
    run: mode !== 'ksm-off',
    pagesToScan,
    sleepMillisecs,
    mergeAcrossNodes: mode !== 'ksm-node-local',
    maxPageSharing: 256,
    forestMibPerTree: nuksm ? 100 : null, // §IV: one tree pair per 100 MiB
    extraKnobs: nuksm ? { smart_ksm: '1', smart_ksm_nodelist: '15' } : {},
  };
}

const MONITORS = ['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'perf-dram', 'throughput'];

/** §V-B: two 30 GiB, 4-vCPU VMs, VM-0 on node 0, VM-1 on node 1 started `staggerS` later, 1000 pages / 100 ms. */
export function fairnessScenario(
  workload: string,
  mode: KernelMode,
  opts: { seed?: number; staggerS?: number; nice?: [number, number]; footprintGiB?: number } = {},
): Scenario {
  const staggerS = opts.staggerS ?? 60;
  const nice = opts.nice ?? [0, 0];
  const params: Record<string, number> = opts.footprintGiB === undefined ? {} : { footprintGiB: opts.footprintGiB };
  return {
    campaign: 'model-testbed',
    experiment: 'fairness',
    configId: `${workload}/${mode}`,
    kernelMode: mode,
    ksm: ksmSettingsFor(mode, 1000, 100),
    instances: [0, 1].map((i) => ({
      name: `vm${i}`,
      kind: 'vm' as const,
      node: i,
      vcpus: 4,
      memoryMiB: 30 * 1024,
      nice: nice[i],
      template: 'paper-guest',
      startAtS: i * staggerS,
    })),
    workloads: [0, 1].map((i) => ({ instance: `vm${i}`, workload, params: { ...params } })),
    timeline: {
      staggerS,
      staggerFrom: 'launch',
      ksmdStart: 'step',
      // Until KSM has finished merging: pages_sharing within 0.5% over 5 min (and two full scans after setup).
      mergeWait: { kind: 'converged', maxS: 20_000, windowS: 300, epsilonPct: 0.5 },
      timedPhases: 'concurrent',
      samplePeriodS: 10,
      maxDurationS: 40_000,
    },
    memoryHog: null,
    monitors: MONITORS,
    iteration: 0,
    seed: opts.seed ?? 1,
  };
}

/**
 * §V-D / Fig. 8: two 40 GiB XSBench VMs on node 0 plus a job adding 2 GiB of unique KSM-registered memory every
 * 15 s up to 100 GiB on node 0 (~180 GiB usable), 10 000 pages / 100 ms. XSBench runs as soon as it is set up.
 */
export function fig8Scenario(mode: KernelMode, opts: { seed?: number } = {}): Scenario {
  return {
    campaign: 'model-testbed',
    experiment: 'scalability',
    configId: `xsbench-40g/${mode}`,
    kernelMode: mode,
    ksm: ksmSettingsFor(mode, 10_000, 100),
    instances: [0, 1].map((i) => ({
      name: `vm${i}`,
      kind: 'vm' as const,
      node: 0,
      vcpus: 4,
      memoryMiB: 60_000, // artifact VM XML
      nice: 0,
      template: 'paper-guest',
      startAtS: i * 10, // artifact: VM2 10 s after VM1
    })),
    workloads: [0, 1].map((i) => ({
      instance: `vm${i}`,
      workload: 'xsbench',
      // artifact: XSBench -g 80000 -p 21600000 (~40 GiB), commented "#40GB 30mins" (the profile's runtime for these inputs)
      params: { footprintGiB: 40, threads: 4, gridpoints: 80_000, particles: 21_600_000 },
    })),
    timeline: {
      staggerS: 10, staggerFrom: 'launch', ksmdStart: 'step',
      mergeWait: { kind: 'fixed', seconds: 0 },
      timedPhases: 'concurrent',
      samplePeriodS: 5,
      maxDurationS: 10_000,
    },
    // artifact run_real_scalablity.sh: the hog starts right after XSBench in VM2, ≈ 91 s after VM1 (experiments/fig8.yaml)
    memoryHog: { node: 0, stepGiB: 2, everyS: 15, maxGiB: 100, startAtS: 90 },
    monitors: MONITORS,
    iteration: 0,
    seed: opts.seed ?? 1,
  };
}

/** A testbed file for the simulated paper platform (Table I). */
export function paperModelTestbedFile(): TestbedFile {
  return {
    file: '(built-in model testbed)',
    name: 'model-paper',
    kind: 'model',
    host: { kind: 'local' },
    nodes: [0, 1].map((id) => ({
      id,
      cpus: Array.from({ length: PLATFORM.coresPerNode }, (_, c) => id * PLATFORM.coresPerNode + c),
      memoryGiB: PLATFORM.memoryGiBPerNode,
    })),
    kernels: {},
    modes: {},
    perfEventSet: 'none',
    guests: null,
    libvirtUri: '',
    timeouts: { bootS: 0, sshConnectS: 0, commandS: 0, vmStartS: 0, vmShutdownS: 0 },
    resume: 'none',
    emulated: null,
  };
}
