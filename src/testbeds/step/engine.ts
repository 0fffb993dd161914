/**
 * The step engine: the one timeline every real testbed (physical, emulated) runs a Scenario with.
 * The order of its stages and what each guarantees is documented in ./types.ts; the testbed
 * drivers only build a StepEnvironment (executor, launchers, hog) and call runStep().
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { HarnessError, failureClassOf } from '../../core/errors.ts';
import { numaBalancingOf, type Scenario, type WorkloadRun } from '../../core/scenario.ts';
import { runDetached, waitDetached, type DetachedHandle } from '../../host/exec/index.ts';
import type { Executor } from '../../host/exec/types.ts';
import { NUMA_BALANCING, readSysctl, writeSysctl } from '../../host/kernel/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
import { waitForMerge } from '../../host/ksm/merge-wait.ts';
import { stepKsmKnobs } from '../../host/ksm/step-knobs.ts';
import { createMonitors, makeSample, startSampling, type MonitoredInstance, type Sampling } from '../../host/monitors/index.ts';
import { Virsh } from '../../host/libvirt/virsh.ts';
import { getWorkload, writeSecretFiles, type Phase, type Workload, type WorkloadParams } from '../../workloads/index.ts';
import type { StepContext } from '../types.ts';
import { Ledger, ledgerClosed, readLedger } from './ledger.ts';
import { killMarked } from './process-launcher.ts';
import { startUserPlacement, type UserPlacementRun } from './placement-hook.ts';
import type { LaunchedInstance, MemoryHogRun, StepEnvironment } from './types.ts';

const HOST_MONITORS = new Set(['ksm', 'meminfo', 'ksmd-cpu']);
const INSTANCE_MONITORS = new Set(['numa-placement', 'perf-dram']);
const OOM_PATTERN = /Out of memory|oom-kill|oom_reaper/;
const MEMHOG = 'memhog';

const sanitize = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/** Short, unique per attempt, safe in domain, file and marker names. */
export function stepTagOf(scenario: Scenario, startMs: number): string {
  const campaign = createHash('sha256').update(scenario.campaign).digest('hex').slice(0, 6);
  return `${campaign}-${sanitize(scenario.configId).slice(0, 40)}-i${scenario.iteration}-${startMs.toString(36)}`;
}

interface WorkloadItem {
  inst: LaunchedInstance;
  run: WorkloadRun;
  workload: Workload;
  params: WorkloadParams;
  phases: Phase[];
  timedIndex: number;
  handle: DetachedHandle | null;
  timedStartS: number | null;
  /** PID holding the memory, once known (a resident phase's ready line, a VM's QEMU). */
  pid: number | null;
  output: string;
}

export async function runStep(scenario: Scenario, ctx: StepContext, env: StepEnvironment, kernelKnobs: Record<string, string>): Promise<void> {
  await new StepRun(scenario, ctx, env, kernelKnobs).run();
}

class StepRun {
  private readonly startMs = Date.now();
  private readonly tag: string;
  private readonly signal: AbortSignal;
  private readonly ksm: KsmControl;
  private readonly exec: Executor;
  private ledger: Ledger | null = null;
  private launched: LaunchedInstance[] = [];
  private hostSampling: Sampling | null = null;
  private instanceSampling: Sampling | null = null;
  private userPlacement: UserPlacementRun | null = null;
  private hog: MemoryHogRun | null = null;
  private ksmSaved: Record<string, string> | null = null;
  private sysctlSaved: { name: string; value: string } | null = null;
  private resident: WorkloadItem[] = [];

