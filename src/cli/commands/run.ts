/** `nuksm run <spec> --testbed <file>`: create a campaign (after validating everything) and run it. */
import type { Argv, CommandModule } from 'yargs';
import { exportFigures } from '../../results/figures.ts';
import { withJson, withResultsDir, withSpecAndTestbed } from '../options.ts';
import { describeOutcome, runNewCampaign } from '../run-campaign.ts';

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
    const { c, result, exitCode } = await runNewCampaign(req, { maxSteps: args.maxSteps, quiet: args.json });
    const figures = result.outcome === 'complete' ? exportFigures(c.store) : [];
    c.store.close();
    process.stdout.write(args.json ? `${JSON.stringify({ campaign: c.plan.campaign, dir: c.dir, ...result, figures }, null, 2)}\n` : describeOutcome(c.plan.campaign, c.dir, result));
    process.exitCode = exitCode;
  },
};
