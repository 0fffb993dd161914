/**
 * The step engine's hook for user-space nuKSM placement: for a step whose mode the testbed file maps to
 * `placement: userspace` (StepContext.placement), the placement engine (src/host/placement) runs next to
 * stock ksmd from the moment the instances' memory-holding PIDs are known until just before the final
 * placement read-out; its samples (pages examined and moved per node, MiB moved, CPU, access signal) are
 * stored with the step's. An engine failure fails the step: a nuksm-fair row must not come from stock KSM.
 *
 * Call order: startUserPlacement() (in stage 5, with the instance monitors) → stop() (before the instance
 * monitors stop, and again harmlessly in teardown).
 */
import type { Logger } from 'pino';
import { HarnessError } from '../../core/errors.ts';
import type { KernelMode } from '../../core/scenario.ts';
import type { SampleSink } from '../../core/sample.ts';
import type { Executor } from '../../host/exec/types.ts';
import type { MonitoredInstance } from '../../host/monitors/types.ts';
import { ensureMovePagesHelper, PlacementEngine } from '../../host/placement/index.ts';
import type { UserPlacementPolicy } from '../../policy/placement.ts';

const POLICY_OF_MODE: Partial<Record<KernelMode, UserPlacementPolicy>> = { 'nuksm-fair': 'fair', 'nuksm-priority': 'priority' };

export interface UserPlacementRun {
  /** Stops the engine, emits its samples; rethrows what stopped it early. Idempotent. */
  stop(): Promise<void>;
}

export async function startUserPlacement(opts: {
  mode: KernelMode;
  exec: Executor;
  instances: readonly MonitoredInstance[];
  seed: number;
  helperCandidates: readonly string[];
  helperInstallDir: string;
  nodeBinary?: string;
  periodMs: number;
  /** From StepEnvironment.placementAccessBitRefreshMs (emulators only). */
  accessBitRefresh: { periodMs: number; workDir: string } | null;
  emit: SampleSink;
  log: Logger;
}): Promise<UserPlacementRun> {
  const policy = POLICY_OF_MODE[opts.mode];
  if (!policy) throw new HarnessError('config', `mode '${opts.mode}' has no user-space placement policy (only nuksm-fair and nuksm-priority)`);
  const helper = await ensureMovePagesHelper(opts.exec, { candidates: opts.helperCandidates, installDir: opts.helperInstallDir });
  const engine = new PlacementEngine(opts.exec, opts.instances, {
    policy,
    helper,
    seed: opts.seed,
    nodeBinary: opts.nodeBinary,
    periodMs: opts.periodMs,
    accessBitRefresh: opts.accessBitRefresh,
    log: (line) => opts.log.info(line),
  });
  await engine.start();
  opts.log.info({ policy, signal: engine.signal, reason: engine.signalReason }, 'user-space placement engine started');
  const abort = new AbortController();
  let failure: unknown = null;
  const loop = engine.run(abort.signal).catch((err: unknown) => {
    failure = err;
    opts.log.warn({ err: String(err) }, 'user-space placement engine stopped on an error');
  });
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      abort.abort();
      await loop;
      await engine.stop();
      opts.emit(engine.samples());
      opts.log.info({ rounds: engine.rounds.length, moved: engine.movedTotal, cpuS: engine.cpuTotalS }, 'user-space placement engine stopped');
      if (failure !== null) throw failure;
    },
  };
}
