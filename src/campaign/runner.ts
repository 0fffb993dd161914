/**
 * The runner: takes pending steps in plan order, makes the testbed boot the step's kernel
 * (stopping cleanly when that needs a reboot), runs the step with per-class retries (p-retry)
 * and commits it through the journal. A step that fails for good is a failure row; the
 * campaign goes on. An adaptive iteration (step.adaptive) is decided first, before its kernel is
 * asked for: a not-needed step never boots a kernel (src/campaign/adaptive.ts).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import { HarnessError, failureClassOf, type FailureClass } from '../core/errors.ts';
import { setLongTimeout, type LongTimer } from '../core/long-timer.ts';
import type { Sample } from '../core/sample.ts';
import type { Testbed } from '../testbeds/types.ts';
import { decide } from './adaptive.ts';
import { MAX_BOOTS_PER_KERNEL, type Journal, type JournalStep } from './journal.ts';

/** Retries (after the first attempt) per failure class. Config, unsupported, oom and parse errors are not retried: rerunning does not change them. */
export const DEFAULT_RETRIES: Record<FailureClass, number> = {
  config: 0,
  boot: 2,
  placement: 2,
  'guest-unreachable': 3,
  timeout: 1,
  'benchmark-error': 1,
  'parse-error': 0,
  oom: 0,
  unsupported: 0,
};

export interface Progress {
  step: JournalStep;
  done: number;
  failed: number;
  /** Adaptive iterations decided away (finished, neither done nor failed). */
  notNeeded: number;
  total: number;
  /** Seconds left by the plan's estimates, scaled by how long finished steps really took. */
  etaS: number;
}

export interface RunOptions {
  journal: Journal;
  testbed: Testbed;
  log: Logger;
  /** Directory for raw outputs; each step gets <rawDir>/<step-id>/attempt-<n>. */
  rawDir: string;
  /** Extra fields recorded in every step's manifest (harness commit, spec hash, …). */
  manifestBase: Record<string, unknown>;
  retries?: Partial<Record<FailureClass, number>>;
  /** Delay before the first retry (p-retry minTimeout), ms. */
  retryDelayMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** Stop after this many steps (tests, `nuksm run --max-steps`). */
  maxSteps?: number;
  /** After a stop signal, how long the testbed gets to clean up and return before the runner stops waiting. */
  stopGraceMs?: number;
  /** Boots into one kernel that may fail before its steps fail with class 'boot' (default MAX_BOOTS_PER_KERNEL, 3). */
  maxBootsPerKernel?: number;
  /**
   * After a step's maxDurationS, how long the testbed gets to tear the attempt down. A retry starts
   * only after it has; an attempt still not torn down then fails the step (no concurrent attempt).
   */
  teardownGraceMs?: number;
}

export type RunOutcome = 'complete' | 'rebooting' | 'stopped';

export interface RunResult {
  outcome: RunOutcome;
  done: number;
  /** Failed steps, including those the testbed cannot run (`unsupported`). */
  failed: number;
  /** Of the failed steps, those recorded as 'unsupported' (known from the plan, not a run failure). */
  unsupported: number;
  /** Adaptive iterations not run because their configuration's CI was already narrow enough. */
  notNeeded: number;
  pending: number;
  total: number;
}

/** RunResult counts from the journal (total = every planned step). */
export function countsOf(journal: Journal): Omit<RunResult, 'outcome'> {
  const c = journal.counts();
  const unsupported = journal.steps().filter((st) => st.state === 'failed' && st.failureClass === 'unsupported').length;
  return { done: c.done, failed: c.failed, unsupported, notNeeded: c['not-needed'], pending: c.pending + c.running, total: c.done + c.failed + c['not-needed'] + c.pending + c.running };
}

class StepAttemptError extends Error {
  constructor(
    readonly failureClass: FailureClass,
    message: string,
    /** No further attempt may start (the old one may still hold the step's resources). */
    readonly final = false,
  ) {
    super(message);
  }
}

/** The testbed did not finish an aborted attempt within the grace period: it may still be tearing down. */
class UnsettledAttemptError extends HarnessError {
  constructor(message: string) {
    super('timeout', message);
  }
}

