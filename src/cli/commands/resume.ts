/** `nuksm resume [campaign-id]`: continue a campaign after a crash, kill -9, stop or reboot. */
import type { Argv, CommandModule } from 'yargs';
import { checkCampaignId, latestCampaignId } from '../../campaign/campaign.ts';
import { ConfigError } from '../../core/errors.ts';
import { withJson, withResultsDir } from '../options.ts';
import { finishCampaign, resumeCampaign } from '../run-campaign.ts';

export interface ResumeArgs {
  campaignId?: string;
  resultsDir?: string;
  maxSteps?: number;
  json: boolean;
}

export function campaignIdOrLatest(id: string | undefined, resultsDir: string | undefined): string {
  if (id !== undefined) return checkCampaignId(id, 'campaign-id');
  const found = latestCampaignId(resultsDir);
  if (!found) throw new ConfigError('command line', 'campaign-id', 'no campaign given and none found in the results directory');
  return found;
}

export const resumeCommand: CommandModule<object, ResumeArgs> = {
  command: 'resume [campaign-id]',
  describe: 'Continue a campaign (default: the latest); interrupted steps re-run from scratch',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(y))
      .positional('campaign-id', { type: 'string', describe: 'campaign to resume' })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps' }) as unknown as Argv<ResumeArgs>,
  handler: async (args) => {
    finishCampaign(await resumeCampaign(args.resultsDir, campaignIdOrLatest(args.campaignId, args.resultsDir), { maxSteps: args.maxSteps, quiet: args.json }), args.json);
  },
};
