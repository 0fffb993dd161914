/** `nuksm status [campaign-id]`: step states, failures and where the results are. */
import type { Argv, CommandModule } from 'yargs';
import { openCampaign } from '../../campaign/campaign.ts';
import { textTable } from '../format.ts';
import { withJson, withResultsDir } from '../options.ts';
import { campaignIdOrLatest } from './resume.ts';

export interface StatusArgs {
  campaignId?: string;
  resultsDir?: string;
  json: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status [campaign-id]',
  describe: 'Show the state of every step of a campaign (default: the latest)',
  builder: (y: Argv<object>) => withJson(withResultsDir(y)).positional('campaign-id', { type: 'string', describe: 'campaign' }) as unknown as Argv<StatusArgs>,
  handler: (args) => {
    const c = openCampaign(args.resultsDir, campaignIdOrLatest(args.campaignId, args.resultsDir));
    const steps = c.journal.steps();
    const counts = c.journal.counts();
    c.store.close();
    if (args.json) {
      const slim = steps.map(({ scenario: _s, ...rest }) => rest);
      process.stdout.write(`${JSON.stringify({ campaign: c.plan.campaign, dir: c.dir, counts, steps: slim }, null, 2)}\n`);
      return;
    }
    process.stdout.write(`campaign ${c.plan.campaign} (${c.plan.spec} on ${c.plan.testbed.name}): ${counts.done} done, ${counts.failed} failed, ${counts.running} running, ${counts.pending} pending\n\n`);
    process.stdout.write(textTable(['#', 'step', 'state', 'attempts', 'failure'], steps.map((s) => [s.seq, s.stepId, s.state, s.attempts, s.failureClass ? `${s.failureClass}: ${s.failureMessage ?? ''}`.slice(0, 100) : ''])));
  },
};
