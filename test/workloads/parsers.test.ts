/**
 * Parsers against real output: each benchmark's small variant built from the artifact snapshot and
 * run through install() + phases() + runPhases() on the build machine (the *.captured.txt files,
 * test/fixtures/workloads/README.md), plus sysbench runs and the few hand-written files for runs
 * too long to capture here (the paper's XSBench and CG inputs).
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

describe('sysbench 1.0 parser: the mysql small variant (captured)', () => {
  const mysql = getWorkload('mysql');

  it('reads totals, latency and the interval series of a real small run', () => {
    const samples = mysql.parse(fixture('sysbench-1.0.20-oltp_read_only-small.captured.txt'), { instance: 'vm0' });
    expect(once(samples, 'runtime_s')).toEqual([3.1913]);
    expect(once(samples, 'throughput_ops')).toEqual([21.62]);
    expect(once(samples, 'latency_avg_ms')).toEqual([180.14]);
    expect(once(samples, 'latency_p95_ms')).toEqual([356.7]);
    expect(series(samples, 'throughput_ops')).toEqual([[1, 19.95], [2, 26.01], [3, 19]]);
    expectCatalogued(samples, 'mysql', 'vm0');
  });
});

describe('XSBench v19 parser', () => {
  const xsbench = getWorkload('xsbench');
  const small = fixture('xsbench-v19-small.captured.txt');

  it('reads a real small run: runtime, lookups/s from the input summary, the harness reference checksum', () => {
    const samples = xsbench.parse(small, { instance: 'vm0', params: xsbench.resolveParams('small') });
    expect(once(samples, 'runtime_s')).toEqual([1.652]);
    expect(once(samples, 'runtime_s')[0]).toBeGreaterThan(0);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo((20_000 * 34) / 1.652, 6);
    // XSBench printed "INAVALID" (it knows no reference for these inputs) and exited 1; the checksum
    // equals the reference the harness carries for the small variant's inputs.
    expect(small).toMatch(/^Verification checksum: 962351 \(WARNING - INAVALID CHECKSUM!\)$/m);
    expect(small).toMatch(/^XSBench exit status: 1$/m);
    expect(once(samples, 'verification_passed')).toEqual([1]);
    expectCatalogued(samples, 'xsbench', 'vm0');
  });

  it('a different checksum for the same inputs is a failed verification, recorded as 0', () => {
    const wrong = small.replace('checksum: 962351 (', 'checksum: 962350 (');
    expect(once(xsbench.parse(wrong), 'verification_passed')).toEqual([0]);
  });

  it('the reference is chosen from the input summary the run printed, not from the parameters', () => {
    const otherGrid = small.replace('Gridpoints (per Nuclide):     150', 'Gridpoints (per Nuclide):     151');
    expect(once(xsbench.parse(otherGrid, { params: xsbench.resolveParams('small') }), 'verification_passed')).toEqual([]);
    expect(once(xsbench.parse(small, { params: xsbench.resolveParams('paper') }), 'verification_passed')).toEqual([1]);
  });

  it('XSBench v19 exits 1 exactly after INAVALID: any other status is a parse-error', () => {
    expectParseError(() => xsbench.parse(small.replace('XSBench exit status: 1', 'XSBench exit status: 0')), /exited with status 0 after printing 'WARNING - INAVALID CHECKSUM!'/);
    expectParseError(() => xsbench.parse(small.replace('XSBench exit status: 1', 'XSBench exit status: 139')), /status 139/);
  });

  it("XSBench's own default problem (-s small): 'Valid', exit 0, verification 1 (captured)", () => {
    const text = fixture('xsbench-v19-default-small-inputs.captured.txt');
    expect(text).toMatch(/^Verification checksum: 941535 \(Valid\)$/m);
    expect(text).toMatch(/^XSBench exit status: 0$/m);
    const samples = xsbench.parse(text);
    expect(once(samples, 'verification_passed')).toEqual([1]);
    expect(once(samples, 'runtime_s')[0]).toBeGreaterThan(0);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo((500_000 * 34) / once(samples, 'runtime_s')[0]!, 6);
  });

  it('paper inputs (documented format): throughput recomputed where XSBench\'s own int overflows; no reference, no verification sample', () => {
    const samples = xsbench.parse(fixture('xsbench-v19-paper-inputs.documented-format.txt'), { instance: 'vm0', params: xsbench.resolveParams('paper') });
    expect(once(samples, 'runtime_s')).toEqual([3891.27]);
    expect(once(samples, 'throughput_ops')[0]).toBeCloseTo((72_000_000 * 34) / 3891.27, 3);
    expect(once(samples, 'verification_passed')).toEqual([]);
  });

  it('rejects output without a result block', () => {
    expectParseError(() => xsbench.parse(small.slice(0, small.indexOf('Threads:     2'))), /Runtime/);
    expectParseError(() => xsbench.parse(small.replace(/^Verification.*$/m, '')), /Verification checksum/);
    expectParseError(() => xsbench.parse('Usage: ./XSBench <options>\n'), /Runtime/);
  });
});

describe('NPB CG parser', () => {
  const cg = getWorkload('cg');
  const small = fixture('npb-3.4.1-cg-class-W-small.captured.txt');

  it('reads a real class W run: runtime, Mop/s and NPB\'s verification', () => {
    const samples = cg.parse(small, { instance: 'vm1', params: cg.resolveParams('small') });
    expect(once(samples, 'runtime_s')).toEqual([3.87]);
    expect(once(samples, 'throughput_ops')).toEqual([108.77e6]);
    expect(once(samples, 'verification_passed')).toEqual([1]);
    expectCatalogued(samples, 'cg', 'vm1');
    expect(once(cg.parse(small.replace('=               SUCCESSFUL', '=             UNSUCCESSFUL')), 'verification_passed')).toEqual([0]);
  });

  it("the artifact's redefined class C (documented format): 'NO VERIFICATION PERFORMED', so no verification sample", () => {
    const samples = cg.parse(fixture('npb-3.4.1-cg-artifact-class-C.documented-format.txt'), { params: cg.resolveParams('paper') });
    expect(once(samples, 'runtime_s')).toEqual([1457.21]);
    expect(once(samples, 'verification_passed')).toEqual([]);
  });

  it('rejects an unfinished run and missing fields', () => {
    expectParseError(() => cg.parse(small.slice(0, small.indexOf(' CG Benchmark Completed'))), /did not finish/);
    expectParseError(() => cg.parse(small.replace(/^ Time in seconds.*$/m, '')), /Time in seconds/);
    expectParseError(() => cg.parse(small.replace(/^ Verification .*$/m, '')), /Verification/);
  });
});

describe('BTree parser', () => {
  const btree = getWorkload('btree');
  const small = fixture('btree-artifact-small.captured.txt');
  const throughput = fixture('btree-throughput-artifact-small.captured.txt');

  it('a real small run: the lookup loop timed from the readiness files, consistent with the whole seconds', () => {
    expect(small).toMatch(/^got 0 matches in 1 seconds$/m);
    const samples = btree.parse(small, { instance: 'vm0', params: btree.resolveParams('small') });
    expect(samples.map((s) => [s.metric, s.t, s.value])).toEqual([['runtime_s', null, 1.444]]);
    expectCatalogued(samples, 'btree', 'vm0');
    // Without the harness line (the artifact's own output) the whole seconds are what there is.
    expect(once(btree.parse(small.replace(/^lookups took.*$/m, '')), 'runtime_s')).toEqual([1]);
    expectParseError(() => btree.parse(small.replace('lookups took: 1.444 s', 'lookups took: 7.000 s')), /stale/);
  });

  it('a real btree_throughput run (Fig. 4 build): per-interval series after the lookups started', () => {
    const params = btree.resolveParams('small', { mode: 'throughput' });
    const samples = btree.parse(throughput, { params });
    expect(once(samples, 'runtime_s')).toEqual([2.08]);
    expect(series(samples, 'throughput_ops')).toEqual([
      [expect.closeTo(1.361 + 1, 9), 269994],
      [expect.closeTo(1.361 + 2, 9), 298900],
    ]);
    // A bare CSV with the paper's 45 s period: t = k × period from the start of the lookups.
    const csv = throughput.slice(throughput.indexOf('Time, Entries'), throughput.indexOf('lookups started'));
    expect(series(btree.parse(csv, { params: btree.resolveParams('paper', { mode: 'throughput' }) }), 'throughput_ops')).toEqual([[45, 269994 / 45], [90, 298900 / 45]]);
  });

  it('rejects output with neither result form, and ENOMEM', () => {
    expectParseError(() => btree.parse(small.replace(/^got .*$/m, '')), /neither/);
    expectParseError(() => btree.parse('BTree Elements: 39321600\nENOMEM\n'), /ENOMEM/);
  });
});

describe('RandomAccess parser', () => {
  const randomaccess = getWorkload('randomaccess');
  const small = fixture('randomaccess-artifact-small.captured.txt');

  it("a real small run: /usr/bin/time -p 'real' (as the artifact), the process log read for its loop count", () => {
    const samples = randomaccess.parse(small, { instance: 'p0', params: randomaccess.resolveParams('small') });
    expect(samples.map((s) => [s.metric, s.value])).toEqual([['runtime_s', 1.02]]);
    expectCatalogued(samples, 'randomaccess', 'p0');
    // The benchmark's own "Time taken" is whole seconds (0 here) and is not used.
    expect(small).toMatch(/^Time taken : 0$/m);
    expectParseError(() => randomaccess.parse(small, { params: randomaccess.resolveParams('paper') }), /ran 4 loops, the parameters asked for 30/);
  });

  it("rejects output without a 'real' line", () => {
    expectParseError(() => randomaccess.parse('Data populated\nTime taken : 398\nSum : 5\n'), /real S/);
    expectParseError(() => randomaccess.parse('Command exited with non-zero status 1\nreal x\n'), /real S/);
  });
});
