/**
 * NPB 3.4.1 CG (OpenMP, the artifact's vendored copy) output → samples. Lines read (CG/cg.f90 and
 * common/print_results.f90; test/fixtures/workloads/npb-3.4.1-cg-class-W-small.captured.txt):
 *   " CG Benchmark Completed."                     → required: without it the run did not finish
 *   " Time in seconds =                     1.45"  → runtime_s (what the artifact parsed)
 *   " Mop/s total     =                   289.39"  → throughput_ops (× 1e6: operations/s)
 *   " Verification    =               SUCCESSFUL"  → verification_passed (UNSUCCESSFUL → 0)
 *   " NO VERIFICATION PERFORMED"                   → no verification sample
 * cg.f90 recognises a class by its (na, nonzer, niter, shift); the artifact's redefined class C
 * (na=300000, niter=1200) matches none, so the run reports "Problem size unknown", "NO VERIFICATION
 * PERFORMED", "Class = U" and "Verification = UNSUCCESSFUL": that UNSUCCESSFUL is not a failed
 * check, and no verification sample is emitted for it. Everything else (the iteration table,
 * " Zeta is", " Error is", the build information block) is not read.
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, parseError, requireNumber } from '../common.ts';

export function parseCg(output: string, opts: ParseOptions = {}): Sample[] {
  if (!/CG Benchmark Completed/.test(output)) throw parseError('cg', "no 'CG Benchmark Completed.' line: the run did not finish", output);
  const runtime = requireNumber('cg', output, /^\s*Time in seconds\s*=\s*([\d.]+)\s*$/m, "'Time in seconds =' line");
  const mops = requireNumber('cg', output, /^\s*Mop\/s total\s*=\s*([\d.]+)\s*$/m, "'Mop/s total =' line");
  const verification = /^\s*Verification\s*=\s*(SUCCESSFUL|UNSUCCESSFUL)\s*$/m.exec(output);
  if (!verification) throw parseError('cg', "no 'Verification = SUCCESSFUL|UNSUCCESSFUL' line", output);
  const samples = [makeSample('cg', 'runtime_s', runtime, opts), makeSample('cg', 'throughput_ops', mops * 1e6, opts)];
  if (!/^\s*NO VERIFICATION PERFORMED\s*$/m.test(output)) {
    samples.push(makeSample('cg', 'verification_passed', verification[1] === 'SUCCESSFUL' ? 1 : 0, opts));
  }
  return samples;
}
