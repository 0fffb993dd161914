/**
 * One step in bare-metal mode inside the emulated machine: each instance is a nuksm-native
 * process bound to its node (affinity + MPOL_BIND), its memory registered with KSM. The step:
 * KSM knobs → instances started on the stagger, each filling its footprint → placement sampled
 * per instance from then on ('numa-placement' monitor: numa_maps, and KSM pages per node by
 * pagemap+kpageflags) → merge wait → the timed phase together (go files) → final placement
 * read-out while the data is still mapped → results → teardown (processes killed, KSM knobs
 * restored with an unmerge). Host time series run the whole step.
 */
import { stepKsmKnobs } from '../../host/ksm/step-knobs.ts';
import { waitForMerge } from '../../host/ksm/merge-wait.ts';
import type { Sample } from '../../core/sample.ts';
import { HarnessError } from '../../core/errors.ts';
import type { InstanceSpec, Scenario, WorkloadRun } from '../../core/scenario.ts';
import type { Executor } from '../../host/exec/types.ts';
import { runDetached, waitDetached, type DetachedHandle } from '../../host/exec/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
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
} from '../../host/monitors/index.ts';
import { NATIVE_BINARY, NATIVE_WORKLOADS, nativeArgv, parseHogSteps, parseNativeResult, type NativeWorkload } from '../../workloads/native/index.ts';
import type { StepContext } from '../types.ts';
import { GUEST_NATIVE_BIN_DIR } from './image.ts';

export const GUEST_STEP_ROOT = '/var/lib/nuksm/steps';
const sanitize = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface Running {
  spec: InstanceSpec;
  run: WorkloadRun;
  handle: DetachedHandle;
  goFile: string;
  doneFile: string;
  pid: number | null;
}

/** Unique memory added by the hog, read from its output each period. */
class HogMonitor implements Monitor {
  readonly name = 'meminfo' as const;
  constructor(
    private readonly exec: Executor,
    private readonly stdoutPath: string,
  ) {}
  async start(): Promise<void> {}
  async sample(t: number): Promise<Sample[]> {
    const out = (await this.exec.run(['cat', this.stdoutPath], { timeoutMs: 15_000, allowFailure: true })).stdout;
    const steps = parseHogSteps(out);
    const mib = steps.length > 0 ? steps[steps.length - 1]!.registeredMiB : 0;
    return [makeSample('host', 'memhog', 'hog_registered_gib', mib / 1024, t)];
  }
  async stop(): Promise<Sample[]> {
    return [];
  }
}

function param(run: WorkloadRun, name: string, fallback: number): number {
  const v = run.params[name];
  return typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : fallback;
}

