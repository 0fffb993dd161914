/** `nuksm` entry (loaded by bin/nuksm.js). Exit codes: src/cli/exit-codes.ts, docs/campaigns.md. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { HarnessError } from '../core/errors.ts';
import { COMMANDS } from './commands/index.ts';
import { EXIT } from './exit-codes.ts';

export function buildCli(argv: string[]) {
  let cli = yargs(argv).scriptName('nuksm').strict().demandCommand(1, 'give a command (see --help)').help().alias('h', 'help').version(false).exitProcess(false).wrap(Math.min(120, process.stdout.columns ?? 100));
  for (const c of COMMANDS) cli = cli.command(c);
  return cli;
}

/** Runs the CLI; returns the exit code (errors are printed, never thrown). */
export async function main(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    await buildCli(argv)
      .fail((msg, err) => {
        throw err ?? new HarnessError('config', msg ?? 'invalid arguments');
      })
      .parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    const e = err as Error;
    process.stderr.write(`nuksm: ${e.message}\n`);
    if (err instanceof HarnessError) return err.failureClass === 'config' ? EXIT.config : EXIT.internal;
    if (process.env.NUKSM_DEBUG) process.stderr.write(`${e.stack}\n`);
    return EXIT.internal;
  }
}

const isEntry = process.argv[1] !== undefined && /bin[\\/]nuksm(\.js)?$/.test(process.argv[1]);
if (isEntry) process.exitCode = await main(hideBin(process.argv));
