/**
 * Parsers against real captured output (sysbench 1.0.20) and against the documented output
 * formats of the benchmarks that cannot run on the build machine (see test/fixtures/workloads/README.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { METRICS } from '../../src/core/metrics.ts';
import type { Sample } from '../../src/core/sample.ts';
import { getWorkload } from '../../src/workloads/index.ts';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/workloads', name), 'utf8');
const once = (samples: Sample[], metric: string) => samples.filter((s) => s.metric === metric && s.t === null).map((s) => s.value);
const series = (samples: Sample[], metric: string) => samples.filter((s) => s.metric === metric && s.t !== null).map((s) => [s.t, s.value]);

function expectParseError(fn: () => unknown, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('parse-error');
    expect((err as HarnessError).message).toMatch(message);
    return;
  }
  throw new Error('expected a parse-error');
}

function expectCatalogued(samples: Sample[], workload: string, instance: string): void {
  for (const s of samples) {
    expect(s.unit).toBe(METRICS[s.metric as keyof typeof METRICS].unit);
    expect(s.workload).toBe(workload);
    expect(s.instance).toBe(instance);
    expect(s.node).toBeNull();
  }
}

describe('sysbench 1.0 parser (captured real output)', () => {
  const mysql = getWorkload('mysql');

  it('reads totals, latency and the --report-interval series', () => {
    const samples = mysql.parse(fixture('sysbench-1.0.20-oltp_read_only-interval.captured.txt'), { instance: 'vm1' });
    expect(once(samples, 'runtime_s')).toEqual([6.1229]);
    expect(once(samples, 'throughput_ops')).toEqual([15.19]);
    expect(once(samples, 'latency_avg_ms')).toEqual([261.65]);
    expect(once(samples, 'latency_p95_ms')).toEqual([337.94]);
    expect(series(samples, 'throughput_ops')).toEqual([[1, 10.99], [2, 16.01], [3, 16], [4, 14], [5, 17], [6, 15]]);
    expect(series(samples, 'latency_p95_ms')).toEqual([[1, 383.33], [2, 303.33], [3, 262.64], [4, 262.64], [5, 267.41], [6, 282.25]]);
    expectCatalogued(samples, 'mysql', 'vm1');
  });

  it('shifts interval timestamps by tOffsetS so series line up with the step clock', () => {
    const samples = mysql.parse(fixture('sysbench-1.0.20-oltp_read_only-interval.captured.txt'), { tOffsetS: 100 });
    expect(series(samples, 'throughput_ops')[0]).toEqual([101, 10.99]);
    expect(samples.every((s) => s.instance === '')).toBe(true);
  });

  it('reads the artifact-shaped run (no interval lines, long transactions)', () => {
    const samples = mysql.parse(fixture('sysbench-1.0.20-oltp_read_only-paper-shape.captured.txt'));
    expect(once(samples, 'runtime_s')).toEqual([10.8379]);
    expect(once(samples, 'throughput_ops')).toEqual([3.23]);
    expect(once(samples, 'latency_avg_ms')).toEqual([2405.06]);
    expect(series(samples, 'throughput_ops')).toEqual([]);
  });

  it('turns a failed run (FATAL lines) into parse-error quoting the cause', () => {
    expectParseError(() => mysql.parse(fixture('sysbench-1.0.20-oltp_read_only-no-database.captured.txt')), /Unknown database 'nosuchdb'/);
  });

  it('rejects truncated and garbled output', () => {
    const full = fixture('sysbench-1.0.20-oltp_read_only-interval.captured.txt');
    expectParseError(() => mysql.parse(full.slice(0, full.indexOf('General statistics'))), /total time/);
    expectParseError(() => mysql.parse(full.replace(/Latency \(ms\):[\s\S]*/, '')), /Latency/);
    expectParseError(() => mysql.parse(full.replace('[ 3s ] thds: 4 tps: 16.00', '[ 3s ] thds: 4 tpx: 16.00')), /unrecognised interval line/);
    expectParseError(() => mysql.parse(''), /total time/);
  });
});

describe('XSBench v19 parser (documented format)', () => {
  const xsbench = getWorkload('xsbench');

  it('reads the runtime and recomputes throughput where XSBench\'s own int overflows (paper inputs)', () => {
    const params = xsbench.resolveParams('paper');
    const samples = xsbench.parse(fixture('xsbench-v19-paper-inputs.documented-format.txt'), { instance: 'vm0', params });
    expect(once(samples, 'runtime_s')).toEqual([3891.27]);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo((72_000_000 * 34) / 3891.27, 3);
    // The checksum is only defined for XSBench's default inputs: no verification sample for the paper's.
    expect(once(samples, 'verification_passed')).toEqual([]);
    expectCatalogued(samples, 'xsbench', 'vm0');
  });

  it('records the checksum verification for default inputs, and a failed one as 0', () => {
    const text = fixture('xsbench-v19-default-inputs.documented-format.txt');
    const defaults = { ...xsbench.resolveParams('paper'), gridpoints: 11_303, particles: 500_000 };
    const samples = xsbench.parse(text, { params: defaults });
    expect(once(samples, 'verification_passed')).toEqual([1]);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo(17_000_000 / 28.614, 3);
    const bad = text.replace('954318 (Valid)', '954317 (WARNING - INAVALID CHECKSUM!)');
    expect(once(xsbench.parse(bad, { params: defaults }), 'verification_passed')).toEqual([0]);
    // Without params (nuksm parse on a file) the verdict XSBench printed is recorded as is.
    expect(once(xsbench.parse(bad), 'verification_passed')).toEqual([0]);
  });

  it('rejects output without a result block', () => {
    const text = fixture('xsbench-v19-paper-inputs.documented-format.txt');
    expectParseError(() => xsbench.parse(text.slice(0, text.indexOf('Threads:     4'))), /Runtime/);
    expectParseError(() => xsbench.parse(text.replace(/^Verification.*$/m, '')), /Verification checksum/);
    expectParseError(() => xsbench.parse('Usage: ./XSBench <options>\n'), /Runtime/);
  });
});

