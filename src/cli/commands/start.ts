/** `nuksm start` (= `npm start`): the paper campaign on the model testbed, then a summary. */
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { exportFigures, figureInput, FIGURE_DEFS, table2, table3 } from '../../results/figures.ts';
import { describeReport, reportOrWarningAsync, writeReport } from '../../results/report.ts';
import type { ResultsStore } from '../../results/store.ts';
import { textTable } from '../format.ts';
import { withResultsDir } from '../options.ts';
import { describeOutcome, runNewCampaign } from '../run-campaign.ts';

export interface StartArgs {
  spec: string;
  testbed: string;
  resultsDir?: string;
  experimentsDir: string;
}

export function summary(store: ResultsStore, written: { name: string; path: string }[]): string {
  const t2 = table2(figureInput(store, 'table2'));
  const t3 = table3(figureInput(store, 'table3'));
  const d2 = FIGURE_DEFS.find((d) => d.name === 'table2')!;
  const d3 = FIGURE_DEFS.find((d) => d.name === 'table3')!;
  // The paper's columns (95% CIs are in table2.csv and the report); baseline columns the campaign did
  // not run (docs/baselines.md) are left out of the printout (the CSV keeps them).
  const c2 = d2.columns.filter((c) => !c.endsWith('_ci95') && (!/_ksm_(node_local|numa_balancing)$/.test(c) || t2.some((r) => r[c] !== null && r[c] !== undefined)));
  return [
    'Table II (fairness = min/max slowdown vs KSM off; perf = combined runtime nuKSM / KSM; memory saved; 95% CIs in table2.csv)',
    textTable(c2, t2.map((r) => c2.map((c) => r[c]))),
    'Table III (nuKSM priority: nice, snice = nice + 21, % of de-duplicated pages local to each VM)',
    textTable(d3.columns, t3.map((r) => d3.columns.map((c) => r[c]))),
    `CSVs (${written.length}):`,
    ...written.map((w) => `  ${w.name.padEnd(7)} ${w.path}`),
    '',
  ].join('\n');
}

export const startCommand: CommandModule<object, StartArgs> = {
  command: 'start',
  describe: "Reproduce the paper on the model testbed ('paper' campaign) and print Tables II and III",
  builder: (y: Argv<object>) =>
    withResultsDir(y)
      .option('spec', { type: 'string', default: 'paper', describe: 'campaign spec' })
      .option('testbed', { type: 'string', default: join('experiments', 'testbeds', 'model.yaml'), describe: 'testbed file' })
      .option('experiments-dir', { type: 'string', default: 'experiments' }) as unknown as Argv<StartArgs>,
  handler: async (args) => {
    const { c, result, exitCode } = await runNewCampaign({ spec: args.spec, testbedFile: args.testbed, experimentsDir: args.experimentsDir, resultsDir: args.resultsDir });
    process.exitCode = exitCode;
    if (!c) return;
    const written = exportFigures(c.store);
    process.stdout.write(describeOutcome(c.plan.campaign, c.dir, result));
    process.stdout.write(summary(c.store, written));
    const report = await reportOrWarningAsync(() => writeReport(c));
    if (report) process.stdout.write(describeReport(report));
    c.store.close();
  },
};
