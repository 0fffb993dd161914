/** `nuksm trace replay <file.jsonl>`: replays a KSM trace file (docs/trace.md) into the model; exit 1 on disagreement. */
import type { Argv, CommandModule } from 'yargs';
import { formatReplayReport, readTraceFile, replayTrace } from '../../policy/trace-file.ts';

interface ReplayArgs {
  file: string;
}

const replayCommand: CommandModule<object, ReplayArgs> = {
  command: 'replay <file>',
  describe: 'Replay a recorded KSM trace into the reference model and print the agreement report',
  builder: (y: Argv<object>) => y.positional('file', { type: 'string', demandOption: true, describe: 'trace file (.jsonl)' }) as unknown as Argv<ReplayArgs>,
  handler: (args) => {
    const r = replayTrace(readTraceFile(args.file));
    process.stdout.write(formatReplayReport(r));
    if (!r.exact) process.exitCode = 1;
  },
};

export const traceCommand: CommandModule<object, object> = {
  command: 'trace <command>',
  describe: 'KSM trace files: replay into the model',
  builder: (y: Argv<object>) => y.command(replayCommand).demandCommand(1),
  handler: () => {},
};
