import type { Logger } from 'pino';
import type { KernelMode, Scenario } from '../core/scenario.ts';
import type { SampleSink } from '../core/sample.ts';
import type { KsmScenario } from '../policy/scenario.ts';
import type { TraceFile } from '../policy/trace-file.ts';

export type TestbedKind = 'model' | 'emulated' | 'physical';

export interface StepContext {
  /** Store samples as they are produced (time series arrive while the step runs). */
  emit: SampleSink;
  log: Logger;
  /** Aborted when the step times out or the campaign is being stopped. */
  signal: AbortSignal;
  /** Directory for this step's raw outputs (benchmark logs, perf output, console logs, the resource ledger). */
  rawDir: string;
  /**
   * The testbed file's `kernels` key the step runs on (the one the runner's last ensureKernel
   * made ready; its KSM knobs apply). Absent: the mode's first kernel. Passed with every step, so
   * no driver keeps it between calls.
   */
  kernel?: string;
  /**
   * The mode's `placement` from the testbed file: 'userspace' makes the step engine run the user-space
   * placement engine (src/host/placement) during the step. Absent: 'kernel'. Set by the driver from its file.
   */
  placement?: 'kernel' | 'userspace';
}

/** What is recorded in each step's manifest about the machine (BenchExec-style). */
export interface EnvironmentRecord {
  testbed: TestbedKind;
  host: string;
  kernelRelease: string;
  bootId: string | null;
  numaNodes: number;
  ksmKnobs: Record<string, string>;
  details: Record<string, unknown>;
  /** Set when the CPU the instances ran on is emulated (QEMU TCG): why timings do not measure the
   * hardware. The report puts it as a caveat on every figure derived from timings. */
  emulatedCpu?: string;
  /** Anything about the environment a reader of the results should know (the report lists them). */
  warnings?: string[];
}

export interface RecordKsmTraceOptions {
  /**
   * The testbed file's `kernels` key the recording is for: on the model testbed, the kernel whose rules
   * the model follows (absent: the paper's v5.4); on the physical testbed, the kernel that must be running;
   * on the emulated testbed, the kernel its machine is booted into (absent: the image's default).
   */
  kernel?: string;
  /** Progress lines (image build, boot). */
  log?: (line: string) => void;
}

export interface KernelState {
  /** 'ready': the running kernel matches the mode. 'rebooting': a reboot into it was started;
   * the caller must stop and let the resume hook continue the campaign after boot. */
  status: 'ready' | 'rebooting';
  kernelRelease: string;
}

/**
 * One testbed. The campaign runner only talks to this interface; it never learns whether the
 * scenario ran in simulation, in an emulated two-node machine or on the physical server.
 *
 * Call order (src/campaign/runner.ts): reclaim() once at the start of a run or resume, when the
 * journal found interrupted attempts → for each pending step: ensureKernel() whenever the step's
 * (mode, kernel) pair differs from the last one made ready (status 'rebooting': the runner stops
 * and the campaign continues after boot) → runScenario() (retried per failure class, each attempt
 * with its own raw directory) → describe() for the manifest → … → close() at the end.
 */
export interface Testbed {
  readonly kind: TestbedKind;
  /**
   * Make the host run the kernel a step needs (one-shot boot selection + verification) and set
   * the mode's state. `kernel`: the step's testbed-file `kernels` key (one of `modes.<mode>.kernel`;
   * a mode may name several); when absent, the mode's first kernel. The runner calls it whenever
   * the (mode, kernel) pair changes.
   */
  ensureKernel(mode: KernelMode, log: Logger, kernel?: string): Promise<KernelState>;
  /** The environment as read back right now (kernel, KSM knobs, NUMA layout). */
  describe(): Promise<EnvironmentRecord>;
  /** Run one step and emit its samples; throws HarnessError with a failure class on failure. */
  runScenario(scenario: Scenario, ctx: StepContext): Promise<void>;
  /**
   * After a kill, crash or power loss, before anything runs again: undo what the interrupted
   * attempts (their raw directories) left on the host — VMs, overlays, processes, KSM knobs.
   * Returns what was found. Testbeds that create nothing outside the process omit it.
   */
  reclaim?(rawDirs: readonly string[], log: Logger): Promise<string[]>;
  /**
   * Records a KSM scenario (`nuksm trace record`) as a trace file (docs/trace.md): on a real kernel
   * (producer 'kernel') or by the reference model (producer 'model', never a measurement). A testbed
   * that cannot throws HarnessError('unsupported') saying why; one without the method cannot either.
   */
  recordKsmTrace?(scenario: KsmScenario, opts: RecordKsmTraceOptions): Promise<TraceFile>;
  close(): Promise<void>;
}
