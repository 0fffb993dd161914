/**
 * The physical testbed: a real NUMA host (this machine, or one reached over SSH) with libvirt VMs
 * and node-bound processes. Steps run on the shared step engine (src/testbeds/step); this driver
 * builds its environment from the testbed file (host executor, VM and process launchers, the
 * Python memory hog, the perf event set) and handles kernel switches.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HarnessError } from '../../core/errors.ts';
import type { InstanceSpec, KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { Executor } from '../../host/exec/types.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import type { KernelBoot } from '../../host/libvirt/domain-xml.ts';
import { Virsh } from '../../host/libvirt/virsh.ts';
import { eventSet } from '../../host/perf/index.ts';
import { describeHost, ProcessLauncher, reclaimAttempt, runStep, VmLauncher, fileNetworking, type GuestNetworking, type InstanceLauncher, type StepEnvironment } from '../step/index.ts';
import { recordScenarioTrace } from '../../host/ksm/scenario-driver/index.ts';
import type { KsmScenario } from '../../policy/scenario.ts';
import type { TraceFile } from '../../policy/trace-file.ts';
import type { EnvironmentRecord, KernelState, RecordKsmTraceOptions, StepContext, Testbed } from '../types.ts';
import { expandHome, hostExecutor } from './host.ts';
import { kernelKnobsOf } from './knobs.ts';
import { startMemoryHog } from './memhog.ts';

export { doctorChecks, formatFindings, type DoctorFinding, type DoctorStatus } from './doctor.ts';
export { readHostNodes, compareNodes } from './topology.ts';
export { ksmKnobsFor } from './knobs.ts';
export { waitForMerge, hasConverged } from '../../host/ksm/merge-wait.ts';

export interface PhysicalTestbedOptions {
  /** Executor for the host; default from the testbed file (local or SSH). */
  exec?: Executor;
  /** vm-templates/ directory (on the machine running nuksm). */
  templatesDir?: string;
  /** Roots on the host for bare-metal instances. */
  hostWorkRoot?: string;
  hostInstallRoot?: string;
  hostCacheDir?: string;
  /** Roots inside guests (the guest image pre-builds the workloads there). */
  guestWorkRoot?: string;
  guestInstallRoot?: string;
  guestCacheDir?: string;
  /** Boot guests with this kernel/initrd instead of their disk's bootloader (tests). */
  kernelBoot?: KernelBoot | null;
  /** Share of a VM's memory allowed off its node before the step fails (placement). */
  maxOffNodePct?: number;
  /** How guests are reached; default from the testbed file's `guests.network`. */
  networking?: GuestNetworking;
  /** Which variant's defaults fill parameters a scenario leaves out. */
  defaultVariant?: 'paper' | 'small';
  /** sha256 pins for workload cache files (see src/workloads/cache.ts). */
  workloadPins?: Record<string, string>;
}

/** Where the guest image puts the workloads and the offline cache (docs/guest-image.md). */
export const GUEST_INSTALL_ROOT = '/opt/nuksm/workloads';
export const GUEST_CACHE_DIR = '/opt/nuksm/cache';

export async function createPhysicalTestbed(file: TestbedFile, opts: PhysicalTestbedOptions = {}): Promise<Testbed> {
  if (file.kind !== 'physical' && !opts.exec) throw new HarnessError('config', `${file.file}: kind is '${file.kind}', not 'physical'`);
  const exec = opts.exec ?? (await hostExecutor(file));
  return new PhysicalTestbed(file, exec, opts);
}

export class PhysicalTestbed implements Testbed {
  readonly kind = 'physical' as const;
  private readonly kernel: KernelControl;
  private readonly env: StepEnvironment;

