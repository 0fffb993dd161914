/**
 * The model testbed's simulation of one scenario step: a two-socket host (Table I), VMs and processes as page
 * sets registered with the reference KSM model (src/policy), ksmd waking every sleep_millisecs of simulated time
 * and spending simulated CPU time per visit and per comparison, workloads whose timed phase runs slower the more
 * of their hot pages sit on the other node, and an optional Fig. 8 memory hog. Everything it emits is measured on
 * the simulated system; the assumptions are in profiles.ts.
 */
import { KsmModel, NOT_PRESENT, type CompareOrder, type KsmModelConfig } from '../../policy/index.ts';
import { HarnessError } from '../../core/errors.ts';
import { METRICS, type MetricName } from '../../core/metrics.ts';
import type { Sample, SampleSink } from '../../core/sample.ts';
import type { InstanceSpec, Scenario, WorkloadRun } from '../../core/scenario.ts';
import { lognormalFactor, standardNormal } from './noise.ts';
import {
  CONTENTION,
  GUEST_OS,
  MEMHOG_PROFILE,
  NATIVE_PROFILES,
  PAGES_PER_GIB,
  PLATFORM,
  RUN_TO_RUN_NOISE,
  WORKLOAD_PROFILES,
  accessCostNs,
  profileOf,
  ksmdComparisonNs,
  ksmdVisitNs,
  type WorkloadProfile,
} from './profiles.ts';

export interface SimulatedHost {
  /** Memory per node (Table I: 192 GiB); the usable part is this minus PLATFORM.hostReservedGiBPerNode. */
  memoryGiBPerNode: number[];
  /** Host kernel + hypervisor share of each node; PLATFORM.hostReservedGiBPerNode when unset (simulatedHostOf scales it for small nodes). */
  reservedGiBPerNode?: number;
}

export interface SimulationOptions {
  signal?: AbortSignal;
  /** Overrides KSMD_COST.slowdownFactor (for the calibration sweep in docs/model.md). */
  ksmdSlowdownFactor?: number;
  /** Overrides the host reserve per node (PLATFORM.hostReservedGiBPerNode; the Fig. 8 sensitivity sweep). */
  hostReservedGiBPerNode?: number;
  /** Multiplies the cost of one tree comparison only (ksmdComparisonNs; the Fig. 8 sensitivity sweep). */
  comparisonCostFactor?: number;
  /**
   * Ends the simulation at this simulated time, as if the step stopped there: the per-run results are what was
   * measured by then (the Fig. 8 sweep needs only the outcome up to the hog's last allocation).
   */
  stopAtS?: number;
  /**
   * The kernel release's comparison order (src/policy types.ts): 'upto-6.10' (the paper's v5.4, the default)
   * or 'from-6.11'. The model testbed sets it from the step's kernel (its release in the testbed file).
   */
  compareOrder?: CompareOrder;
  /** Linux 6.7+ smart scan (sysfs smart_scan); off unless set (the paper's kernels have none). */
  smartScan?: boolean;
  /**
   * Which LRU list a newly faulted anonymous page starts on: the active one before Linux 5.9 (the paper's
   * v5.4, the default), the inactive one from 5.9 on. See lruActiveFlags below for what nuKSM then sees.
   */
  newAnonPagesActive?: boolean;
}

export interface SimulationSummary {
  simulatedS: number;
  pagesVisited: number;
  comparisons: number;
  merges: number;
  oom: boolean;
  /** The sample time at which a node's free memory reached zero (the step stopped there), or null. */
  oomAtS: number | null;
  /** First sample time a node's free memory was at or below its low watermark (reclaim ages the LRU lists), or null. */
  reclaimFromS: number | null;
}

/**
 * The low watermark of each node (GiB), where kswapd starts reclaiming, as Linux computes it by default:
 * min_free_kbytes (defaultMinFreeKiB) split over the nodes by size, low = min + max(min / 4, node x
 * watermark_scale_factor 10 / 10 000). About 0.22 GiB on a 192 GiB node.
 */
export function lowWatermarkGiB(memoryGiBPerNode: readonly number[], minFreeKiB = defaultMinFreeKiB(memoryGiBPerNode)): number[] {
  const totalKiB = memoryGiBPerNode.reduce((a, b) => a + b, 0) * 1024 * 1024;
  return memoryGiBPerNode.map((g) => {
    const minGiB = (minFreeKiB * (g / (totalKiB / 1024 / 1024))) / 1024 / 1024;
    return minGiB + Math.max(minGiB / 4, (g * 10) / 10_000);
  });
}

/** min_free_kbytes at boot (v5.4 init_per_zone_wmark_min; THP's khugepaged may raise it, which is not modelled). */
export function defaultMinFreeKiB(memoryGiBPerNode: readonly number[]): number {
  const totalKiB = memoryGiBPerNode.reduce((a, b) => a + b, 0) * 1024 * 1024;
  return Math.min(65_536, Math.max(128, Math.floor(Math.sqrt(totalKiB * 16))));
}

/** Hot pages per instance whose placement is checked to estimate its remote-access share. */
const HOT_SAMPLE = 4096;
/** Simulated seconds between re-estimates of each running instance's remote share. */
const PLACEMENT_REFRESH_S = 2;
/**
 * A 'converged' merge wait may only end after two full passes that *started* after every instance was ready
 * (a page merges on its second visit: checksum gate, then the trees); the pass running at that moment is not one.
 */
