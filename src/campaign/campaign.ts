/**
 * Campaign lifecycle used by the CLI: validate spec + testbed file and create the campaign's
 * directory and journal (nothing runs before everything is validated), open an existing one,
 * run or resume it with a JSON log file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { execaSync } from 'execa';
import pino, { type Logger } from 'pino';
import { writeFileDurable, type DurableWriteOptions } from '../core/durable-file.ts';
import { ConfigError, HarnessError } from '../core/errors.ts';
import { redact } from '../core/secrets.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import { ResultsStore, STORE_FILE } from '../results/store.ts';
import type { Testbed } from '../testbeds/types.ts';
import { armBootResume, campaignResumeHook, disarmBootResume, PROGRESS_FILE, type CampaignProgress } from './boot-resume.ts';
import { Journal } from './journal.ts';
import { buildPlan, type Plan } from './plan.ts';
import { countsOf, runCampaign, type Progress, type RunOptions, type RunResult } from './runner.ts';
import { checkAdaptive, loadCampaignSpec, MAX_ITERATIONS, type CampaignSpec } from './spec.ts';
import { loadTestbedFile } from './testbed-file.ts';

export const LOG_FILE = 'campaign.log.jsonl';

/**
 * The results root: --results-dir, else $NUKSM_RESULTS_DIR, else ./results. A path that exists
 * but is not a directory, or that holds a control character (a newline cannot be passed to the
 * boot-resume guard as data), is a ConfigError naming where it came from.
 */
export function resultsRoot(option?: string): string {
  const from = option !== undefined ? '--results-dir' : process.env.NUKSM_RESULTS_DIR !== undefined ? '$NUKSM_RESULTS_DIR' : null;
  const root = resolve(option ?? process.env.NUKSM_RESULTS_DIR ?? 'results');
  if (from === null) return root;
  if (/[\x00-\x1f\x7f]/.test(root)) throw new ConfigError('command line', from, `${JSON.stringify(root)} contains a control character (newline, tab, …)`);
  if (existsSync(root) && !statSync(root).isDirectory()) throw new ConfigError('command line', from, `${root} exists and is not a directory`);
  return root;
}

/** --max-steps: a whole number ≥ 0 (yargs turns 'abc' into NaN). */
export function checkMaxSteps(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw new ConfigError('command line', '--max-steps', `must be a whole number ≥ 0, got ${String(n)}`);
}

/**
 * Campaign ids name a directory under the results root and a boot-resume hook: letters, digits
 * and _ . : - (starting with a letter or digit), no '..', at most 128 characters. So no path
 * separator, whitespace, shell metacharacter or empty id ever gets in.
 */
export const CAMPAIGN_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Throws a ConfigError (exit 2) naming the flag or argument when `id` is not a valid campaign id. */
export function checkCampaignId(id: string, key = '--campaign-id'): string {
  if (!CAMPAIGN_ID.test(id) || id.includes('..')) {
    throw new ConfigError('command line', key, `campaign id ${JSON.stringify(id)} is not allowed: use 1–128 letters, digits and _ . : - starting with a letter or digit, without '..' (it names a directory under the results root)`);
  }
  return id;
}