/** How long a timed-out attempt gets to tear down before the step is failed instead of retried (default). */
export const DEFAULT_TEARDOWN_GRACE_MS = 300_000;

/**
 * Waits for the attempt. When it is aborted (maxDurationS, or a stop), the attempt is still awaited
 * until the testbed has torn it down, at most the grace period (stopGraceMs for a stop,
 * teardownGraceMs for a timeout): a retry never starts next to a teardown still in progress. An
 * attempt that does not settle in time is an UnsettledAttemptError (the step is not retried).
 */
async function settleOrAbort(running: Promise<void>, signal: AbortSignal, opts: RunOptions): Promise<void> {
  const settled = running.then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    if (signal.aborted) resolve('aborted');
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const first = await Promise.race([settled, aborted]);
  if (onAbort) signal.removeEventListener('abort', onAbort);
  if (first !== 'aborted') {
    if (first.ok) return;
    throw first.error;
  }
  const stopping = opts.signal?.aborted === true;
  const graceMs = stopping ? (opts.stopGraceMs ?? 30_000) : (opts.teardownGraceMs ?? DEFAULT_TEARDOWN_GRACE_MS);
  let graceTimer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    graceTimer = setTimeout(() => resolve('late'), graceMs);
  });
  const end = await Promise.race([settled, late]);
  clearTimeout(graceTimer);
  const reason: unknown = signal.reason;
  if (end === 'late') {
    throw new UnsettledAttemptError(
      stopping
        ? 'the testbed did not return after the stop signal'
        : `${reason instanceof Error ? reason.message : 'the attempt was aborted'}, and the testbed did not finish tearing the attempt down within ${graceMs} ms: the step is failed rather than retried next to it`,
    );
  }
  // Torn down: the abort reason (the timeout, or the stop) is the attempt's outcome, whatever the testbed threw.
  throw reason instanceof Error ? reason : end.ok ? new HarnessError('timeout', 'the attempt was aborted') : end.error;
}

