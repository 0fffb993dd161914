/**
 * A Scenario is one fully resolved step of a campaign: what to boot, which instances to start
 * where, what to run in them and for how long. The planner (src/campaign) produces it from the
 * experiment spec; every testbed (model, emulated, physical) executes it and emits Samples.
 * Nothing here knows which testbed runs it.
 */

/** Kernel modes an experiment can ask for. A testbed file maps each to a kernel + KSM knobs. */
/** 'nuksm-forest' = nuKSM fair on the multi-tree kernel (nuKSM_MultiTree, Fig. 8); 'nuksm-fair' and
 * 'nuksm-priority' run on the single-tree kernel (nuKSM_SingleTree) unless the spec sets a forest. */
/** Linux's own answers, as baselines next to KSM and nuKSM (docs/baselines.md): 'ksm-node-local' =
 * stock KSM with merge_across_nodes=0 (one stable/unstable tree per node: no cross-node merge);
 * 'ksm-numa-balancing' = stock KSM with automatic NUMA balancing on (kernel.numa_balancing=1). */
export const KERNEL_MODES = ['ksm-off', 'ksm', 'ksm-node-local', 'ksm-numa-balancing', 'nuksm-fair', 'nuksm-priority', 'nuksm-forest', 'uksm'] as const;
export type KernelMode = (typeof KERNEL_MODES)[number];

/**
 * kernel.numa_balancing for a mode on a real kernel: on only in 'ksm-numa-balancing'. Every other mode runs
 * with it off (Debian's kernels enable it by default), so that baseline differs from stock KSM in this one
 * setting. The step engine writes it, records the previous value in the ledger and restores it.
 */
export const numaBalancingOf = (mode: KernelMode): boolean => mode === 'ksm-numa-balancing';

/**
 * Which implementation produced a step's results (a column of every stored row and figure):
 * 'kernel' = the booted kernel's own KSM / nuKSM, 'userspace' = stock KSM plus the user-space placement
 * engine (testbed-file `modes.<mode>.placement: userspace`), 'model' = the reference model (model testbed).
 */
export const IMPLEMENTATIONS = ['kernel', 'userspace', 'model'] as const;
export type Implementation = (typeof IMPLEMENTATIONS)[number];

export interface KsmSettings {
  /** false = ksm-off (run=0), true = run=1. */
  run: boolean;
  pagesToScan: number;
  sleepMillisecs: number;
  mergeAcrossNodes: boolean;
  maxPageSharing: number;
  /** nuKSM forest: one stable + one unstable tree per this many MiB (paper: 100). null = single tree. */
  forestMibPerTree: number | null;
  /** Kernel-specific knobs to write as-is (e.g. nuKSM's smart_ksm=1, smart_ksm_nodelist=15). */
  extraKnobs: Record<string, string>;
}

export interface InstanceSpec {
  /** Unique within the scenario, e.g. 'vm0'. */
  name: string;
  /** 'vm' = libvirt/QEMU guest (or a simulated one); 'process' = bare-metal process bound to a node. */
  kind: 'vm' | 'process';
  node: number;
  vcpus: number;
  memoryMiB: number;
  /** Nice value of the VM's QEMU process (or the process): -20..19. */
  nice: number;
  /** vm-templates/<template> for VMs; ignored for processes. */
  template: string | null;
  /** Seconds after the step start at which this instance starts (the stagger). */
  startAtS: number;
}

export interface WorkloadRun {
  instance: string;
  /** Workload name: 'xsbench' | 'mysql' | 'btree' | 'randomaccess' | 'cg' | 'memhog'. */
  workload: string;
  /** Workload parameters after defaults (footprint, threads, clients, …). */
  params: Record<string, string | number | boolean>;
}

export type MergeWait =
  | { kind: 'fixed'; seconds: number }
  /** Wait until pages_sharing changes by less than `epsilonPct` over `windowS`, at most `maxS`. */
  | { kind: 'converged'; maxS: number; windowS: number; epsilonPct: number };

export interface Timeline {
  /** Time between the start of consecutive instances (paper 60 s, artifact 10 s). */
  staggerS: number;
  /**
   * What starts at the stagger times. 'launch': the instance itself (VM boot or process), its install and
   * phases following at once. 'workload': every instance is launched and installed first; the stagger clock
   * starts when the last install is done and times the phases (those before the timed one, and a resident
   * timed phase), so the order in which instances register their memory is the spec's.
   */
  staggerFrom: 'launch' | 'workload';
  /**
   * When ksmd starts (run=1) in a mode that runs it. 'step': when the step's KSM knobs are written, before any
   * instance starts. 'all-registered': once every instance's memory is registered (its resident phase ready,
   * or its VM started), so ksmd's first pass finds every mm in registration order and the order in which it
   * scans them does not depend on where its cursor was when each one registered (docs/policy.md §9).
   * "Registered" is the end of the engine's start stage: a workload whose memory is registered only by its
   * timed phase (not resident) registers after ksmd has started.
   */
  ksmdStart: 'step' | 'all-registered';
  /** How long to let KSM de-duplicate before the timed phase starts. */
  mergeWait: MergeWait;
  /** 'concurrent': all instances run their timed phase together; 'sequential': one after the other. */
  timedPhases: 'concurrent' | 'sequential';
  /** Period of time-series monitors (KSM counters, MemFree, ksmd CPU, throughput). */
  samplePeriodS: number;
  /** Upper bound on the whole step (timeout); the step fails with class 'timeout' beyond it. */
  maxDurationS: number;
}

/** Fig. 8: a job that registers `stepGiB` of unique KSM-mergeable memory every `everyS` seconds. */
export interface MemoryHog {
  node: number;
  stepGiB: number;
  everyS: number;
  maxGiB: number;
  startAtS: number;
}

export interface Scenario {
  campaign: string;
  experiment: string;
  /** Stable id of this configuration within the experiment, e.g. 'xsbench/nuksm-fair' or 'C-10:1'. */
  configId: string;
  kernelMode: KernelMode;
  ksm: KsmSettings;
  instances: InstanceSpec[];
  workloads: WorkloadRun[];
  timeline: Timeline;
  memoryHog: MemoryHog | null;
  /** Monitor names to run ('ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'perf-dram', 'throughput'). */
  monitors: string[];
  iteration: number;
  /** Seed for every random choice in this step (model testbed, nuKSM priority draws). */
  seed: number;
}
