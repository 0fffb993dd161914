/**
 * Runs one native step INSIDE the machine (started by the boot-resume hook after a reboot, for the
 * paper's scalability flow): the same runNativeStep the host drives over SSH, here with a local
 * executor. Samples are appended as JSON lines; a step already marked done is not run again, so a
 * hook firing twice, or a boot after the step finished, never duplicates it.
 *
 *   node /opt/nuksm/bin/run-ts.js /opt/nuksm/src/testbeds/emulated/guest-step.ts <scenario.json> <out-dir>
 *
 * out-dir receives samples.jsonl (one Sample per line, written as they arrive) and done (when the
 * step finished; its content is the step's wall seconds). A step interrupted by a power loss
 * restarts from the beginning on the next boot, after discarding the partial samples file.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import type { Scenario } from '../../core/scenario.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { runNativeStep } from './native-step.ts';

async function main(): Promise<number> {
  const [scenarioFile, outDir] = process.argv.slice(2);
  if (!scenarioFile || !outDir) {
    console.error('usage: guest-step.ts <scenario.json> <out-dir>');
    return 2;
  }
  mkdirSync(outDir, { recursive: true });
  const done = join(outDir, 'done');
  if (existsSync(done)) {
    console.log(`step already done (${readFileSync(done, 'utf8').trim()} s): nothing to do`);
    return 0;
  }
  const samplesFile = join(outDir, 'samples.jsonl');
  // An earlier attempt was cut off (power loss): keep its partial output aside, start clean.
  if (existsSync(samplesFile)) renameSync(samplesFile, join(outDir, `samples.interrupted-${Date.now()}.jsonl`));
  const scenario = JSON.parse(readFileSync(scenarioFile, 'utf8')) as Scenario;
  const started = Date.now();
  // fsync after each batch: the file is the boot-loop guard's progress signal and must survive
  // a power cut like the journal would.
  const fd = openSync(samplesFile, 'a');
  await runNativeStep(
    new LocalExecutor({ defaultTimeoutMs: 120_000 }),
    scenario,
    {
      emit: (samples) => {
        if (samples.length === 0) return;
        writeSync(fd, samples.map((s) => JSON.stringify(s)).join('\n') + '\n');
        fsyncSync(fd);
      },
      log: pino({ level: 'info' }),
      signal: new AbortController().signal,
      rawDir: outDir,
    },
    {},
  );
  closeSync(fd);
  writeFileSync(done, `${((Date.now() - started) / 1000).toFixed(1)}\n`);
  return 0;
}

process.exitCode = await main();
