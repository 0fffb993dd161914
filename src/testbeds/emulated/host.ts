/**
 * The emulated testbed as seen from the host running nuksm: the machine's power and console only. Campaigns
 * run inside the machine ('nuksm run' starts them there: src/campaign/in-machine.ts), so the campaign
 * methods refuse here. `nuksm trace record` boots a machine of its own for the one recording (recordKsmTrace).
 */
import type { Logger } from 'pino';
import { ConfigError, HarnessError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { KsmScenario } from '../../policy/scenario.ts';
import type { TraceFile } from '../../policy/trace-file.ts';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KernelControl } from '../../host/kernel/index.ts';
import { recordScenarioTrace } from '../../host/ksm/scenario-driver/index.ts';
import type { EnvironmentRecord, KernelState, RecordKsmTraceOptions, StepContext, Testbed } from '../types.ts';
import { buildEmulatedImage, imageKernels } from './image.ts';
import { QemuMachine } from './qemu.ts';

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
   * Boots a machine of this testbed's shape from the image (built or reused) on an overlay of its own, into
   * `opts.kernel` (a `kernels` key; the one the image boots by default when absent), runs the KSM scenario
   * driver in it over SSH as the physical testbed does on a host (src/host/ksm/scenario-driver), then powers
   * the machine off and removes the overlay, whatever happened. Not for a machine a campaign is using: the
   * SSH port is the testbed file's.
   */
  async recordKsmTrace(scenario: KsmScenario, opts: RecordKsmTraceOptions): Promise<TraceFile> {
    const em = this.file.emulated!;
    const log = opts.log ?? (() => undefined);
    const image = await buildEmulatedImage({ cacheDir: em.imageCacheDir, log });
    const built = imageKernels(image);
    // `opts.kernel` is a key of the file's kernels (checked by the CLI); the image's entry wins if they differ.
    const kernel = opts.kernel === undefined ? null : (built[opts.kernel] ?? this.file.kernels[opts.kernel] ?? null);
    if (opts.kernel !== undefined && !kernel) throw new HarnessError('config', `${this.file.file}: no kernel '${opts.kernel}'`);
    const machinesDir = join(em.imageCacheDir, 'machines');
    mkdirSync(machinesDir, { recursive: true });
    const stateDir = mkdtempSync(join(machinesDir, `${this.file.name.replace(/[^A-Za-z0-9._-]+/g, '_')}-trace-`));
    const machine = new QemuMachine({
      baseDisk: image.disk,
      stateDir,
      shape: { nodes: this.file.nodes.length, cpusPerNode: em.cpusPerNode, memoryMiBPerNode: em.memoryMiBPerNode },
      sshPort: em.sshPort,
      identityFile: image.identityFile,
      knownHostsFile: image.knownHostsFile,
      bootTimeoutS: this.file.timeouts.bootS,
      shutdownTimeoutS: this.file.timeouts.vmShutdownS,
      commandTimeoutS: this.file.timeouts.commandS,
      log,
    });
    try {
      await machine.resetDisk();
      const exec = await machine.start(join(stateDir, 'console'));
      const release = kernel
        ? (await new KernelControl(exec, { pollMs: 3_000 }).bootInto(kernel.bootEntry, kernel.release)).release
        : (await exec.run(['uname', '-r'], { timeoutMs: 60_000 })).stdout.trim();
      log(`emulated machine up in ${release}: recording ${scenario.name}`);
      return await recordScenarioTrace(exec, scenario, { workRoot: '/var/tmp/nuksm', source: `emulated testbed ${this.file.name} (${this.file.file}), QEMU TCG machine running ${release}` });
    } finally {
      await machine.stop().catch(() => machine.kill().catch(() => undefined));
      rmSync(stateDir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {}
}
