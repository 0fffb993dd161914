/**
 * The campaign journal: step states pending → running → done | failed, with every attempt
 * recorded; an adaptive iteration may instead go pending → not-needed (decideConditional), which
 * is finished but neither done nor failed. It lives in the results store's database so that
 * marking a step done and making its samples valid is one transaction (see src/results/store.ts).
 */
import { randomUUID } from 'node:crypto';
import type { FailureClass } from '../core/errors.ts';
import { redact } from '../core/secrets.ts';
import type { Scenario } from '../core/scenario.ts';
import type { ResultsStore } from '../results/store.ts';
import type { AdaptiveDecision, DoneValues, StepCondition } from './adaptive.ts';
import type { Plan } from './plan.ts';

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'not-needed';
/** States that are the end of a step: the campaign's progress (the boot-loop guard counts them). */
export const FINISHED_STATES: readonly StepState[] = ['done', 'failed', 'not-needed'];

export interface JournalStep {
  stepId: string;
  seq: number;
  key: string;
  experiment: string;
  configId: string;
  kernelMode: string;
  iteration: number;
  kernel: string | null;
  boot: number | null;
  scenario: Scenario;
  estimateS: number;
  state: StepState;
  attempts: number;
  validAttempt: string | null;
  failureClass: FailureClass | null;
  failureMessage: string | null;
  figures: string[];
  /** The plan's adaptive condition (null: the step always runs). */
  adaptive: StepCondition | null;
  /** The runner's decision on a conditional step (the reason of 'not-needed'; also kept when it ran). */
  decision: AdaptiveDecision | null;
}

export interface CampaignRecord {
  id: string;
  spec: string;
  specFile: string;
  testbedFile: string;
  testbedKind: string;
  seed: number;
  createdAt: string;
  plan: Plan;
}

const now = () => new Date().toISOString();

/** Boots into one kernel that may fail before its steps fail with class 'boot' (the boot-loop bound). */
export const MAX_BOOTS_PER_KERNEL = 3;

export class Journal {
  constructor(readonly store: ResultsStore) {
    // Per kernel: how many times the runner asked the testbed for it without getting it ready
    // (each such ask on a self-rebooting host is one reboot). Reset when the kernel is ready.
    this.db.exec('CREATE TABLE IF NOT EXISTS kernel_boots (kernel TEXT PRIMARY KEY, tries INTEGER NOT NULL, last_release TEXT, updated_at TEXT NOT NULL)');
  }

  private get db() {
    return this.store.db;
  }

