/**
 * Every number the model testbed assumes, in one place. Each is tagged:
 *  - TABLE I / paper text: taken as printed;
 *  - FITTED: chosen so that a *different* number of the paper comes out (named next to it);
 *  - ESTIMATE: our reading of the workload or machine, not taken from the paper and not tuned to it.
 * Outputs that the tests check (fairness, memory saved ratios, placement, OOM) are never set here;
 * they come out of the simulation. docs/model.md lists the same table.
 */

export const GIB = 1024 ** 3;
export const PAGE_BYTES = 4096;
export const PAGES_PER_GIB = GIB / PAGE_BYTES;

/** The paper's platform (Table I: 2-socket Xeon Gold 6140). */
export const PLATFORM = {
  nodes: 2, // TABLE I
  coresPerNode: 18, // TABLE I
  memoryGiBPerNode: 192, // TABLE I
  localLatencyNs: 89, // TABLE I
  remoteLatencyNs: 139, // TABLE I
  localBandwidthGiBs: 110, // TABLE I
  remoteBandwidthGiBs: 51, // TABLE I
  /** Host kernel + hypervisor share of a node: §V-D says "a node has about 180 GiB memory available" of 192. */
  hostReservedGiBPerNode: 12, // paper text §V-D
} as const;

/** A memory-hierarchy quantity derived from Table I: bandwidth one core can draw from local DRAM. */
const perCoreLocalBytesPerNs = (PLATFORM.localBandwidthGiBs * GIB) / 1e9 / PLATFORM.coresPerNode;

/**
 * Simulated CPU time of ksmd. A visit walks the scanned mm's page table (4 cache misses) and reads the
 * whole 4 KiB page for its checksum. A comparison (a tree step) is a memcmp of up to 4 KiB plus the misses
 * to reach the tree node and the other page (rb-node, the other mm's page-table walk in follow_page, the
 * struct page): `missesPerComparison` misses at local latency + `bytesPerComparison` at one core's share of
 * local bandwidth.
 */
export const KSMD_COST = {
  missesPerVisit: 4, // ESTIMATE (4-level page-table walk)
  missesPerComparison: 6, // ESTIMATE (rb node + 4-level walk of the tree page's mm + struct page)
  /**
   * ESTIMATE: bytes memcmp reads per comparison. It stops at the first differing byte; pages of different content
   * (random data: the hog's rand() fill, XSBench's grids) differ within the first cache line, so one line rather than
   * the 4 KiB upper bound (docs/model.md shows Fig. 8 with both).
   */
  bytesPerComparison: 64,
  /** NOT FITTED: 1 = the derivation above as is. A calibration hook (SimulationOptions.ksmdSlowdownFactor). */
  slowdownFactor: 1,
} as const;

export function ksmdVisitNs(slowdownFactor: number = KSMD_COST.slowdownFactor): number {
  return slowdownFactor * (KSMD_COST.missesPerVisit * PLATFORM.localLatencyNs + PAGE_BYTES / perCoreLocalBytesPerNs);
}
export function ksmdComparisonNs(slowdownFactor: number = KSMD_COST.slowdownFactor): number {
  return slowdownFactor * (KSMD_COST.missesPerComparison * PLATFORM.localLatencyNs + KSMD_COST.bytesPerComparison / perCoreLocalBytesPerNs);
}

/** Cost of one DRAM access of a thread, local vs remote, by what bounds the workload. */
export function accessCostNs(boundBy: 'latency' | 'bandwidth', remote: boolean): number {
  if (boundBy === 'latency') return remote ? PLATFORM.remoteLatencyNs : PLATFORM.localLatencyNs;
  // A streaming thread is limited by its share of the node's bandwidth: 64-byte lines at (bandwidth / cores).
  const gibs = remote ? PLATFORM.remoteBandwidthGiBs : PLATFORM.localBandwidthGiBs;
  return 64 / ((gibs * GIB) / 1e9 / PLATFORM.coresPerNode);
}

/**
 * Run-to-run variation of a timed phase (multiplicative, log-normal, mean 1), in two parts:
 *  - `stepCv`: shared by every instance of one step (one boot of the host, one campaign step);
 *  - `instanceCv`: drawn per instance, independently.
 * SOURCE: the only repeated measurements of the paper's setup that exist, the artifact's sample data
 * evaluation_script/helpers/collections_experimnent_data/FINAL_DATA_THROUGHPUT/MYSQL/{1,2,3,4,5,100} and
 * data_collections: 7 runs x 2 VMs of sysbench MySQL "total time" on the paper's Xeon Gold 6140
 * (research/artifact.md §6). One-way ANOVA over the 14 values (runs as groups): within-run sd 0.51 s,
 * between-run sd 1.08 s of a 138.9 s mean, i.e. CV 0.37 % per instance and 0.78 % per run (0.84 % overall).
 * The paper itself gives no error bars. Taken as printed for every workload (only MySQL was repeated);
 * not tuned to any output. docs/model.md, "Run-to-run noise".
 */