export async function runNativeStep(exec: Executor, scenario: Scenario, ctx: StepContext, kernelKnobs: Record<string, string>): Promise<void> {
  const stepStart = Date.now();
  const stepId = sanitize(`${scenario.campaign}-${scenario.configId}-${scenario.iteration}-${stepStart}`);
  const workDir = `${GUEST_STEP_ROOT}/${stepId}`;
  const bin = `${GUEST_NATIVE_BIN_DIR}/${NATIVE_BINARY}`;
  const deadline = stepStart + scenario.timeline.maxDurationS * 1000;
  const remainingMs = () => {
    const ms = deadline - Date.now();
    if (ms <= 0 || ctx.signal.aborted) throw new HarnessError('timeout', `step ${scenario.configId} exceeded ${scenario.timeline.maxDurationS} s`);
    return ms;
  };
  const ksm = new KsmControl(exec);
  const saved = await ksm.save();
  const running: Running[] = [];
  let hog: DetachedHandle | null = null;
  await exec.run(['mkdir', '-p', workDir], { timeoutMs: 15_000 });
  const sampling = await startSampling(
    [new KsmCountersMonitor(exec), new MeminfoMonitor(exec), new KsmdCpuMonitor(exec)],
    { periodMs: scenario.timeline.samplePeriodS * 1000, stepStartMs: stepStart, emit: ctx.emit, onError: (m, e) => ctx.log.warn({ monitor: m, err: String(e) }, 'monitor sample failed') },
  );
  let hogSampling: Awaited<ReturnType<typeof startSampling>> | null = null;
  let placementSampling: Awaited<ReturnType<typeof startSampling>> | null = null;
  let samplingStopped = false;
  try {
    await ksm.setKnobs(stepKsmKnobs(scenario.ksm, kernelKnobs));
    const order = [...scenario.instances].sort((a, b) => a.startAtS - b.startAtS);
    for (const spec of order) {
      if (spec.kind !== 'process') throw new HarnessError('unsupported', `emulated testbed: instance ${spec.name} is a '${spec.kind}'; only bare-metal processes run in the emulated machine`);
      const run = scenario.workloads.find((w) => w.instance === spec.name);
      if (!run) throw new HarnessError('config', `scenario ${scenario.configId}: no workload for instance ${spec.name}`);
      if (!NATIVE_WORKLOADS.includes(run.workload as NativeWorkload)) throw new HarnessError('unsupported', `emulated testbed runs the native stand-ins (${NATIVE_WORKLOADS.join(', ')}), not '${run.workload}'`);
      const waitMs = stepStart + spec.startAtS * 1000 - Date.now();
      if (waitMs > 0) await sleep(Math.min(waitMs, remainingMs()));
      const id = sanitize(spec.name);
      const goFile = `${workDir}/${id}.go`;
      const doneFile = `${workDir}/${id}.done`;
      const argv = nativeArgv(bin, {
        workload: run.workload as NativeWorkload,
        node: spec.node,
        merge: run.params.merge === 'prctl' ? 'prctl' : 'madvise',
        footprintMiB: Math.round(param(run, 'footprintGiB', 0.0625) * 1024),
        iterations: param(run, 'iterations', 4),
        seed: param(run, 'seed', 42),
        goFile,
        doneFile,
        lingerS: scenario.timeline.maxDurationS,
      });
      const handle = await runDetached(exec, argv, { workDir, id });
      ctx.log.info({ instance: spec.name, node: spec.node, workload: run.workload }, 'instance started');
      running.push({ spec, run, handle, goFile, doneFile, pid: null });
    }
    if (scenario.memoryHog) {
      const h = scenario.memoryHog;
      const hogWait = stepStart + h.startAtS * 1000 - Date.now();
      if (hogWait > 0) await sleep(Math.min(hogWait, remainingMs()));
      hog = await runDetached(
        exec,
        nativeArgv(bin, { workload: 'memhog', node: h.node, stepMiB: Math.round(h.stepGiB * 1024), maxMiB: Math.round(h.maxGiB * 1024), periodS: h.everyS, lingerS: scenario.timeline.maxDurationS, doneFile: `${workDir}/memhog.done` }),
        { workDir, id: 'memhog' },
      );
      hogSampling = await startSampling([new HogMonitor(exec, `${hog.dir}/stdout`)], { periodMs: scenario.timeline.samplePeriodS * 1000, stepStartMs: stepStart, emit: ctx.emit });
    }
    // Every instance has filled its memory (READY line with its pid).
    for (const r of running) {
      for (;;) {
        remainingMs();
        const out = (await exec.run(['cat', `${r.handle.dir}/stdout`], { timeoutMs: 15_000, allowFailure: true })).stdout;
        const m = /NUKSM_READY \S+ pid=(\d+)/.exec(out);
        if (m) {
          r.pid = Number(m[1]);
          break;
        }
        const status = await exec.run(['cat', `${r.handle.dir}/exit`], { timeoutMs: 15_000, allowFailure: true });
        if (status.exitCode === 0 && status.stdout.trim() !== '') {
          const err = (await exec.run(['cat', `${r.handle.dir}/stderr`], { timeoutMs: 15_000, allowFailure: true })).stdout;
          throw new HarnessError('benchmark-error', `instance ${r.spec.name} exited (${status.stdout.trim()}) before it was ready: ${err.trim()}`);
        }
        await sleep(500);
      }
    }
    // Placement over time (numa_maps; KSM pages per node by pagemap + kpageflags, small footprints
    // here so a walk per period is affordable — a tick is skipped while the last walk runs), from
    // filled memory through merge wait and timed phase; the final read-out at stop() is the step's.
    const monitored: MonitoredInstance[] = running.map((r) => ({ name: r.spec.name, workload: r.run.workload, pid: r.pid!, node: r.spec.node }));
    const ksmPlacement = scenario.ksm.run ? new KsmPlacementMonitor(exec, monitored, { periodic: true, nodeBinary: '/usr/local/bin/node' }) : null;
    if (scenario.monitors.includes('numa-placement')) {
      placementSampling = await startSampling([new NumaPlacementMonitor(exec, monitored), ...(ksmPlacement ? [ksmPlacement] : [])], {
        periodMs: scenario.timeline.samplePeriodS * 1000,
        stepStartMs: stepStart,
        emit: ctx.emit,
        onError: (m, e) => ctx.log.warn({ monitor: m, err: String(e) }, 'monitor sample failed'),
      });
    }
    await mergeWait(ksm, scenario, remainingMs);
    await exec.run(['touch', ...running.map((r) => r.goFile)], { timeoutMs: 15_000 });
    const stdoutOf = new Map<string, string>();
    for (const r of running) {
      for (;;) {
        remainingMs();
        const out = (await exec.run(['cat', `${r.handle.dir}/stdout`], { timeoutMs: 15_000, allowFailure: true })).stdout;
        if (out.includes('NUKSM_RESULT ')) {
          stdoutOf.set(r.spec.name, out);
          break;
        }
        await sleep(500);
      }
    }
    // Timed phases done: the final placement read-out while every instance still maps its data.
    await placementSampling?.stop();
    placementSampling = null;
    if (ksmPlacement) await exec.writeFile(`${workDir}/ksm-placement.json`, JSON.stringify(ksmPlacement.last, null, 1));
    const samples: Sample[] = [];
    for (const r of running) {
      const res = parseNativeResult(stdoutOf.get(r.spec.name)!);
      samples.push(makeSample(r.spec.name, r.run.workload, 'runtime_s', res.runtimeS, null));
    }
    ctx.emit(samples);
    // Host-wide once-per-run values (the KSM monitor's counters at its stop) are taken at the end
    // of the timed phase, before the instances exit: their pages unmerge when they do.
    await hogSampling?.stop();
    hogSampling = null;
    await sampling.stop(); // emits the monitors' final samples itself
    samplingStopped = true;
    ctx.emit([makeSample('host', '', 'oom', 0, null)]);
    await exec.run(['touch', ...running.map((r) => r.doneFile)], { timeoutMs: 15_000 });
    for (const r of running) {
      const done = await waitDetached(exec, r.handle, { timeoutMs: Math.min(remainingMs(), 120_000), pollMs: 500 });
      if (done.exitCode !== 0) throw new HarnessError('benchmark-error', `instance ${r.spec.name} exited ${done.exitCode}: ${done.stderr.trim()}`);
    }
  } finally {
    await hogSampling?.stop().catch(() => undefined);
    await placementSampling?.stop().catch(() => undefined);
    if (!samplingStopped) await sampling.stop().catch(() => undefined);
    await exec.run(['touch', `${workDir}/memhog.done`, ...running.map((r) => r.doneFile)], { timeoutMs: 15_000, allowFailure: true }).catch(() => undefined);
    await exec.run(['sh', '-c', `pkill -KILL -f '^${bin}' || true`], { timeoutMs: 15_000, allowFailure: true }).catch(() => undefined);
    await ksm.reset(saved).catch((e: unknown) => ctx.log.warn({ err: String(e) }, 'KSM knobs not restored'));
  }
}

/** The shared merge wait (host/ksm/merge-wait.ts), bounded by what is left of the step's time. */
async function mergeWait(ksm: KsmControl, scenario: Scenario, remainingMs: () => number): Promise<void> {
  const w = scenario.timeline.mergeWait;
  const capS = remainingMs() / 1000;
  const bounded = w.kind === 'fixed' ? { ...w, seconds: Math.min(w.seconds, capS) } : { ...w, maxS: Math.min(w.maxS, capS) };
  const progress = async () => {
    const c = await ksm.readCounters();
    return { pagesSharing: c.pages_sharing, fullScans: c.full_scans };
  };
  await waitForMerge(bounded, progress, { pollS: 2, ksmRunning: scenario.ksm.run });
}
