/**
 * The metric catalogue: each metric declares its unit, which direction is better and how
 * repetitions are averaged (as mmtests does next to its parsers). Parsers, monitors and the
 * model testbed all emit these names; the results store rejects unknown metrics.
 */
export type Better = 'lower' | 'higher' | 'none';
export type MeanType = 'arithmetic' | 'geometric' | 'harmonic' | 'last';

export interface MetricDef {
  unit: string;
  better: Better;
  mean: MeanType;
  description: string;
}

const m = (unit: string, better: Better, mean: MeanType, description: string): MetricDef => ({ unit, better, mean, description });

export const METRICS = {
  // Per-run workload results
  runtime_s: m('s', 'lower', 'arithmetic', 'Wall-clock runtime of the timed phase of the benchmark'),
  throughput_ops: m('ops/s', 'higher', 'harmonic', 'Benchmark throughput (lookups/s, transactions/s, updates/s), per run or per interval'),
  latency_avg_ms: m('ms', 'lower', 'arithmetic', 'Mean request latency reported by the benchmark'),
  latency_p95_ms: m('ms', 'lower', 'arithmetic', '95th percentile request latency reported by the benchmark'),
  verification_passed: m('bool', 'higher', 'last', "1 when the benchmark's own verification succeeded, 0 when it failed"),
  // DRAM locality (perf counters on a real host; simulated access counts on the model)
  local_dram_accesses: m('count', 'none', 'arithmetic', 'Loads served from DRAM on the instance’s own node'),
  remote_dram_accesses: m('count', 'lower', 'arithmetic', 'Loads served from DRAM on another node'),
  local_access_pct: m('%', 'higher', 'arithmetic', 'local / (local + remote) DRAM accesses, percent'),
  remote_access_pct: m('%', 'lower', 'arithmetic', 'remote / (local + remote) DRAM accesses, percent'),
  perf_event_unsupported: m('bool', 'none', 'last', '1 when a configured perf event is not supported on this machine'),
  // KSM counters (sysfs, or the model)
  ksm_pages_shared: m('pages', 'none', 'last', '/sys/kernel/mm/ksm/pages_shared'),
  ksm_pages_sharing: m('pages', 'higher', 'last', '/sys/kernel/mm/ksm/pages_sharing'),
  ksm_pages_unshared: m('pages', 'none', 'last', '/sys/kernel/mm/ksm/pages_unshared'),
  ksm_pages_volatile: m('pages', 'none', 'last', '/sys/kernel/mm/ksm/pages_volatile'),
  ksm_full_scans: m('count', 'none', 'last', '/sys/kernel/mm/ksm/full_scans'),
  memory_saved_gib: m('GiB', 'higher', 'arithmetic', 'pages_sharing × page size: memory freed by de-duplication'),
  ksmd_cpu_pct: m('%', 'lower', 'arithmetic', 'ksmd CPU over the sampling interval, from /proc/<pid>/stat utime+stime deltas'),
  ksm_comparisons: m('count', 'lower', 'last', 'Page comparisons made by tree searches (model: ~log2 n per search)'),
  ksm_comparisons_per_merge: m('count', 'lower', 'last', 'Tree comparisons per merged page'),
  // Placement of de-duplicated pages
  ksm_pages_on_node: m('pages', 'none', 'last', 'KSM pages mapped by the instance that sit on node `node`'),
  ksm_local_pct: m('%', 'none', 'last', 'Share of the de-duplicated pages that are local to the instance’s node'),
  // User-space placement engine (src/host/placement): what it did during the step
  placement_pages_examined: m('pages', 'none', 'last', 'KSM pages the user-space placement engine examined (last round; node = where the page was)'),
  placement_pages_moved: m('pages', 'none', 'last', 'KSM pages the user-space placement engine moved, in total (node = destination)'),
  placement_mib_moved: m('MiB', 'none', 'last', 'Memory the user-space placement engine moved between nodes, in total'),
  placement_cpu_s: m('s', 'lower', 'last', 'CPU time of the user-space placement engine (read-outs, decisions, moves), in total'),
  placement_rounds: m('count', 'none', 'last', 'Rounds (read-out, decide, move) the user-space placement engine made'),
  placement_access_signal: m('code', 'none', 'last', 'Per-instance access signal user-space fair used: 0 none (round robin), 1 DAMON vaddr regions'),
  placement_access_bit_refresh_ms: m('ms', 'none', 'last', "Period of the emulator workaround that flushed the instances' TLBs so DAMON saw accesses (0: none, as on hardware)"),
  // Host and instance memory
  mem_free_gib: m('GiB', 'higher', 'last', 'MemFree from /proc/meminfo'),
  mem_available_gib: m('GiB', 'higher', 'last', 'MemAvailable from /proc/meminfo'),
  instance_mem_on_node_mib: m('MiB', 'none', 'last', 'Resident memory of the instance on node `node`'),
  instance_mem_off_node_pct: m('%', 'lower', 'last', 'Share of the instance’s memory not on its own node'),
  hog_registered_gib: m('GiB', 'none', 'last', 'Unique KSM-registered memory added by the Fig. 8 memory hog'),
  oom: m('bool', 'lower', 'last', '1 when the host ran out of memory during the step'),
} as const satisfies Record<string, MetricDef>;

export type MetricName = keyof typeof METRICS;

export function metricDef(name: string): MetricDef | undefined {
  return (METRICS as Record<string, MetricDef>)[name];
}
