import type { Logger } from 'pino';
import type { KernelMode, Scenario } from '../core/scenario.ts';
import type { SampleSink } from '../core/sample.ts';

export type TestbedKind = 'model' | 'emulated' | 'physical';

export interface StepContext {
  /** Store samples as they are produced (time series arrive while the step runs). */
  emit: SampleSink;
  log: Logger;
  /** Aborted when the step times out or the campaign is being stopped. */
  signal: AbortSignal;
  /** Directory for this step's raw outputs (benchmark logs, perf output, console logs). */
  rawDir: string;
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
  close(): Promise<void>;
}
