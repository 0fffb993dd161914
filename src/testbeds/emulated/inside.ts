/**
 * The emulated testbed as seen by the harness running INSIDE the two-node machine
 * (src/campaign/in-machine.ts starts the campaign there). Like nuksm running on a physical server: commands
 * are local, a kernel switch is grub-reboot + reboot and the campaign stops ('rebooting') to be
 * resumed after boot by the hooks of src/campaign/boot-resume.ts; after the boot the kernel is
 * verified (release, no panic/oops) before anything runs. Steps run in bare-metal mode: each
 * instance is a node-bound nuksm-native process (native-step.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
import { kernelKnobsOf } from '../kernels.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';
import { runNativeStep } from './native-step.ts';

export class EmulatedInsideTestbed implements Testbed {
  readonly kind = 'emulated' as const;
  private readonly exec: LocalExecutor;
  private readonly kernel: KernelControl;
  /** Kernel key made ready by the last ensureKernel (its KSM knobs apply to the steps). */
  private kernelKey: string | null = null;

  constructor(readonly file: TestbedFile) {
    this.exec = new LocalExecutor({ defaultTimeoutMs: file.timeouts.commandS * 1000 });
    this.kernel = new KernelControl(this.exec, { upTimeoutMs: file.timeouts.bootS * 1000 });
  }

  async ensureKernel(mode: KernelMode, log: Logger, kernel?: string): Promise<KernelState> {
    const k = kernelKnobsOf(this.file, mode, kernel);
    this.kernelKey = null;
    const state = await this.kernel.verifyOrReboot(k.kernel.bootEntry, k.kernel.release);
    if (state.status === 'rebooting') log.info({ from: state.release, to: k.kernel.release, entry: k.kernel.bootEntry }, 'rebooting into the kernel of this step; the boot-resume hook continues the campaign');
    else this.kernelKey = k.key;
    return { status: state.status, kernelRelease: state.release };
  }

  async describe(): Promise<EnvironmentRecord> {
    const info = await this.kernel.bootInfo();
    const nodes = (await this.exec.run(['sh', '-c', 'ls -d /sys/devices/system/node/node* | wc -l'], { timeoutMs: 15_000 })).stdout.trim();
    const ksmKnobs = await new KsmControl(this.exec).readKnobs().catch(() => ({}));
    const cpu = (await this.exec.run(['sh', '-c', "grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-"], { timeoutMs: 10_000, allowFailure: true })).stdout.trim();
    return {
      testbed: 'emulated',
      host: (await this.exec.run(['uname', '-n'], { timeoutMs: 10_000 })).stdout.trim(),
      kernelRelease: info.release,
      bootId: info.bootId,
      numaNodes: Number(nodes),
      ksmKnobs,
      details: { inside: true, kernel: this.kernelKey, cpu, machine: this.file.emulated },
    };
  }

  async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
    await mkdir(ctx.rawDir, { recursive: true });
    // The knobs of the kernel ensureKernel made ready (a mode may run on several), then the mode's.
    const { knobs } = kernelKnobsOf(this.file, scenario.kernelMode, this.kernelKey ?? undefined);
    try {
      await runNativeStep(this.exec, scenario, ctx, knobs);
    } finally {
      // The kernel log of the step (the host keeps the serial console).
      const dmesg = await this.exec.run(['dmesg'], { timeoutMs: 15_000, allowFailure: true }).catch(() => null);
      if (dmesg) await writeFile(join(ctx.rawDir, 'dmesg.log'), dmesg.stdout).catch(() => undefined);
    }
  }

  async close(): Promise<void> {}
}
