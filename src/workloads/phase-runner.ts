/**
 * Runs a workload's phases in order through any Executor, each with its own timeout. A failing
 * phase stops the sequence, but phases marked alwaysRun (cleanup, server shutdown) still run.
 * The physical testbed may instead run the timed phase detached and reattach; it can reuse
 * the same Phase list and parsedOutputOf() for that.
 */
import { HarnessError } from '../core/errors.ts';
import type { Executor } from '../host/exec/types.ts';
import type { Phase, PhaseName } from './types.ts';

export interface PhaseOutcome {
  phase: PhaseName;
  description: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Wall-clock start, ms since the epoch (to place a benchmark's own interval times on the step clock). */
  startedAtMs: number;
  durationS: number;
}

export interface PhaseRunResult {
  outcomes: PhaseOutcome[];
  /** Concatenated output of the phases marked parsed, ready for Workload.parse(). */
  parsedOutput: string;
  /** Wall time of the timed phase as seen by the harness (the benchmark's own runtime comes from parse()). */
  timedPhaseS: number | null;
  /** When the timed phase started, ms since the epoch. */
  timedPhaseStartedAtMs: number | null;
}

export interface RunPhasesOptions {
  /** Receives each phase's output as it streams (e.g. into the step log). */
  onOutput?: (phase: Phase, stream: 'stdout' | 'stderr', chunk: string) => void;
  signal?: AbortSignal;
}

/**
 * The phase as one self-contained argv (cwd and env applied through coreutils `env`), for callers
 * that run it detached (src/host/exec runDetached takes only an argv).
 */
export function standaloneArgv(phase: Phase): string[] {
  const env = Object.entries(phase.env ?? {}).map(([k, v]) => `${k}=${v}`);
  if (!phase.cwd && env.length === 0) return [...phase.argv];
  return ['env', ...(phase.cwd ? ['-C', phase.cwd] : []), ...env, ...phase.argv];
}

export function parsedOutputOf(phases: readonly Phase[], outcomes: readonly PhaseOutcome[]): string {
  return outcomes
    .filter((o, i) => phases[i]?.parsed)
    .map((o) => `${o.stdout}${o.stdout.endsWith('\n') || o.stdout === '' ? '' : '\n'}${o.stderr}`)
    .join('\n');
}

// $1 = path; the content comes on stdin. The directory gets the usual mode (the workload's
// server may run as another user); the file is created under umask 077, so it never has a wider mode.
const WRITE_SECRET_SCRIPT = 'mkdir -p -- "$(dirname -- "$1")" && rm -f -- "$1" && umask 077 && cat > "$1" && chmod 600 -- "$1"';

/** Write a phase's secret files (mode 0600, content over stdin) before it runs; see Phase.secretFiles. */
export async function writeSecretFiles(exec: Executor, phase: Phase, signal?: AbortSignal): Promise<void> {
  for (const f of phase.secretFiles ?? []) {
    await exec.run(['sh', '-c', WRITE_SECRET_SCRIPT, 'sh', f.path], { input: f.content, timeoutMs: 30_000, signal });
  }
}

async function runOne(exec: Executor, phase: Phase, opts: RunPhasesOptions): Promise<PhaseOutcome> {
  await writeSecretFiles(exec, phase, opts.signal);
  const startedAtMs = Date.now();
  const started = performance.now();
  const result = await exec.run(phase.argv, {
    timeoutMs: phase.timeoutS * 1000,
    cwd: phase.cwd,
    env: phase.env,
    allowFailure: true,
    signal: opts.signal,
    onStdout: opts.onOutput ? (c) => opts.onOutput!(phase, 'stdout', c) : undefined,
    onStderr: opts.onOutput ? (c) => opts.onOutput!(phase, 'stderr', c) : undefined,
  });
  return {
    phase: phase.name,
    description: phase.description,
    exitCode: result.exitCode,
    stdout: result.stdout,
    stderr: result.stderr,
    startedAtMs,
    durationS: (performance.now() - started) / 1000,
  };
}

function failureOf(phase: Phase, outcome: PhaseOutcome): HarnessError {
  const tail = `${outcome.stdout}\n${outcome.stderr}`.trim().split('\n').slice(-10).join('\n');
  return new HarnessError('benchmark-error', `${phase.name} phase '${phase.description}' exited with ${outcome.exitCode}: ${tail}`, {
    phase: phase.name,
    argv: phase.argv,
    exitCode: outcome.exitCode,
  });
}

function asHarnessError(phase: Phase, err: unknown): HarnessError {
  if (err instanceof HarnessError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const timedOut = /tim(ed)? ?out/i.test(message);
  return new HarnessError(timedOut ? 'timeout' : 'benchmark-error', `${phase.name} phase '${phase.description}': ${message}`, { phase: phase.name, argv: phase.argv }, { cause: err });
}

export async function runPhases(exec: Executor, phases: readonly Phase[], opts: RunPhasesOptions = {}): Promise<PhaseRunResult> {
  const outcomes: PhaseOutcome[] = [];
  const outcomePhases: Phase[] = [];
  let firstError: HarnessError | null = null;
  for (const phase of phases) {
    if (firstError && !phase.alwaysRun) continue;
    try {
      const outcome = await runOne(exec, phase, opts);
      outcomes.push(outcome);
      outcomePhases.push(phase);
      if (outcome.exitCode !== 0 && !firstError) firstError = failureOf(phase, outcome);
    } catch (err) {
      firstError ??= asHarnessError(phase, err);
    }
  }
  if (firstError) {
    // Keep what did run (e.g. a completed timed phase before a failing cleanup) for the step log.
    Object.assign(firstError.details, { outcomes });
    throw firstError;
  }
  const timedIndex = outcomePhases.findIndex((p) => p.timed);
  return {
    outcomes,
    parsedOutput: parsedOutputOf(outcomePhases, outcomes),
    timedPhaseS: timedIndex >= 0 ? outcomes[timedIndex]!.durationS : null,
    timedPhaseStartedAtMs: timedIndex >= 0 ? outcomes[timedIndex]!.startedAtMs : null,
  };
}
