/**
 * RandomAccess (the artifact's custom wl-randomreads microbenchmark, not HPCC GUPS) output → samples.
 * Line read: "real <seconds>" from `/usr/bin/time -p python3 complete_script.py access` (stderr),
 * which is what the artifact parsed → runtime_s. It includes Python start-up and the signal round
 * trip (tens of ms, artifact.md §5.10). The benchmark's own "Time taken : %d" goes to its
 * process_log in whole seconds only, too coarse for the small variant, so it is not used.
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, requireNumber } from '../common.ts';

export function parseRandomAccess(output: string, opts: ParseOptions = {}): Sample[] {
  const real = requireNumber('randomaccess', output, /^real\s+([\d.]+)\s*$/m, "'real S' line (/usr/bin/time -p)");
  return [makeSample('randomaccess', 'runtime_s', real, opts)];
}
