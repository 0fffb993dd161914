/**
 * NPB 3.4 CG (OpenMP) output → samples. Lines read (common/print_results.f90):
 *   " Time in seconds =                    12.34"   → runtime_s (what the artifact parsed)
 *   " Mop/s total     =                  1234.56"   → throughput_ops (× 1e6: operations/s)
 *   " Verification    =               SUCCESSFUL"   → verification_passed (UNSUCCESSFUL → 0)
 * The artifact's class C is redefined (na=300000, niter=1200), which NPB cannot verify against its
 * class C reference value; for class C no verification sample is emitted (see docs/workloads.md).
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, parseError, requireNumber } from '../common.ts';

export function cgVerifiable(params: ParseOptions['params']): boolean {
  return params?.class !== 'C';
}

export function parseCg(output: string, opts: ParseOptions = {}): Sample[] {
  if (!/CG Benchmark Completed/.test(output)) throw parseError('cg', "no 'CG Benchmark Completed.' line: the run did not finish", output);
  const runtime = requireNumber('cg', output, /^\s*Time in seconds\s*=\s*([\d.]+)\s*$/m, "'Time in seconds =' line");
  const mops = requireNumber('cg', output, /^\s*Mop\/s total\s*=\s*([\d.]+)\s*$/m, "'Mop/s total =' line");
  const verification = /^\s*Verification\s*=\s*(SUCCESSFUL|UNSUCCESSFUL)\s*$/m.exec(output);
  if (!verification) throw parseError('cg', "no 'Verification = SUCCESSFUL|UNSUCCESSFUL' line", output);
  const samples = [makeSample('cg', 'runtime_s', runtime, opts), makeSample('cg', 'throughput_ops', mops * 1e6, opts)];
  if (cgVerifiable(opts.params)) samples.push(makeSample('cg', 'verification_passed', verification[1] === 'SUCCESSFUL' ? 1 : 0, opts));
  return samples;
}
