/** `nuksm report [campaign-id]`: write results/<campaign-id>/report.html (plots, tables, reproduction, plan, provenance). */
import type { Argv, CommandModule } from 'yargs';
import { openCampaign } from '../../campaign/campaign.ts';
import { exportFigures } from '../../results/figures.ts';
import { describeReport, writeReport } from '../../results/report.ts';
import { withJson, withResultsDir } from '../options.ts';
import { campaignIdOrLatest } from './resume.ts';

export interface ReportArgs {
  campaignId?: string;
  resultsDir?: string;
  json: boolean;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report [campaign-id]',
  describe: 'Write results/<campaign-id>/report.html: every plot and table, the paper\'s numbers next to the campaign\'s, the plan as run, provenance (default: the latest campaign)',
  builder: (y: Argv<object>) => withJson(withResultsDir(y)).positional('campaign-id', { type: 'string', describe: 'campaign' }) as unknown as Argv<ReportArgs>,
  handler: async (args) => {
    const c = openCampaign(args.resultsDir, campaignIdOrLatest(args.campaignId, args.resultsDir));
    try {
      // The CSVs and the plots come from the same rows: refresh both.
      exportFigures(c.store);
      const r = await writeReport(c);
      process.stdout.write(args.json ? `${JSON.stringify(r, null, 2)}\n` : describeReport(r));
    } finally {
      c.store.close();
    }
  },
};
