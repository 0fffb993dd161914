/**
 * Slurm as the scheduler of a sharded campaign (docs/slurm.md), through Slurm's own commands:
 * `sbatch` submits one batch job per shard, `squeue` / `scontrol show job` / `sacct` say what
 * became of it, and the shard's own journal says how far it got.
 *
 * Each job runs `nuksm run <spec> --shard k/N --campaign-id ID`, which creates the shard's store or,
 * when the job is resubmitted (it failed, was cancelled or preempted), resumes it from its journal:
 * an interrupted step re-runs from scratch, a finished one never again. Jobs ask for an exclusive
 * node, a time limit from the shard's estimate, and the node feature `nuksm-kernel-<kernel>` of the
 * one kernel the shard needs (or, with a fleet, the machine's node by name). A job never reboots
 * its node: a shard that would need two kernels is refused at submit time.
 *
 * The record of what was submitted is results/<ID>/slurm/jobs.json (scripts and job logs beside it).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ConfigError, HarnessError } from '../core/errors.ts';
import { PROGRESS_FILE, type CampaignProgress } from './boot-resume.ts';
import { checkCampaignId, newCampaignId, resultsRoot, writeFileAtomic } from './campaign.ts';
import { Journal } from './journal.ts';
import { ResultsStore, STORE_FILE } from '../results/store.ts';
import { kernelFeature } from './fleet.ts';
import { shardCampaignId } from './shard.ts';
import { planShards } from './shard-campaign.ts';

/** Every Slurm command gets this long (slurmctld busy or unreachable is an error, never a hang). */
export const SLURM_COMMAND_TIMEOUT_MS = 60_000;
/** Added to every job's time limit: node-local start-up, testbed connection, the final commit. */
export const TIME_MARGIN_MIN = 10;

export interface SubmitRequest {
  spec: string;
  testbedFile: string;
  fleetFile?: string;
  shards: number;
  campaignId?: string;
  resultsDir?: string;
  iterations?: number;
  interleave?: 'none' | 'abba';
  experimentsDir: string;
  partition?: string;
  /** Time limit = estimate × this + TIME_MARGIN_MIN. */
  timeFactor: number;
  /** More sbatch options, passed as given (e.g. --account=lab). */
  sbatchArgs: string[];
}

export interface ShardJobs {
  index: number;
  campaign: string;
  script: string;
  timeLimitMin: number;
  constraint: string | null;
  nodelist: string | null;
  /** Job ids, oldest first: one per submission of the shard. */
  jobs: string[];
}

export interface SlurmRecord {
  campaign: string;
  resultsRoot: string;
  spec: string;
  shards: ShardJobs[];
  submittedAt: string;
}

export const recordDir = (root: string, id: string) => join(root, id, 'slurm');
const recordFile = (root: string, id: string) => join(recordDir(root, id), 'jobs.json');

async function slurm(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await execa(cmd, args, { timeout: SLURM_COMMAND_TIMEOUT_MS, reject: false });
    if (r.timedOut) throw new HarnessError('timeout', `${cmd} ${args.join(' ')}: no answer in ${SLURM_COMMAND_TIMEOUT_MS / 1000} s`);
    if (r.exitCode !== 0) throw new HarnessError('benchmark-error', `${cmd} ${args.join(' ')} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`);
    return r.stdout;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HarnessError('config', `${cmd} not found: install Slurm's client commands (Debian: slurm-client) on this machine`);
    throw err;
  }
}

const abs = (p: string) => (isAbsolute(p) ? p : resolve(p));
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The batch script of one shard: everything absolute (the job starts on another node, in another directory). */
function batchScript(req: SubmitRequest, root: string, id: string, sh: Omit<ShardJobs, 'jobs' | 'script'>, logDir: string): string {
  const spec = existsSync(req.spec) ? abs(req.spec) : req.spec; // a name is looked up in --experiments-dir
  const args = ['run', spec, '--testbed', abs(req.testbedFile), '--shard', `${sh.index}/${req.shards}`, '--campaign-id', id, '--results-dir', root, '--experiments-dir', abs(req.experimentsDir)];
  if (req.fleetFile) args.push('--fleet', abs(req.fleetFile));
  if (req.iterations !== undefined) args.push('--iterations', String(req.iterations));
  if (req.interleave) args.push('--interleave', req.interleave);
  const directives = [
    `--job-name=nuksm-${id}-${sh.index}of${req.shards}`,
    '--nodes=1',
    '--exclusive',
    `--time=${sh.timeLimitMin}`,
    `--output=${join(logDir, `shard-${sh.index}-%j.out`)}`,
    // A preempted job goes back to the queue; its rerun resumes the shard's journal.
    '--requeue',
    ...(sh.constraint ? [`--constraint=${sh.constraint}`] : []),
    ...(sh.nodelist ? [`--nodelist=${sh.nodelist}`] : []),
    ...(req.partition ? [`--partition=${req.partition}`] : []),
  ];
  return [
    '#!/bin/bash',
    `# nuksm shard ${sh.index} of ${req.shards} of campaign ${id} (written by nuksm slurm submit; docs/slurm.md).`,
    ...directives.map((d) => `#SBATCH ${d}`),
    'set -euo pipefail',
    `cd ${shq(process.cwd())}`,
    // exec: Slurm's SIGTERM (scancel, preemption, time limit) reaches the runner, which stops between
    // or inside a step and leaves the journal consistent; a SIGKILL after KillWait loses nothing either.
    `exec ${shq(process.execPath)} ${shq(abs(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'nuksm.js')))} ${args.map(shq).join(' ')}`,
    '',
  ].join('\n');
}

