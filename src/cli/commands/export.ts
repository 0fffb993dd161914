/** `nuksm export [campaign-id]`: write the figure CSVs (and optionally all samples) from the campaign's own rows. */
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { writeFileSync, mkdirSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { openCampaign } from '../../campaign/campaign.ts';
import { exportFigures, FIGURE_DEFS } from '../../results/figures.ts';
import { withJson, withResultsDir } from '../options.ts';
import { campaignIdOrLatest } from './resume.ts';

export interface ExportArgs {
  campaignId?: string;
  resultsDir?: string;
  out?: string;
  figure?: string[];
  samples: boolean;
  json: boolean;
}

export const SAMPLE_COLUMNS = ['campaign', 'step', 'experiment', 'iteration', 'kernelMode', 'kernel', 'implementation', 'testbed', 'config', 'instance', 'workload', 'metric', 'value', 'unit', 't', 'node'] as const;

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export [campaign-id]',
  describe: 'Write results/<campaign-id>/figures/<name>.csv from the store (default: the latest campaign)',
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(y))
      .positional('campaign-id', { type: 'string', describe: 'campaign' })
      .option('out', { type: 'string', describe: 'output directory (default: results/<campaign-id>/figures)' })
      .option('figure', { type: 'string', array: true, choices: FIGURE_DEFS.map((d) => d.name), describe: 'only these figures' })
      .option('samples', { type: 'boolean', default: false, describe: 'also write samples.csv: every valid sample in long form' }) as unknown as Argv<ExportArgs>,
  handler: (args) => {
    const c = openCampaign(args.resultsDir, campaignIdOrLatest(args.campaignId, args.resultsDir));
    const outDir = args.out ?? join(c.dir, 'figures');
    const written = exportFigures(c.store, outDir, args.figure);
    if (args.samples) {
      mkdirSync(outDir, { recursive: true });
      const rows = c.store.rows();
      const path = join(outDir, 'samples.csv');
      writeFileSync(path, stringify(rows.map((r) => SAMPLE_COLUMNS.map((k) => r[k] ?? '')), { header: true, columns: [...SAMPLE_COLUMNS] }));
      written.push({ name: 'samples', path, rows: rows.length });
    }
    c.store.close();
    process.stdout.write(args.json ? `${JSON.stringify(written, null, 2)}\n` : written.map((w) => `${w.path} (${w.rows} rows)`).join('\n') + '\n');
  },
};
