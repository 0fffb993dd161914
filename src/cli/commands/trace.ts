/**
 * `nuksm trace record <scenario> --testbed <file> --out <trace.jsonl>`: records a KSM scenario on a testbed
 * (a real kernel, or the model's own recording) as a trace file (docs/trace.md).
 * `nuksm trace replay <file.jsonl>`: replays a trace file into the model; exit 1 on disagreement.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { loadTestbedFile } from '../../campaign/campaign.ts';
import { loadScenarioFile } from '../../campaign/scenario-file.ts';
import { writeFileDurable } from '../../core/durable-file.ts';
import { ConfigError, HarnessError } from '../../core/errors.ts';
import { formatReplayReport, parseTraceText, readTraceFile, replayTrace, traceText } from '../../policy/trace-file.ts';
import { createTestbed } from '../../testbeds/index.ts';

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

export interface RecordArgs {
  scenario: string;
  testbed: string;
  out: string;
  kernel?: string;
  force: boolean;
}

/** Every check of `trace record` that needs no testbed: nothing is created before they pass. */
function checkRecordArgs(args: RecordArgs) {
  const scenario = loadScenarioFile(args.scenario);
  const tb = loadTestbedFile(args.testbed);
  if (args.kernel !== undefined && !Object.hasOwn(tb.kernels, args.kernel)) {
    throw new ConfigError('command line', '--kernel', `'${args.kernel}' is not a kernel of ${tb.file} (known: ${Object.keys(tb.kernels).join(', ') || 'none'})`);
  }
  if (tb.nodes.length > 0) {
    const ids = new Set(tb.nodes.map((n) => n.id));
    scenario.procs.forEach((p, i) => {
      if (!ids.has(p.node)) throw new ConfigError(args.scenario, `procs[${i}].node`, `node ${p.node} is not a node of ${tb.file} (nodes ${[...ids].sort((a, b) => a - b).join(', ')})`);
    });
  }
  const out = resolve(args.out);
  if (existsSync(out) && !args.force) throw new ConfigError('command line', '--out', `${args.out} exists (give --force to replace it)`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new ConfigError('command line', '--out', `${args.out} is a directory`);
  if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) throw new ConfigError('command line', '--out', `directory ${dirname(out)} does not exist`);
  return { scenario, tb, out };
}

const recordCommand: CommandModule<object, RecordArgs> = {
  command: 'record <scenario>',
  describe: 'Record a KSM scenario (JSON or YAML) on a testbed as a trace file: a real kernel (physical or emulated testbed) or the model itself (model testbed)',
  builder: (y: Argv<object>) =>
    y
      .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario file (JSON or YAML, docs/trace.md)' })
      .option('testbed', { type: 'string', demandOption: true, describe: 'testbed file (experiments/testbeds/*.yaml)' })
      .option('out', { type: 'string', demandOption: true, describe: 'trace file to write (.jsonl)' })
      .option('kernel', { type: 'string', describe: "the testbed file's kernel: the one the model follows (model testbed), the one that must be running (physical), the one the machine boots (emulated)" })
      .option('force', { type: 'boolean', default: false, describe: 'replace --out if it exists' }) as unknown as Argv<RecordArgs>,
  handler: async (args) => {
    const { scenario, tb, out } = checkRecordArgs(args);
    const testbed = await createTestbed(tb);
    try {
      if (!testbed.recordKsmTrace) throw new HarnessError('unsupported', `${tb.file}: the ${tb.kind} testbed cannot record KSM traces`);
      const t0 = Date.now();
      const trace = await testbed.recordKsmTrace(scenario, { kernel: args.kernel, log: (line) => process.stderr.write(`${line}\n`) });
      const text = traceText(trace);
      parseTraceText(text, out); // never write a file `trace replay` would refuse
      writeFileDurable(out, text, { always: true });
      const stops = trace.records.filter((r) => r.t === 'snap').length;
      const merges = trace.records.filter((r) => r.t === 'merge').length;
      const what = trace.header.producer === 'model' ? 'BY THE MODEL (not a kernel measurement)' : `on a kernel, ${trace.header.release}`;
      process.stdout.write(`recorded ${scenario.name} ${what} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${stops} stops, ${merges} merge records → ${out}\n`);
    } finally {
      await testbed.close();
    }
  },
};

export const traceCommand: CommandModule<object, object> = {
  command: 'trace <command>',
  describe: 'KSM trace files: record on a testbed, replay into the model',
  builder: (y: Argv<object>) => y.command(recordCommand).command(replayCommand).demandCommand(1),
  handler: () => {},
};
