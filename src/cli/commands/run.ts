/** `nuksm run <spec> --testbed <file>`: create a campaign (after validating everything) and run it. */
import type { Argv, CommandModule } from 'yargs';
import { withJson, withResultsDir, withSpecAndTestbed } from '../options.ts';
import { finishCampaign, runNewCampaign } from '../run-campaign.ts';

export interface RunArgs {
  spec: string;
  testbed: string;
  iterations?: number;
  interleave?: 'none' | 'abba';
  experimentsDir: string;
  campaignId?: string;
  resultsDir?: string;
  maxSteps?: number;
  json: boolean;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <spec>',
  describe: 'Create a campaign and run it (results/<campaign-id>/); figures are exported at the end',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(withSpecAndTestbed(y)))
      .option('campaign-id', { type: 'string', describe: 'id of the new campaign (default: <spec>-<time>-<random>)' })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps (resume continues)' }) as unknown as Argv<RunArgs>,
  handler: async (args) => {
    const req = { spec: args.spec, testbedFile: args.testbed, iterations: args.iterations, interleave: args.interleave, experimentsDir: args.experimentsDir, campaignId: args.campaignId, resultsDir: args.resultsDir };
    finishCampaign(await runNewCampaign(req, { maxSteps: args.maxSteps, quiet: args.json }), args.json);
  },
};
