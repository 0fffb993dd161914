/**
 * The emulated testbed as seen from the host running nuksm: the machine's power and console only. Campaigns
 * run inside the machine ('nuksm run' starts them there: src/campaign/in-machine.ts), so the campaign
 * methods refuse here; `nuksm trace record` refuses too (see recordKsmTrace).
 */
import type { Logger } from 'pino';
import { ConfigError, HarnessError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { KsmScenario } from '../../policy/scenario.ts';
import type { TraceFile } from '../../policy/trace-file.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';

export class EmulatedHostTestbed implements Testbed {
  readonly kind = 'emulated' as const;

  constructor(readonly file: TestbedFile) {}

  private insideOnly(): ConfigError {
    return new ConfigError(this.file.file, 'emulated.inside', "campaigns on the emulated testbed run inside the machine: 'nuksm run' starts them there (src/campaign/in-machine.ts)");
  }

  async ensureKernel(_mode: KernelMode, _log: Logger, _kernel?: string): Promise<KernelState> {
    throw this.insideOnly();
  }

  async describe(): Promise<EnvironmentRecord> {
    throw this.insideOnly();
  }

  async runScenario(_scenario: Scenario, _ctx: StepContext): Promise<void> {
    throw this.insideOnly();
  }

  /**
   * Not built: recording needs the machine booted into the wanted kernel for the length of one scenario,
   * and the machine's lifecycle here is that of a whole campaign run inside it. The same driver runs in
   * the emulated machine in the trace suite (test/system/emulated-trace-suite.test.ts).
   */
  async recordKsmTrace(_scenario: KsmScenario): Promise<TraceFile> {
    throw new HarnessError(
      'unsupported',
      `${this.file.file}: 'nuksm trace record' does not run on the emulated testbed (its machine is booted for campaigns run inside it, not for one recording). Record on a physical testbed (a host with KSM, root and gcc here: host kind local or ssh), or on the model testbed for the model's own trace`,
    );
  }

  async close(): Promise<void> {}
}
