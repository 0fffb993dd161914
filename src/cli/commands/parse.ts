/**
 * `nuksm parse <workload> <file> [--json]`: re-parse a raw benchmark output file into samples,
 * e.g. to check a parser against a run's saved output or to recover results by hand.
 */
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/errors.ts';
import type { Sample } from '../../core/sample.ts';
import { WORKLOAD_NAMES, getWorkload, type WorkloadParams } from '../../workloads/index.ts';

export interface ParseCommandArgs {
  workload: string;
  file: string;
  json: boolean;
  instance: string;
  variant?: 'paper' | 'small';
  param: string[];
}

function paramValue(text: string): string | number | boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

/** `--param key=value` pairs; values that look numeric or boolean are typed as such. */
export function parseParamPairs(pairs: readonly string[]): WorkloadParams {
  const params: WorkloadParams = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError('command line', '--param', `expected key=value, got '${pair}'`);
    params[pair.slice(0, eq)] = paramValue(pair.slice(eq + 1));
  }
  return params;
}

/**
 * Reads the file and parses it. Parameters are only resolved when given (a variant or --param):
 * some checks depend on them (XSBench's checksum and NPB's class C verification, BTree's interval).
 */
export async function parseOutputFile(args: Omit<ParseCommandArgs, 'json'>): Promise<Sample[]> {
  const workload = getWorkload(args.workload);
  const text = await readFile(args.file, 'utf8');
  const overrides = parseParamPairs(args.param);
  const params = args.variant !== undefined || args.param.length > 0 ? workload.resolveParams(args.variant ?? 'paper', overrides, 'command line') : undefined;
  return workload.parse(text, { instance: args.instance, params });
}

export function formatSamples(samples: readonly Sample[], json: boolean): string {
  if (json) return `${JSON.stringify(samples, null, 2)}\n`;
  const rows = samples.map((s) => [s.metric, s.t === null ? '-' : String(s.t), String(s.value), s.unit]);
  const header = ['metric', 't', 'value', 'unit'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export const parseCommand: CommandModule<object, ParseCommandArgs> = {
  command: 'parse <workload> <file>',
  describe: 'Re-parse a raw benchmark output file into samples',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('workload', { type: 'string', choices: [...WORKLOAD_NAMES], demandOption: true, describe: 'workload whose parser to use' })
      .positional('file', { type: 'string', demandOption: true, describe: 'raw output file (stdout/stderr of the parsed phases)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the samples as JSON' })
      .option('instance', { type: 'string', default: '', describe: 'instance name to put into the samples' })
      .option('variant', { type: 'string', choices: ['paper', 'small'] as const, describe: 'parameter variant the run used' })
      .option('param', { type: 'string', array: true, default: [] as string[], describe: 'a parameter the run used, key=value (repeatable)' }) as unknown as Argv<ParseCommandArgs>,
  handler: async (args) => {
    const samples = await parseOutputFile(args);
    process.stdout.write(formatSamples(samples, args.json));
  },
};
