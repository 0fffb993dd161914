/** `nuksm parse <workload> <file> [--json]`, driven through yargs with the real command module. */
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import { formatSamples, parseCommand, parseOutputFile, parseParamPairs } from '../../src/cli/commands/parse.ts';
import type { Sample } from '../../src/core/sample.ts';

const fixtures = join(import.meta.dirname, '../fixtures/workloads');

async function runCli(argv: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await yargs().command(parseCommand).strict().fail((msg, err) => {
      throw err ?? new Error(msg);
    }).parseAsync(argv);
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('nuksm parse', () => {
  afterEach(() => vi.restoreAllMocks());

  it('parse mysql <captured sysbench output> --json prints the samples as JSON', async () => {
    const out = await runCli(['parse', 'mysql', join(fixtures, 'sysbench-1.0.20-oltp_read_only-interval.captured.txt'), '--json', '--instance', 'vm0']);
    const samples = JSON.parse(out) as Sample[];
    expect(samples.find((s) => s.metric === 'throughput_ops' && s.t === null)).toEqual({
      instance: 'vm0', workload: 'mysql', metric: 'throughput_ops', value: 15.19, unit: 'ops/s', t: null, node: null,
    });
    expect(samples.filter((s) => s.metric === 'throughput_ops' && s.t !== null)).toHaveLength(6);
  });

  it('prints a table without --json', async () => {
    const out = await runCli(['parse', 'btree', join(fixtures, 'btree-artifact-small.captured.txt')]);
    expect(out).toBe('metric     t  value  unit\nruntime_s  -  1.444  s\n');
  });

  it('passes run parameters to parameter-dependent checks', async () => {
    const file = join(fixtures, 'btree-throughput-artifact-small.captured.txt');
    const times = async (args: { variant?: 'paper' | 'small'; param: string[] }) =>
      (await parseOutputFile({ workload: 'btree', file, instance: '', ...args })).filter((s) => s.metric === 'throughput_ops').map((s) => s.t);
    // The CSV's k counts alarm periods: 45 s (the artifact's alarm) unless the run says otherwise.
    expect(await times({ param: [] })).toEqual([expect.closeTo(1.361 + 45, 9), expect.closeTo(1.361 + 90, 9)]);
    expect(await times({ variant: 'small', param: [] })).toEqual([expect.closeTo(2.361, 9), expect.closeTo(3.361, 9)]);
    expect(await times({ param: ['mode=throughput', 'intervalS=2'] })).toEqual([expect.closeTo(3.361, 9), expect.closeTo(5.361, 9)]);
    const loops = join(fixtures, 'randomaccess-artifact-small.captured.txt');
    await expect(parseOutputFile({ workload: 'randomaccess', file: loops, instance: '', param: ['loops=30'] })).rejects.toThrow(/ran 4 loops/);
  });

  it('rejects unknown workloads, bad --param and unparsable files with clear errors', async () => {
    await expect(runCli(['parse', 'gups', join(fixtures, 'README.md')])).rejects.toThrow(/Choices: .*"xsbench"/);
    expect(() => parseParamPairs(['threads'])).toThrow(/expected key=value/);
    await expect(parseOutputFile({ workload: 'mysql', file: join(fixtures, 'README.md'), instance: '', param: [] })).rejects.toMatchObject({ failureClass: 'parse-error' });
    await expect(parseOutputFile({ workload: 'xsbench', file: join(fixtures, 'README.md'), instance: '', param: ['gridpoint=3'] })).rejects.toThrow(/params\.gridpoint/);
  });

  it('formats an empty sample list as just the header', () => {
    expect(formatSamples([], false)).toBe('metric  t  value  unit\n');
  });
});
