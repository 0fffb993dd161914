/**
 * BTree (the artifact's bpt 1.16.1 wrapper) output → samples. Lines read:
 *   "got <sum> matches in <N> seconds"   (btree.c, stdout)  → runtime_s, whole seconds (what the artifact parsed)
 *   "<k>,<iterations>" rows of /tmp/btree_throughput.csv (btree_throughput, one row per SIGALRM period,
 *   header "Time, Entries"; the run's collect phase cats the file)  → throughput_ops series at t = k × period,
 *   value = iterations / period (lookup-loop iterations per second; each iteration is two lookups).
 *   "lookups started after: <s> s" (printed by the harness's collect phase: ready-file mtime minus the
 *   timed phase's start) shifts that series so t counts from the timed phase's start like every other
 *   series; without it (e.g. a bare CSV) t counts from the start of the lookups, as in the artifact's Fig. 4.
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
  if (done) samples.push(makeSample('btree', 'runtime_s', Number(done[2]), opts));

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
