/** Install-free convenience for testbeds: run a workload's phases and parse the result in one call. */
import type { Sample } from '../core/sample.ts';
import type { Executor } from '../host/exec/types.ts';
import { runPhases, type PhaseRunResult, type RunPhasesOptions } from './phase-runner.ts';
import type { RunContext, Workload, WorkloadParams } from './types.ts';

export interface RunWorkloadOptions extends RunPhasesOptions {
  instance: string;
  /** Step start (ms since the epoch): interval series are shifted so t counts from it. Omitted → t counts from the timed phase's start. */
  stepStartedAtMs?: number;
}

export async function runWorkload(
  exec: Executor,
  workload: Workload,
  params: WorkloadParams,
  ctx: RunContext,
  opts: RunWorkloadOptions,
): Promise<{ samples: Sample[]; run: PhaseRunResult }> {
  const run = await runPhases(exec, workload.phases(params, ctx), opts);
  const tOffsetS =
    opts.stepStartedAtMs !== undefined && run.timedPhaseStartedAtMs !== null ? (run.timedPhaseStartedAtMs - opts.stepStartedAtMs) / 1000 : 0;
  return { samples: workload.parse(run.parsedOutput, { instance: opts.instance, params, tOffsetS }), run };
}
