/**
 * A workload is what runs inside one instance (guest or bare-metal process): how to install it
 * from the offline cache, which phases to run with which parameters, and how to turn its output
 * into Samples. Modelled on lkp-tests' programs/<name>/{install,run,parse} with the metric
 * semantics (unit, direction) declared next to the parser, as mmtests does.
 */
import type { Executor } from '../host/exec/types.ts';
import type { MetricName } from '../core/metrics.ts';
import type { Sample } from '../core/sample.ts';

/** The paper's five benchmarks, run from the artifact's sources. */
export const PAPER_WORKLOAD_NAMES = ['xsbench', 'mysql', 'btree', 'randomaccess', 'cg'] as const;
/**
 * Small C stand-ins (src/workloads/native) with the access pattern of a paper benchmark, for
 * machines where the real one cannot run (the emulated machine). Their rows never carry a real
 * benchmark's name.
 */
export const NATIVE_WORKLOAD_NAMES = ['xsbench-native', 'randomaccess-native', 'btree-native', 'cg-native'] as const;
export const WORKLOAD_NAMES = [...PAPER_WORKLOAD_NAMES, ...NATIVE_WORKLOAD_NAMES] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** Same shape as Scenario's WorkloadRun.params; every workload has footprintGiB and threads. */
export type WorkloadParams = Record<string, string | number | boolean>;

/** 'paper' = the parameters the paper/artifact used; 'small' = a scaled-down variant for tests and emulation. */
export type WorkloadVariant = 'paper' | 'small';

export type PhaseName = 'prepare' | 'run' | 'collect' | 'cleanup';

export interface Phase {
  name: PhaseName;
  /** What this phase does, for logs. */
  description: string;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Rough expected wall time, for planning and progress reports. */
  expectedDurationS: number;
  /** Hard limit; exceeding it fails the step with class 'timeout'. */
  timeoutS: number;
  /** true for the phase whose wall time is the benchmark's runtime (exactly one per run). */
  timed: boolean;
  /** true when this phase's stdout+stderr is part of the text handed to parse(). */
  parsed: boolean;
  /** A cleanup phase still runs after an earlier phase failed. */
  alwaysRun?: boolean;
  /**
   * Files holding secrets (a password in an option file) that the phase's commands read: written
   * with mode 0600 before the phase runs, their content sent over the executor's stdin, never in
   * argv (argv shows in /proc/<pid>/cmdline, in logs and in failure messages). Runners write them
   * with writeSecretFiles (src/workloads/phase-runner.ts).
   */
  secretFiles?: { path: string; content: string }[];
  /** The program registers its own memory with KSM (madvise/prctl): a process instance runs it without the registering wrapper. */
  registersItself?: boolean;
  /**
   * A timed phase whose program stays resident across the merge wait. The engine starts it
   * (detached) with the instance's preparation; it fills its memory and prints a line matching
   * `readyPattern` whose `pid=<n>` is the process holding the memory. After the merge wait the
   * engine creates `goFile` (the benchmark's clock starts); the result is out once stdout matches
   * `resultPattern`; the program keeps its memory mapped until `releaseFile` exists (placement is
   * read meanwhile), then exits 0.
   */
  resident?: { readyPattern: string; goFile: string; resultPattern: string; releaseFile: string };
}

export interface RunContext {
  /** Directory the workload was installed into (same path given to install()). */
  installDir: string;
  /** Scratch directory for this run on the target (datadirs, sockets, pid files). */
  workDir: string;
}

export interface InstallContext {
  exec: Executor;
  /** Offline cache directory as seen by the executor's target (see docs/workloads.md). */
  cacheDir: string;
  installDir: string;
  params: WorkloadParams;
  /** sha256 pins supplied by the user for cache files the project cannot pin itself (file name → hex). */
  pins?: Record<string, string>;
  /** Per-command timeout for builds (default 30 min). */
  timeoutMs?: number;
  onOutput?: (chunk: string) => void;
}

export interface InstallResult {
  /** What was installed, for the step manifest: versions, verified hashes, compiler. */
  record: Record<string, string>;
}

export interface ParseOptions {
  /** Instance name written into every sample ('' when parsing a file outside a campaign). */
  instance?: string;
  /** Parameters the run used; some checks depend on them (e.g. XSBench's checksum is only defined for its default inputs). */
  params?: WorkloadParams;
  /** Added to interval timestamps so series are relative to the step start rather than the benchmark start. */
  tOffsetS?: number;
}

export interface WorkloadMetric {
  metric: MetricName;
  /** Where the value comes from in the output, e.g. '"Runtime:     %.3lf seconds"'. */
  source: string;
  /** Time series (t set) or once per run (t null). */
  series: boolean;
}

export interface Workload {
  name: WorkloadName;
  description: string;
  /** Paper defaults (BRIEF §1, artifact.md §2.5). */
  paper: WorkloadParams;
  /** Scaled-down variant that runs in seconds to minutes. */
  small: WorkloadParams;
  metrics: WorkloadMetric[];
  /** Defaults of the chosen variant overlaid with overrides, validated; throws ConfigError. */
  resolveParams(variant: WorkloadVariant, overrides?: WorkloadParams, source?: string): WorkloadParams;
  install(ctx: InstallContext): Promise<InstallResult>;
  phases(params: WorkloadParams, ctx: RunContext): Phase[];
  /** Output text of the parsed phases → samples; throws HarnessError('parse-error') on malformed output. */
  parse(output: string, opts?: ParseOptions): Sample[];
}