export function newCampaignId(spec: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${spec}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/**
 * Writes a file so readers see the old or the new content, never a half-written one, and so it
 * survives a power loss (src/core/durable-file.ts); nothing is written when the content is the same.
 */
export function writeFileAtomic(path: string, content: string, opts: DurableWriteOptions = {}): boolean {
  return writeFileDurable(path, content, opts);
}

export function specHash(spec: CampaignSpec): string {
  const h = createHash('sha256');
  for (const f of [spec.file, ...spec.specs.map((s) => s.file)]) h.update(readFileSync(f));
  return h.digest('hex');
}

/** The harness's git commit (+dirty); NUKSM_HARNESS_COMMIT when set (inside the emulated machine, which has no git checkout). */
export function harnessCommit(): string | null {
  if (process.env.NUKSM_HARNESS_COMMIT) return process.env.NUKSM_HARNESS_COMMIT;
  try {
    const r = execaSync('git', ['rev-parse', 'HEAD'], { timeout: 5000, reject: false });
    if (r.exitCode !== 0) return null;
    const dirty = execaSync('git', ['status', '--porcelain', '--untracked-files=no'], { timeout: 5000, reject: false });
    return `${r.stdout.trim()}${dirty.stdout.trim() ? '+dirty' : ''}`;
  } catch {
    return null;
  }
}

export interface PlanRequest {
  spec: string;
  testbedFile: string;
  campaignId?: string;
  iterations?: number;
  interleave?: 'none' | 'abba';
  experimentsDir?: string;
}

/** Loads and validates everything a campaign needs; throws ConfigError before anything runs. */
export function planCampaign(req: PlanRequest): { plan: Plan; spec: CampaignSpec; testbed: TestbedFile } {
  if (req.campaignId !== undefined) checkCampaignId(req.campaignId, '--campaign-id');
  if (req.iterations !== undefined && (!Number.isInteger(req.iterations) || req.iterations < 1 || req.iterations > MAX_ITERATIONS)) {
    throw new ConfigError('command line', '--iterations', `must be an integer from 1 to ${MAX_ITERATIONS}, got ${String(req.iterations)}`);
  }
  const spec = loadCampaignSpec(req.spec, req.experimentsDir ?? 'experiments');
  if (req.iterations !== undefined) spec.specs = spec.specs.map((s) => ({ ...s, iterations: req.iterations! }));
  if (req.iterations !== undefined) for (const s of spec.specs) checkAdaptive(s, { file: 'command line', keyPath: '--iterations' });
  if (req.interleave) spec.interleave = req.interleave;
  const testbed = loadTestbedFile(req.testbedFile);
  const plan = buildPlan(spec, testbed, req.campaignId ?? newCampaignId(spec.name));
  return { plan, spec, testbed };
}

export interface OpenCampaign {
  dir: string;
  store: ResultsStore;
  journal: Journal;
  plan: Plan;
}

export function createCampaign(req: PlanRequest & { resultsDir?: string }): OpenCampaign & { spec: CampaignSpec } {
  const { plan, spec } = planCampaign(req);
  return createCampaignFromPlan(plan, spec, req.resultsDir);
}

/** Creates the campaign directory and journal for a plan already made and validated (a shard's, src/campaign/shard-campaign.ts). */
export function createCampaignFromPlan(plan: Plan, spec: CampaignSpec, resultsDir?: string): OpenCampaign & { spec: CampaignSpec } {
  const dir = join(resultsRoot(resultsDir), plan.campaign);
  const existed = existsSync(join(dir, STORE_FILE));
  const store = new ResultsStore(dir);
  const journal = new Journal(store);
  // A rerun never mixes with old data: a campaign directory is used by one campaign only. A store
  // without a plan is a creation cut short (crash, kill, Slurm cancel) before anything ran: finish it.
  if (existed && journal.campaign()) {
    store.close();
    throw new ConfigError('command line', '--campaign-id', `campaign '${plan.campaign}' already exists in ${dir}; use 'nuksm resume ${plan.campaign}' or a new id`);
  }
  const planned = { ...plan, specHash: specHash(spec) };
  writeFileAtomic(join(dir, 'plan.json'), `${JSON.stringify(planned, null, 2)}\n`);
  // The journal keeps the plan with its spec hash: runs and resumes read it from there, never plan.json.
  journal.create(planned);
  return { dir, store, journal, plan, spec };
}

/** Whether `dir` holds a campaign with its plan recorded (a store alone is a creation cut short). */
export function isPlannedCampaign(dir: string): boolean {
  if (!existsSync(join(dir, STORE_FILE))) return false;
  const store = new ResultsStore(dir);
  try {
    return new Journal(store).campaign() !== null;
  } finally {
    store.close();
  }
}

export function openCampaign(resultsDir: string | undefined, campaignId: string): OpenCampaign {
  checkCampaignId(campaignId, 'campaign-id');
  const dir = join(resultsRoot(resultsDir), campaignId);
  if (!existsSync(join(dir, STORE_FILE))) throw new ConfigError('command line', 'campaign', `no campaign '${campaignId}' in ${resultsRoot(resultsDir)}`);
  const store = new ResultsStore(dir);
  const journal = new Journal(store);
  const rec = journal.campaign();
  if (!rec) throw new HarnessError('config', `${dir}: the campaign journal is empty (created but never planned)`);
  return { dir, store, journal, plan: rec.plan };
}

/** Written in the host's campaign directory by a campaign that runs inside the emulated machine (in-machine.ts). */
export const MACHINE_FILE = 'machine.json';

/**
 * The most recently created campaign directory under the results root, if any: one with a store,
 * or one whose campaign runs inside the emulated machine (its store comes back at the end).
 */
export function latestCampaignId(resultsDir?: string): string | null {
  const root = resultsRoot(resultsDir);
  if (!existsSync(root)) return null;
  const marker = (d: string) => [STORE_FILE, MACHINE_FILE].map((f) => join(root, d, f)).find((f) => existsSync(f));
  const dirs = readdirSync(root).filter((d) => marker(d) !== undefined);
  const created = (d: string) => statSync(marker(d)!).mtimeMs;
  dirs.sort((a, b) => created(a) - created(b));
  return dirs.at(-1) ?? null;
}

export function campaignLogger(dir: string, level = process.env.NUKSM_LOG_LEVEL ?? 'info', onMessage?: (msg: string) => void): Logger {
  // Synchronous writes: a kill -9 loses no log line that was logged before it.
  // Every line passes through redact(): no known secret reaches the log (src/core/secrets.ts).
  const opts = { level, base: undefined, hooks: { streamWrite: redact } };
  const file = pino.destination({ dest: join(dir, LOG_FILE), sync: true, append: true, mkdir: true });
  if (!onMessage) return pino(opts, file);
  // A second stream hands each message to the terminal's progress display (src/cli/progress.ts).
  const toProgress = { write: (line: string) => { try { const m = (JSON.parse(line) as { msg?: unknown }).msg; if (typeof m === 'string') onMessage(m); } catch { /* not JSON: ignore */ } } };
  return pino(opts, pino.multistream([{ stream: file, level: level as pino.Level }, { stream: toProgress, level: 'info' }]));
}

/**
 * One runner per campaign at a time. The lock is SQLite's write lock on `runner.lock.db` (an
 * fcntl lock, taken atomically by the kernel and released when the process dies: kill -9, a crash,
 * a reboot), held by a write transaction left open for the whole run. So two resumers can never both take over, however
 * their calls interleave. `runner.lock` (pid and boot id, written after the lock is held) says who
 * holds it; a live pid in it from this boot (a runner of an older harness, which only wrote that
 * file) is respected too, checked while the exclusive lock is held.
 */
export function lockCampaign(dir: string): () => void {
  const path = join(dir, 'runner.lock');
  const boot = currentBootId();
  const db = new Database(join(dir, 'runner.lock.db'), { timeout: 0 });
  const holder = () => {
    try {
      return readFileSync(path, 'utf8').trim().split(/\s+/)[0] ?? '?';
    } catch {
      return '?';
    }
  };
  try {
    // An open write transaction holds SQLite's RESERVED lock, which one connection at a time can
    // have: taken in one step, never waited for (timeout 0), kept until the run ends.
    db.exec('BEGIN IMMEDIATE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
      throw new HarnessError('config', `${dir}: the campaign is already being run by pid ${holder()}`);
    }
    throw err;
  }
  try {
    if (existsSync(path)) {
      const [pidText, lockBoot = ''] = readFileSync(path, 'utf8').trim().split(/\s+/);
      const pid = Number(pidText);
      const sameBoot = lockBoot === '' || boot === '' || lockBoot === boot;
      if (sameBoot && pid !== process.pid && isAlive(pid)) throw new HarnessError('config', `${dir}: the campaign is already being run by pid ${pid}`);
    }
    writeFileAtomic(path, `${process.pid} ${boot}`);
  } catch (err) {
    db.close();
    throw err;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    rmSync(path, { force: true });
    db.close(); // rolls the open transaction back: the lock is free
  };
}

function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function writeProgress(dir: string, p: Omit<CampaignProgress, 'updatedAt'>): void {
  writeFileAtomic(join(dir, PROGRESS_FILE), `${JSON.stringify({ ...p, updatedAt: new Date().toISOString() })}\n`, { always: true });
}

/** The spec hash recorded at creation: in the journal's plan; campaigns created before that kept it in plan.json only. */
function specHashOf(c: OpenCampaign): string | null {
  const inJournal = (c.plan as Plan & { specHash?: string }).specHash;
  if (inJournal) return inJournal;
  try {
    return (JSON.parse(readFileSync(join(c.dir, 'plan.json'), 'utf8')) as { specHash?: string }).specHash ?? null;
  } catch {
    return null;
  }
}

export async function executeCampaign(
  c: OpenCampaign,
  testbed: Testbed,
  opts: Partial<Pick<RunOptions, 'retries' | 'retryDelayMs' | 'signal' | 'maxSteps' | 'log' | 'stopGraceMs' | 'teardownGraceMs'>> & {
    onProgress?: (p: Progress) => void;
    /** Each log message of the run (the progress bar shows it as the step's phase). */
    onLog?: (msg: string) => void;
    /** The testbed file's `resume`: install boot-resume hooks on this host for the campaign (src/campaign/boot-resume.ts). */
    resume?: TestbedFile['resume'];
  } = {},
): Promise<RunResult> {
  const log = opts.log ?? campaignLogger(c.dir, undefined, opts.onLog);
  const unlock = lockCampaign(c.dir);
  const id = c.plan.campaign;
  const counts = () => {
    const { done, failed, notNeeded, pending, total } = countsOf(c.journal);
    return { done, failed, notNeeded, pending, total };
  };
  try {
    const hook = campaignResumeHook(c.plan, c.dir, opts.resume ?? 'none');
    if (hook) {
      await armBootResume(hook);
      log.info({ hook: hook.id, via: hook.via }, 'boot-resume hooks installed: the campaign continues by itself after a reboot');
    }
    let result: RunResult;
    try {
      result = await runCampaign({
        journal: c.journal,
        testbed,
        log,
        rawDir: join(c.dir, 'raw'),
        manifestBase: { campaign: id, harnessCommit: harnessCommit(), specHash: specHashOf(c), specFile: c.plan.specFile, testbedFile: c.plan.testbed.file },
        retries: opts.retries,
        retryDelayMs: opts.retryDelayMs,
        signal: opts.signal,
        maxSteps: opts.maxSteps,
        stopGraceMs: opts.stopGraceMs,
        teardownGraceMs: opts.teardownGraceMs,
        onProgress: (p) => {
          writeProgress(c.dir, { campaign: id, outcome: 'running', ...counts(), current: p.step.stepId, message: null });
          opts.onProgress?.(p);
        },
      });
    } catch (err) {
      writeProgress(c.dir, { campaign: id, outcome: 'error', ...counts(), current: null, message: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    writeProgress(c.dir, { campaign: id, outcome: result.outcome, ...counts(), current: null, message: null });
    // Hooks stay for 'rebooting' (that is what they are for) and 'stopped' (a shutdown stops the runner with SIGTERM).
    if (hook && result.outcome === 'complete') {
      await disarmBootResume(hook);
      log.info({ hook: hook.id }, 'campaign complete: boot-resume hooks removed');
    }
    return result;
  } finally {
    unlock();
  }
}

export { loadTestbedFile };
