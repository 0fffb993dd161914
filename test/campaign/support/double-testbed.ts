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
    for (const inst of s.instances) {
      ctx.emit([{ instance: inst.name, workload: s.workloads[0]!.workload, metric: 'runtime_s', value: 100 + attempt, unit: 's', t: null, node: null }]);
    }
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
