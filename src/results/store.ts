/**
 * The results store: one SQLite database per campaign (results/<campaign-id>/campaign.sqlite)
 * holding the journal (steps, attempts), the samples in long form and one manifest per step.
 *
 * Why SQLite: a step's samples are written under its attempt id while it runs; the step's
 * 'done' state, its manifest and "this attempt is the valid one" are committed in ONE
 * transaction. Samples of any other attempt (a crash, a kill -9, a retry) are never read and
 * are deleted when the step is re-run, so a resumed campaign can neither lose nor duplicate a row.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../core/errors.ts';
import { metricDef } from '../core/metrics.ts';
import type { Sample } from '../core/sample.ts';

export const STORE_FILE = 'campaign.sqlite';

/** One stored sample with the step's columns joined in (the long format of docs/figures.md). */
export interface ResultRow extends Sample {
  campaign: string;
  step: string;
  experiment: string;
  iteration: number;
  kernelMode: string;
  /** The step's kernel: its testbed-file `kernels` key (a mode may run on several kernels). */
  kernel: string;
  testbed: string;
  config: string;
  /** Which implementation produced the row: 'kernel' | 'userspace' | 'model' (src/core/scenario.ts IMPLEMENTATIONS). */
  implementation: string;
}

/**
 * The steps table. 'not-needed': an adaptive iteration the runner decided not to run (its reason in
 * decision_json); adaptive_json is the plan's condition (src/campaign/adaptive.ts).
 */
const stepsTable = (name: string) => `
CREATE TABLE IF NOT EXISTS ${name} (
  step_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, step_key TEXT NOT NULL, experiment TEXT NOT NULL,
  config_id TEXT NOT NULL, kernel_mode TEXT NOT NULL, iteration INTEGER NOT NULL, kernel TEXT, boot INTEGER,
  scenario_json TEXT NOT NULL, estimate_s REAL NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending','running','done','failed','not-needed')),
  attempts INTEGER NOT NULL DEFAULT 0, valid_attempt TEXT, failure_class TEXT, failure_message TEXT,
  started_at TEXT, ended_at TEXT, implementation TEXT, adaptive_json TEXT, decision_json TEXT);`;

const TABLES = `
CREATE TABLE IF NOT EXISTS campaign (
  id TEXT PRIMARY KEY, spec TEXT NOT NULL, spec_file TEXT NOT NULL, testbed_file TEXT NOT NULL,
  testbed_kind TEXT NOT NULL, seed INTEGER NOT NULL, created_at TEXT NOT NULL, plan_json TEXT NOT NULL);
${stepsTable('steps')}
CREATE TABLE IF NOT EXISTS step_figures (step_id TEXT NOT NULL, figure TEXT NOT NULL, PRIMARY KEY (step_id, figure));
CREATE TABLE IF NOT EXISTS attempts (
  attempt_id TEXT PRIMARY KEY, step_id TEXT NOT NULL, number INTEGER NOT NULL, started_at TEXT NOT NULL,
  ended_at TEXT, outcome TEXT, failure_class TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS samples (
  attempt_id TEXT NOT NULL, step_id TEXT NOT NULL, instance TEXT NOT NULL, workload TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, t REAL, node INTEGER);
CREATE INDEX IF NOT EXISTS samples_by_attempt ON samples (attempt_id);
CREATE TABLE IF NOT EXISTS manifests (step_id TEXT PRIMARY KEY, attempt_id TEXT NOT NULL, manifest_json TEXT NOT NULL);
`;

// A step without an implementation (a store made before the column) is a model row on the model
// testbed and a kernel row elsewhere: no user-space placement existed then.
const VIEW = `
CREATE VIEW IF NOT EXISTS results AS
  SELECT c.id AS campaign, s.step_id AS step, s.experiment, s.iteration, s.kernel_mode AS kernelMode,
         COALESCE(s.kernel, '') AS kernel, c.testbed_kind AS testbed, s.config_id AS config,
         COALESCE(s.implementation, CASE c.testbed_kind WHEN 'model' THEN 'model' ELSE 'kernel' END) AS implementation, x.instance, x.workload, x.metric, x.value, x.unit, x.t, x.node
  FROM samples x JOIN steps s ON s.step_id = x.step_id AND s.valid_attempt = x.attempt_id AND s.state = 'done'
  CROSS JOIN campaign c;
`;