export const RUN_TO_RUN_NOISE = {
  stepCv: 0.0078, // artifact MySQL sample runs: between-run sd / mean
  instanceCv: 0.0037, // artifact MySQL sample runs: within-run sd / mean
} as const;

/**
 * Memory-system contention (docs/model.md, "Contention"). A node's DRAM serves at most
 * `localBandwidthGiBs` (Table I), the link from one node to another carries at most `remoteBandwidthGiBs`
 * (Table I) per direction. An access through a resource loaded to utilisation rho costs its unloaded cost
 * / (1 - rho) (an M/M/1 queue's response time), rho capped at `maxUtilisation` so the fixed point stays
 * finite. 64 bytes per access (one line). ksmd's own traffic is left out.
 */
export const CONTENTION = {
  bytesPerAccess: 64, // one cache line
  maxUtilisation: 0.95, // ESTIMATE: cap (a saturated queue has no steady state)
  fixedPointRounds: 4, // access rates depend on costs and costs on rates; 4 rounds change < 1e-6 here
} as const;

/** Guest pages every VM booted from the same image has in common (kernel text, page cache of the base system). */
export const GUEST_OS = {
  commonGiB: 0.5, // ESTIMATE (Ubuntu 18.04 server guest after boot, Table I guests)
  bootS: 20, // ESTIMATE (time over which the guest touches them)
} as const;

export interface WorkloadProfile {
  /** Memory the workload touches in the instance (Table I unless a scenario param overrides it). */
  footprintGiB: number;
  /** Share of the footprint identical between two instances of the workload (same inputs, seeded generators). */
  dedupShare: number;
  /** Share of the footprint the timed phase accesses (on the active LRU list). */
  hotShare: number;
  /** Share of the all-local runtime spent waiting on DRAM. */
  memoryBoundness: number;
  boundBy: 'latency' | 'bandwidth';
  threads: number;
  /** Runtime of the timed phase with every access local and no contention, for the Table I inputs. */
  baseRuntimeS: number;
  /**
   * Runtimes for other inputs the specs run, matched on the workload's own parameters (every listed key equal).
   * A spec's `runtimeS` param overrides both.
   */
  runtimeForInputs?: readonly { params: Readonly<Record<string, number>>; runtimeS: number }[];
  /** Rate at which the initialisation phase touches the footprint. */
  populateGiBs: number;
  /** Benchmark operations in one timed phase (for throughput_ops). */
  opsPerRun: number;
  /**
   * Work that scales with the spec's inputs (the native stand-ins): the timed phase's all-local runtime is
   * `dramAccessesPerByteIteration` x footprint bytes x `iterations` DRAM accesses at local latency, divided by
   * memoryBoundness. When set, baseRuntimeS and opsPerRun are ignored for runs that give a footprint.
   */
  dramAccessesPerByteIteration?: number;
}

/**
 * dedupShare is FITTED to Table II's "memory saved (GiB), KSM" column: (saved − GUEST_OS.commonGiB) / footprint.
 * memoryBoundness, hotShare, baseRuntimeS, populateGiBs: ESTIMATES from what each benchmark does (artifact §2),
 * not tuned to Table II or Fig. 3/6; fairness under KSM scales with memoryBoundness (docs/model.md).
 */
