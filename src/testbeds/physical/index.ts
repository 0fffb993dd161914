/**
 * The physical testbed: runs a Scenario on a real NUMA host (this machine or one reached over
 * SSH). One step: KSM knobs → instances (libvirt VMs pinned and verified, or bare-metal processes
 * bound with numactl) started with the stagger → install + untimed phases → merge wait → timed
 * phases (detached, surviving SSH drops) with monitors → parse → teardown, always: VMs destroyed
 * and undefined, leftover processes killed, monitors stopped, KSM unmerged and its knobs restored.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { HarnessError, failureClassOf } from '../../core/errors.ts';
import type { Sample } from '../../core/sample.ts';
import type { InstanceSpec, KernelMode, Scenario, WorkloadRun } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { SshExecutor, runDetached, waitDetached, type DetachedHandle } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
import { loadTemplate, planDomains, renderDomainXml, type DomainSpec, type KernelBoot } from '../../host/libvirt/domain-xml.ts';
import { DEFAULT_MAX_OFF_NODE_PCT, reniceProcess, verifyPlacement } from '../../host/libvirt/placement.ts';
import { Virsh } from '../../host/libvirt/virsh.ts';
import { LibvirtVm } from '../../host/libvirt/vm.ts';
import {
  KsmCountersMonitor,
  KsmdCpuMonitor,
  KsmPlacementMonitor,
  MeminfoMonitor,
  NumaPlacementMonitor,
  makeSample,
  startSampling,
  type Monitor,
  type MonitoredInstance,
  type Sampling,
} from '../../host/monitors/index.ts';
import { PerfDramMonitor, eventSet } from '../../host/perf/index.ts';
import { getWorkload, type Phase, type Workload, type WorkloadParams } from '../../workloads/index.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';
import { expandHome, hostExecutor } from './host.ts';
import { killMarked, mainProcessOf, wrapPhase, type InstanceRuntime } from './instances.ts';
import { kernelKnobsOf, ksmKnobsFor } from './knobs.ts';
import { startMemoryHog, type MemoryHogRun } from './memhog.ts';
import { waitForMerge } from '../../host/ksm/merge-wait.ts';
import { readHostNodes } from './topology.ts';

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
  /** Roots inside guests (the base image is provisioned with the workloads' cache there). */
  guestWorkRoot?: string;
  guestInstallRoot?: string;
  guestCacheDir?: string;
  /** Boot guests with this kernel/initrd instead of their disk's bootloader (tests). */
  kernelBoot?: KernelBoot | null;
  /** Share of a VM's memory allowed off its node before the step fails (placement). */
  maxOffNodePct?: number;
  /**
   * Where the harness reaches a guest's sshd, instead of its libvirt-network address on port 22
   * (e.g. a loopback port forward of QEMU user networking, as the tests use).
   */
  guestEndpoint?: (instance: InstanceSpec) => { host: string; port: number };
  /** Which variant's defaults fill parameters a scenario leaves out. */
  defaultVariant?: 'paper' | 'small';
  /** sha256 pins for workload cache files (see src/workloads/cache.ts). */
  workloadPins?: Record<string, string>;
}

const HOST_MONITORS = ['ksm', 'meminfo', 'ksmd-cpu'] as const;
const OOM_PATTERN = /Out of memory|oom-kill|oom_reaper/;
const sanitize = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);

export async function createPhysicalTestbed(file: TestbedFile, opts: PhysicalTestbedOptions = {}): Promise<Testbed> {
  if (file.kind !== 'physical' && !opts.exec) throw new HarnessError('config', `${file.file}: kind is '${file.kind}', not 'physical'`);
  const exec = opts.exec ?? (await hostExecutor(file));
  return new PhysicalTestbed(file, exec, opts);
}

export class PhysicalTestbed implements Testbed {
  readonly kind = 'physical' as const;
  private readonly ksm: KsmControl;
  private readonly kernel: KernelControl;

  constructor(
    readonly file: TestbedFile,
    readonly exec: Executor,
    readonly opts: PhysicalTestbedOptions = {},
  ) {
    this.ksm = new KsmControl(exec, { timeoutMs: file.timeouts.commandS * 1000 });
    this.kernel = new KernelControl(exec, { upTimeoutMs: file.timeouts.bootS * 1000, probeTimeoutMs: file.timeouts.sshConnectS * 1000 });
  }

