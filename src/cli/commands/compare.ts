/**
 * `nuksm compare A B`: two campaigns (ids in the results directory, or campaign directories), or
 * two kernel modes of one (`A:ksm A:nuksm-fair`), side by side per metric with Welch's t-test
 * (src/results/compare.ts). Text, or --json.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { openCampaign } from '../../campaign/campaign.ts';
import { KERNEL_MODES } from '../../core/scenario.ts';
import { ConfigError } from '../../core/errors.ts';
import { COMPARE_LEGEND, compareSides, comparisonTable, type CompareSide } from '../../results/compare.ts';
import { STORE_FILE } from '../../results/store.ts';
import { textTable } from '../format.ts';
import { withJson, withResultsDir } from '../options.ts';

export interface CompareArgs {
  a: string;
  b: string;
  resultsDir?: string;
  json: boolean;
}

/** `campaign[:mode]`: a campaign id, or a directory holding campaign.sqlite, optionally one kernel mode of it. */
export function readSide(arg: string, key: 'a' | 'b', resultsDir: string | undefined): CompareSide {
  const colon = arg.lastIndexOf(':');
  const mode = colon > 0 ? arg.slice(colon + 1) : null;
  const where = colon > 0 ? arg.slice(0, colon) : arg;
  if (mode !== null && !(KERNEL_MODES as readonly string[]).includes(mode)) throw new ConfigError('command line', key, `unknown kernel mode '${mode}' (one of ${KERNEL_MODES.join(', ')})`);
  const asDir = resolve(where);
  const c = existsSync(resolve(asDir, STORE_FILE)) ? openCampaign(dirname(asDir), basename(asDir)) : openCampaign(resultsDir, where);
  try {
    const rows = c.store.rows();
    if (mode !== null && !rows.some((r) => r.kernelMode === mode)) throw new ConfigError('command line', key, `campaign ${c.plan.campaign} has no results for kernel mode '${mode}'`);
    return { label: mode === null ? c.plan.campaign : `${c.plan.campaign}:${mode}`, campaign: c.plan.campaign, testbed: c.plan.testbed.kind, mode, rows };
  } finally {
    c.store.close();
  }
}

export const compareCommand: CommandModule<object, CompareArgs> = {
  command: 'compare <a> <b>',
  describe: "Two campaigns, or two kernel modes of one (A:ksm A:nuksm-fair), side by side per metric with Welch's t-test and significance marks",
  builder: (y: Argv<object>) =>
    withJson(withResultsDir(y))
      .positional('a', { type: 'string', demandOption: true, describe: 'campaign id or directory, optionally :kernel-mode' })
      .positional('b', { type: 'string', demandOption: true, describe: 'campaign id or directory, optionally :kernel-mode' }) as unknown as Argv<CompareArgs>,
  handler: (args) => {
    const a = readSide(args.a, 'a', args.resultsDir);
    const b = readSide(args.b, 'b', args.resultsDir);
    if ((a.mode === null) !== (b.mode === null)) throw new ConfigError('command line', 'b', 'give a kernel mode on both sides (A:mode B:mode) or on neither');
    const c = compareSides(a, b);
    if (args.json) {
      process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
      return;
    }
    const { header, rows } = comparisonTable(c);
    const model =
      c.kind === 'prediction-vs-measured'
        ? `model prediction next to a measurement: ${a.testbed === 'model' ? 'A' : 'B'} is the reference model's output (nuksm predict), not measured; B − A is in the metric's unit (pp for %)\n`
        : c.kind === 'model' ? 'model output (reference policy model), not measurements\n' : '';
    process.stdout.write(`A = ${a.label} (testbed ${a.testbed}), B = ${b.label} (testbed ${b.testbed})\n${model}${textTable(header, rows)}${COMPARE_LEGEND}\n`);
  },
};