export async function runCampaign(opts: RunOptions): Promise<RunResult> {
  const { journal, testbed, log } = opts;
  const retries = { ...DEFAULT_RETRIES, ...opts.retries };
  const maxRetries = Math.max(...Object.values(retries));
  const reset = journal.recoverInterrupted();
  if (reset.length) log.warn({ steps: reset }, 'steps interrupted by a crash or kill are re-run from scratch');
  // What interrupted attempts started (VMs, overlays, processes, KSM knobs) goes before anything
  // runs again. Every interrupted attempt, not only those just reset: a resume killed during its
  // own reclaim leaves a ledger that is not closed (reclaimAttempt skips closed ones). Newest
  // first, so the oldest attempt's saved KSM knobs (the state before the campaign touched them)
  // are the last written.
  const interrupted = journal
    .attempts()
    .filter((a) => a.outcome === 'interrupted')
    .reverse()
    .map((a) => join(opts.rawDir, a.stepId, `attempt-${a.number}`));
  if (testbed.reclaim && interrupted.length > 0) await testbed.reclaim(interrupted, log);
  // The (mode, kernel) pair last made ready: testbeds may set mode-specific state in ensureKernel
  // (knobs), so it is called whenever the mode or the kernel changes (a mode may run on several
  // kernels); a reboot only happens when the kernel differs.
  let readyFor: string | null = null;
  const maxBoots = opts.maxBootsPerKernel ?? MAX_BOOTS_PER_KERNEL;
  const releases = new Map((journal.campaign()?.plan.boots ?? []).map((b) => [b.kernel, b.release]));
  let ran = 0;
  const startedAt = Date.now();
  let estimateDoneS = 0;

  const result = (outcome: RunOutcome): RunResult => ({ outcome, ...countsOf(journal) });
  /** Decides an adaptive iteration (journal transaction); true when it became 'not-needed'. */
  const decidedAway = (st: JournalStep): boolean => {
    if (!st.adaptive) return false;
    const condition = st.adaptive;
    const decision = journal.decideConditional(st.stepId, (n, values) => decide(condition, n, values));
    if (!decision) return false;
    log.info({ step: st.stepId, reason: decision.reason }, decision.needed ? 'adaptive repetition: step needed' : 'adaptive repetition: step not needed');
    return !decision.needed;
  };
  /** A kernel that cannot be booted: its adaptive iterations not needed by now are not failures. */
  const failKernel = (kernel: string, message: string): string[] => {
    for (const st of journal.steps()) if (st.state === 'pending' && st.kernel === kernel) decidedAway(st);
    return journal.failKernelSteps(kernel, message);
  };

  for (;;) {
    const steps = journal.steps();
    const step = steps.find((s) => s.state === 'pending');
    if (!step) return result('complete');
    if (opts.signal?.aborted || (opts.maxSteps !== undefined && ran >= opts.maxSteps)) return result('stopped');

    // Before any kernel is asked for: a kernel whose remaining steps are all not needed is never booted.
    if (step.kernel !== null && decidedAway(step)) continue;

    const done = steps.filter((s) => s.state === 'done').length;
    const failed = steps.filter((s) => s.state === 'failed').length;
    const notNeeded = steps.filter((s) => s.state === 'not-needed').length;
    // Conditional steps still pending are counted: the estimate is the cap's (an upper bound).
    const leftS = steps.filter((s) => s.state === 'pending').reduce((sum, s) => sum + s.estimateS, 0);
    const scale = estimateDoneS > 0 ? (Date.now() - startedAt) / 1000 / estimateDoneS : 1;
    opts.onProgress?.({ step, done, failed, notNeeded, total: steps.length, etaS: leftS * scale });

    if (step.kernel === null) {
      journal.failAttempt(step.stepId, null, 'unsupported', step.failureMessage ?? `testbed has no kernel for mode '${step.kernelMode}'`, true);
      log.warn({ step: step.stepId }, 'unsupported on this testbed; recorded as a failure row');
      continue;
    }
    const wanted = `${step.kernelMode}@${step.kernel}`;
    if (readyFor !== wanted) {
      const kernel = step.kernel;
      const expected = releases.get(kernel) ?? null;
      const tries = journal.kernelTries(kernel);
      if (tries >= maxBoots) {
        // maxBoots asks for this kernel did not end with it ready (each one a reboot where the
        // runner lives on the host): unless it runs now, asking again would reboot forever.
        const running = await testbed.describe().then((e) => e.kernelRelease, () => null);
        if (running === null || running !== expected) {
          const message = `${tries} boots into kernel '${kernel}' (release ${expected ?? '?'}) did not bring it up: the host runs ${running ?? 'an unknown kernel'} (GRUB fell back to its default entry, the kernel failed to boot, or 'release' in the testbed file is wrong); not rebooting again`;
          const failedSteps = failKernel(kernel, message);
          log.error({ kernel, expected, running, tries, steps: failedSteps }, `${message}; its steps fail with class boot and the campaign goes on with the other kernels`);
          continue;
        }
      }
      // Durable before the testbed may reboot the host: a boot that never comes back still counts.
      const attempt = journal.beginKernelTry(kernel, null);
      let state: Awaited<ReturnType<Testbed['ensureKernel']>>;
      try {
        state = await testbed.ensureKernel(step.scenario.kernelMode, log, kernel);
      } catch (err) {
        if (!(err instanceof HarnessError && err.failureClass === 'boot')) throw err;
        if (attempt < maxBoots) {
          log.warn({ kernel, attempt, maxBoots, err: err.message }, 'making the kernel ready failed; trying again');
          continue;
        }
        const message = `kernel '${kernel}' could not be made ready in ${attempt} tries: ${err.message}`;
        const failedSteps = failKernel(kernel, message);
        log.error({ kernel, attempt, steps: failedSteps }, `${message}; its steps fail with class boot`);
        continue;
      }
      if (state.status === 'rebooting') {
        log.info({ step: step.stepId, kernel, boot: attempt, maxBoots }, 'rebooting into the next kernel; the campaign resumes after boot');
        return result('rebooting');
      }
      journal.kernelReady(kernel);
      readyFor = wanted;
    }

    log.info({ step: step.stepId, experiment: step.experiment, config: step.configId, mode: step.kernelMode, kernel: step.kernel, iteration: step.iteration }, 'step start');
    let lastAttempt: string | null = null;
    try {
      await pRetry(
        async (attemptNumber) => {
          const attemptId = journal.beginAttempt(step.stepId);
          lastAttempt = attemptId;
          // The journal's number (over resumes too), so a re-run never shares an interrupted attempt's raw directory.
          const number = journal.attempts().find((a) => a.attemptId === attemptId)!.number;
          try {
            await runOneAttempt(step, attemptId, number, opts);
          } catch (err) {
            const cls = failureClassOf(err);
            const message = err instanceof Error ? err.message : String(err);
            journal.failAttempt(step.stepId, attemptId, cls, message, false);
            log.warn({ step: step.stepId, attempt: attemptNumber, attemptId, failureClass: cls, err: message }, 'attempt failed');
            throw new StepAttemptError(cls, message, err instanceof UnsettledAttemptError);
          }
        },
        {
          retries: maxRetries,
          // A stop during the back-off delay ends the wait (p-retry rejects with the signal's reason):
          // no fresh attempt starts after SIGINT/SIGTERM, the step goes back to pending below.
          signal: opts.signal,
          minTimeout: opts.retryDelayMs ?? 5000,
          factor: 2,
          shouldRetry: ({ error, attemptNumber }) => !opts.signal?.aborted && !(error as StepAttemptError).final && attemptNumber <= retries[(error as StepAttemptError).failureClass],
        },
      );
      log.info({ step: step.stepId }, 'step done');
    } catch (err) {
      if (opts.signal?.aborted) {
        journal.requeue(step.stepId);
        log.warn({ step: step.stepId }, 'stopped during the step; it re-runs from scratch on resume');
        return result('stopped');
      }
      const cls = err instanceof StepAttemptError ? err.failureClass : failureClassOf(err);
      const message = err instanceof Error ? err.message : String(err);
      journal.failAttempt(step.stepId, null, cls, message, true);
      log.error({ step: step.stepId, failureClass: cls, err: message, lastAttempt }, 'step failed; the campaign goes on');
    }
    estimateDoneS += step.estimateS;
    ran++;
  }
}

