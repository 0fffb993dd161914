/** `nuksm merge <campaign-id>`: combine the shard stores of a campaign into one, then export its figures and report. */
import type { Argv, CommandModule } from 'yargs';
import { openCampaign } from '../../campaign/campaign.ts';
import { mergeShards, type MergeResult } from '../../campaign/merge.ts';
import { exportFigures } from '../../results/figures.ts';
import { describeReport, reportOrWarning, writeReportSync } from '../../results/report.ts';
import { withJson, withResultsDir } from '../options.ts';

export interface MergeArgs {
  campaignId: string;
  resultsDir?: string;
  json: boolean;
}

/** Merge, then figures and report of the merged campaign (shared with `nuksm slurm collect`). */
export function mergeAndExport(resultsDir: string | undefined, id: string, json: boolean): MergeResult {
  const merged = mergeShards({ resultsDir, campaignId: id });
  const c = openCampaign(resultsDir, id);
  const figures = exportFigures(c.store);
  const report = reportOrWarning(() => writeReportSync(c));
  c.store.close();
  process.stdout.write(
    json
      ? `${JSON.stringify({ ...merged, figures, report: report?.path ?? null }, null, 2)}\n`
      : `campaign ${id}: merged ${merged.shards.length} shards (${merged.shards.join(', ')}): ${merged.steps} steps, ${merged.samples} samples\nresults: ${merged.dir}\n${report ? describeReport(report) : ''}`,
  );
  return merged;
}

export const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge <campaign-id>',
  describe: 'Combine the finished shard stores <campaign-id>.shard<k>of<N> into campaign <campaign-id> and export its figures',
  builder: (y: Argv<object>) => withJson(withResultsDir(y)).positional('campaign-id', { type: 'string', demandOption: true, describe: 'the id the shards share' }) as unknown as Argv<MergeArgs>,
  handler: (args) => {
    mergeAndExport(args.resultsDir, args.campaignId, args.json);
  },
};