/** Plans, shards, writes one batch script per shard and submits them all. Nothing is submitted if anything is invalid. */
export async function submitCampaign(req: SubmitRequest): Promise<SlurmRecord> {
  if (!Number.isFinite(req.timeFactor) || req.timeFactor < 1) throw new ConfigError('command line', '--time-factor', `must be a number ≥ 1, got ${String(req.timeFactor)}`);
  const root = resultsRoot(req.resultsDir);
  const id = req.campaignId ?? newCampaignId(typeof req.spec === 'string' ? req.spec.replace(/.*\//, '').replace(/\.ya?ml$/, '') : 'campaign');
  const { sharding } = planShards({ spec: req.spec, testbedFile: req.testbedFile, fleetFile: req.fleetFile, shards: req.shards, campaignId: id, iterations: req.iterations, interleave: req.interleave, experimentsDir: req.experimentsDir });
  if (existsSync(recordFile(root, id))) throw new ConfigError('command line', '--campaign-id', `campaign '${id}' was submitted before (${recordFile(root, id)}): use 'nuksm slurm resubmit ${id}'`);
  const logDir = recordDir(root, id);
  const shards = sharding.shards.map((p): Omit<ShardJobs, 'jobs' | 'script'> => {
    const kernels = [...new Set(p.steps.map((s) => s.kernel).filter((k): k is string => k !== null))];
    if (kernels.length > 1) {
      throw new ConfigError('command line', '--shards', `shard ${p.shard.index} needs ${kernels.length} kernels (${kernels.join(', ')}): a Slurm job does not reboot its node into another kernel; use --shards ≥ the number of kernels (${[...new Set(sharding.shards.flatMap((s) => s.steps.map((x) => x.kernel)).filter(Boolean))].length}) or a fleet`);
    }
    return {
      index: p.shard.index,
      campaign: p.campaign,
      timeLimitMin: Math.ceil((p.estimate.totalS * req.timeFactor) / 60) + TIME_MARGIN_MIN,
      constraint: p.shard.slurmNode === null && kernels[0] ? kernelFeature(kernels[0]) : null,
      nodelist: p.shard.slurmNode,
    };
  });
  mkdirSync(logDir, { recursive: true });
  const record: SlurmRecord = { campaign: id, resultsRoot: root, spec: sharding.shards[0]!.spec, submittedAt: new Date().toISOString(), shards: [] };
  for (const sh of shards) {
    const script = join(logDir, `shard-${sh.index}.sbatch`);
    writeFileAtomic(script, batchScript(req, root, id, sh, logDir), { mode: 0o755 });
    record.shards.push({ ...sh, script, jobs: [] });
  }
  writeFileAtomic(recordFile(root, id), `${JSON.stringify(record, null, 2)}\n`);
  for (const sh of record.shards) await submitOne(record, sh, req.sbatchArgs);
  return record;
}

async function submitOne(record: SlurmRecord, sh: ShardJobs, sbatchArgs: string[]): Promise<string> {
  const out = await slurm('sbatch', ['--parsable', ...sbatchArgs, sh.script]);
  const job = out.trim().split(';')[0]!;
  if (!/^\d+$/.test(job)) throw new HarnessError('benchmark-error', `sbatch printed no job id: ${JSON.stringify(out)}`);
  sh.jobs.push(job);
  // After every submission: a crash between two sbatch calls still leaves the ids of the jobs submitted.
  writeFileAtomic(recordFile(record.resultsRoot, record.campaign), `${JSON.stringify(record, null, 2)}\n`);
  return job;
}

export function loadRecord(resultsDir: string | undefined, id: string): SlurmRecord {
  checkCampaignId(id, 'campaign-id');
  const file = recordFile(resultsRoot(resultsDir), id);
  if (!existsSync(file)) throw new ConfigError('command line', 'campaign-id', `campaign '${id}' was not submitted through Slurm (no ${file})`);
  return JSON.parse(readFileSync(file, 'utf8')) as SlurmRecord;
}

/** Slurm job states in which the job still holds or will hold a node (squeue's long names). */
const ACTIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD']);

export interface JobState {
  job: string;
  state: string;
  node: string | null;
  /** Which command answered: squeue (queued or running), scontrol (recently ended), sacct (accounting). */
  from: 'squeue' | 'scontrol' | 'sacct' | 'unknown';
}

/** What became of a job: squeue while it is known there, then scontrol (ended less than MinJobAge ago), then sacct. */
export async function jobState(job: string): Promise<JobState> {
  const q = await slurm('squeue', ['-h', '-j', job, '-o', '%i|%T|%N']).catch(() => '');
  const line = q.split('\n').find((l) => l.startsWith(`${job}|`));
  if (line) {
    const [, state, node] = line.split('|');
    return { job, state: state!, node: node || null, from: 'squeue' };
  }
  const s = await slurm('scontrol', ['show', 'job', '-o', job]).catch(() => '');
  const state = /\bJobState=(\S+)/.exec(s)?.[1];
  if (state) return { job, state, node: /\bNodeList=(\S+)/.exec(s)?.[1]?.replace('(null)', '') || null, from: 'scontrol' };
  const a = await slurm('sacct', ['-n', '-P', '-X', '-j', job, '-o', 'JobID,State,NodeList']).catch(() => '');
  const acct = a.split('\n').find((l) => l.startsWith(`${job}|`));
  if (acct) {
    const [, st, node] = acct.split('|');
    return { job, state: st!.split(' ')[0]!, node: node || null, from: 'sacct' };
  }
  return { job, state: 'UNKNOWN', node: null, from: 'unknown' };
}

export interface ShardStatus {
  index: number;
  campaign: string;
  job: JobState | null;
  submissions: number;
  active: boolean;
  /** From the shard's journal (null before its job created the store). */
  /** notNeeded: adaptive iterations decided away (finished, neither done nor failed). */
  progress: { done: number; failed: number; notNeeded: number; pending: number; total: number; current: string | null } | null;
  complete: boolean;
}

function progressOf(root: string, sh: ShardJobs): ShardStatus['progress'] {
  const dir = join(root, sh.campaign);
  const file = join(dir, PROGRESS_FILE);
  if (!existsSync(join(dir, STORE_FILE))) return null;
  // The journal is the truth; progress.json only adds the step running now. A job that is creating
  // the shard's campaign right now has a store without a plan yet: not started, not an error.
  const store = new ResultsStore(dir);
  try {
    const journal = new Journal(store);
    if (!journal.campaign()) return null;
    const n = journal.counts();
    const notNeeded = n['not-needed'];
    let current: string | null = null;
    if (existsSync(file)) {
      try {
        current = (JSON.parse(readFileSync(file, 'utf8')) as CampaignProgress).current ?? null;
      } catch {
        current = null;
      }
    }
    return { done: n.done, failed: n.failed, notNeeded, pending: n.pending + n.running, total: n.done + n.failed + notNeeded + n.pending + n.running, current: n.running > 0 ? current : null };
  } finally {
    store.close();
  }
}

export async function campaignStatus(record: SlurmRecord): Promise<ShardStatus[]> {
  const out: ShardStatus[] = [];
  for (const sh of record.shards) {
    const last = sh.jobs.at(-1);
    const job = last ? await jobState(last) : null;
    const progress = progressOf(record.resultsRoot, sh);
    const active = job !== null && ACTIVE.has(job.state);
    out.push({ index: sh.index, campaign: sh.campaign, job, submissions: sh.jobs.length, active, progress, complete: progress !== null && progress.pending === 0 });
  }
  return out;
}

/**
 * Submits again every shard (or those given) that is neither complete nor queued/running: its job
 * failed, was cancelled, preempted for good or timed out. The new job resumes the shard's journal.
 */
export async function resubmitCampaign(resultsDir: string | undefined, id: string, only: number[] | undefined, sbatchArgs: string[]): Promise<{ shard: number; job: string }[]> {
  const record = loadRecord(resultsDir, id);
  for (const k of only ?? []) if (!record.shards.some((s) => s.index === k)) throw new ConfigError('command line', '--shard', `campaign '${id}' has shards 1–${record.shards.length}, not ${k}`);
  const status = await campaignStatus(record);
  const done: { shard: number; job: string }[] = [];
  for (const st of status) {
    if (only && !only.includes(st.index)) continue;
    if (st.complete || st.active) continue;
    const sh = record.shards.find((s) => s.index === st.index)!;
    done.push({ shard: st.index, job: await submitOne(record, sh, sbatchArgs) });
  }
  return done;
}

export { shardCampaignId };