/** Throws unless the sample's metric is in the catalogue with that unit. */
export function checkSample(s: Sample): void {
  const def = metricDef(s.metric);
  if (!def) throw new HarnessError('parse-error', `unknown metric '${s.metric}' (not in src/core/metrics.ts)`, { sample: s });
  if (def.unit !== s.unit) throw new HarnessError('parse-error', `metric '${s.metric}' has unit '${def.unit}', sample says '${s.unit}'`, { sample: s });
  if (!Number.isFinite(s.value)) throw new HarnessError('parse-error', `metric '${s.metric}' value is not a finite number`, { sample: s });
}

/**
 * A store made before the 'not-needed' state (its CHECK names four states; some also lack the
 * implementation column): SQLite cannot alter a CHECK, so the steps table is rebuilt with every row
 * and column it had, in one transaction (the results view, which reads it, is dropped and remade).
 */
function migrateSteps(db: Database.Database): void {
  const table = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'steps'").get() as { sql: string } | undefined;
  if (!table || table.sql.includes("'not-needed'")) return;
  db.transaction(() => {
    const columns = (db.prepare("SELECT name FROM pragma_table_info('steps')").all() as { name: string }[]).map((c) => c.name).join(', ');
    db.exec('DROP VIEW IF EXISTS results');
    db.exec('DROP TABLE IF EXISTS steps_migrated');
    db.exec(stepsTable('steps_migrated'));
    db.exec(`INSERT INTO steps_migrated (${columns}) SELECT ${columns} FROM steps`);
    db.exec('DROP TABLE steps');
    db.exec('ALTER TABLE steps_migrated RENAME TO steps');
  })();
}

export class ResultsStore {
  readonly db: Database.Database;
  readonly dir: string;
  private readonly insertSample: Database.Statement;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.dir = dir;
    this.db = new Database(join(dir, STORE_FILE));
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed step survives a power cut or a reboot, not only a killed process.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    // A store made before the view had the kernel or implementation column: the view holds no data, rebuild it.
    const viewColumns = this.db.prepare("SELECT name FROM pragma_table_info('results')").all() as { name: string }[];
    if (viewColumns.length > 0 && !['kernel', 'implementation'].every((n) => viewColumns.some((c) => c.name === n))) this.db.exec('DROP VIEW results');
    this.db.exec(TABLES);
    migrateSteps(this.db);
    this.db.exec(VIEW);
    this.insertSample = this.db.prepare(
      'INSERT INTO samples (attempt_id, step_id, instance, workload, metric, value, unit, t, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  /** Stores samples under an attempt; they count only once the attempt is made the step's valid one. */
  addSamples(stepId: string, attemptId: string, samples: readonly Sample[]): void {
    for (const s of samples) checkSample(s);
    this.db.transaction(() => {
      for (const s of samples) this.insertSample.run(attemptId, stepId, s.instance, s.workload, s.metric, s.value, s.unit, s.t, s.node);
    })();
  }

  /** All valid rows of this campaign, in a stable order. */
  rows(where: { figure?: string; metric?: string | string[] } = {}): ResultRow[] {
    const clauses: string[] = [];
    const args: unknown[] = [];
    if (where.figure) {
      clauses.push('step IN (SELECT step_id FROM step_figures WHERE figure = ?)');
      args.push(where.figure);
    }
    if (where.metric) {
      const ms = Array.isArray(where.metric) ? where.metric : [where.metric];
      clauses.push(`metric IN (${ms.map(() => '?').join(',')})`);
      args.push(...ms);
    }
    const sql = `SELECT * FROM results ${clauses.length ? `WHERE ${clauses.join(' AND ')}` : ''} ORDER BY step, instance, metric, t, node, value`;
    return this.db.prepare(sql).all(...args) as ResultRow[];
  }

  manifest(stepId: string): Record<string, unknown> | null {
    const row = this.db.prepare('SELECT manifest_json FROM manifests WHERE step_id = ?').get(stepId) as { manifest_json: string } | undefined;
    return row ? (JSON.parse(row.manifest_json) as Record<string, unknown>) : null;
  }

  close(): void {
    this.db.close();
  }
}
