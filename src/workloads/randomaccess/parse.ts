/**
 * RandomAccess (the artifact's custom wl-randomreads microbenchmark, not HPCC GUPS) output → samples.
 * Lines read:
 *   "real <seconds>"        /usr/bin/time -p around `complete_script.py access` (stderr; what the artifact parsed)
 *   "Time taken : <s>"      the benchmark's own timing of the random reads (process_log, cat by the collect phase)
 * runtime_s is "Time taken" when present: it excludes Python start-up and the signalling that "real"
 * includes (artifact.md §5.10); otherwise "real", as the artifact did.
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, optionalNumber, parseError } from '../common.ts';

export function parseRandomAccess(output: string, opts: ParseOptions = {}): Sample[] {
  const own = optionalNumber(output, /^Time taken\s*:\s*([\d.]+)/m);
  const real = optionalNumber(output, /^real\s+([\d.]+)\s*$/m);
  const runtime = own ?? real;
  if (runtime === null) throw parseError('randomaccess', "neither a 'Time taken : S' nor a 'real S' line in the output", output);
  return [makeSample('randomaccess', 'runtime_s', runtime, opts)];
}
