/**
 * NPB 3.4.1 CG, OpenMP, as vendored in the artifact (benchmarks/NPB3.4-OMP) and run by EXP03:
 * bin/cg.C.x with the artifact's redefined class C (na=300000, nonzer=15, niter=1200, shift=110),
 * OMP_NUM_THREADS unset → 4 threads on a 4-vCPU guest. Stock classes S/W/A/B keep NPB's sizes and verify.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { num, paramResolver, positive, positiveInt, str } from '../common.ts';
import { ARTIFACT_SNAPSHOT, build, buildOnce, compilerVersion, unpackCacheArchive } from '../cache.ts';
import type { InstallContext, InstallResult, Phase, RunContext, Workload, WorkloadParams } from '../types.ts';
import { parseCg } from './parse.ts';

export const NPB_DIR = 'benchmarks/NPB3.4-OMP';

const schema = z.object({
  footprintGiB: positive,
  threads: positiveInt,
  /** NPB problem class; 'C' is the artifact's redefined class C. */
  class: z.enum(['S', 'W', 'A', 'B', 'C']),
  runTimeoutS: positiveInt,
});

const paper: WorkloadParams = { footprintGiB: 3.5, threads: 4, class: 'C', runTimeoutS: 4 * 3600 };
// Stock class W (na=7000, 15 iterations, NPB verifies it): 17 MiB resident, ≈ 1.5 s natively on 2 threads (class A takes 6.5 s here).
const small: WorkloadParams = { footprintGiB: 0.02, threads: 2, class: 'W', runTimeoutS: 600 };

function phases(p: WorkloadParams, ctx: RunContext): Phase[] {
  const dir = posix.join(ctx.installDir, ARTIFACT_SNAPSHOT.root, NPB_DIR);
  const cls = str(p, 'class');
  return [
    {
      name: 'run',
      description: `NPB CG class ${cls} on ${num(p, 'threads')} threads`,
      argv: [posix.join(dir, 'bin', `cg.${cls}.x`)],
      env: { OMP_NUM_THREADS: String(num(p, 'threads')) },
      cwd: dir,
      expectedDurationS: { S: 1, W: 2, A: 5, B: 120, C: 1800 }[cls] ?? 60,
      timeoutS: num(p, 'runTimeoutS'),
      timed: true,
      parsed: true,
    },
  ];
}

/**
 * Builds only the class the parameters ask for (NPB bakes the class into the binary, bin/cg.<class>.x,
 * so each class has its own marker and binaries of several classes can coexist). Compiler and flags
 * come from the vendored config/make.def: gfortran -O3 -fopenmp (and gcc -O3 -fopenmp for wtime.c).
 */
async function install(ctx: InstallContext): Promise<InstallResult> {
  const { root, sha256 } = await unpackCacheArchive(ctx, ARTIFACT_SNAPSHOT);
  const cls = typeof ctx.params.class === 'string' ? ctx.params.class : 'C';
  const dir = posix.join(root, NPB_DIR);
  const fortran = await compilerVersion(ctx, 'gfortran');
  const c = await compilerVersion(ctx, 'gcc');
  const prebuilt = await buildOnce(ctx, {
    id: `cg-${cls}`,
    binary: posix.join(dir, 'bin', `cg.${cls}.x`),
    key: { workload: 'cg', snapshot: sha256, compiler: fortran, ccompiler: c, make: `make -B -C ${NPB_DIR} cg CLASS=${cls}`, class: cls },
    build: () => build(ctx, ['make', '-B', '-C', dir, 'cg', `CLASS=${cls}`]),
  });
  return { record: { source: ARTIFACT_SNAPSHOT.file, sha256, npb: `3.4.1 OpenMP (artifact vendored), CG class ${cls}`, compiler: fortran, prebuilt } };
}

export const cg: Workload = {
  name: 'cg',
  description: 'NAS Parallel Benchmarks 3.4.1 CG (conjugate gradient), OpenMP',
  paper,
  small,
  metrics: [
    { metric: 'runtime_s', source: "' Time in seconds =' (what the artifact parsed)", series: false },
    { metric: 'throughput_ops', source: "' Mop/s total =' × 1e6", series: false },
    { metric: 'verification_passed', source: "' Verification    = SUCCESSFUL' — none after ' NO VERIFICATION PERFORMED' (the artifact's redefined class C)", series: false },
  ],
  resolveParams: paramResolver('cg', schema, { paper, small }),
  install,
  phases,
  parse: parseCg,
};
