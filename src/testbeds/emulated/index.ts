/**
 * The emulated testbed: a two-NUMA-node Debian machine under QEMU (see qemu.ts), reached over SSH.
 * Kernel switching uses the same KernelControl as a physical host (grub-reboot → reboot → verify
 * uname -r, new boot_id, no panic/oops in the kernel log). Steps run in bare-metal mode: each
 * instance is a node-bound nuksm-native process (native-step.ts).
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, HarnessError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { KernelSpec, TestbedFile } from '../../core/testbed-file.ts';
import type { SshExecutor } from '../../host/exec/index.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';
import { buildEmulatedImage, type EmulatedImage } from './image.ts';
import { runNativeStep } from './native-step.ts';
import { QemuMachine } from './qemu.ts';

export { buildEmulatedImage, grubKernels, DEFAULT_IMAGE_CACHE_DIR, GUEST_HARNESS_DIR, GUEST_NATIVE_BIN_DIR, type EmulatedImage, type EmulatedKernel, type BuildEmulatedImageOptions } from './image.ts';
export { QemuMachine, qemuArgv, type MachineShape, type QemuMachineOptions } from './qemu.ts';
export { runNativeStep, GUEST_STEP_ROOT } from './native-step.ts';

export interface EmulatedTestbedOptions {
  /** A built image; default: buildEmulatedImage({ cacheDir: file.emulated.imageCacheDir }). */
  image?: EmulatedImage;
  /** Holds the machine's overlay disk, QMP socket and console logs; default <imageCacheDir>/machines/<name>. */
  stateDir?: string;
  /** Start from a fresh overlay (drops what earlier runs wrote to the guest disk). */
  freshDisk?: boolean;
  log?: (line: string) => void;
}

/** Kernel specs named 'bookworm' (6.1) and 'backports' (6.12, when built) for a built image. */
export function imageKernels(image: EmulatedImage): Record<string, KernelSpec> {
  const out: Record<string, KernelSpec> = {};
  for (const k of image.kernels) {
    const backports = k.suite === 'bookworm-backports';
    // 6.12 has smart scan (6.7+, on by default): a page that aged before its content became identical
    // is visited only every few passes, and two such pages may never sit in the unstable tree in the
    // same pass (seen here: 0 merges over 230 passes). The paper's 5.4 kernels have no smart scan.
    out[backports ? 'backports' : 'bookworm'] = { bootEntry: k.bootEntry, release: k.release, ksmKnobs: backports ? { smart_scan: '0' } : {} };
  }
  return out;
}

export async function createEmulatedTestbed(file: TestbedFile, opts: EmulatedTestbedOptions = {}): Promise<EmulatedTestbed> {
  if (file.kind !== 'emulated' || !file.emulated) throw new ConfigError(file.file, 'emulated', `kind must be 'emulated' with an 'emulated' section`);
  const image = opts.image ?? (await buildEmulatedImage({ cacheDir: file.emulated.imageCacheDir, log: opts.log }));
  const stateDir = opts.stateDir ?? join(file.emulated.imageCacheDir, 'machines', file.name.replace(/[^A-Za-z0-9._-]+/g, '_'));
  const machine = new QemuMachine({
    baseDisk: image.disk,
    stateDir,
    shape: { nodes: file.nodes.length || 2, cpusPerNode: file.emulated.cpusPerNode, memoryMiBPerNode: file.emulated.memoryMiBPerNode },
    sshPort: file.emulated.sshPort,
    identityFile: image.identityFile,
    knownHostsFile: image.knownHostsFile,
    bootTimeoutS: file.timeouts.bootS,
    shutdownTimeoutS: file.timeouts.vmShutdownS,
    commandTimeoutS: file.timeouts.commandS,
    log: opts.log,
  });
  if (opts.freshDisk) await machine.resetDisk();
  const exec = await machine.start(join(stateDir, 'console'));
  return new EmulatedTestbed(file, image, machine, exec);
}

export class EmulatedTestbed implements Testbed {
  readonly kind = 'emulated' as const;
  kernel: KernelControl;

  constructor(
    readonly file: TestbedFile,
    readonly image: EmulatedImage,
    readonly machine: QemuMachine,
    public exec: SshExecutor,
  ) {
    this.kernel = this.kernelControl();
  }

  private kernelControl(): KernelControl {
    return new KernelControl(this.exec, { downTimeoutMs: 120_000, upTimeoutMs: this.file.timeouts.bootS * 1000, pollMs: 3_000, probeTimeoutMs: this.file.timeouts.sshConnectS * 1000 });
  }

  private kernelFor(mode: KernelMode): KernelSpec {
    const modeSpec = this.file.modes[mode];
    if (!modeSpec) throw new ConfigError(this.file.file, `modes.${mode}`, `kernel mode '${mode}' is not configured for this testbed`);
    const kernel = this.file.kernels[modeSpec.kernel];
    if (!kernel) throw new ConfigError(this.file.file, `modes.${mode}.kernel`, `no kernel '${modeSpec.kernel}' in kernels`);
    return kernel;
  }

  /**
   * One-shot GRUB selection + reboot + verification, like a physical host. The harness drives the
   * guest from outside, so it waits for the reboot and returns 'ready'.
   */
  async ensureKernel(mode: KernelMode, log: Logger): Promise<KernelState> {
    const kernel = this.kernelFor(mode);
    const info = await this.kernel.bootInto(kernel.bootEntry, kernel.release);
    if (info.rebooted) log.info({ release: info.release, bootId: info.bootId, entry: kernel.bootEntry }, 'emulated machine rebooted into the kernel of this mode');
    return { status: 'ready', kernelRelease: info.release };
  }

  async describe(): Promise<EnvironmentRecord> {
    const info = await this.kernel.bootInfo();
    const nodes = (await this.exec.run(['sh', '-c', 'ls -d /sys/devices/system/node/node* | wc -l'], { timeoutMs: 15_000 })).stdout.trim();
    const ksmKnobs = await new KsmControl(this.exec).readKnobs().catch(() => ({}));
    return {
      testbed: 'emulated',
      host: this.exec.target,
      kernelRelease: info.release,
      bootId: info.bootId,
      numaNodes: Number(nodes),
      ksmKnobs,
      details: { image: this.image.key, baseImage: this.image.baseKey, qemuPid: this.machine.pid, shape: this.machine.opts.shape, accel: this.machine.opts.accel ?? 'tcg', retriedBoots: this.machine.retriedBoots },
    };
  }

  async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
    await mkdir(ctx.rawDir, { recursive: true });
    const modeSpec = this.file.modes[scenario.kernelMode];
    const kernelKnobs = { ...(modeSpec ? this.kernelFor(scenario.kernelMode).ksmKnobs : {}), ...(modeSpec?.ksmKnobs ?? {}) };
    try {
      await runNativeStep(this.exec, scenario, ctx, kernelKnobs);
    } finally {
      if (this.machine.consoleLog) await copyFile(this.machine.consoleLog, join(ctx.rawDir, 'console.log')).catch(() => undefined);
    }
  }

  /** Pull the plug and boot again (power loss); the overlay disk keeps what the guest wrote. */
  async powerCycle(): Promise<void> {
    await this.machine.kill();
    this.exec = await this.machine.start(join(this.machine.opts.stateDir, 'console'));
    this.kernel = this.kernelControl();
  }

  async close(): Promise<void> {
    const how = await this.machine.stop();
    if (how === 'killed') throw new HarnessError('timeout', `emulated machine did not power off within ${this.file.timeouts.vmShutdownS} s and was killed`);
  }
}