  constructor(
    private readonly s: Scenario,
    private readonly ctx: StepContext,
    private readonly env: StepEnvironment,
    private readonly kernelKnobs: Record<string, string>,
  ) {
    this.tag = stepTagOf(s, this.startMs);
    this.exec = env.hostExec;
    this.signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(s.timeline.maxDurationS * 1000)]);
    this.ksm = new KsmControl(this.exec, { timeoutMs: env.commandTimeoutMs });
  }

  private get log(): Logger {
    return this.ctx.log;
  }

  private tNow(): number {
    return (Date.now() - this.startMs) / 1000;
  }

  private remainingMs(during: string): number {
    const ms = this.startMs + this.s.timeline.maxDurationS * 1000 - Date.now();
    if (ms <= 0 || this.signal.aborted) {
      throw new HarnessError('timeout', `step ${this.s.configId} exceeded its limit (${this.s.timeline.maxDurationS} s) or was stopped, during ${during}`);
    }
    return ms;
  }

  private async sleep(ms: number, during: string): Promise<void> {
    if (ms <= 0) return;
    await delay(Math.min(ms, this.remainingMs(during)), undefined, { signal: this.signal }).catch(() => {
      throw new HarnessError('timeout', `step ${this.s.configId} was stopped or timed out during ${during}`);
    });
  }

  /** Stage 1: everything that can be refused before the host is touched. */
  private check(): Map<string, { run: WorkloadRun; workload: Workload; params: WorkloadParams }[]> {
    const s = this.s;
    const source = `${s.experiment}/${s.configId}`;
    for (const kind of new Set(s.instances.map((i) => i.kind))) {
      const launcher = this.env.launchers[kind];
      if (!launcher) throw new HarnessError('unsupported', `this testbed cannot start '${kind}' instances (scenario ${s.configId})`);
      launcher.check?.(s.instances.filter((i) => i.kind === kind), source);
    }
    if (s.memoryHog && !this.env.startHog) throw new HarnessError('unsupported', `this testbed has no memory hog (scenario ${s.configId})`);
    const names = new Set(s.instances.map((i) => i.name));
    const byInstance = new Map<string, { run: WorkloadRun; workload: Workload; params: WorkloadParams }[]>();
    s.workloads.forEach((run, index) => {
      if (!names.has(run.instance)) throw new HarnessError('config', `scenario ${s.configId}: workload ${run.workload} names unknown instance '${run.instance}'`);
      if (run.workload === MEMHOG) return;
      const workload = getWorkload(run.workload);
      const { variant, ...given } = run.params as WorkloadParams & { variant?: unknown };
      const v = variant === 'small' || variant === 'paper' ? variant : this.env.defaultVariant;
      const params = workload.resolveParams(v, given, `${source}: ${run.instance}`);
      // Bare-metal instances share the host's network namespace: each server gets its own port.
      const inst = s.instances.find((i) => i.name === run.instance)!;
      if (inst.kind === 'process' && typeof params.port === 'number') params.port = params.port + index;
      const phases = workload.phases(params, { installDir: '/', workDir: '/' });
      if (phases.filter((p) => p.timed).length !== 1) throw new HarnessError('config', `workload ${workload.name} must have exactly one timed phase`);
      byInstance.set(run.instance, [...(byInstance.get(run.instance) ?? []), { run, workload, params }]);
    });
    return byInstance;
  }

  async run(): Promise<void> {
    const byInstance = this.check();
    const s = this.s;
    mkdirSync(this.ctx.rawDir, { recursive: true });
    this.ledger = new Ledger(this.ctx.rawDir);
    let primary: unknown = null;
    // null: the kernel log is not readable here, so no oom sample (never a made-up 0).
    let oomBefore: number | null = null;
    try {
      oomBefore = await this.countOomLines().catch((err: unknown) => {
        this.log.warn({ err: String(err) }, 'kernel log not readable: OOM will not be detected');
        return null;
      });
      this.ksmSaved = await this.ksm.save();
      this.ledger.record({ kind: 'ksm-knobs', knobs: this.ksmSaved });
      await this.ksm.unmerge();
      const knobs = stepKsmKnobs(s.ksm, this.kernelKnobs);
      // ksmdStart 'all-registered': everything but run now, run=1 once every instance's memory is registered.
      const ksmdLater = s.ksm.run && s.timeline.ksmdStart === 'all-registered';
      await this.ksm.setKnobs(ksmdLater ? { ...knobs, run: '0' } : knobs);
      this.log.info({ knobs, ksmdStartsWhenAllRegistered: ksmdLater }, 'KSM configured');
      await this.setNumaBalancing();

      this.hostSampling = await startSampling(
        createMonitors(s.monitors.filter((m) => HOST_MONITORS.has(m)), { exec: this.exec, instances: [] }),
        { periodMs: s.timeline.samplePeriodS * 1000, stepStartMs: this.startMs, emit: this.ctx.emit, onError: (m, err) => this.log.warn({ monitor: m, err: String(err) }, 'monitor sample failed') },
      );
      const workRoot = `${this.env.hostWorkRoot}/${this.tag}`;
      this.ledger.record({ kind: 'workdir', path: workRoot });
      if (s.memoryHog) {
        const marker = `${this.tag}/${MEMHOG}`;
        this.ledger.record({ kind: 'processes', marker });
        this.hog = await this.env.startHog!(s.memoryHog, { workDir: `${workRoot}/${MEMHOG}`, marker, stepStartMs: this.startMs, periodS: s.timeline.samplePeriodS, seed: s.seed, emit: this.ctx.emit, signal: this.signal });
      }

      // Stage 4, staggerFrom 'launch': each instance starts at its stagger time, whether or not the earlier
      // ones are up yet (a VM boot takes long); then its workloads install and run their phases before the
      // timed one. staggerFrom 'workload': every instance is launched and its workloads installed first, and
      // the stagger clock starts when the last install is done: what runs at the stagger times is the phases
      // (the ones before the timed one, and a resident timed phase), so launch and install latency, which
      // varies by seconds, does not decide which instance registers its memory first.
      const perInstance = new Map<string, WorkloadItem[]>();
      const ordered = [...s.instances].sort((a, b) => a.startAtS - b.startAtS);
      const fromLaunch = s.timeline.staggerFrom === 'launch';
      const startSignal = AbortSignal.any([this.signal, this.startAbort.signal]);
      const installed = await this.settleAll(
        ordered.map(async (spec) => {
          if (fromLaunch) await this.sleep(this.startMs + spec.startAtS * 1000 - Date.now(), `the wait to start ${spec.name}`);
          this.remainingMs(`start of ${spec.name}`);
          const launcher = this.env.launchers[spec.kind]!;
          const inst = await launcher.launch(spec, { stepTag: this.tag, signal: startSignal, log: this.log, ledger: this.ledger!, rawDir: this.ctx.rawDir, instances: s.instances });
          this.launched.push(inst);
          const mine: WorkloadItem[] = [];
          for (const w of byInstance.get(spec.name) ?? []) {
            const item = await this.install(inst, w.run, w.workload, w.params);
            if (fromLaunch) await this.startPhases(item);
            mine.push(item);
          }
          perInstance.set(spec.name, mine);
          return mine;
        }),
      );
      if (!fromLaunch) {
        const clockMs = Date.now();
        this.log.info({ afterS: (clockMs - this.startMs) / 1000 }, 'every instance launched and installed: the stagger clock starts');
        await this.settleAll(
          ordered.map(async (spec, i) => {
            await this.sleep(clockMs + spec.startAtS * 1000 - Date.now(), `the wait to start ${spec.name}'s phases`);
            for (const item of installed[i]!) await this.startPhases(item);
          }),
        );
      }
      const items = s.instances.flatMap((i) => perInstance.get(i.name) ?? []);
      if (ksmdLater) {
        await this.ksm.setKnobs({ run: '1' });
        this.log.info({ atS: this.tNow() }, 'every instance registered: ksmd started');
      }

      // Stage 5: placement from now on when every instance's memory holder is known.
      const idle = this.launched.filter((i) => i.residentPid !== null && !items.some((it) => it.inst === i));
      if (items.every((it) => it.pid !== null)) await this.startInstanceMonitors(items, idle);

      // Stage 6.
      const mergeWait = s.timeline.mergeWait;
      const capS = this.remainingMs('merge wait') / 1000;
      const merged = await waitForMerge(mergeWait.kind === 'fixed' ? { ...mergeWait, seconds: Math.min(mergeWait.seconds, capS) } : { ...mergeWait, maxS: Math.min(mergeWait.maxS, capS) }, async () => {
        const c = await this.ksm.readCounters();
        return { pagesSharing: c.pages_sharing, fullScans: c.full_scans };
      }, { pollS: Math.min(2, s.timeline.samplePeriodS), ksmRunning: s.ksm.run, signal: this.signal }).catch((err: unknown) => {
        if (this.signal.aborted) throw new HarnessError('timeout', `step ${s.configId} was stopped or timed out during the merge wait`);
        throw err;
      });
      this.log.info(merged, 'merge wait done');

      // Stage 7.
      if (s.timeline.timedPhases === 'concurrent') {
        for (const item of items) await this.launchTimed(item);
        if (this.instanceSampling === null) await this.startInstanceMonitors(items, idle);
        await Promise.all(items.map((item) => this.waitTimed(item)));
        await this.stopInstanceMonitors();
      } else {
        const started = this.instanceSampling !== null;
        for (const item of items) {
          await this.launchTimed(item);
          if (!started) await this.startInstanceMonitors([item]);
          await this.waitTimed(item);
          if (!started) await this.stopInstanceMonitors();
        }
        await this.stopInstanceMonitors();
      }

      // Stage 8: once-per-run host values at the end of the timed phases, before memory is released.
      const hostSampling = this.hostSampling;
      this.hostSampling = null;
      await hostSampling.stop();
      this.log.info('host monitors stopped');
      await this.releaseResident();

      // Stage 9: every instance's post phases run even if another's failed; the first failure fails the step.
      let postError: unknown = null;
      for (const item of items) {
        try {
          await this.runPostPhases(item);
        } catch (err) {
          postError ??= err;
          continue;
        }
        const samples = item.workload.parse(item.output, { instance: item.inst.spec.name, params: item.params, tOffsetS: item.timedStartS ?? 0 });
        this.ctx.emit(samples);
        this.log.info({ instance: item.inst.spec.name, workload: item.workload.name, samples: samples.length }, 'parsed');
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

  /** One failed start cancels the others (a VM boot, a fill) instead of letting them run to their deadlines. */
  private readonly startAbort = new AbortController();

  /**
   * Every start settles before teardown can run (no launch may finish after it); the first failure fails the
   * step, and aborts the starts still running.
   */
  private async settleAll<T>(starts: Array<Promise<T>>): Promise<T[]> {
    const settled = await Promise.allSettled(
      starts.map((p) =>
        p.catch((err: unknown) => {
          this.startAbort.abort();
          throw err;
        }),
      ),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
  }

  private async install(inst: LaunchedInstance, run: WorkloadRun, workload: Workload, params: WorkloadParams): Promise<WorkloadItem> {
    const installDir = `${inst.installRoot}/${workload.name}`;
    const workDir = `${inst.workDir}/${workload.name}`;
    await inst.exec.run(['mkdir', '-p', installDir, workDir], { timeoutMs: 30_000 });
    const installed = await workload.install({ exec: inst.exec, cacheDir: inst.cacheDir, installDir, params, pins: this.env.workloadPins });
    this.log.info({ instance: inst.spec.name, workload: workload.name, install: installed.record }, 'workload installed');
    const phases = workload.phases(params, { installDir, workDir });
    const timedIndex = phases.findIndex((p) => p.timed);
    return { inst, run, workload, params, phases, timedIndex, handle: null, timedStartS: null, pid: inst.residentPid, output: '' };
  }

  /** The phases before the timed one, then a resident timed phase started and waited for until ready. */
  private async startPhases(item: WorkloadItem): Promise<void> {
    const { inst, workload, phases, timedIndex } = item;
    this.log.info({ instance: inst.spec.name, workload: workload.name, atS: (Date.now() - this.startMs) / 1000 }, 'phases start');
    for (const phase of phases.slice(0, timedIndex)) {
      this.remainingMs(`${phase.name} of ${inst.spec.name}`);
      await writeSecretFiles(inst.exec, phase, this.signal);
      const res = await inst.exec.run(inst.wrap(phase, { registersItself: phase.registersItself }), { timeoutMs: phase.timeoutS * 1000, allowFailure: true, signal: this.signal });
      if (phase.parsed) item.output += res.stdout + res.stderr;
      if (res.exitCode !== 0) throw benchmarkError(inst, workload, phase.description, res.exitCode, res.stdout + res.stderr);
    }
    const timed = phases[timedIndex]!;
    if (timed.resident) {
      // Started now so its memory is there for the merge wait; the go file starts its clock.
      item.handle = await this.detach(item, timed);
      this.resident.push(item);
      const ready = await this.waitForOutput(item, timed.resident.readyPattern, Math.min(timed.timeoutS * 1000, this.remainingMs('fill')), 'ready');
      item.pid = Number(/pid=(\d+)/.exec(ready.slice(ready.indexOf(timed.resident.readyPattern)))?.[1] ?? NaN);
      if (!Number.isInteger(item.pid)) item.pid = await inst.memoryPid();
      this.log.info({ instance: inst.spec.name, workload: workload.name, pid: item.pid }, 'resident phase ready (memory filled)');
    }
  }

  private async detach(item: WorkloadItem, phase: Phase): Promise<DetachedHandle> {
    await writeSecretFiles(item.inst.exec, phase, this.signal);
    return runDetached(item.inst.exec, item.inst.wrap(phase, { registersItself: phase.registersItself }), {
      workDir: `${item.inst.workDir}/${item.workload.name}/detached`,
      id: `${item.workload.name}-timed`,
      timeoutMs: 30_000,
    });
  }

  /** Polls a detached phase's stdout until it contains `pattern`; fails if the program exits first. */
  private async waitForOutput(item: WorkloadItem, pattern: string, timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const exec = item.inst.exec;
    for (;;) {
      const out = await exec.readFile(`${item.handle!.dir}/stdout`, { timeoutMs: 15_000 }).catch(() => '');
      if (out.includes(pattern)) return out;
      const exit = await exec.readFile(`${item.handle!.dir}/exit`, { timeoutMs: 15_000 }).catch(() => '');
      if (exit.trim() !== '') {
        const err = await exec.readFile(`${item.handle!.dir}/stderr`, { timeoutMs: 15_000 }).catch(() => '');
        throw benchmarkError(item.inst, item.workload, `timed phase (before it was ${what})`, Number(exit.trim()), `${out}\n${err}`);
      }
      if (Date.now() > deadline) throw new HarnessError('timeout', `${item.inst.spec.name}/${item.workload.name}: not ${what} within ${Math.round(timeoutMs / 1000)} s`);
      await this.sleep(500, `the wait for ${item.inst.spec.name} to be ${what}`);
    }
  }

  private async launchTimed(item: WorkloadItem): Promise<void> {
    const phase = item.phases[item.timedIndex]!;
    item.timedStartS = this.tNow();
    if (phase.resident) {
      await item.inst.exec.run(['touch', phase.resident.goFile], { timeoutMs: 30_000 });
    } else {
      item.handle = await this.detach(item, phase);
    }
    this.log.info({ instance: item.inst.spec.name, workload: item.workload.name, dir: item.handle!.dir }, 'timed phase started (detached)');
    if (item.pid === null) item.pid = await item.inst.memoryPid();
  }

  private async waitTimed(item: WorkloadItem): Promise<void> {
    const phase = item.phases[item.timedIndex]!;
    const timeoutMs = Math.min(phase.timeoutS * 1000, this.remainingMs(`timed phase of ${item.inst.spec.name}`));
    if (phase.resident) {
      const out = await this.waitForOutput(item, phase.resident.resultPattern, timeoutMs, 'done');
      if (phase.parsed) item.output += out;
      await this.saveRaw(item, 'timed', out);
      return;
    }
    const res = await waitDetached(item.inst.exec, item.handle!, { timeoutMs, pollMs: 1000, signal: this.signal });
    this.log.info({ instance: item.inst.spec.name, workload: item.workload.name, exitCode: res.exitCode }, 'timed phase finished');
    if (phase.parsed) item.output += `${res.stdout}${res.stdout.endsWith('\n') ? '' : '\n'}${res.stderr}`;
    await this.saveRaw(item, 'timed', `${res.stdout}\n--- stderr ---\n${res.stderr}`);
    if (res.exitCode !== 0) throw benchmarkError(item.inst, item.workload, 'timed phase', res.exitCode, res.stdout + res.stderr);
  }

  /** Resident programs keep their memory until released; each must then exit 0. */
  private async releaseResident(): Promise<void> {
    const items = this.resident;
    this.resident = [];
    for (const item of items) await item.inst.exec.run(['touch', item.phases[item.timedIndex]!.resident!.releaseFile], { timeoutMs: 30_000 });
    for (const item of items) {
      const res = await waitDetached(item.inst.exec, item.handle!, { timeoutMs: Math.min(120_000, this.remainingMs('release')), pollMs: 500, signal: this.signal });
      if (res.exitCode !== 0) throw benchmarkError(item.inst, item.workload, 'resident program after release', res.exitCode, res.stderr);
    }
  }

  /** Phases after the timed one; cleanup phases run even when an earlier one failed. */
  private async runPostPhases(item: WorkloadItem): Promise<void> {
    let first: HarnessError | null = null;
    for (const phase of item.phases.slice(item.timedIndex + 1)) {
      if (first && !phase.alwaysRun) continue;
      const res = await writeSecretFiles(item.inst.exec, phase)
        .then(() => item.inst.exec.run(item.inst.wrap(phase, { registersItself: phase.registersItself }), { timeoutMs: phase.timeoutS * 1000, allowFailure: true }))
        .catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message, durationMs: 0 }));
      if (phase.parsed) item.output += res.stdout + res.stderr;
      if (res.exitCode !== 0) first ??= benchmarkError(item.inst, item.workload, phase.description, res.exitCode, res.stderr);
    }
    if (first) throw first;
  }

  private async saveRaw(item: WorkloadItem, what: string, text: string): Promise<void> {
    try {
      await mkdir(this.ctx.rawDir, { recursive: true });
      await writeFile(join(this.ctx.rawDir, `${item.inst.spec.name}-${item.workload.name}-${what}.log`), text);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not write raw output');
    }
  }

  /** Per-instance monitors on the host PIDs (QEMU, or the process holding the instance's memory); `idle`: VMs running no workload. */
  private async startInstanceMonitors(items: readonly WorkloadItem[], idle: readonly LaunchedInstance[] = []): Promise<void> {
    const monitored: MonitoredInstance[] = [
      ...items.map((it) => ({ name: it.inst.spec.name, workload: it.workload.name, pid: it.pid!, node: it.inst.spec.node })),
      ...idle.map((i) => ({ name: i.spec.name, workload: '', pid: i.residentPid!, node: i.spec.node })),
    ];
    const perfEventSet = this.s.monitors.includes('perf-dram') ? this.env.perfEventSet() : null;
    const names = this.s.monitors.filter((m) => INSTANCE_MONITORS.has(m) && (m !== 'perf-dram' || perfEventSet !== null));
    const monitors = createMonitors(names, {
      exec: this.exec,
      instances: monitored,
      perfEventSet: perfEventSet ?? undefined,
      perf: { maxDurationMs: this.s.timeline.maxDurationS * 1000 },
      nodeBinary: this.env.nodeBinary,
      ksmPlacement: !this.s.ksm.run ? 'off' : this.env.ksmPlacementPeriodic ? 'periodic' : 'end',
    });
    this.instanceSampling = await startSampling(monitors, {
      periodMs: this.s.timeline.samplePeriodS * 1000,
      stepStartMs: this.startMs,
      emit: this.ctx.emit,
      onError: (m, err) => this.log.warn({ monitor: m, err: String(err) }, 'instance monitor sample failed'),
    });
    if (this.ctx.placement === 'userspace' && this.s.ksm.run && this.userPlacement === null) {
      this.userPlacement = await startUserPlacement({
        mode: this.s.kernelMode,
        exec: this.exec,
        instances: monitored,
        seed: this.s.seed,
        helperCandidates: this.env.placementHelpers ?? [],
        helperInstallDir: `${this.env.hostWorkRoot}/placement-helper`,
        nodeBinary: this.env.nodeBinary,
        periodMs: this.s.timeline.samplePeriodS * 1000,
        accessBitRefresh: this.env.placementAccessBitRefreshMs ? { periodMs: this.env.placementAccessBitRefreshMs, workDir: `${this.env.hostWorkRoot}/access-bit-refresh` } : null,
        emit: this.ctx.emit,
        log: this.log,
      });
    }
  }

  /** The user-space placement engine stops (its samples stored) before the final placement read-out. */
  private async stopUserPlacement(): Promise<void> {
    const run = this.userPlacement;
    this.userPlacement = null;
    if (run) await run.stop();
  }

  /** Final placement read-out (emitted by the monitors' stop) while the instances still map their data. */
  private async stopInstanceMonitors(): Promise<void> {
    await this.stopUserPlacement();
    const sampling = this.instanceSampling;
    this.instanceSampling = null;
    if (sampling) {
      await sampling.stop();
      this.log.info('instance monitors stopped');
    }
  }

  /** kernel.numa_balancing as the mode wants it (numaBalancingOf); the value found is in the ledger before the write. */
  private async setNumaBalancing(): Promise<void> {
    const wanted = numaBalancingOf(this.s.kernelMode) ? '1' : '0';
    const before = await readSysctl(this.exec, NUMA_BALANCING, this.env.commandTimeoutMs);
    if (before === null) {
      // A kernel without NUMA balancing (CONFIG_NUMA_BALANCING off) already runs every other mode as wanted.
      if (wanted === '1') throw new HarnessError('unsupported', `mode ${this.s.kernelMode} needs ${NUMA_BALANCING}, which ${this.exec.target}'s kernel does not have (CONFIG_NUMA_BALANCING off)`);
      this.log.info(`${NUMA_BALANCING} absent on this kernel (NUMA balancing off)`);
      return;
    }
    if (before !== wanted) {
      this.ledger!.record({ kind: 'sysctl', name: NUMA_BALANCING, value: before });
      this.sysctlSaved = { name: NUMA_BALANCING, value: before };
      await writeSysctl(this.exec, NUMA_BALANCING, wanted, this.env.commandTimeoutMs);
    }
    this.log.info({ [NUMA_BALANCING]: wanted, before }, 'NUMA balancing configured');
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
    if (this.userPlacement) await attempt('user-space placement', () => this.stopUserPlacement());
    if (this.instanceSampling) await attempt('instance monitors', () => this.stopInstanceMonitors());
    if (this.hostSampling) await attempt('host monitors', () => this.hostSampling!.stop());
    this.hostSampling = null;
    if (this.hog) await attempt('memory hog', () => this.hog!.stop());
    for (const inst of this.launched) await attempt(`instance ${inst.spec.name}`, () => inst.stop());
    if (this.ksmSaved) await attempt('KSM reset', () => this.ksm.reset(this.ksmSaved!));
    const sysctl = this.sysctlSaved;
    if (sysctl) await attempt(`${sysctl.name} restore`, () => writeSysctl(this.exec, sysctl.name, sysctl.value, this.env.commandTimeoutMs));
    await attempt('work dir', () => this.exec.run(['rm', '-rf', `${this.env.hostWorkRoot}/${this.tag}`], { timeoutMs: 60_000 }));
    // A ledger is closed only when everything it lists was undone; otherwise a resume reclaims it.
    if (first === null) this.ledger?.record({ kind: 'closed' });
    return first;
  }
}