  /** The `kernels` key the last ready ensureKernel verified; the steps' KSM knobs are that kernel's. */
  kernelKey: string | null = null;

  /**
   * `kernel`: the step's `kernels` key (one of the mode's); absent: the mode's first kernel.
   * nuksm running on this host: grub-reboot + reboot and 'rebooting' (the boot-resume hooks go on
   * after boot). Reaching the host over SSH: this controller waits for the host to come back and
   * verifies the kernel, so the campaign goes on without a resume.
   */
  async ensureKernel(mode: KernelMode, log: Logger, kernelKey?: string): Promise<KernelState> {
    const { key, kernel } = kernelKnobsOf(this.file, mode, kernelKey);
    this.kernelKey = null;
    if (this.file.host.kind === 'ssh') {
      const info = await this.kernel.bootInto(kernel.bootEntry, kernel.release);
      if (info.rebooted) log.info({ release: info.release, bootId: info.bootId, entry: kernel.bootEntry }, 'host rebooted into the kernel of this step and verified');
      this.kernelKey = key;
      return { status: 'ready', kernelRelease: info.release };
    }
    const state = await this.kernel.verifyOrReboot(kernel.bootEntry, kernel.release);
    if (state.status === 'rebooting') log.info({ from: state.release, to: kernel.release, entry: kernel.bootEntry }, 'rebooting into the kernel of this step');
    else this.kernelKey = key;
    return { status: state.status, kernelRelease: state.release };
  }

  async describe(): Promise<EnvironmentRecord> {
    const info = await this.kernel.bootInfo();
    const host = (await this.exec.run(['uname', '-n'], { timeoutMs: 10_000 })).stdout.trim();
    const nodes = await readHostNodes(this.exec);
    const cpu = (await this.exec.run(['sh', '-c', "grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-"], { timeoutMs: 10_000, allowFailure: true })).stdout.trim();
    const ksmKnobs = await this.ksm.readKnobs().catch(() => ({}));
    const libvirt = this.file.guests ? (await new Virsh(this.exec, this.file.libvirtUri, 20_000).run(['version'], { allowFailure: true }).catch(() => null))?.stdout.trim() ?? null : null;
    return {
      testbed: 'physical',
      host,
      kernelRelease: info.release,
      bootId: info.bootId,
      numaNodes: nodes.length,
      ksmKnobs,
      details: { target: this.exec.target, cpuModel: cpu, nodes, libvirt, perfEventSet: this.file.perfEventSet },
    };
  }

  async close(): Promise<void> {
    await this.exec.close();
  }

  async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
    await new StepRun(this, scenario, ctx).run();
  }
}

interface WorkloadInInstance {
  rt: InstanceRuntime;
  run: WorkloadRun;
  workload: Workload;
  params: WorkloadParams;
  phases: Phase[];
  /** Index of the timed phase in phases. */
  timedIndex: number;
  handle: DetachedHandle | null;
  timedStartS: number | null;
  output: string;
}

/** One step; the object holds what teardown must undo. */
class StepRun {
  private readonly file: TestbedFile;
  private readonly exec: Executor;
  private readonly opts: PhysicalTestbedOptions;
  private readonly stepId: string;
  private readonly stepStartMs = Date.now();
  private readonly signal: AbortSignal;
  private readonly ksm: KsmControl;
  private runtimes: InstanceRuntime[] = [];
  private guestExecs: Executor[] = [];
  private hostSampling: Sampling | null = null;
  private instanceSamplings: Sampling[] = [];
  private hog: MemoryHogRun | null = null;
  private ksmSaved: Record<string, string> | null = null;
  private readonly virsh: Virsh | null;

