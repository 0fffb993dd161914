/**
 * BTree (the artifact's bpt 1.16.1 wrapper, benchmarks/btree and benchmarks/btree_throughput)
 * output → samples. What the benchmark prints (test/fixtures/workloads/btree-artifact-small.captured.txt):
 *   stdout "Lookups : N", "BTree Elements: N", "Btree Fanout: 16", "Allocator: N MB", "elms addr : …",
 *          "elms2 addr : …", "Sleeping N seconds", "Sleep over"            — not read
 *   stderr "signalling readyness to /tmp/alloctest-bench.ready", "signalling done to …done" — not read
 *   stdout "ENOMEM"                              → parse-error (the tree could not be allocated)
 *   stdout "got <sum> matches in <N> seconds"    → runtime_s when no "lookups took" line follows:
 *          whole seconds of the lookup loop (end.tv_sec − start.tv_sec), what the artifact parsed
 * Printed by the harness's collect phase (src/workloads/btree/index.ts):
 *   "lookups took: <s> s"   mtime(/tmp/alloctest-bench.done) − mtime(.ready): the same lookup loop
 *                           (the files are created right before and right after it), to the ms →
 *                           runtime_s; it must agree with the whole-second value (|s − N| < 1), else
 *                           parse-error (stale readiness files).
 * Throughput variant (Fig. 4), from /tmp/btree_throughput.csv, which the collect phase cats:
 *   "Time, Entries" header, not read; "<k>,<iterations>" one row per SIGALRM period
 *                           → throughput_ops series at t = k × period, value = iterations / period
 *                           (lookup-loop iterations per second; each iteration is two lookups)
 *   "lookups started after: <s> s" (collect phase: .ready mtime minus the timed phase's start)
 *                           shifts that series so t counts from the timed phase's start like every
 *                           other series; without it (e.g. a bare CSV) t counts from the start of
 *                           the lookups, as in the artifact's Fig. 4.
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, optionalNumber, parseError } from '../common.ts';

/** The artifact's btree_throughput arms alarm(45). */
export const BTREE_DEFAULT_INTERVAL_S = 45;

export function parseBtree(output: string, opts: ParseOptions = {}): Sample[] {
  if (/^ENOMEM$/m.test(output)) throw parseError('btree', 'BTree could not allocate its tree (ENOMEM)', output);
  const samples: Sample[] = [];
  const done = /^got (\d+) matches in (\d+) seconds$/m.exec(output);
  const took = optionalNumber(output, /^lookups took: (-?[\d.]+) s$/m);
  if (done) {
    const whole = Number(done[2]);
    if (took !== null && !(Math.abs(took - whole) < 1.05)) {
      throw parseError('btree', `lookup loop took ${took} s by the readiness files but ${whole} s by the benchmark (stale /tmp/alloctest-bench.* files?)`, output);
    }
    samples.push(makeSample('btree', 'runtime_s', took ?? whole, opts));
  }

  const period = typeof opts.params?.intervalS === 'number' ? opts.params.intervalS : BTREE_DEFAULT_INTERVAL_S;
  const lookupStart = optionalNumber(output, /^lookups started after: (-?[\d.]+) s$/m) ?? 0;
  for (const line of output.split('\n')) {
    const row = /^(\d+),\s*(\d+)\s*$/.exec(line);
    if (row) samples.push(makeSample('btree', 'throughput_ops', Number(row[2]) / period, opts, lookupStart + Number(row[1]) * period));
  }
  if (samples.length === 0) {
    throw parseError('btree', "neither a 'got N matches in S seconds' line nor throughput CSV rows 'k,count' in the output", output);
  }
  return samples;
}