function benchmarkError(inst: LaunchedInstance, workload: Workload, what: string, exitCode: number, output: string): HarnessError {
  return new HarnessError('benchmark-error', `${inst.spec.name}/${workload.name}: ${what} exited ${exitCode}: ${output.trim().split('\n').slice(-5).join(' | ')}`);
}

/**
 * After a kill, crash or power loss: undoes what an interrupted attempt's ledger lists (newest
 * first) — VMs destroyed and undefined, their overlays and consoles removed, processes carrying
 * its markers killed, work directories removed, KSM's knobs written back — then closes the
 * ledger. Returns what was found still there, for the log.
 */
export async function reclaimAttempt(rawDir: string, exec: Executor, log: Logger): Promise<string[]> {
  const entries = readLedger(rawDir);
  if (entries.length === 0 || ledgerClosed(entries)) return [];
  const found: string[] = [];
  for (const e of [...entries].reverse()) {
    switch (e.kind) {
      case 'domain': {
        const virsh = new Virsh(exec, e.uri, 60_000);
        const state = await virsh.domainState(e.name).catch(() => null);
        if (state !== null) {
          found.push(`domain ${e.name} (${state})`);
          await virsh.run(['destroy', e.name], { allowFailure: true });
          await virsh.run(['undefine', e.name], { allowFailure: true });
        }
        break;
      }
      case 'file': {
        const r = await exec.run(['sh', '-c', 'test -e "$1" && rm -f -- "$1" && echo removed', 'sh', e.path], { timeoutMs: 30_000, allowFailure: true });
        if (r.stdout.includes('removed')) found.push(`file ${e.path}`);
        break;
      }
      case 'processes': {
        const n = await killMarked(exec, e.marker);
        if (n > 0) found.push(`${n} process(es) of ${e.marker}`);
        break;
      }
      case 'workdir':
        await exec.run(['rm', '-rf', '--', e.path], { timeoutMs: 60_000, allowFailure: true });
        break;
      case 'ksm-knobs':
        await new KsmControl(exec).reset(e.knobs);
        break;
      case 'sysctl':
        if ((await readSysctl(exec, e.name)) !== e.value) {
          found.push(`${e.name} changed`);
          await writeSysctl(exec, e.name, e.value);
        }
        break;
      case 'closed':
        break;
    }
  }
  new Ledger(rawDir).record({ kind: 'closed' });
  if (found.length > 0) log.warn({ rawDir, found }, 'removed what an interrupted attempt left behind');
  return found;
}