  constructor(
    private readonly testbed: PhysicalTestbed,
    private readonly scenario: Scenario,
    private readonly ctx: StepContext,
  ) {
    this.file = testbed.file;
    this.exec = testbed.exec;
    this.opts = testbed.opts;
    this.stepId = sanitize(`${scenario.campaign}-${scenario.experiment}-${scenario.configId}-i${scenario.iteration}-${this.stepStartMs}`);
    this.signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(scenario.timeline.maxDurationS * 1000)]);
    this.ksm = new KsmControl(this.exec, { timeoutMs: this.file.timeouts.commandS * 1000 });
    this.virsh = this.file.guests || scenario.instances.some((i) => i.kind === 'vm') ? new Virsh(this.exec, this.file.libvirtUri, this.file.timeouts.commandS * 1000) : null;
  }

  private get log(): Logger {
    return this.ctx.log;
  }

  private tNow(): number {
    return (Date.now() - this.stepStartMs) / 1000;
  }

  private checkAborted(phase: string): void {
    if (this.signal.aborted) {
      throw new HarnessError('timeout', `step ${this.scenario.configId} exceeded its limit (${this.scenario.timeline.maxDurationS} s) or was stopped, during ${phase}`);
    }
  }

  private async sleepUntil(tS: number): Promise<void> {
    const ms = tS * 1000 - (Date.now() - this.stepStartMs);
    if (ms <= 0) return;
    await delay(ms, undefined, { signal: this.signal }).catch(() => {
      throw new HarnessError('timeout', `step aborted while waiting to start an instance at t=${tS}s`);
    });
  }

  /** Everything that can be rejected before the host is touched. */
  private plan(): { domains: DomainSpec[]; byInstance: Map<string, WorkloadRun[]>; knobs: Record<string, string> } {
    const s = this.scenario;
    // The kernel ensureKernel made ready (a mode may run on several); else the mode's first.
    const mode = this.file.modes[s.kernelMode];
    const knobs = ksmKnobsFor(s, this.file, this.testbed.kernelKey !== null && mode?.kernels.includes(this.testbed.kernelKey) ? this.testbed.kernelKey : undefined);
    const names = new Set(s.instances.map((i) => i.name));
    for (const w of s.workloads) {
      if (!names.has(w.instance)) throw new HarnessError('config', `scenario ${s.configId}: workload ${w.workload} names unknown instance '${w.instance}'`);
      if (w.workload !== 'memhog') getWorkload(w.workload);
    }
    for (const i of s.instances) {
      if (i.kind === 'process' && !this.file.nodes.some((n) => n.id === i.node)) {
        throw new HarnessError('config', `${this.file.file}: instance ${i.name} is bound to node ${i.node}, which this testbed does not have`);
      }
    }
    const vms = s.instances.filter((i) => i.kind === 'vm');
    if (vms.length > 0 && !this.file.guests) throw new HarnessError('config', `${this.file.file}: guests: the scenario starts VMs but the testbed file configures no guests`);
    const domains = planDomains(vms, this.file.nodes, {
      sourceFile: `${s.experiment}/${s.configId}`,
      disk: this.opts.kernelBoot ? null : { overlayDir: this.file.guests?.overlayDir ?? '/var/lib/nuksm/overlays' },
      network: this.file.guests?.network ?? null,
      kernelBoot: this.opts.kernelBoot ?? null,
      consoleDir: null,
    });
    const byInstance = new Map<string, WorkloadRun[]>();
    for (const w of s.workloads) byInstance.set(w.instance, [...(byInstance.get(w.instance) ?? []), w]);
    return { domains, byInstance, knobs };
  }

  async run(): Promise<void> {
    const { domains, byInstance, knobs } = this.plan();
    const s = this.scenario;
    let primary: unknown = null;
    // null: the kernel log is not readable here (e.g. dmesg restricted), so no oom sample.
    let oomBefore: number | null = null;
    try {
      oomBefore = await this.countOomLines().catch((err: unknown) => {
        this.log.warn({ err: String(err) }, 'kernel log not readable: OOM will not be detected');
        return null;
      });
      this.ksmSaved = await this.ksm.save();
      await this.ksm.unmerge();
      await this.ksm.setKnobs(knobs);
      this.log.info({ knobs }, 'KSM configured');

      this.hostSampling = await startSampling(this.hostMonitors(), {
        periodMs: s.timeline.samplePeriodS * 1000,
        stepStartMs: this.stepStartMs,
        emit: this.ctx.emit,
        onError: (m, err) => this.log.warn({ monitor: m, err: String(err) }, 'monitor sample failed'),
      });
      if (s.memoryHog) {
        this.hog = await startMemoryHog(this.exec, s.memoryHog, {
          workDir: `${this.opts.hostWorkRoot ?? '/var/tmp/nuksm'}/${this.stepId}`,
          stepStartMs: this.stepStartMs,
          periodS: s.timeline.samplePeriodS,
          seed: s.seed,
          emit: this.ctx.emit,
          signal: this.signal,
        });
      }

      // Instances in stagger order: boot (VMs), install and the untimed phases before the timed one.
      const items: WorkloadInInstance[] = [];
      for (const inst of [...s.instances].sort((a, b) => a.startAtS - b.startAtS)) {
        await this.sleepUntil(inst.startAtS);
        this.checkAborted(`start of ${inst.name}`);
        // startVm registers its VM for teardown before starting it; processes are registered here.
        const rt = inst.kind === 'vm' ? await this.startVm(inst, domains.find((d) => d.name === inst.name)!) : this.processRuntime(inst);
        if (inst.kind !== 'vm') this.runtimes.push(rt);
        for (const run of (byInstance.get(inst.name) ?? []).filter((w) => w.workload !== 'memhog')) {
          const item = await this.prepareWorkload(rt, run, s.instances.indexOf(inst));
          items.push(item);
        }
      }

      this.checkAborted('merge wait');
      const merged = await waitForMerge(s.timeline.mergeWait, async () => {
        const c = await this.ksm.readCounters();
        return { pagesSharing: c.pages_sharing, fullScans: c.full_scans };
      }, {
        pollS: s.timeline.samplePeriodS,
        ksmRunning: s.ksm.run,
        signal: this.signal,
      });
      this.log.info(merged, 'merge wait done');

      if (s.timeline.timedPhases === 'concurrent') {
        for (const item of items) await this.launchTimed(item);
        const sampling = await this.startInstanceMonitors(items, this.runtimes.filter((rt) => rt.vm && !items.some((i) => i.rt === rt)));
        try {
          await Promise.all(items.map((item) => this.waitTimed(item)));
        } finally {
          this.instanceSamplings = this.instanceSamplings.filter((x) => x !== sampling);
          await sampling.stop();
          this.log.info('instance monitors stopped');
        }
      } else {
        for (const item of items) {
          await this.launchTimed(item);
          const sampling = await this.startInstanceMonitors([item]);
          try {
            await this.waitTimed(item);
          } finally {
            this.instanceSamplings = this.instanceSamplings.filter((x) => x !== sampling);
            await sampling.stop();
          }
        }
      }

      // Host-wide once-per-run values (memory_saved_gib, KSM counters) are taken at the end of the timed phases.
      const hostSampling = this.hostSampling;
      this.hostSampling = null;
      await hostSampling.stop();
      this.log.info('host monitors stopped');

      // Every instance's cleanup runs even if another's failed; the first failure fails the step.
      let postError: unknown = null;
      for (const item of items) {
        try {
          await this.runPostPhases(item);
        } catch (err) {
          postError ??= err;
          continue;
        }
        this.emitParsed(item);
      }
      if (postError !== null) throw postError;
    } catch (err) {
      primary = err;
    } finally {
      const before = oomBefore;
      const oom = before === null ? null : await this.countOomLines().then((n) => (n > before ? 1 : 0), () => null);
      if (oom !== null) this.ctx.emit([makeSample('host', '', 'oom', oom, null)]);
      const teardownError = await this.teardown();
      if (primary === null && teardownError !== null) primary = teardownError;
      if (primary !== null && oom === 1 && failureClassOf(primary) !== 'config') {
        primary = new HarnessError('oom', `the host ran out of memory during step ${s.configId}: ${(primary as Error).message}`, {}, { cause: primary });
      }
    }
    if (primary !== null) throw primary;
  }

  private hostMonitors(): Monitor[] {
    const want = new Set(this.scenario.monitors);
    const out: Monitor[] = [];
    for (const name of HOST_MONITORS) {
      if (!want.has(name)) continue;
      if (name === 'ksm') out.push(new KsmCountersMonitor(this.exec));
      if (name === 'meminfo') out.push(new MeminfoMonitor(this.exec));
      if (name === 'ksmd-cpu') out.push(new KsmdCpuMonitor(this.exec));
    }
    return out;
  }

  private processRuntime(inst: InstanceSpec): InstanceRuntime {
    return {
      spec: inst,
      exec: this.exec,
      installRoot: this.opts.hostInstallRoot ?? '/var/lib/nuksm/workloads',
      cacheDir: this.opts.hostCacheDir ?? '/var/cache/nuksm/workloads',
      workDir: `${this.opts.hostWorkRoot ?? '/var/tmp/nuksm'}/${this.stepId}/${inst.name}`,
      vm: null,
      qemuPid: null,
      marker: `${this.stepId}/${inst.name}`,
    };
  }

  private async startVm(inst: InstanceSpec, spec: DomainSpec): Promise<InstanceRuntime> {
    const guests = this.file.guests!;
    const virsh = this.virsh!;
    const template = await loadTemplate(this.opts.templatesDir ?? join(import.meta.dirname, '../../../vm-templates'), inst.template ?? 'guest-kvm');
    const vm = new LibvirtVm(virsh, spec, renderDomainXml(template.text, template.file, spec));
    const rt: InstanceRuntime = {
      spec: inst,
      exec: this.exec,
      installRoot: this.opts.guestInstallRoot ?? '/opt/nuksm/workloads',
      cacheDir: this.opts.guestCacheDir ?? '/opt/nuksm/cache',
      workDir: `${this.opts.guestWorkRoot ?? '/var/tmp/nuksm'}/${this.stepId}`,
      vm,
      qemuPid: null,
      marker: `${this.stepId}/${inst.name}`,
    };
    // Registered before starting so teardown undefines it whatever happens next.
    this.runtimes.push(rt);
    const t = this.file.timeouts;
    if (spec.disk) {
      await this.exec.run(['mkdir', '-p', guests.overlayDir], { timeoutMs: 10_000 });
      await this.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', guests.baseImage, '-F', 'qcow2', spec.disk.overlayPath], { timeoutMs: t.commandS * 1000 });
    }
    await vm.define();
    await vm.start(t.vmStartS * 1000);
    const endpoint = this.opts.guestEndpoint?.(inst) ?? { host: await vm.waitForAddress(t.bootS * 1000, this.signal), port: 22 };
    const address = endpoint.host;
    await vm.waitForSsh(endpoint.host, t.bootS * 1000, endpoint.port, this.signal);
    const report = await verifyPlacement(virsh, spec, this.opts.maxOffNodePct ?? DEFAULT_MAX_OFF_NODE_PCT);
    this.log.info({ vm: inst.name, address, offNodePct: report.offNodePct, pid: report.readback.qemuPid }, 'VM up and placed');
    rt.qemuPid = report.readback.qemuPid;
    if (inst.nice !== 0) await reniceProcess(this.exec, rt.qemuPid, inst.nice);
    const guest = new SshExecutor({
      host: endpoint.host,
      port: endpoint.port,
      username: guests.user,
      privateKeyPath: expandHome(guests.identityFile),
      knownHostsFile: expandHome(guests.knownHostsFile),
      hostKeyPolicy: 'strict',
      defaultTimeoutMs: t.commandS * 1000,
      connectTimeoutMs: t.sshConnectS * 1000,
    });
    this.guestExecs.push(guest);
    // Log in once now: a wrong key or host key fails the step here, not in the middle of a workload.
    const guestKernel = (await guest.run(['uname', '-r'], { timeoutMs: t.sshConnectS * 1000 + 30_000 })).stdout.trim();
    this.log.info({ vm: inst.name, guestKernel }, 'guest SSH login works');
    rt.exec = guest;
    return rt;
  }

  private resolveParams(workload: Workload, run: WorkloadRun, index: number, rt: InstanceRuntime): WorkloadParams {
    const { variant, ...given } = run.params as WorkloadParams & { variant?: unknown };
    const v = variant === 'small' || variant === 'paper' ? variant : (this.opts.defaultVariant ?? 'paper');
    const params = workload.resolveParams(v, given, `${this.scenario.experiment}/${this.scenario.configId}: ${run.instance}`);
    // Bare-metal instances share the host's network namespace: give each its own server port.
    if (rt.spec.kind === 'process' && typeof params.port === 'number') params.port = params.port + index;
    return params;
  }

  private async prepareWorkload(rt: InstanceRuntime, run: WorkloadRun, index: number): Promise<WorkloadInInstance> {
    const workload = getWorkload(run.workload);
    const params = this.resolveParams(workload, run, index, rt);
    const installDir = `${rt.installRoot}/${workload.name}`;
    const workDir = `${rt.workDir}/${workload.name}`;
    await rt.exec.run(['mkdir', '-p', installDir, workDir], { timeoutMs: 30_000 });
    const installed = await workload.install({ exec: rt.exec, cacheDir: rt.cacheDir, installDir, params, pins: this.opts.workloadPins });
    this.log.info({ instance: rt.spec.name, workload: workload.name, install: installed.record }, 'workload installed');
    const phases = workload.phases(params, { installDir, workDir });
    const timedIndex = phases.findIndex((p) => p.timed);
    if (timedIndex < 0) throw new HarnessError('config', `workload ${workload.name} has no timed phase`);
    const item: WorkloadInInstance = { rt, run, workload, params, phases, timedIndex, handle: null, timedStartS: null, output: '' };
    for (const phase of phases.slice(0, timedIndex)) {
      this.checkAborted(`${phase.name} of ${rt.spec.name}`);
      const res = await rt.exec.run(wrapPhase(rt, phase), { timeoutMs: phase.timeoutS * 1000, allowFailure: true, signal: this.signal });
      if (phase.parsed) item.output += res.stdout + res.stderr;
      if (res.exitCode !== 0) {
        throw new HarnessError('benchmark-error', `${rt.spec.name}/${workload.name}: ${phase.description} exited ${res.exitCode}: ${(res.stdout + res.stderr).trim().split('\n').slice(-5).join(' | ')}`);
      }
    }
    return item;
  }

  private async launchTimed(item: WorkloadInInstance): Promise<void> {
    const phase = item.phases[item.timedIndex];
    item.timedStartS = this.tNow();
    item.handle = await runDetached(item.rt.exec, wrapPhase(item.rt, phase), {
      workDir: `${item.rt.workDir}/detached`,
      id: `${item.workload.name}-timed`,
      timeoutMs: 30_000,
    });
    this.log.info({ instance: item.rt.spec.name, workload: item.workload.name, dir: item.handle.dir }, 'timed phase started (detached)');
  }

  private async waitTimed(item: WorkloadInInstance): Promise<void> {
    const phase = item.phases[item.timedIndex];
    const res = await waitDetached(item.rt.exec, item.handle!, { timeoutMs: phase.timeoutS * 1000, pollMs: 1000, signal: this.signal });
    this.log.info({ instance: item.rt.spec.name, workload: item.workload.name, exitCode: res.exitCode }, 'timed phase finished');
    if (phase.parsed) item.output += `${res.stdout}${res.stdout.endsWith('\n') ? '' : '\n'}${res.stderr}`;
    await this.saveRaw(item, 'timed', `${res.stdout}\n--- stderr ---\n${res.stderr}`);
    if (res.exitCode !== 0) {
      throw new HarnessError('benchmark-error', `${item.rt.spec.name}/${item.workload.name}: timed phase exited ${res.exitCode}: ${(res.stdout + res.stderr).trim().split('\n').slice(-5).join(' | ')}`);
    }
  }

  /** Phases after the timed one; cleanup phases run even when an earlier one failed. */
  private async runPostPhases(item: WorkloadInInstance): Promise<void> {
    let first: HarnessError | null = null;
    for (const phase of item.phases.slice(item.timedIndex + 1)) {
      if (first && !phase.alwaysRun) continue;
      const res = await item.rt.exec.run(wrapPhase(item.rt, phase), { timeoutMs: phase.timeoutS * 1000, allowFailure: true }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message, durationMs: 0 }));
      if (phase.parsed) item.output += res.stdout + res.stderr;
      if (res.exitCode !== 0) first ??= new HarnessError('benchmark-error', `${item.rt.spec.name}/${item.workload.name}: ${phase.description} exited ${res.exitCode}: ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    this.log.info({ instance: item.rt.spec.name, workload: item.workload.name }, 'post phases done');
    if (first) throw first;
  }

  private emitParsed(item: WorkloadInInstance): void {
    const samples = item.workload.parse(item.output, { instance: item.rt.spec.name, params: item.params, tOffsetS: item.timedStartS ?? 0 });
    this.ctx.emit(samples);
    this.log.info({ instance: item.rt.spec.name, workload: item.workload.name, samples: samples.length }, 'parsed');
  }

  private async saveRaw(item: WorkloadInInstance, what: string, text: string): Promise<void> {
    try {
      await mkdir(this.ctx.rawDir, { recursive: true });
      await writeFile(join(this.ctx.rawDir, `${item.rt.spec.name}-${item.workload.name}-${what}.log`), text);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not write raw output');
    }
  }

  /** Per-instance monitors on the host PIDs (QEMU, or the process holding the instance's memory). */
  /** `idleVms`: VMs running no workload in this step, still monitored (workload ''). */
  private async startInstanceMonitors(items: readonly WorkloadInInstance[], idleVms: readonly InstanceRuntime[] = []): Promise<Sampling> {
    const want = new Set(this.scenario.monitors);
    const monitored: MonitoredInstance[] = [];
    for (const item of items) {
      const pid = item.rt.qemuPid ?? (await mainProcessOf(this.exec, item.rt.marker));
      monitored.push({ name: item.rt.spec.name, workload: item.workload.name, pid, node: item.rt.spec.node });
    }
    for (const rt of idleVms) if (rt.qemuPid !== null) monitored.push({ name: rt.spec.name, workload: '', pid: rt.qemuPid, node: rt.spec.node });
    const monitors: Monitor[] = [];
    if (want.has('numa-placement')) {
      monitors.push(holdLast(new NumaPlacementMonitor(this.exec, monitored)));
      // KSM pages per node (ksm_pages_on_node, ksm_local_pct): one page walk at the end of the timed
      // phase (a walk of a large process takes long; periodic walks would pile up).
      if (this.scenario.ksm.run) monitors.push(new KsmPlacementMonitor(this.exec, monitored));
    }
    if (want.has('perf-dram') && this.file.perfEventSet !== 'none') {
      monitors.push(new PerfDramMonitor(this.exec, monitored, eventSet(this.file.perfEventSet), { maxDurationMs: this.scenario.timeline.maxDurationS * 1000 }));
    }
    const sampling = await startSampling(monitors, {
      periodMs: this.scenario.timeline.samplePeriodS * 1000,
      stepStartMs: this.stepStartMs,
      emit: this.ctx.emit,
      onError: (m, err) => this.log.warn({ monitor: m, err: String(err) }, 'instance monitor sample failed'),
    });
    this.instanceSamplings.push(sampling);
    return sampling;
  }

  private async countOomLines(): Promise<number> {
    const res = await this.exec.run(['dmesg'], { timeoutMs: 30_000, allowFailure: true });
    if (res.exitCode !== 0) throw new Error(`dmesg failed: ${res.stderr.trim()}`);
    return res.stdout.split('\n').filter((l) => OOM_PATTERN.test(l)).length;
  }

  /** Undo everything; returns the first error (the step's own error takes precedence). */
  private async teardown(): Promise<unknown> {
    let first: unknown = null;
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: String(err) }, `teardown: ${what} failed`);
        first ??= err;
      }
    };
    for (const s of this.instanceSamplings) await attempt('instance monitors', () => s.stop());
    this.instanceSamplings = [];
    if (this.hostSampling) await attempt('host monitors', () => this.hostSampling!.stop());
    this.hostSampling = null;
    if (this.hog) await attempt('memory hog', () => this.hog!.stop());
    for (const rt of this.runtimes) {
      if (rt.vm) await attempt(`VM ${rt.vm.name}`, () => rt.vm!.teardown());
      else await attempt(`processes of ${rt.spec.name}`, () => killMarked(this.exec, rt.marker));
    }
    for (const g of this.guestExecs) await attempt('guest SSH', () => g.close());
    if (this.ksmSaved) await attempt('KSM reset', () => this.ksm.reset(this.ksmSaved!));
    await attempt('work dir', () => this.exec.run(['rm', '-rf', `${this.opts.hostWorkRoot ?? '/var/tmp/nuksm'}/${this.stepId}`], { timeoutMs: 60_000 }));
    return first;
  }
}

/**
 * A monitor whose final read may fail because its process is gone (a bare-metal benchmark exits
 * with its timed phase): stop() then reports the last periodic reading as the once-per-run value.
 */
function holdLast(inner: Monitor): Monitor {
  let last: Sample[] = [];
  return {
    name: inner.name,
    start: () => inner.start(),
    async sample(t: number) {
      const s = await inner.sample(t);
      if (s.length > 0) last = s;
      return s;
    },
    async stop() {
      const fallback = last.map((s) => ({ ...s, t: null }));
      try {
        const final = await inner.stop();
        return final.length > 0 ? final : fallback;
      } catch {
        return fallback;
      }
    },
  };
}