async function runOneAttempt(step: JournalStep, attemptId: string, attemptNumber: number, opts: RunOptions): Promise<void> {
  const { journal, testbed, log } = opts;
  const rawDir = join(opts.rawDir, step.stepId, `attempt-${attemptNumber}`);
  mkdirSync(rawDir, { recursive: true });
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort);
  let open = true;
  const emit = (samples: Sample[]) => {
    if (open) journal.store.addSamples(step.stepId, attemptId, samples);
  };
  const limitMs = step.scenario.timeline.maxDurationS * 1000;
  let timer: LongTimer | undefined;
  const startedAt = new Date().toISOString();
  try {
    // A long timer: a plan stored before durations were bounded may ask for more than 2^31−1 ms.
    timer = setLongTimeout(() => controller.abort(new HarnessError('timeout', `step exceeded maxDurationS ${step.scenario.timeline.maxDurationS} s`)), limitMs);
    const running = testbed.runScenario(step.scenario, { emit, log: log.child({ step: step.stepId, attempt: attemptNumber }), signal: controller.signal, rawDir, kernel: step.kernel ?? undefined });
    await settleOrAbort(running, controller.signal, opts);
    open = false;
    const environment = await testbed.describe();
    // The step's raw outputs are durable before the journal calls it done (a power loss right after
    // would otherwise leave a done step with empty logs: ext4 commits names before data).
    syncTree(rawDir);
    journal.completeStep(step.stepId, attemptId, {
      ...opts.manifestBase,
      step: step.stepId,
      stepKey: step.key,
      attempt: attemptNumber,
      attemptId,
      startedAt,
      endedAt: new Date().toISOString(),
      figures: step.figures,
      scenario: step.scenario,
      environment,
      kernelRelease: environment.kernelRelease,
      ksmKnobs: environment.ksmKnobs,
    });
  } finally {
    open = false;
    timer?.clear();
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** fsync every file and directory below dir (a raw directory: a handful of logs). */
export function syncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path);
    else if (entry.isFile()) fsyncPath(path);
  }
  fsyncPath(dir);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
