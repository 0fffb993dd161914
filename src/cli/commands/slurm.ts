/**
 * `nuksm slurm submit | resubmit | status | collect`: a sharded campaign scheduled by Slurm
 * (src/campaign/slurm.ts, docs/slurm.md).
 */
import type { Argv, CommandModule } from 'yargs';
import { loadRecord, campaignStatus, resubmitCampaign, submitCampaign, type ShardStatus, type SubmitRequest } from '../../campaign/slurm.ts';
import { EXIT } from '../exit-codes.ts';
import { textTable } from '../format.ts';
import { withJson, withResultsDir, withSpecAndTestbed } from '../options.ts';
import { mergeAndExport } from './merge.ts';
import { fleetSize } from './plan.ts';

/** The request's fields under their flag names (yargs camel-cases --testbed, --fleet, --sbatch-arg). */
type SubmitArgs = Omit<SubmitRequest, 'testbedFile' | 'fleetFile' | 'shards' | 'sbatchArgs'> & {
  testbed: string;
  fleet?: string;
  shards?: number;
  sbatchArg: string[];
  json: boolean;
};

interface IdArgs {
  campaignId: string;
  resultsDir?: string;
  json: boolean;
  shard?: number[];
  sbatchArg?: string[];
}

const withId = <T>(y: Argv<T>) => withJson(withResultsDir(y)).positional('campaign-id', { type: 'string', demandOption: true, describe: 'campaign id given at submit' });

function statusTable(rows: ShardStatus[]): string {
  return textTable(
    ['shard', 'campaign', 'job', 'job state', 'node', 'submissions', 'done', 'failed', 'not needed', 'pending', 'running now'],
    rows.map((r) => [r.index, r.campaign, r.job?.job ?? '-', r.job ? `${r.job.state} (${r.job.from})` : 'not submitted', r.job?.node ?? '-', r.submissions, r.progress?.done ?? 0, r.progress?.failed ?? 0, r.progress?.notNeeded ?? 0, r.progress ? r.progress.pending : 'not started', r.progress?.current ?? '-']),
  );
}

const submit: CommandModule<object, SubmitArgs> = {
  command: 'submit <spec>',
  describe: 'Shard a campaign and submit one Slurm batch job per shard (exclusive node, time limit from the estimate, kernel feature)',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(withSpecAndTestbed(y)))
      .option('shards', { type: 'number', describe: 'number of shards (default: one per fleet machine, else 1)' })
      .option('fleet', { type: 'string', describe: 'fleet file: machines, their testbed files, booted kernels and Slurm node names' })
      .option('campaign-id', { type: 'string', describe: 'id the shards share (default: <spec>-<time>-<random>)' })
      .option('partition', { type: 'string', describe: 'Slurm partition' })
      .option('time-factor', { type: 'number', default: 1.5, describe: 'job time limit = shard estimate × this + 10 min' })
      .option('sbatch-arg', { type: 'string', array: true, default: [], describe: 'extra sbatch option, e.g. --sbatch-arg=--account=lab (repeatable)' }) as unknown as Argv<SubmitArgs>,
  handler: async (args) => {
    const record = await submitCampaign({
      spec: args.spec,
      testbedFile: args.testbed,
      fleetFile: args.fleet,
      shards: args.shards ?? fleetSize(args.fleet),
      campaignId: args.campaignId,
      resultsDir: args.resultsDir,
      iterations: args.iterations,
      interleave: args.interleave,
      experimentsDir: args.experimentsDir,
      partition: args.partition,
      timeFactor: args.timeFactor,
      sbatchArgs: args.sbatchArg,
    });
    process.stdout.write(
      args.json
        ? `${JSON.stringify(record, null, 2)}\n`
        : `campaign ${record.campaign}: ${record.shards.length} Slurm job(s)\n` +
            textTable(['shard', 'job', 'time limit', 'constraint', 'nodelist', 'script'], record.shards.map((s) => [s.index, s.jobs.at(-1), `${s.timeLimitMin} min`, s.constraint, s.nodelist, s.script])) +
            `follow with: nuksm slurm status ${record.campaign}; when done: nuksm slurm collect ${record.campaign}\n`,
    );
  },
};

const resubmit: CommandModule<object, IdArgs> = {
  command: 'resubmit <campaign-id>',
  describe: 'Submit again the shards that are neither complete nor queued/running (failed, cancelled, timed out); they resume from their journals',
  builder: (y: Argv<object>) =>
    withId(y)
      .option('shard', { type: 'number', array: true, describe: 'only these shards' })
      .option('sbatch-arg', { type: 'string', array: true, default: [], describe: 'extra sbatch option (repeatable)' }) as unknown as Argv<IdArgs>,
  handler: async (args) => {
    const jobs = await resubmitCampaign(args.resultsDir, args.campaignId, args.shard, args.sbatchArg ?? []);
    process.stdout.write(args.json ? `${JSON.stringify(jobs, null, 2)}\n` : jobs.length ? jobs.map((j) => `shard ${j.shard}: job ${j.job}`).join('\n') + '\n' : 'nothing to resubmit: every shard is complete, queued or running\n');
  },
};

const status: CommandModule<object, IdArgs> = {
  command: 'status <campaign-id>',
  describe: "Each shard's Slurm job state and campaign progress",
  builder: (y: Argv<object>) => withId(y) as unknown as Argv<IdArgs>,
  handler: async (args) => {
    const rows = await campaignStatus(loadRecord(args.resultsDir, args.campaignId));
    process.stdout.write(args.json ? `${JSON.stringify(rows, null, 2)}\n` : statusTable(rows));
  },
};

const collect: CommandModule<object, IdArgs> = {
  command: 'collect <campaign-id>',
  describe: 'When every shard is complete, merge them into one campaign and export its figures',
  builder: (y: Argv<object>) => withId(y) as unknown as Argv<IdArgs>,
  handler: async (args) => {
    const rows = await campaignStatus(loadRecord(args.resultsDir, args.campaignId));
    const open = rows.filter((r) => !r.complete);
    if (open.length > 0) {
      process.stderr.write(`${statusTable(rows)}not collected: shard(s) ${open.map((r) => r.index).join(', ')} not complete; ${open.some((r) => !r.active) ? `resubmit with: nuksm slurm resubmit ${args.campaignId}` : 'their jobs are queued or running'}\n`);
      process.exitCode = EXIT.stopped;
      return;
    }
    mergeAndExport(args.resultsDir, args.campaignId, args.json);
  },
};

export const slurmCommand: CommandModule<object, object> = {
  command: 'slurm <command>',
  describe: 'Run a sharded campaign as Slurm batch jobs (submit, resubmit, status, collect); docs/slurm.md',
  builder: (y: Argv<object>) => y.command(submit).command(resubmit).command(status).command(collect).demandCommand(1),
  handler: () => {},
};
