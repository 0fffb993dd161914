/**
 * RandomAccess (the artifact's custom wl-randomreads microbenchmark, not HPCC GUPS) output → samples.
 * The parsed text is the timed phase's output followed by the collect phase's `cat process_log`
 * (test/fixtures/workloads/randomaccess-artifact-small.captured.txt):
 *   "real <seconds>"  (/usr/bin/time -p python3 complete_script.py access, stderr) → runtime_s, what
 *                     the artifact parsed; includes Python start-up and the signal round trip
 *                     (tens of ms, artifact.md §5.10)
 *   "user <s>", "sys <s>" (same)                                   — not read
 *   "Data populated" (process_log)                                 — not read
 *   "Random access started : <N> loops" (process_log)              → must equal params.loops when given
 *   "Time taken : <N>" (process_log, whole seconds, time(2))       — not read: too coarse for small runs
 *   "Sum : <N>" (process_log, no trailing newline)                 — not read
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, optionalNumber, parseError, requireNumber } from '../common.ts';

export function parseRandomAccess(output: string, opts: ParseOptions = {}): Sample[] {
  const real = requireNumber('randomaccess', output, /^real\s+([\d.]+)\s*$/m, "'real S' line (/usr/bin/time -p)");
  const loops = optionalNumber(output, /^Random access started : (\d+) loops$/m);
  const wanted = opts.params?.loops;
  if (loops !== null && typeof wanted === 'number' && loops !== wanted) {
    throw parseError('randomaccess', `the benchmark ran ${loops} loops, the parameters asked for ${wanted}`, output);
  }
  return [makeSample('randomaccess', 'runtime_s', real, opts)];
}
