/**
 * The emulated testbed as seen by the harness running INSIDE the two-node machine
 * (src/campaign/in-machine.ts starts the campaign there). Like nuksm running on a physical server: commands
 * are local, a kernel switch is grub-reboot + reboot and the campaign stops ('rebooting') to be
 * resumed after boot by the hooks of src/campaign/boot-resume.ts; after the boot the kernel is
 * verified (release, no panic/oops) before anything runs. Steps run on the shared step engine
 * (src/testbeds/step) with node-bound processes (numactl) as instances; the machine has no
 * nested VMs, so VM instances are 'unsupported'. Its image carries nuksm-native prebuilt (the
 * `*-native` stand-in workloads) and no compiler; the Fig. 8 hog is nuksm-native's memhog.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { KernelMode, MemoryHog, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import { MOVE_PAGES_BINARY } from '../../host/placement/index.ts';
import { nativeArgv, parseHogSteps, NATIVE_BINARY } from '../../workloads/native/index.ts';
import { kernelKnobsOf } from '../kernels.ts';
import { startDetachedHog } from '../step/hog.ts';
import { describeHost, ProcessLauncher, reclaimAttempt, runStep, type HogStarter, type StepEnvironment } from '../step/index.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';
import { GUEST_NATIVE_BIN_DIR } from './image.ts';

export const GUEST_STEP_ROOT = '/var/lib/nuksm/steps';

/** The Fig. 8 hog in the machine: nuksm-native memhog (unique, madvised memory in steps). */
function nativeHog(exec: Executor): HogStarter {
  return (hog: MemoryHog, opts) =>
    startDetachedHog(
      exec,
      hog,
      nativeArgv(`${GUEST_NATIVE_BIN_DIR}/${NATIVE_BINARY}`, {
        workload: 'memhog',
        merge: 'madvise',
        stepMiB: Math.round(hog.stepGiB * 1024),
        maxMiB: Math.round(hog.maxGiB * 1024),
        periodS: hog.everyS,
        lingerS: 24 * 3600,
      }),
      (stdout) => {
        const steps = parseHogSteps(stdout);
        return steps.length > 0 ? steps[steps.length - 1]!.registeredMiB * 1024 * 1024 : 0;
      },
      opts,
    );
}

export class EmulatedInsideTestbed implements Testbed {
  readonly kind = 'emulated' as const;
  private readonly exec: LocalExecutor;
  private readonly kernel: KernelControl;
  private readonly env: StepEnvironment;

  constructor(readonly file: TestbedFile) {
    this.exec = new LocalExecutor({ defaultTimeoutMs: file.timeouts.commandS * 1000 });
    this.kernel = new KernelControl(this.exec, { upTimeoutMs: file.timeouts.bootS * 1000 });
    this.env = {
      hostExec: this.exec,
      launchers: {
        process: new ProcessLauncher(this.exec, {
          installRoot: '/var/lib/nuksm/workloads',
          // The image's prebuilt nuksm-native is the offline cache native installs copy from.
          cacheDir: GUEST_NATIVE_BIN_DIR,
          workRoot: GUEST_STEP_ROOT,
          nodes: file.nodes.map((n) => n.id),
          sourceFile: file.file,
        }),
      },
      hostWorkRoot: GUEST_STEP_ROOT,
      startHog: nativeHog(this.exec),
      perfEventSet: () => null,
      nodeBinary: '/usr/local/bin/node',
      placementHelpers: [`${GUEST_NATIVE_BIN_DIR}/${MOVE_PAGES_BINARY}`],
      // TCG keeps translations cached, so DAMON's cleared accessed bits would stay clear (docs/placement.md).
      placementAccessBitRefreshMs: 50,
      // Small footprints here: a page walk per period is affordable (a tick is skipped while one runs).
      ksmPlacementPeriodic: true,
      defaultVariant: 'small',
      commandTimeoutMs: file.timeouts.commandS * 1000,
    };
  }

  async ensureKernel(mode: KernelMode, log: Logger, kernel?: string): Promise<KernelState> {
    const k = kernelKnobsOf(this.file, mode, kernel);
    const state = await this.kernel.verifyOrReboot(k.kernel.bootEntry, k.kernel.release);
    if (state.status === 'rebooting') log.info({ from: state.release, to: k.kernel.release, entry: k.kernel.bootEntry }, 'rebooting into the kernel of this step; the boot-resume hook continues the campaign');
    return { status: state.status, kernelRelease: state.release };
  }

  async describe(): Promise<EnvironmentRecord> {
    const env = await describeHost(this.exec, 'emulated', { inside: true, machine: this.file.emulated });
    // The machine is QEMU without KVM (src/testbeds/emulated/qemu.ts): a remote access costs what a
    // local one does and the instances share its vCPUs (docs/testbed-emulated.md).
    const emulatedCpu = 'QEMU TCG: a remote memory access costs what a local one does, and the instances share the emulated vCPUs, so runtimes, throughputs and CPU shares measure emulator scheduling, not NUMA locality';
    return { ...env, emulatedCpu, warnings: [...(env.warnings ?? []), `CPU emulated (${emulatedCpu})`] };
  }

  async reclaim(rawDirs: readonly string[], log: Logger): Promise<string[]> {
    const found: string[] = [];
    for (const dir of rawDirs) found.push(...(await reclaimAttempt(dir, this.exec, log)));
    return found;
  }

  async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
    await mkdir(ctx.rawDir, { recursive: true });
    const { knobs, placement } = kernelKnobsOf(this.file, scenario.kernelMode, ctx.kernel);
    try {
      await runStep(scenario, { ...ctx, placement }, this.env, knobs);
    } finally {
      // The kernel log of the step (the host keeps the serial console).
      const dmesg = await this.exec.run(['dmesg'], { timeoutMs: 15_000, allowFailure: true }).catch(() => null);
      if (dmesg) await writeFile(join(ctx.rawDir, 'dmesg.log'), dmesg.stdout).catch(() => undefined);
    }
  }

  async close(): Promise<void> {}
}
