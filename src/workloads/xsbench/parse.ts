/**
 * XSBench (version 19, openmp-threading) output → samples. Lines read (io.c print_inputs/print_results):
 *   "Runtime:     %.3lf seconds"                          → runtime_s (what the artifact parsed; simulation only)
 *   "Particle Histories:           500,000" and
 *   "XS Lookups per Particle:      34"                     → throughput_ops = histories × lookups / runtime
 *   "Total XS Lookups:             …" (event-based)        → throughput_ops = lookups / runtime
 *   "Verification checksum: <n> (Valid)" or "(WARNING - INAVALID CHECKSUM!)" → verification_passed
 * XSBench's own "Lookups/s:" is an int and overflows for the paper's -p 72000000 (2.4 G lookups),
 * so throughput is recomputed from the input summary instead.
 * The checksum is only defined for XSBench's default particle/lookup counts and grid; for other
 * inputs it is reported as invalid by XSBench itself, so no verification sample is emitted then.
 */
import type { Sample } from '../../core/sample.ts';
import type { ParseOptions } from '../types.ts';
import { makeSample, optionalNumber, parseError, requireNumber } from '../common.ts';

/** Inputs for which XSBench knows the reference checksum (history-based, "large" = 355 nuclides, 11303 gridpoints). */
const CHECKSUM_DEFINED = { particles: 500_000, lookups: 34, gridpoints: 11_303 } as const;

export function xsbenchVerifiable(params: ParseOptions['params']): boolean {
  if (!params) return true;
  return params.particles === CHECKSUM_DEFINED.particles && params.lookups === CHECKSUM_DEFINED.lookups && params.gridpoints === CHECKSUM_DEFINED.gridpoints;
}

export function parseXsbench(output: string, opts: ParseOptions = {}): Sample[] {
  const runtime = requireNumber('xsbench', output, /^Runtime:\s+([\d.]+) seconds/m, "'Runtime: X seconds' line");
  if (runtime <= 0) throw parseError('xsbench', `non-positive runtime ${runtime}`, output);
  const samples: Sample[] = [makeSample('xsbench', 'runtime_s', runtime, opts)];

  const histories = optionalNumber(output, /^Particle Histories:\s+([\d,]+)/m);
  const perParticle = optionalNumber(output, /^XS Lookups per Particle:\s+([\d,]+)/m);
  const total = optionalNumber(output, /^Total XS Lookups:\s+([\d,]+)/m);
  const lookups = histories !== null && perParticle !== null ? histories * perParticle : total;
  if (lookups !== null) samples.push(makeSample('xsbench', 'throughput_ops', lookups / runtime, opts));

  const verification = /^Verification checksum:\s+(\d+)\s+\((Valid|WARNING[^)]*)\)/m.exec(output);
  if (!verification) throw parseError('xsbench', "no 'Verification checksum:' line in the output", output);
  if (xsbenchVerifiable(opts.params)) {
    samples.push(makeSample('xsbench', 'verification_passed', verification[2] === 'Valid' ? 1 : 0, opts));
  }
  return samples;
}