  constructor(
    readonly file: TestbedFile,
    readonly exec: Executor,
    readonly opts: PhysicalTestbedOptions = {},
  ) {
    this.kernel = new KernelControl(exec, { upTimeoutMs: file.timeouts.bootS * 1000, probeTimeoutMs: file.timeouts.sshConnectS * 1000 });
    const launchers: Partial<Record<InstanceSpec['kind'], InstanceLauncher>> = {
      process: new ProcessLauncher(exec, {
        installRoot: opts.hostInstallRoot ?? '/var/lib/nuksm/workloads',
        cacheDir: opts.hostCacheDir ?? '/var/cache/nuksm/workloads',
        workRoot: opts.hostWorkRoot ?? '/var/tmp/nuksm',
        nodes: file.nodes.map((n) => n.id),
        sourceFile: file.file,
      }),
    };
    if (file.guests) {
      const t = file.timeouts;
      launchers.vm = new VmLauncher({
        exec,
        virsh: new Virsh(exec, file.libvirtUri, t.commandS * 1000),
        guests: file.guests,
        nodes: file.nodes,
        templatesDir: opts.templatesDir ?? join(import.meta.dirname, '../../../vm-templates'),
        networking: opts.networking ?? fileNetworking(file.guests, exec),
        timeouts: t,
        kernelBoot: opts.kernelBoot ?? null,
        maxOffNodePct: opts.maxOffNodePct,
        guestInstallRoot: opts.guestInstallRoot ?? GUEST_INSTALL_ROOT,
        guestCacheDir: opts.guestCacheDir ?? GUEST_CACHE_DIR,
        guestWorkRoot: opts.guestWorkRoot ?? '/var/tmp/nuksm',
        expandPath: expandHome,
      });
    }
    this.env = {
      hostExec: exec,
      launchers,
      hostWorkRoot: opts.hostWorkRoot ?? '/var/tmp/nuksm',
      startHog: (hog, o) => startMemoryHog(exec, hog, o),
      perfEventSet: () => (file.perfEventSet === 'none' ? null : eventSet(file.perfEventSet)),
      ksmPlacementPeriodic: false,
      defaultVariant: opts.defaultVariant ?? 'paper',
      workloadPins: opts.workloadPins,
      commandTimeoutMs: file.timeouts.commandS * 1000,
    };
  }

  /**
   * `kernel`: the step's `kernels` key (one of the mode's); absent: the mode's first kernel.
   * nuksm running on this host: grub-reboot + reboot and 'rebooting' (the boot-resume hooks go on
   * after boot). Reaching the host over SSH: this controller waits for the host to come back and
   * verifies the kernel, so the campaign goes on without a resume.
   */
  async ensureKernel(mode: KernelMode, log: Logger, kernelKey?: string): Promise<KernelState> {
    const { kernel } = kernelKnobsOf(this.file, mode, kernelKey);
    if (this.file.host.kind === 'ssh') {
      const info = await this.kernel.bootInto(kernel.bootEntry, kernel.release);
      if (info.rebooted) log.info({ release: info.release, bootId: info.bootId, entry: kernel.bootEntry }, 'host rebooted into the kernel of this step and verified');
      return { status: 'ready', kernelRelease: info.release };
    }
    const state = await this.kernel.verifyOrReboot(kernel.bootEntry, kernel.release);
    if (state.status === 'rebooting') log.info({ from: state.release, to: kernel.release, entry: kernel.bootEntry }, 'rebooting into the kernel of this step');
    return { status: state.status, kernelRelease: state.release };
  }

  async describe(): Promise<EnvironmentRecord> {
    const libvirt = this.file.guests ? (await new Virsh(this.exec, this.file.libvirtUri, 20_000).run(['version'], { allowFailure: true }).catch(() => null))?.stdout.trim() ?? null : null;
    return describeHost(this.exec, 'physical', { libvirt, perfEventSet: this.file.perfEventSet });
  }

  async reclaim(rawDirs: readonly string[], log: Logger): Promise<string[]> {
    const found: string[] = [];
    for (const dir of rawDirs) found.push(...(await reclaimAttempt(dir, this.exec, log)));
    return found;
  }

  async close(): Promise<void> {
    await this.exec.close();
  }

  async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
    const { knobs, placement } = kernelKnobsOf(this.file, scenario.kernelMode, ctx.kernel);
    await runStep(scenario, { ...ctx, placement }, this.env, knobs);
  }

  /**
   * Runs the KSM scenario driver on the host as it is now (src/host/ksm/scenario-driver): needs root and
   * KSM in sysfs, and no other process with mergeable memory; unmerges every KSM page of the host first and
   * puts the knobs back afterwards. `opts.kernel`: the `kernels` key that must be running (nothing reboots).
   */
  async recordKsmTrace(scenario: KsmScenario, opts: RecordKsmTraceOptions): Promise<TraceFile> {
    if (opts.kernel !== undefined) {
      const want = this.file.kernels[opts.kernel];
      const running = (await this.exec.run(['uname', '-r'], { timeoutMs: this.file.timeouts.commandS * 1000 })).stdout.trim();
      if (want && want.release !== running) {
        throw new HarnessError('unsupported', `${this.exec.target} runs ${running}, not kernel '${opts.kernel}' (${want.release}) of ${this.file.file}: boot into it first (trace record does not reboot)`);
      }
    }
    return recordScenarioTrace(this.exec, scenario, { workRoot: this.opts.hostWorkRoot ?? '/var/tmp/nuksm', source: `physical testbed ${this.file.name} (${this.file.file}) on ${this.exec.target}` });
  }
}