describe('NPB CG parser (documented format)', () => {
  const cg = getWorkload('cg');

  it('reads runtime and Mop/s; the artifact\'s redefined class C has no verification sample', () => {
    const samples = cg.parse(fixture('npb-3.4.1-cg-artifact-class-C.documented-format.txt'), { instance: 'vm1', params: cg.resolveParams('paper') });
    expect(once(samples, 'runtime_s')).toEqual([1457.21]);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo(2109.46e6, 0);
    expect(once(samples, 'verification_passed')).toEqual([]);
    expectCatalogued(samples, 'cg', 'vm1');
  });

  it('records NPB verification for stock classes (SUCCESSFUL → 1, UNSUCCESSFUL → 0)', () => {
    const text = fixture('npb-3.4.1-cg-class-A.documented-format.txt');
    const params = cg.resolveParams('small');
    expect(once(cg.parse(text, { params }), 'verification_passed')).toEqual([1]);
    expect(once(cg.parse(text.replace('=               SUCCESSFUL', '=             UNSUCCESSFUL'), { params }), 'verification_passed')).toEqual([0]);
    expect(once(cg.parse(text, { params }), 'runtime_s')).toEqual([0.96]);
  });

  it('rejects an unfinished run and missing fields', () => {
    const text = fixture('npb-3.4.1-cg-class-A.documented-format.txt');
    expectParseError(() => cg.parse(text.slice(0, text.indexOf(' CG Benchmark Completed'))), /did not finish/);
    expectParseError(() => cg.parse(text.replace(/^ Time in seconds.*$/m, '')), /Time in seconds/);
    expectParseError(() => cg.parse(text.replace(/^ Verification .*$/m, '')), /Verification/);
  });
});

describe('BTree parser (documented format)', () => {
  const btree = getWorkload('btree');

  it('reads the whole-second runtime of the runtime variant', () => {
    const samples = btree.parse(fixture('btree-artifact-runtime.documented-format.txt'), { instance: 'vm0' });
    expect(samples.map((s) => [s.metric, s.t, s.value])).toEqual([['runtime_s', null, 812]]);
  });

  it('turns the throughput CSV into a per-interval series (Fig. 4) with t = k × period', () => {
    const samples = btree.parse(fixture('btree-artifact-throughput.documented-format.txt'), { params: btree.resolveParams('paper', { mode: 'throughput' }) });
    expect(series(samples, 'throughput_ops')).toEqual([
      [45, 27103345 / 45],
      [90, 26988120 / 45],
      [135, 21450093 / 45],
      [180, 20871654 / 45],
    ]);
    const short = btree.parse('1,200\n2,180\n', { params: btree.resolveParams('small', { mode: 'throughput' }) });
    expect(series(short, 'throughput_ops')).toEqual([[2, 100], [4, 90]]);
  });

  it('rejects output with neither result form, and ENOMEM', () => {
    const text = fixture('btree-artifact-runtime.documented-format.txt');
    expectParseError(() => btree.parse(text.replace(/^got .*$/m, '')), /neither/);
    expectParseError(() => btree.parse('BTree Elements: 39321600\nENOMEM\n'), /ENOMEM/);
  });
});

describe('RandomAccess parser (captured real output and documented format)', () => {
  const randomaccess = getWorkload('randomaccess');

  it("reads /usr/bin/time -p 'real' of a real small run of the artifact's benchmark", () => {
    const samples = randomaccess.parse(fixture('randomaccess-artifact-small.captured.txt'), { instance: 'p0' });
    expect(samples.map((s) => [s.metric, s.value])).toEqual([['runtime_s', 1.53]]);
    expectCatalogued(samples, 'randomaccess', 'p0');
  });

  it("uses 'real' (as the artifact did), not the whole-second 'Time taken' of the process log", () => {
    expect(once(randomaccess.parse(fixture('randomaccess-artifact.documented-format.txt')), 'runtime_s')).toEqual([412.37]);
  });

  it("rejects output without a 'real' line", () => {
    expectParseError(() => randomaccess.parse('Data populated\nTime taken : 398\nSum : 5\n'), /real S/);
    expectParseError(() => randomaccess.parse('Command exited with non-zero status 1\nreal x\n'), /real S/);
  });
});