export const WORKLOAD_PROFILES: Record<string, WorkloadProfile> = {
  xsbench: {
    footprintGiB: 11, // TABLE I
    dedupShare: (10.76 - GUEST_OS.commonGiB) / 11, // FITTED: Table II KSM saved 10.76 GiB
    hotShare: 1, // ESTIMATE: random lookups over the whole unionized grid
    memoryBoundness: 0.5, // ESTIMATE: latency-bound lookups with some compute per lookup
    boundBy: 'latency',
    threads: 4, // TABLE I
    baseRuntimeS: 600, // ESTIMATE
    // Fig. 8 input (config_chisel1_xsbench_scalability.sh: -g 80000 -p 21600000, commented "#40GB 30mins"; the
    // artifact README: the scalability run takes "around 1600 seconds"): 1500 s. ESTIMATE from those two notes.
    runtimeForInputs: [{ params: { gridpoints: 80_000, particles: 21_600_000 }, runtimeS: 1500 }],
    populateGiBs: 0.5, // ESTIMATE: grid generation and sort by 4 threads (tens of seconds for the large problem)
    opsPerRun: 72_000_000 * 17, // artifact: -p 72000000 particles, ~17 lookups each (ESTIMATE)
  },
  mysql: {
    footprintGiB: 20, // TABLE I
    dedupShare: (15.9 - GUEST_OS.commonGiB) / 20, // FITTED: Table II KSM saved 15.90 GiB
    hotShare: 0.9, // ESTIMATE: uniform OLTP over in-memory tables, cold server heap
    memoryBoundness: 0.35, // ESTIMATE: SQL processing dominates, row lookups miss
    boundBy: 'latency',
    threads: 1, // TABLE I
    baseRuntimeS: 300, // ESTIMATE
    populateGiBs: 0.2, // ESTIMATE: sysbench prepare
    opsPerRun: 3_000_000, // ESTIMATE: transactions
  },
  btree: {
    footprintGiB: 5.6, // TABLE I
    dedupShare: (5.18 - GUEST_OS.commonGiB) / 5.6, // FITTED: Table II KSM saved 5.18 GiB
    hotShare: 1, // ESTIMATE: random lookups reach every leaf
    memoryBoundness: 0.5, // ESTIMATE: pointer chasing, upper levels cached
    boundBy: 'latency',
    threads: 1, // TABLE I
    baseRuntimeS: 900, // ESTIMATE
    populateGiBs: 0.05, // ESTIMATE: 39M inserts
    opsPerRun: 1_000_000_000, // artifact: 500M iterations of 2 lookups
  },
  randomaccess: {
    footprintGiB: 2.8, // TABLE I
    dedupShare: (3.14 - GUEST_OS.commonGiB) / 2.8, // FITTED: Table II KSM saved 3.14 GiB
    hotShare: 1, // ESTIMATE: uniform random reads of the array
    memoryBoundness: 0.9, // ESTIMATE: one dependent-free random read per iteration, nearly all misses
    boundBy: 'latency',
    threads: 1, // TABLE I
    baseRuntimeS: 600, // ESTIMATE
    populateGiBs: 0.5, // ESTIMATE
    opsPerRun: 2_300_000_000, // artifact: 30 loops x 76.8M reads
  },
  cg: {
    footprintGiB: 3.5, // TABLE I
    dedupShare: (2.4 - GUEST_OS.commonGiB) / 3.5, // FITTED: Table II KSM saved 2.40 GiB
    hotShare: 1, // ESTIMATE: the matrix is streamed every iteration
    memoryBoundness: 0.5, // ESTIMATE: sparse matrix-vector products stream the matrix
    boundBy: 'bandwidth',
    threads: 4, // TABLE I
    baseRuntimeS: 400, // ESTIMATE
    populateGiBs: 0.5, // ESTIMATE
    opsPerRun: 75 * 1_500_000_000, // ESTIMATE: 75 iterations of class C
  },
};

/**
 * The project's C stand-ins (src/workloads/native, c/nuksm-native.c). Their footprint's content depends only on
 * the seed, so two instances with the same params are page-for-page identical (dedupShare 1, STRUCTURAL, from the
 * program) and no page repeats within one instance. Access counts per iteration are read off the C loops
 * (STRUCTURAL); memoryBoundness is an ESTIMATE as for the benchmark each is named after. Runtime under the
 * emulated machine's TCG is not modelled (docs/testbed-emulated.md: its runtimes measure CPU scheduling): the
 * model's runtime_s for them is the Table I host's, a prediction of placement and counters, not of TCG timing.
 */
function nativeProfile(accessesPerByteIteration: number, memoryBoundness: number, boundBy: 'latency' | 'bandwidth'): WorkloadProfile {
  return {
    footprintGiB: 0.0625, // the stand-ins' `small` default (src/workloads/native/workloads.ts)
    dedupShare: 1, // STRUCTURAL: content is a function of the seed only
    hotShare: 1, // STRUCTURAL: every loop walks the whole footprint
    memoryBoundness, // ESTIMATE
    boundBy,
    threads: 1, // STRUCTURAL: single-threaded
    baseRuntimeS: 1, // unused when the run gives a footprint (dramAccessesPerByteIteration)
    populateGiBs: 0.5, // ESTIMATE: one pass of writes
    opsPerRun: 1,
    dramAccessesPerByteIteration: accessesPerByteIteration,
  };
}

export const NATIVE_PROFILES: Record<string, WorkloadProfile> = {
  // c/nuksm-native.c: randomaccess reads iters x n/8 random words of the n 8-byte words (1/64 per byte)
  'randomaccess-native': nativeProfile(1 / 64, 0.9, 'latency'),
  // btree: iters x n/64 binary-search lookups of ~log2(n) steps, ~8 missing the cache (ESTIMATE): 8/512 per byte
  'btree-native': nativeProfile(8 / 512, 0.5, 'latency'),
  // cg: one streaming pass over the matrix per iteration, one line per 64 bytes
  'cg-native': nativeProfile(1 / 64, 0.5, 'bandwidth'),
  // xsbench: iters x pts/16 lookups, ~6 misses each over a grid of pts points (ESTIMATE): ~6/16/8 per byte
  'xsbench-native': nativeProfile(6 / 128, 0.5, 'latency'),
};

/** The profile of a workload the model knows, paper benchmark or stand-in; undefined otherwise. */
export function profileOf(workload: string): WorkloadProfile | undefined {
  return Object.hasOwn(WORKLOAD_PROFILES, workload) ? WORKLOAD_PROFILES[workload] : Object.hasOwn(NATIVE_PROFILES, workload) ? NATIVE_PROFILES[workload] : undefined;
}

/** The Fig. 8 hog: unique pages (artifact: rand() fill), never accessed again after the fill. */
export const MEMHOG_PROFILE = {
  populateGiBs: 1, // ESTIMATE: rand() fill of 2 GiB takes ~2 s
} as const;