const MIN_SCANS_BEFORE_CONVERGED = 3;

// Content-id ranges (content ids only need to be equal for identical pages; NOT_PRESENT = 0xffffffff is reserved).
const OS_CONTENT_BASE = 0x0100_0000;
const WORKLOAD_CONTENT_BASE = 0x1000_0000;
const WORKLOAD_CONTENT_SPAN = 0x0800_0000; // 512 GiB of pages per workload
const UNIQUE_CONTENT_BASE = 0x8000_0000;

const WORKLOAD_IDS: Record<string, number> = { xsbench: 0, mysql: 1, btree: 2, randomaccess: 3, cg: 4 };
const MODELLED_WORKLOADS = [...Object.keys(WORKLOAD_PROFILES), ...Object.keys(NATIVE_PROFILES)];
/** Content-id slots left for workloads outside WORKLOAD_IDS (the range up to UNIQUE_CONTENT_BASE). */
const MAX_WORKLOAD_IDS = (UNIQUE_CONTENT_BASE - WORKLOAD_CONTENT_BASE) / WORKLOAD_CONTENT_SPAN;

/** Stateless 32-bit hash: which footprint pages are identical across instances / hot is a property of the workload. */
function hash32(x: number, salt: number): number {
  let z = (x ^ Math.imul(salt, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
/**
 * Whether the unit hash hash32(x, salt) / 2^32 is below a share, given limit = share * 2^32 (computed once per loop
 * over millions of pages): scaling a double by a power of two is exact, so this is the same test as comparing the
 * unit hash with the share.
 */
const hashBelow = (x: number, salt: number, limit: number) => hash32(x, salt) < limit;

type Phase = 'pending' | 'booting' | 'populating' | 'ready' | 'running' | 'done';

/** The profile's runtime for these workload inputs (runtimeForInputs), or null for the Table I inputs. */
function runtimeForInputs(profile: WorkloadProfile, run: WorkloadRun): number | null {
  const hit = profile.runtimeForInputs?.find((r) => Object.entries(r.params).every(([k, v]) => Number(run.params[k]) === v));
  return hit?.runtimeS ?? null;
}

/** Runtime / all-local uncontended runtime at a mean access cost: (1 - mb) + mb * cost / local cost. */
function slowdownFactor(inst: { profile: WorkloadProfile | null }, costNs: number): number {
  const prof = inst.profile!;
  return 1 - prof.memoryBoundness + prof.memoryBoundness * (costNs / accessCostNs(prof.boundBy, false));
}

interface SimInstance {
  name: string;
  workloadName: string;
  spec: InstanceSpec;
  profile: WorkloadProfile | null;
  workloadId: number;
  osPages: number;
  footprintPages: number;
  totalPages: number;
  uniqueBase: number;
  contents: Uint32Array;
  nodes: Uint8Array;
  /** The workload's hot set (an input: pages it keeps touching); the placement sample is drawn from it. */
  hot: Uint8Array;
  /** PG_active as the kernel's LRU would have it (lruActiveFlags); what nuKSM's activity test reads. */
  active: Uint8Array;
  /** What the active flags currently reflect: the start list, or reclaim's aging while running / idle. */
  lru: LruState;
  mmId: number;
  phase: Phase;
  phaseStartT: number;
  present: number;
  hotSample: Int32Array;
  /** Share of the hot set whose physical page is on each node (re-read every PLACEMENT_REFRESH_S). */
  homeShares: Float64Array;
  /** model.placementChanges when homeShares was computed (-1: never). */
  placementSeen: number;
  remoteShare: number;
  /** Mean cost of one DRAM access at the current placement and load (ns). */
  costNs: number;
  /** Runtime with every access local and no contention (the profile's, for this step's inputs). */
  baseRuntimeS: number;
  /** This run's multiplicative run-to-run factor (RUN_TO_RUN_NOISE), mean 1. */
  noise: number;
  /** DRAM accesses of one whole timed phase (fixed by the work, not by how long it takes). */
  accessesPerRun: number;
  progress: number;
  runStartT: number;
  runtimeS: number | null;
  localAccesses: number;
  remoteAccesses: number;
  progressAtLastSample: number;
}

/**
 * nuKSM asks PageActive. Without memory pressure nothing moves anonymous pages between the LRU lists, so the
 * flag is the same for every page: the list new pages start on ('start'). Only reclaim, which runs on a node
 * once its free memory reaches the low watermark, tests the referenced bits and sorts that node's pages: the
 * hot set of a workload that is running ends up active and everything else inactive ('aged-running' /
 * 'aged-idle'). The model applies that sorting at once, at every sample where the node is at or below its
 * watermark (so an instance that starts or stops running meanwhile is sorted again); once sorted, flags stay:
 * without reclaim nothing reads the referenced bits, so a page left inactive stays so even once it is used.
 */
type LruState = 'start' | 'aged-running' | 'aged-idle';

interface SimHog {
  node: number;
  mmId: number;
  active: Uint8Array;
  lru: LruState;
  pages: number;
  contents: Uint32Array;
  present: number;
  allowed: number;
  uniqueBase: number;
  nextStepT: number;
}

function modelConfig(scenario: Scenario, nodes: number, opts: SimulationOptions): KsmModelConfig | null {
  const ksm = scenario.ksm;
  const forest = ksm.forestMibPerTree === null ? null : Math.max(1, Math.round((ksm.forestMibPerTree * 1024 * 1024) / 4096));
  const base = {
    nodes,
    pagesToScan: ksm.pagesToScan,
    sleepMillisecs: ksm.sleepMillisecs,
    mergeAcrossNodes: ksm.mergeAcrossNodes,
    maxPageSharing: ksm.maxPageSharing,
    compareOrder: opts.compareOrder ?? 'upto-6.10', // the paper's kernels are v5.4
    smartScan: opts.smartScan ?? false,
    seed: scenario.seed,
  };
  switch (scenario.kernelMode) {
    case 'ksm-off':
      return null;
    case 'ksm':
    // merge_across_nodes=0 is in `base` (the planner sets it for this mode): one tree pair per node.
    case 'ksm-node-local':
      return { ...base, policy: 'ksm', forestPagesPerTree: null };
    case 'ksm-numa-balancing':
      // Automatic NUMA balancing, modelled simply (docs/baselines.md): it moves a task's private pages to
      // the node it runs on and never moves KSM pages. Here every instance is bound to its node and its
      // private pages (COW copies included) are allocated there, so balancing has nothing to move: the
      // step is stock KSM. Its own cost (NUMA hinting faults) is not modelled.
      return { ...base, policy: 'ksm', forestPagesPerTree: null };
    case 'nuksm-fair':
      return { ...base, policy: 'nuksm-fair', forestPagesPerTree: forest };
    case 'nuksm-priority':
      return { ...base, policy: 'nuksm-priority', forestPagesPerTree: forest };
    case 'nuksm-forest':
      // The multi-tree kernel always runs the forest: 100 MiB per tree unless the spec says otherwise.
      return { ...base, policy: 'nuksm-fair', forestPagesPerTree: forest ?? (100 * 1024 * 1024) / 4096 };
    case 'uksm':
      throw new HarnessError(
        'unsupported',
        'model testbed: UKSM is not modelled (its adaptive sampling and per-region scan rates are not in the reference model); run uksm on a physical testbed',
        { kernelMode: 'uksm' },
      );
  }
}

function hogSpecPages(scenario: Scenario): number {
  return scenario.memoryHog ? Math.round(scenario.memoryHog.maxGiB * PAGES_PER_GIB) : 0;
}

function numberParam(run: WorkloadRun | undefined, key: string): number | null {
  const v = run?.params[key];
  if (v === undefined) return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new HarnessError('config', `model testbed: workload ${run!.workload} on ${run!.instance}: param ${key}=${String(v)} is not a positive number`);
  return n;
}

export async function simulateScenario(scenario: Scenario, host: SimulatedHost, emit: SampleSink, opts: SimulationOptions = {}): Promise<SimulationSummary> {
  const nodes = host.memoryGiBPerNode.length;
  const cfg = modelConfig(scenario, nodes, opts);
  // ksm-off still tracks pages through the model (for memory accounting) but ksmd never wakes.
  const model = new KsmModel(cfg ?? { nodes, pagesToScan: 1, sleepMillisecs: 1000, mergeAcrossNodes: true, maxPageSharing: 256, compareOrder: 'upto-6.10', policy: 'ksm', forestPagesPerTree: null, seed: scenario.seed });
  const ksmdRuns = cfg !== null && scenario.ksm.run;
  const visitNs = ksmdVisitNs(opts.ksmdSlowdownFactor);
  const comparisonNs = ksmdComparisonNs(opts.ksmdSlowdownFactor) * (opts.comparisonCostFactor ?? 1);
  const sleepS = Math.max(scenario.ksm.sleepMillisecs, 1) / 1000;
  const monitors = new Set(scenario.monitors);
  const reservedGiB = opts.hostReservedGiBPerNode ?? host.reservedGiBPerNode ?? PLATFORM.hostReservedGiBPerNode;
  const usableGiB = host.memoryGiBPerNode.map((g) => g - reservedGiB);

  // Every page of an mm sits on the mm's node and the model only reads these arrays: share one per node value.
  const filled = new Map<number, Uint8Array>();
  const constantBytes = (value: number, length: number): Uint8Array => {
    let buf = filled.get(value);
    if (!buf || buf.length < length) {
      buf = new Uint8Array(length).fill(value);
      filled.set(value, buf);
    }
    return buf.subarray(0, length);
  };

  // ---------------------------------------------------------------- instances
  // Run-to-run noise: one factor for the whole step (same host, same boot), one per instance (profiles.ts).
  const stepNoise = lognormalFactor(RUN_TO_RUN_NOISE.stepCv, standardNormal(scenario.seed, 'step'));
  let nextUnique = UNIQUE_CONTENT_BASE;
  // A paper benchmark keeps its fixed id; a stand-in's content is a function of its name and seed (the C program
  // fills from the seed), so runs with equal (workload, seed) share content ids and others do not.
  const standInIds = new Map<string, number>();
  const workloadIdOf = (run: WorkloadRun): number => {
    if (Object.hasOwn(WORKLOAD_IDS, run.workload)) return WORKLOAD_IDS[run.workload];
    const key = `${run.workload}/${String(run.params.seed ?? '')}`;
    let id = standInIds.get(key);
    if (id === undefined) {
      id = Object.keys(WORKLOAD_IDS).length + standInIds.size;
      if (id >= MAX_WORKLOAD_IDS) throw new HarnessError('unsupported', `model testbed: more than ${MAX_WORKLOAD_IDS} distinct workload contents in one step`);
      standInIds.set(key, id);
    }
    return id;
  };
  const startActive = (opts.newAnonPagesActive ?? true) ? 1 : 0;
  const watermarkGiB = lowWatermarkGiB(host.memoryGiBPerNode);
  let reclaimFromS: number | null = null;
  let oomAtS: number | null = null;
  const instances: SimInstance[] = scenario.instances.map((spec) => {
    if (!(spec.node >= 0 && spec.node < nodes)) throw new HarnessError('config', `model testbed: instance ${spec.name} on node ${spec.node}, host has ${nodes} nodes`);
    const run = scenario.workloads.find((w) => w.instance === spec.name && w.workload !== 'memhog');
    const profile = run ? (profileOf(run.workload) ?? null) : null;
    if (run && !profile) throw new HarnessError('unsupported', `model testbed: no profile for workload '${run.workload}' (known: ${MODELLED_WORKLOADS.join(', ')})`);
    const footprintGiB = numberParam(run, 'footprintGiB') ?? profile?.footprintGiB ?? 0;
    // A stand-in's work follows its inputs (profiles.ts NATIVE_PROFILES): accesses = per byte x bytes x iterations.
    const scaledAccesses = profile?.dramAccessesPerByteIteration !== undefined ? profile.dramAccessesPerByteIteration * footprintGiB * 1024 ** 3 * (numberParam(run, 'iterations') ?? 1) : null;
    const scaledRuntimeS = scaledAccesses !== null && profile ? (scaledAccesses * accessCostNs(profile.boundBy, false)) / 1e9 / profile.memoryBoundness / profile.threads : null;
    const baseRuntimeS = numberParam(run, 'runtimeS') ?? (run && profile ? runtimeForInputs(profile, run) : null) ?? scaledRuntimeS ?? profile?.baseRuntimeS ?? 0;
    const osPages = spec.kind === 'vm' ? Math.round(GUEST_OS.commonGiB * PAGES_PER_GIB) : 0;
    const footprintPages = Math.round(footprintGiB * PAGES_PER_GIB);
    // Guest RAM the guest never touches has no page: it costs ksmd nothing and is left out of the arrays.
    // A process's memory limit (the spec's memoryGiB) bounds what it can map, as a VM's RAM does.
    const ramPages = Math.round((spec.memoryMiB * 1024 * 1024) / 4096);
    const totalPages = Math.min(osPages + footprintPages, ramPages);
    const uniqueBase = nextUnique;
    nextUnique += footprintPages;
    if (nextUnique >= NOT_PRESENT) throw new HarnessError('unsupported', 'model testbed: more than 8 TiB of unique pages');
    const hotSet = new Uint8Array(totalPages);
    const hotShare = profile?.hotShare ?? 0;
    const hot: number[] = [];
    const hotLimit = hotShare * 4294967296;
    if (hotLimit >= 4294967296) {
      // Every hash32 value is below the limit: the whole footprint is hot (no hash per page needed).
      hotSet.fill(1, osPages, totalPages);
      for (let p = osPages; p < totalPages && hot.length < HOT_SAMPLE; p++) hot.push(p);
    } else {
      for (let p = osPages; p < totalPages; p++) {
        if (hashBelow(p - osPages, 0x407, hotLimit)) {
          hotSet[p] = 1;
          if (hot.length < HOT_SAMPLE) hot.push(p);
        }
      }
    }
    // Spread the placement sample over the whole footprint rather than its first pages.
    const hotSample = new Int32Array(Math.min(HOT_SAMPLE, hot.length));
    if (hot.length > 0) {
      const stride = Math.max(1, Math.floor((totalPages - osPages) / HOT_SAMPLE));
      let k = 0;
      for (let p = osPages; p < totalPages && k < hotSample.length; p += stride) {
        if (hotSet[p]) hotSample[k++] = p;
      }
      for (let i = 0; k < hotSample.length; i++) hotSample[k++] = hot[i];
    }
    return {
      name: spec.name,
      workloadName: run?.workload ?? '',
      spec,
      profile,
      workloadId: run ? workloadIdOf(run) : -1,
      osPages,
      footprintPages,
      totalPages,
      uniqueBase,
      contents: new Uint32Array(totalPages).fill(NOT_PRESENT),
      nodes: new Uint8Array(0), // set below, once every instance's size is known
      hot: hotSet,
      active: new Uint8Array(totalPages).fill(startActive),
      lru: 'start',
      mmId: -1,
      phase: 'pending',
      phaseStartT: 0,
      present: 0,
      hotSample,
      homeShares: new Float64Array(nodes),
      placementSeen: -1,
      remoteShare: 0,
      costNs: 0,
      baseRuntimeS,
      noise: lognormalFactor(RUN_TO_RUN_NOISE.instanceCv, standardNormal(scenario.seed, `instance/${spec.name}`)) * stepNoise,
      accessesPerRun: profile ? (profile.threads * profile.memoryBoundness * baseRuntimeS * 1e9) / accessCostNs(profile.boundBy, false) : 0,
      progress: 0,
      runStartT: 0,
      runtimeS: null,
      localAccesses: 0,
      remoteAccesses: 0,
      progressAtLastSample: 0,
    };
  });
  const largest = Math.max(0, ...instances.map((i) => i.totalPages), hogSpecPages(scenario));
  for (const inst of instances) inst.nodes = constantBytes(inst.spec.node, Math.max(largest, 1)).subarray(0, inst.totalPages);
  const workloadInstances = instances.filter((i) => i.profile !== null);

  // ---------------------------------------------------------------- memory hog (Fig. 8)
  let hog: SimHog | null = null;
  const hogSpec = scenario.memoryHog;
  if (hogSpec) {
    if (!(hogSpec.node >= 0 && hogSpec.node < nodes)) throw new HarnessError('config', `model testbed: memory hog on node ${hogSpec.node}, host has ${nodes} nodes`);
    const pages = Math.round(hogSpec.maxGiB * PAGES_PER_GIB);
    hog = { node: hogSpec.node, mmId: -1, active: new Uint8Array(pages).fill(startActive), lru: 'start', pages, contents: new Uint32Array(0), present: 0, allowed: 0, uniqueBase: nextUnique, nextStepT: hogSpec.startAtS };
    nextUnique += pages;
  }

  // ---------------------------------------------------------------- bookkeeping
  const samples: Sample[] = [];
  const push = (instance: string, workload: string, metric: MetricName, value: number, t: number | null, node: number | null = null) => {
    samples.push({ instance, workload, metric, value, unit: METRICS[metric].unit, t, node });
  };
  const flush = () => {
    if (samples.length > 0) emit(samples.splice(0, samples.length));
  };

  let t = 0;
  let busyInPeriodS = 0;
  let nextSampleT = scenario.timeline.samplePeriodS;
  let lastSampleT = 0;
  let allReadyT: number | null = null;
  let scansAtReady = 0;
  const sharingHistory: [number, number][] = [];
  let timedStartT: number | null = null;
  let timedEndT: number | null = null;
  let sharingAtTimedEnd = 0;
  let oom = false;
  let iterations = 0;

  // KSM pages per node walks every KSM page: recompute it only when merges or the KSM page count changed.
  let ksmPagesCache: number[] = [];
  let ksmPagesCacheKey = '';
  const usedPagesPerNode = (): number[] => {
    const key = `${model.totalMerges}/${model.counters().pagesShared}`;
    if (key !== ksmPagesCacheKey) {
      ksmPagesCache = model.ksmPagesPerNode();
      ksmPagesCacheKey = key;
    }
    const used = ksmPagesCache.slice();
    for (const inst of instances) if (inst.mmId >= 0) used[inst.spec.node] += inst.present - model.mergedPages(inst.mmId);
    if (hog && hog.mmId >= 0) used[hog.node] += hog.present - model.mergedPages(hog.mmId);
    return used;
  };
  const freeGiBPerNode = (): number[] => usedPagesPerNode().map((u, n) => usableGiB[n] - u / PAGES_PER_GIB);

  /** Re-reads where each running instance's hot pages live (unless no page's placement changed since the last read). */
  const refreshPlacement = (inst: SimInstance) => {
    if (inst.placementSeen === model.placementChanges) return;
    inst.placementSeen = model.placementChanges;
    inst.homeShares.fill(0);
    for (const p of inst.hotSample) inst.homeShares[model.pageNode(inst.mmId, p)]++;
    const n = inst.hotSample.length;
    if (n > 0) for (let k = 0; k < nodes; k++) inst.homeShares[k] /= n;
    else inst.homeShares[inst.spec.node] = 1;
    inst.remoteShare = 1 - inst.homeShares[inst.spec.node];
  };

  /**
   * Access costs of the running instances under contention (CONTENTION in profiles.ts): each node's DRAM
   * (Table I local bandwidth) and each directed link between nodes (Table I remote bandwidth) is a queue whose
   * response time is the unloaded cost / (1 - utilisation). Rates depend on costs (a slower instance issues
   * accesses more slowly), so a few fixed-point rounds.
   */
  const dramGiBs = PLATFORM.localBandwidthGiBs;
  const linkGiBs = PLATFORM.remoteBandwidthGiBs;
  const refreshCosts = (running: SimInstance[]) => {
    for (const inst of running) refreshPlacement(inst);
    const dramRho = new Float64Array(nodes);
    const linkRho = new Float64Array(nodes * nodes); // [home * nodes + requester]
    const costOf = (inst: SimInstance): number => {
      const prof = inst.profile!;
      let cost = 0;
      for (let home = 0; home < nodes; home++) {
        const share = inst.homeShares[home];
        if (share === 0) continue;
        const remote = home !== inst.spec.node;
        let c = accessCostNs(prof.boundBy, remote) / (1 - dramRho[home]);
        if (remote) c /= 1 - linkRho[home * nodes + inst.spec.node];
        cost += share * c;
      }
      return cost;
    };
    for (const inst of running) inst.costNs = costOf(inst);
    for (let round = 0; round < CONTENTION.fixedPointRounds; round++) {
      const dramBytes = new Float64Array(nodes);
      const linkBytes = new Float64Array(nodes * nodes);
      for (const inst of running) {
        // accesses per second = accesses of a run / the run's duration at the current cost
        const bytesPerS = (CONTENTION.bytesPerAccess * inst.accessesPerRun) / (inst.baseRuntimeS * inst.noise * slowdownFactor(inst, inst.costNs));
        for (let home = 0; home < nodes; home++) {
          const b = bytesPerS * inst.homeShares[home];
          dramBytes[home] += b;
          if (home !== inst.spec.node) linkBytes[home * nodes + inst.spec.node] += b;
        }
      }
      const rho = (bytesPerS: number, gibs: number) => Math.min(CONTENTION.maxUtilisation, bytesPerS / (gibs * 1024 ** 3));
      for (let n = 0; n < nodes; n++) dramRho[n] = rho(dramBytes[n], dramGiBs);
      for (let k = 0; k < nodes * nodes; k++) linkRho[k] = rho(linkBytes[k], linkGiBs);
      for (const inst of running) inst.costNs = costOf(inst);
    }
  };
  let costsAtT = -Infinity;
  /** The running set changed since the costs were computed (an instance started or finished). */
  let costsStale = true;

  /** Runs an instance's timed phase from `from` to `to` (simulated s) at its current access cost. */
  const runFor = (inst: SimInstance, from: number, to: number) => {
    const rate = 1 / (inst.baseRuntimeS * inst.noise * slowdownFactor(inst, inst.costNs)); // progress per simulated second
    let dt = to - from;
    const before = inst.progress;
    if (inst.progress + rate * dt >= 1) {
      dt = (1 - inst.progress) / rate;
      inst.progress = 1;
      inst.runtimeS = from + dt - inst.runStartT;
      inst.phase = 'done';
      inst.phaseStartT = from + dt;
    } else {
      inst.progress += rate * dt;
    }
    // DRAM accesses: a run's fixed number, issued as it progresses, split by where its hot pages live.
    const accesses = (inst.progress - before) * inst.accessesPerRun;
    inst.remoteAccesses += accesses * inst.remoteShare;
    inst.localAccesses += accesses * (1 - inst.remoteShare);
  };

  /** Pages' new contents, written to the model in one writePages call. */
  let scratch = new Uint32Array(1024);
  const scratchOf = (n: number): Uint32Array => {
    if (scratch.length < n) scratch = new Uint32Array(Math.max(n, scratch.length * 2));
    return scratch.subarray(0, n);
  };

  const reveal = (inst: SimInstance, upTo: number) => {
    const target = Math.min(inst.totalPages, upTo);
    if (target <= inst.present) return;
    const values = scratchOf(target - inst.present);
    // Page p's content: the guest OS's (OS_CONTENT_BASE + p) for p < osPages; footprint page j = p - osPages is
    // in the workload's shared range if hash32(j, 0x5eed + workloadId) / 2^32 < dedupShare, else in the instance's
    // unique range. Computed in the loop, not by a call per page (a content id above 2^31 returned from a call
    // is a heap number: ~10 M allocations per VM).
    const from = inst.present;
    const os = inst.osPages;
    const dedupLimit = inst.profile !== null ? inst.profile.dedupShare * 4294967296 : -1;
    const salt = 0x5eed + inst.workloadId;
    const sharedBase = WORKLOAD_CONTENT_BASE + inst.workloadId * WORKLOAD_CONTENT_SPAN;
    const uniqueBase = inst.uniqueBase;
    for (let p = from; p < target; p++) {
      if (p < os) {
        values[p - from] = OS_CONTENT_BASE + p;
        continue;
      }
      const j = p - os;
      values[p - from] = inst.profile !== null && hashBelow(j, salt, dedupLimit) ? sharedBase + j : uniqueBase + j;
    }
    model.writePages(inst.mmId, inst.present, values);
    inst.present = target;
  };

  const startTimed = (inst: SimInstance, at: number) => {
    inst.phase = 'running';
    inst.runStartT = at;
    inst.phaseStartT = at;
    costsStale = true;
  };

  // Timeline.staggerFrom 'workload': every VM boots at 0 and the stagger times the workloads from when the
  // last boot is done (the model has no install time); a process registers when its workload starts.
  // 'launch': each instance starts at its stagger time, its workload right after its boot.
  const fromWorkload = scenario.timeline.staggerFrom === 'workload';
  const staggerClockS = fromWorkload && instances.some((i) => i.osPages > 0) ? GUEST_OS.bootS : 0;
  const launchAtS = (inst: SimInstance) => (!fromWorkload ? inst.spec.startAtS : inst.osPages > 0 ? 0 : staggerClockS + inst.spec.startAtS);

  /** Moves the simulated world (everything but ksmd) from `from` to `to`. */
  const advanceWorld = (from: number, to: number) => {
    for (const inst of instances) {
      if (inst.phase === 'pending' && to >= launchAtS(inst)) {
        // QEMU registers guest RAM with KSM when it starts (mem-merge); a process registers at start (madvise).
        inst.mmId = model.registerMm({ name: inst.name, nice: inst.spec.nice, contents: inst.contents, nodes: inst.nodes, active: inst.active });
        inst.phase = inst.osPages > 0 ? 'booting' : inst.profile ? 'populating' : 'ready';
        inst.phaseStartT = launchAtS(inst);
      }
      if (inst.phase === 'booting') {
        const done = Math.min(1, (to - inst.phaseStartT) / GUEST_OS.bootS);
        reveal(inst, Math.floor(done * inst.osPages));
        if (done >= 1) {
          inst.phase = inst.profile ? 'populating' : 'ready';
          const booted = inst.phaseStartT + GUEST_OS.bootS;
          inst.phaseStartT = fromWorkload ? Math.max(booted, staggerClockS + inst.spec.startAtS) : booted;
        }
      }
      if (inst.phase === 'populating' && to >= inst.phaseStartT) {
        const rate = inst.profile!.populateGiBs * PAGES_PER_GIB;
        reveal(inst, inst.osPages + Math.floor((to - inst.phaseStartT) * rate));
        if (inst.present >= inst.totalPages) inst.phase = 'ready';
      }
    }
    if (hog && hogSpec && to >= hogSpec.startAtS) {
      if (hog.mmId < 0) {
        hog.contents = new Uint32Array(hog.pages).fill(NOT_PRESENT);
        // The hog never touches its pages again after the fill: reclaim finds all of them idle (lruActiveFlags).
        hog.mmId = model.registerMm({ name: 'memhog', nice: 0, contents: hog.contents, nodes: constantBytes(hog.node, hog.pages), active: hog.active });
      }
      while (hog.nextStepT <= to && hog.allowed < hog.pages) {
        hog.allowed = Math.min(hog.pages, hog.allowed + Math.round(hogSpec.stepGiB * PAGES_PER_GIB));
        hog.nextStepT += hogSpec.everyS;
      }
      const fill = Math.min(hog.allowed, hog.present + Math.ceil((to - from) * MEMHOG_PROFILE.populateGiBs * PAGES_PER_GIB));
      if (fill > hog.present) {
        const values = scratchOf(fill - hog.present);
        const from = hog.present;
        const base = hog.uniqueBase + from;
        for (let i = 0; i < values.length; i++) values[i] = base + i;
        model.writePages(hog.mmId, hog.present, values);
        hog.present = fill;
      }
    }

    if (allReadyT === null && instances.every((i) => i.phase === 'ready' || i.phase === 'done')) {
      allReadyT = to;
      scansAtReady = model.counters().fullScans;
    }
    if (allReadyT !== null && timedStartT === null && mergeWaitOver(to)) {
      timedStartT = to;
      if (scenario.timeline.timedPhases === 'concurrent') for (const inst of workloadInstances) startTimed(inst, to);
      else if (workloadInstances.length > 0) startTimed(workloadInstances[0], to);
    }
    for (let k = 0; k < workloadInstances.length; k++) {
      const inst = workloadInstances[k];
      if (inst.phase !== 'running') continue;
      if (costsStale || to - costsAtT >= PLACEMENT_REFRESH_S) {
        refreshCosts(workloadInstances.filter((i) => i.phase === 'running'));
        costsAtT = to;
        costsStale = false;
      }
      runFor(inst, Math.max(from, inst.runStartT), to);
      if ((inst.phase as Phase) === 'done') costsStale = true;
      if ((inst.phase as Phase) === 'done' && scenario.timeline.timedPhases === 'sequential' && k + 1 < workloadInstances.length) {
        const next = workloadInstances[k + 1];
        startTimed(next, inst.phaseStartT);
      }
    }
    if (timedStartT !== null && timedEndT === null && workloadInstances.every((i) => i.phase === 'done')) {
      timedEndT = to;
      sharingAtTimedEnd = model.counters().pagesSharing;
    }
  };

  const mergeWaitOver = (now: number): boolean => {
    const wait = scenario.timeline.mergeWait;
    const since = now - allReadyT!;
    if (wait.kind === 'fixed') return since >= wait.seconds;
    if (since >= wait.maxS) return true;
    if (ksmdRuns && model.counters().fullScans - scansAtReady < MIN_SCANS_BEFORE_CONVERGED) return false;
    const [tNow, sharingNow] = sharingHistory.length > 0 ? sharingHistory[sharingHistory.length - 1] : [now, 0];
    // The latest sample at least windowS before the newest one (a backward scan; no copy of the history per wake).
    let old: [number, number] | undefined;
    for (let i = sharingHistory.length - 1; i >= 0; i--) {
      const h = sharingHistory[i];
      if (h[0] >= allReadyT! && tNow - h[0] >= wait.windowS) {
        old = h;
        break;
      }
    }
    if (!old) return false;
    return (Math.abs(sharingNow - old[1]) / Math.max(old[1], 1)) * 100 < wait.epsilonPct;
  };

  const sampleTick = (at: number) => {
    const period = at - lastSampleT;
    const c = model.counters();
    sharingHistory.push([at, c.pagesSharing]);
    const free = freeGiBPerNode();
    if (free.some((f) => f <= 0) && !oom) {
      oom = true;
      oomAtS = at;
    }
    const reclaiming = free.map((f, n) => f <= watermarkGiB[n]);
    if (reclaiming.some(Boolean)) {
      reclaimFromS ??= at;
      ageLruLists(reclaiming);
    }
    if (monitors.has('meminfo')) {
      push('host', '', 'mem_free_gib', Math.max(0, free.reduce((a, b) => a + b, 0)), at);
      free.forEach((f, n) => push('host', '', 'mem_free_gib', Math.max(0, f), at, n));
    }
    if (monitors.has('ksm')) {
      push('host', '', 'memory_saved_gib', c.pagesSharing / PAGES_PER_GIB, at);
      push('host', '', 'ksm_pages_sharing', c.pagesSharing, at);
    }
    if (monitors.has('ksmd-cpu')) push('host', '', 'ksmd_cpu_pct', period > 0 ? Math.min(100, (busyInPeriodS / period) * 100) : 0, at);
    if (hog) push('host', 'memhog', 'hog_registered_gib', hog.present / PAGES_PER_GIB, at);
    if (monitors.has('throughput')) {
      for (const inst of workloadInstances) {
        if (inst.phase !== 'running' && inst.progressAtLastSample === inst.progress) continue;
        // A stand-in has no benchmark operations to count (NATIVE_PROFILES): no throughput rather than a made-up unit.
        if (inst.profile!.dramAccessesPerByteIteration !== undefined) continue;
        push(inst.name, inst.workloadName, 'throughput_ops', ((inst.progress - inst.progressAtLastSample) * inst.profile!.opsPerRun) / period, at);
        inst.progressAtLastSample = inst.progress;
      }
    }
    busyInPeriodS = 0;
    lastSampleT = at;
    flush();
  };

  /**
   * Reclaim's verdict on the LRU lists of the nodes it runs on (LruState; each node has its own lists and
   * kswapd): the running instances' hot sets active, the rest not.
   */
  const ageLruLists = (reclaiming: boolean[]) => {
    for (const inst of instances) {
      if (!reclaiming[inst.spec.node] || inst.mmId < 0) continue;
      const want: LruState = inst.phase === 'running' ? 'aged-running' : 'aged-idle';
      if (inst.lru === want) continue;
      if (want === 'aged-running') inst.active.set(inst.hot);
      else inst.active.fill(0);
      inst.lru = want;
    }
    if (hog && reclaiming[hog.node] && hog.lru !== 'aged-idle') {
      hog.active.fill(0);
      hog.lru = 'aged-idle';
    }
  };

  // ---------------------------------------------------------------- main loop: one iteration per ksmd wake-up
  const hogDone = () => !hog || hog.present >= hog.pages;
  let lastAdvanced = 0;
  for (;;) {
    advanceWorld(lastAdvanced, t);
    lastAdvanced = t;
    while (t >= nextSampleT) {
      sampleTick(nextSampleT);
      nextSampleT += scenario.timeline.samplePeriodS;
    }
    if (oom || (timedEndT !== null && hogDone()) || (opts.stopAtS !== undefined && t >= opts.stopAtS)) break;
    if (t > scenario.timeline.maxDurationS) {
      flush();
      throw new HarnessError('timeout', `model testbed: step ${scenario.configId} did not finish within ${scenario.timeline.maxDurationS} simulated s`, { simulatedS: t });
    }
    let dt = sleepS;
    // ksmdStart 'all-registered': run=1 is written when every instance is ready, and the write wakes ksmd at once.
    if (ksmdRuns && (scenario.timeline.ksmdStart === 'step' || allReadyT !== null)) {
      const w = model.wake();
      const workS = (w.pagesVisited * visitNs + w.comparisons * comparisonNs) / 1e9;
      busyInPeriodS += workS;
      dt += workS;
    }
    t += dt;
    if (++iterations % 2000 === 0) {
      await new Promise((resolve) => setImmediate(resolve));
      if (opts.signal?.aborted) throw new HarnessError('timeout', `model testbed: step ${scenario.configId} aborted`);
    }
  }

  // ---------------------------------------------------------------- once-per-run results
  const counters = model.counters();
  const endSharing = timedEndT !== null ? sharingAtTimedEnd : counters.pagesSharing;
  push('host', '', 'memory_saved_gib', endSharing / PAGES_PER_GIB, null);
  push('host', '', 'ksm_pages_sharing', counters.pagesSharing, null);
  push('host', '', 'ksm_pages_shared', counters.pagesShared, null);
  push('host', '', 'ksm_full_scans', counters.fullScans, null);
  push('host', '', 'ksm_comparisons', model.totalComparisons, null);
  if (model.totalMerges > 0) push('host', '', 'ksm_comparisons_per_merge', model.totalComparisons / model.totalMerges, null);
  push('host', '', 'oom', oom ? 1 : 0, null);
  for (const inst of instances) {
    if (inst.mmId < 0) continue;
    if (inst.runtimeS !== null) push(inst.name, inst.workloadName, 'runtime_s', inst.runtimeS, null);
    if (inst.profile) {
      const total = inst.localAccesses + inst.remoteAccesses;
      push(inst.name, inst.workloadName, 'local_dram_accesses', Math.round(inst.localAccesses), null);
      push(inst.name, inst.workloadName, 'remote_dram_accesses', Math.round(inst.remoteAccesses), null);
      if (total > 0) {
        push(inst.name, inst.workloadName, 'local_access_pct', (inst.localAccesses / total) * 100, null);
        push(inst.name, inst.workloadName, 'remote_access_pct', (inst.remoteAccesses / total) * 100, null);
      }
    }
    const perNode = model.mergedPagesPerNode(inst.mmId);
    const merged = perNode.reduce((a, b) => a + b, 0);
    perNode.forEach((count, n) => push(inst.name, inst.workloadName, 'ksm_pages_on_node', count, null, n));
    if (merged > 0) push(inst.name, inst.workloadName, 'ksm_local_pct', (perNode[inst.spec.node] / merged) * 100, null);
  }
  flush();
  return { simulatedS: t, pagesVisited: model.totalPagesVisited, comparisons: model.totalComparisons, merges: model.totalMerges, oom, oomAtS, reclaimFromS };
}
