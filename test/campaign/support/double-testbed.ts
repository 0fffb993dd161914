/**
 * TEST DOUBLE (not a testbed): a scripted Testbed for runner tests. It emits a few valid samples
 * per step and fails or asks for a reboot exactly as a test scripts it.
 */
import type { Logger } from 'pino';
import { HarnessError, type FailureClass } from '../../../src/core/errors.ts';
import type { KernelMode, Scenario } from '../../../src/core/scenario.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../../../src/testbeds/types.ts';

export interface DoubleScript {
  /** configId|kernelMode → failure classes of the first attempts (then it succeeds). */
  failures?: Record<string, FailureClass[]>;
  /** configId|kernelMode → an error thrown by every attempt (e.g. a plain Error carrying a secret). */
  errors?: Record<string, () => Error>;
  /** Modes whose first ensureKernel answers 'rebooting'. */
  rebootInto?: KernelMode[];
  /** Kernel keys whose first ensureKernel answers 'rebooting'. */
  rebootIntoKernel?: string[];
  /** configId whose step never finishes on its own (for the timeout); it returns when its signal aborts, after `teardownMs`. */
  hang?: string[];
  /** How long a hanging step takes to tear down after its signal aborted (ms; default 0). 'never': it does not return at all. */
  teardownMs?: number | 'never';
  /** Every step takes this long (ms) before it returns. */
  slowMs?: number;
  /** configId whose step emits an unknown metric. */
  badMetric?: string[];
  /**
   * configId → relative spread of runtime_s. Each (step seed, instance) gives 100 s × (1 + spread × u),
   * u uniform in [−1, 1) from a generator seeded by them: the same value on every attempt, retry and
   * resume (a re-run reproduces its step's numbers). Configurations not listed keep 100 + attempt.
   */
  runtimeSpread?: Record<string, number>;
  /** Kernel key → ensureKernel calls that succeed; every later call throws a 'boot' error (the kernel stops booting). */
  bootsBeforeFailure?: Record<string, number>;
}

/** mulberry32: a small seeded generator (uniform in [0, 1)). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The runtime a step of the double reports for an instance under `runtimeSpread` (tests recompute it). */
export function spreadRuntimeS(seed: number, instanceIndex: number, spread: number): number {
  const u = seeded(seed ^ Math.imul(instanceIndex + 1, 0x9e3779b1))();
  return 100 * (1 + spread * (2 * u - 1));
}

export class DoubleTestbed implements Testbed {
  readonly kind = 'model' as const;
  /** ensureKernel: the modes asked for; ensure: mode@kernel of each call (kernel as the runner passed it). */
  readonly calls: { ensureKernel: KernelMode[]; ensure: string[]; run: string[]; started: string[]; settled: string[] } = { ensureKernel: [], ensure: [], run: [], started: [], settled: [] };
  private mode: KernelMode = 'ksm-off';
  private readonly rebooted = new Set<string>();

  constructor(private readonly script: DoubleScript = {}) {}

  async ensureKernel(mode: KernelMode, _log: Logger, kernel?: string): Promise<KernelState> {
    this.calls.ensureKernel.push(mode);
    this.calls.ensure.push(`${mode}@${kernel ?? '-'}`);
    const allowed = kernel === undefined ? undefined : this.script.bootsBeforeFailure?.[kernel];
    if (allowed !== undefined && this.calls.ensure.filter((e) => e.endsWith(`@${kernel}`)).length > allowed) {
      throw new HarnessError('boot', `scripted: kernel ${kernel} no longer boots`);
    }
    if (this.script.rebootInto?.includes(mode) && !this.rebooted.has(mode)) {
      this.rebooted.add(mode);
      return { status: 'rebooting', kernelRelease: 'old' };
    }
    if (kernel !== undefined && this.script.rebootIntoKernel?.includes(kernel) && !this.rebooted.has(`kernel:${kernel}`)) {
      this.rebooted.add(`kernel:${kernel}`);
      return { status: 'rebooting', kernelRelease: 'old' };
    }
    this.mode = mode;
    return { status: 'ready', kernelRelease: `double-${mode}` };
  }

  async describe(): Promise<EnvironmentRecord> {
    return { testbed: 'model', host: 'double', kernelRelease: `double-${this.mode}`, bootId: null, numaNodes: 2, ksmKnobs: { run: this.mode === 'ksm-off' ? '0' : '1' }, details: {} };
  }

  async runScenario(s: Scenario, ctx: StepContext): Promise<void> {
    const key = `${s.configId}|${s.kernelMode}`;
    this.calls.run.push(key);
    const attempt = this.calls.run.filter((k) => k === key).length;
    this.calls.started.push(`${key}#${attempt}@${Date.now()}`);
    const spread = this.script.runtimeSpread?.[s.configId];
    s.instances.forEach((inst, i) => {
      const value = spread === undefined ? 100 + attempt : spreadRuntimeS(s.seed, i, spread);
      ctx.emit([{ instance: inst.name, workload: s.workloads[0]!.workload, metric: 'runtime_s', value, unit: 's', t: null, node: null }]);
    });
    ctx.emit([{ instance: 'host', workload: '', metric: 'memory_saved_gib', value: s.seed % 7, unit: 'GiB', t: null, node: null }]);
    if (this.script.slowMs) await new Promise((r) => setTimeout(r, this.script.slowMs));
    if (this.script.badMetric?.includes(s.configId)) ctx.emit([{ instance: 'host', workload: '', metric: 'made_up', value: 1, unit: 'x', t: null, node: null }]);
    if (this.script.hang?.includes(s.configId)) {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      const teardown = this.script.teardownMs ?? 0;
      if (teardown === 'never') await new Promise(() => {});
      else await new Promise((r) => setTimeout(r, teardown as number));
      this.calls.settled.push(`${key}#${attempt}@${Date.now()}`);
      throw new HarnessError('benchmark-error', 'aborted');
    }
    const thrown = this.script.errors?.[key];
    if (thrown) throw thrown();
    const failure = this.script.failures?.[key]?.[attempt - 1];
    if (failure) throw new HarnessError(failure, `scripted ${failure} on attempt ${attempt}`);
  }

  async close(): Promise<void> {}
}