  /** Records the plan; a no-op when the campaign already exists (resume). */
  create(plan: Plan): void {
    this.db.transaction(() => {
      const exists = this.db.prepare('SELECT 1 FROM campaign').get();
      if (exists) return;
      this.db
        .prepare('INSERT INTO campaign (id, spec, spec_file, testbed_file, testbed_kind, seed, created_at, plan_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(plan.campaign, plan.spec, plan.specFile, plan.testbed.file, plan.testbed.kind, plan.seed, now(), JSON.stringify(plan));
      const insertStep = this.db.prepare(
        `INSERT INTO steps (step_id, seq, step_key, experiment, config_id, kernel_mode, iteration, kernel, boot, scenario_json, estimate_s, state, failure_class, failure_message, implementation, adaptive_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, ?, ?)`,
      );
      const insertFigure = this.db.prepare('INSERT INTO step_figures (step_id, figure) VALUES (?, ?)');
      for (const st of plan.steps) {
        const s = st.scenario;
        insertStep.run(st.stepId, st.seq, st.key, s.experiment, s.configId, s.kernelMode, s.iteration, st.kernel, st.boot, JSON.stringify(s), st.estimateS, st.unsupported, st.implementation ?? null, st.adaptive ? JSON.stringify(st.adaptive) : null);
        for (const f of st.figures) insertFigure.run(st.stepId, f);
      }
    })();
  }

  campaign(): CampaignRecord | null {
    const r = this.db.prepare('SELECT * FROM campaign').get() as Record<string, unknown> | undefined;
    if (!r) return null;
    return {
      id: String(r.id),
      spec: String(r.spec),
      specFile: String(r.spec_file),
      testbedFile: String(r.testbed_file),
      testbedKind: String(r.testbed_kind),
      seed: Number(r.seed),
      createdAt: String(r.created_at),
      plan: JSON.parse(String(r.plan_json)) as Plan,
    };
  }

  /**
   * After a crash or kill: a step left 'running' goes back to 'pending' and the samples of
   * its unfinished attempt are dropped, so it re-runs from scratch. Returns the steps reset.
   */
  recoverInterrupted(): string[] {
    return this.db.transaction(() => {
      const running = this.db.prepare("SELECT step_id FROM steps WHERE state = 'running'").all() as { step_id: string }[];
      for (const { step_id } of running) {
        this.db.prepare("UPDATE attempts SET ended_at = ?, outcome = 'interrupted' WHERE step_id = ? AND outcome IS NULL").run(now(), step_id);
        this.db.prepare("UPDATE steps SET state = 'pending' WHERE step_id = ?").run(step_id);
      }
      // Samples of attempts that never became valid are dead weight (and never read).
      this.db.prepare("DELETE FROM samples WHERE attempt_id NOT IN (SELECT valid_attempt FROM steps WHERE state = 'done' AND valid_attempt IS NOT NULL) AND step_id NOT IN (SELECT step_id FROM steps WHERE state = 'running')").run();
      return running.map((r) => r.step_id);
    })();
  }

  steps(): JournalStep[] {
    const rows = this.db.prepare('SELECT * FROM steps ORDER BY seq').all() as Record<string, unknown>[];
    const figs = this.db.prepare('SELECT step_id, figure FROM step_figures').all() as { step_id: string; figure: string }[];
    const byStep = new Map<string, string[]>();
    for (const f of figs) byStep.set(f.step_id, [...(byStep.get(f.step_id) ?? []), f.figure]);
    return rows.map((r) => ({
      stepId: String(r.step_id),
      seq: Number(r.seq),
      key: String(r.step_key),
      experiment: String(r.experiment),
      configId: String(r.config_id),
      kernelMode: String(r.kernel_mode),
      iteration: Number(r.iteration),
      kernel: (r.kernel as string | null) ?? null,
      boot: (r.boot as number | null) ?? null,
      scenario: JSON.parse(String(r.scenario_json)) as Scenario,
      estimateS: Number(r.estimate_s),
      state: r.state as StepState,
      attempts: Number(r.attempts),
      validAttempt: (r.valid_attempt as string | null) ?? null,
      failureClass: (r.failure_class as FailureClass | null) ?? null,
      failureMessage: (r.failure_message as string | null) ?? null,
      figures: byStep.get(String(r.step_id)) ?? [],
      adaptive: r.adaptive_json ? (JSON.parse(String(r.adaptive_json)) as StepCondition) : null,
      decision: r.decision_json ? (JSON.parse(String(r.decision_json)) as AdaptiveDecision) : null,
    }));
  }

  /** Every attempt of every step, in start order (outcome null while running). */
  attempts(): { attemptId: string; stepId: string; number: number; startedAt: string; endedAt: string | null; outcome: string | null }[] {
    const rows = this.db.prepare('SELECT attempt_id, step_id, number, started_at, ended_at, outcome FROM attempts ORDER BY started_at, number').all() as Record<string, unknown>[];
    return rows.map((r) => ({
      attemptId: String(r.attempt_id),
      stepId: String(r.step_id),
      number: Number(r.number),
      startedAt: String(r.started_at),
      endedAt: (r.ended_at as string | null) ?? null,
      outcome: (r.outcome as string | null) ?? null,
    }));
  }

  /** Starts an attempt: the step is 'running' and its new attempt id is durable before any sample. */
  beginAttempt(stepId: string): string {
    const attemptId = randomUUID();
    this.db.transaction(() => {
      const { attempts } = this.db.prepare('SELECT attempts FROM steps WHERE step_id = ?').get(stepId) as { attempts: number };
      this.db.prepare('INSERT INTO attempts (attempt_id, step_id, number, started_at) VALUES (?, ?, ?, ?)').run(attemptId, stepId, attempts + 1, now());
      this.db.prepare("UPDATE steps SET state = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, ?) WHERE step_id = ?").run(now(), stepId);
    })();
    return attemptId;
  }

  /** One transaction: the attempt becomes the valid one, the step is done, the manifest is stored. */
  completeStep(stepId: string, attemptId: string, manifest: Record<string, unknown>): void {
    this.db.transaction(() => {
      this.db.prepare("UPDATE attempts SET ended_at = ?, outcome = 'done' WHERE attempt_id = ?").run(now(), attemptId);
      this.db.prepare("UPDATE steps SET state = 'done', valid_attempt = ?, ended_at = ?, failure_class = NULL, failure_message = NULL WHERE step_id = ?").run(attemptId, now(), stepId);
      this.db.prepare('INSERT OR REPLACE INTO manifests (step_id, attempt_id, manifest_json) VALUES (?, ?, ?)').run(stepId, attemptId, JSON.stringify(manifest));
      this.db.prepare('DELETE FROM samples WHERE step_id = ? AND attempt_id <> ?').run(stepId, attemptId);
    })();
  }

  /** A failed attempt: its samples are dropped; `final` marks the step failed (the campaign goes on). */
  failAttempt(stepId: string, attemptId: string | null, failureClass: FailureClass, rawMessage: string, final: boolean): void {
    const message = redact(rawMessage); // any error's text, not only HarnessError's
    this.db.transaction(() => {
      if (attemptId) {
        this.db.prepare("UPDATE attempts SET ended_at = ?, outcome = 'failed', failure_class = ?, message = ? WHERE attempt_id = ?").run(now(), failureClass, message, attemptId);
        this.db.prepare('DELETE FROM samples WHERE attempt_id = ?').run(attemptId);
      }
      if (final) {
        this.db.prepare("UPDATE steps SET state = 'failed', failure_class = ?, failure_message = ?, ended_at = ? WHERE step_id = ?").run(failureClass, message, now(), stepId);
      }
    })();
  }

  /** A step stopped on purpose (SIGINT/SIGTERM) goes back to pending: it is not a failure. */
  requeue(stepId: string): void {
    this.db.prepare("UPDATE steps SET state = 'pending' WHERE step_id = ? AND state = 'running'").run(stepId);
  }

  /** Asks for a kernel (ensureKernel) that have not ended 'ready' since it was last ready: boots into it that failed or are under way. */
  kernelTries(kernel: string): number {
    const r = this.db.prepare('SELECT tries FROM kernel_boots WHERE kernel = ?').get(kernel) as { tries: number } | undefined;
    return r?.tries ?? 0;
  }

  /** Durable before the testbed is asked for the kernel (and may reboot the host): one more try. */
  beginKernelTry(kernel: string, runningRelease: string | null): number {
    return this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO kernel_boots (kernel, tries, last_release, updated_at) VALUES (?, 1, ?, ?) ON CONFLICT(kernel) DO UPDATE SET tries = tries + 1, last_release = excluded.last_release, updated_at = excluded.updated_at')
        .run(kernel, runningRelease, now());
      return this.kernelTries(kernel);
    })();
  }

  /** The kernel is up and verified: its tries start again from 0. */
  kernelReady(kernel: string): void {
    this.db.prepare('UPDATE kernel_boots SET tries = 0, updated_at = ? WHERE kernel = ?').run(now(), kernel);
  }

  /** Every pending step on a kernel that cannot be booted becomes a failure row of class 'boot'. Returns their ids. */
  failKernelSteps(kernel: string, message: string): string[] {
    return this.db.transaction(() => {
      const ids = (this.db.prepare("SELECT step_id FROM steps WHERE kernel = ? AND state IN ('pending', 'running')").all(kernel) as { step_id: string }[]).map((r) => r.step_id);
      for (const id of ids) this.failAttempt(id, null, 'boot', message, true);
      return ids;
    })();
  }

  /**
   * One transaction: reads the done iterations of the step's configuration (its key), asks `decide`
   * and records the decision; when the step is not needed it becomes 'not-needed' with the decision
   * as its reason. A step no longer pending is left alone (null).
   */
  decideConditional(stepId: string, decide: (doneIterations: number, values: DoneValues) => AdaptiveDecision): AdaptiveDecision | null {
    return this.db.transaction(() => {
      const step = this.db.prepare("SELECT step_key FROM steps WHERE step_id = ? AND state = 'pending'").get(stepId) as { step_key: string } | undefined;
      if (!step) return null;
      const done = (this.db.prepare("SELECT COUNT(*) AS n FROM steps WHERE step_key = ? AND state = 'done'").get(step.step_key) as { n: number }).n;
      const values: DoneValues = (metric) => {
        const rows = this.db
          .prepare(
            `SELECT x.instance, x.value FROM samples x JOIN steps s ON s.step_id = x.step_id AND s.valid_attempt = x.attempt_id AND s.state = 'done'
             WHERE s.step_key = ? AND x.metric = ? AND x.t IS NULL AND x.node IS NULL ORDER BY s.iteration, x.instance`,
          )
          .all(step.step_key, metric) as { instance: string; value: number }[];
        const out = new Map<string, number[]>();
        for (const r of rows) out.set(r.instance, [...(out.get(r.instance) ?? []), r.value]);
        return out;
      };
      const decision = decide(done, values);
      if (decision.needed) this.db.prepare('UPDATE steps SET decision_json = ? WHERE step_id = ?').run(JSON.stringify(decision), stepId);
      else this.db.prepare("UPDATE steps SET state = 'not-needed', decision_json = ?, ended_at = ? WHERE step_id = ?").run(JSON.stringify(decision), now(), stepId);
      return decision;
    })();
  }

  /** Steps that are done, failed for good or not needed: the campaign's progress (the boot-loop guard reads it). */
  finishedSteps(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM steps WHERE state IN (${FINISHED_STATES.map((st) => `'${st}'`).join(', ')})`).get() as { n: number }).n;
  }

  counts(): Record<StepState, number> {
    const out: Record<StepState, number> = { pending: 0, running: 0, done: 0, failed: 0, 'not-needed': 0 };
    for (const r of this.db.prepare('SELECT state, COUNT(*) AS n FROM steps GROUP BY state').all() as { state: StepState; n: number }[]) out[r.state] = r.n;
    return out;
  }
}
