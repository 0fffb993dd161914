/** `nuksm run <spec> --testbed <file>`: create a campaign (after validating everything) and run it. */
import type { Argv, CommandModule } from 'yargs';
import { withJson, withResultsDir, withSpecAndTestbed } from '../options.ts';
import { finishCampaign, finishShard, runNewCampaign, runShard } from '../run-campaign.ts';

export interface RunArgs {
  spec: string;
  testbed: string;
  iterations?: number;
  interleave?: 'none' | 'abba';
  experimentsDir: string;
  campaignId?: string;
  resultsDir?: string;
  maxSteps?: number;
  shard?: string;
  fleet?: string;
  json: boolean;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <spec>',
  describe: 'Create a campaign and run it (results/<campaign-id>/); figures are exported at the end',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(withSpecAndTestbed(y)))
      .option('campaign-id', { type: 'string', describe: 'id of the new campaign (default: <spec>-<time>-<random>)' })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps (resume continues)' })
      .option('shard', { type: 'string', describe: "run only shard k of N ('k/N') into results/<campaign-id>.shard<k>of<N>; run again, it resumes (docs/slurm.md)" })
      .option('fleet', { type: 'string', describe: 'fleet file the shards are routed by (with --shard)' }) as unknown as Argv<RunArgs>,
  handler: async (args) => {
    const req = { spec: args.spec, testbedFile: args.testbed, iterations: args.iterations, interleave: args.interleave, experimentsDir: args.experimentsDir, campaignId: args.campaignId, resultsDir: args.resultsDir };
    if (args.shard !== undefined || args.fleet !== undefined) {
      finishShard(await runShard({ ...req, fleetFile: args.fleet }, args.shard, { maxSteps: args.maxSteps, quiet: args.json }), args.json);
      return;
    }
    finishCampaign(await runNewCampaign(req, { maxSteps: args.maxSteps, quiet: args.json }), args.json);
  },
};
