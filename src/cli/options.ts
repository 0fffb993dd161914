/** Options several commands share. */
import type { Argv } from 'yargs';

export interface ResultsDirArgs {
  resultsDir?: string;
}

export const withResultsDir = <T>(y: Argv<T>) =>
  y.option('results-dir', { type: 'string', describe: 'results root (default: $NUKSM_RESULTS_DIR or ./results)' });

export const withJson = <T>(y: Argv<T>) => y.option('json', { type: 'boolean', default: false, describe: 'machine-readable JSON on stdout' });

export const withSpecAndTestbed = <T>(y: Argv<T>) =>
  y
    .positional('spec', { type: 'string', demandOption: true, describe: "campaign or experiment spec: a name in experiments/ ('paper', 'fig6') or a path" })
    .option('testbed', { type: 'string', demandOption: true, describe: 'testbed file (experiments/testbeds/*.yaml)' })
    .option('iterations', { type: 'number', describe: 'iterations per configuration (overrides the specs)' })
    .option('interleave', { type: 'string', choices: ['none', 'abba'] as const, describe: 'order of kernels across iterations' })
    .option('experiments-dir', { type: 'string', default: 'experiments', describe: 'where spec names are looked up' });
