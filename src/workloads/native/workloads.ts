/**
 * The native stand-ins as workloads of their own: `xsbench-native`, `randomaccess-native`,
 * `btree-native`, `cg-native`. Each is nuksm-native (c/nuksm-native.c) running one kernel with
 * the access pattern of the paper benchmark it is named after (binary search + interpolation over
 * grids; random 8-byte reads; lookups in an implicit sorted tree; sparse matrix-vector products)
 * over content that depends only on the seed, so identical instances are identical to KSM. They
 * are NOT the paper's benchmarks, and their rows say so by name.
 *
 * One phase, timed and resident (Phase.resident): the program binds itself to its node, maps and
 * registers its footprint with KSM itself (madvise or prctl), fills it, prints the ready line,
 * waits for the go file (after the merge wait), runs, prints the result line, and keeps its memory
 * until the release file exists.
 *
 * Parser: lines read from stdout (every other line is ignored):
 *   NUKSM_READY workload=<kernel> pid=<pid>            ready (memory filled); the PID holds the memory
 *   NUKSM_RESULT workload=<kernel> runtime_s=<s> checksum=<16 hex> footprint_mib=<n> node=<n> pid=<p>
 *                                                      → runtime_s (once per run)
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { HarnessError } from '../../core/errors.ts';
import { makeSample, num, paramResolver, positive, positiveInt, str } from '../common.ts';
import type { InstallContext, InstallResult, Phase, RunContext, Workload, WorkloadName, WorkloadParams } from '../types.ts';
import { NATIVE_BINARY, NATIVE_SOURCE_FILE, nativeCompileArgv, nativeSource, nativeVersion } from './build.ts';
import { nativeArgv, parseNativeResult, type NativeWorkload } from './parse.ts';

const schema = z.object({
  footprintGiB: positive,
  /** Single-threaded: informational, so specs written for the real benchmark's keys still resolve. */
  threads: positiveInt,
  iterations: positiveInt,
  seed: z.number().int().min(0),
  merge: z.enum(['madvise', 'prctl']),
  /** Upper bound for the timed phase, and how long the program keeps its memory at most. */
  runTimeoutS: positiveInt,
});

const small: WorkloadParams = { footprintGiB: 0.0625, threads: 1, iterations: 4, seed: 42, merge: 'madvise', runTimeoutS: 900 };
// A stand-in has no paper inputs to be faithful to: both variants are the small one.
const paper: WorkloadParams = small;

/**
 * Installs nuksm-native into installDir: a prebuilt binary from the cache directory when its
 * `--version` matches this source (the emulated image carries one), else compiled on the target
 * when gcc is there; otherwise a config error naming both.
 */
async function install(ctx: InstallContext): Promise<InstallResult> {
  const want = nativeVersion();
  const bin = posix.join(ctx.installDir, NATIVE_BINARY);
  const versionOf = async (path: string) => (await ctx.exec.run([path, '--version'], { allowFailure: true, timeoutMs: 30_000 })).stdout.trim();
  if ((await versionOf(bin)) === `nuksm-native ${want}`) return { record: { nuksmNative: want, prebuilt: 'yes' } };
  await ctx.exec.run(['mkdir', '-p', ctx.installDir], { timeoutMs: 30_000 });
  const cached = posix.join(ctx.cacheDir, NATIVE_BINARY);
  if ((await versionOf(cached)) === `nuksm-native ${want}`) {
    await ctx.exec.run(['cp', cached, bin], { timeoutMs: 60_000 });
    return { record: { nuksmNative: want, prebuilt: 'yes', from: cached } };
  }
  const gcc = await ctx.exec.run(['gcc', '--version'], { allowFailure: true, timeoutMs: 30_000 });
  if (gcc.exitCode !== 0) {
    throw new HarnessError('config', `${ctx.exec.target}: no nuksm-native ${want} in ${ctx.installDir} or ${ctx.cacheDir}, and no gcc to build it`);
  }
  const src = posix.join(ctx.installDir, NATIVE_SOURCE_FILE);
  await ctx.exec.writeFile(src, nativeSource());
  const r = await ctx.exec.run(nativeCompileArgv(src, bin), { allowFailure: true, timeoutMs: ctx.timeoutMs ?? 300_000 });
  if (r.exitCode !== 0) throw new HarnessError('config', `${ctx.exec.target}: building nuksm-native failed: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return { record: { nuksmNative: want, prebuilt: 'no', compiler: gcc.stdout.split('\n')[0]!.trim() } };
}

function nativeWorkload(name: WorkloadName, kernel: NativeWorkload, pattern: string): Workload {
  const phases = (p: WorkloadParams, ctx: RunContext): Phase[] => {
    const goFile = posix.join(ctx.workDir, 'go');
    const releaseFile = posix.join(ctx.workDir, 'release');
    const footprintMiB = Math.max(1, Math.round(num(p, 'footprintGiB') * 1024));
    return [
      {
        name: 'run',
        description: `nuksm-native ${kernel} (${pattern}) over ${footprintMiB} MiB, ${num(p, 'iterations')} iterations`,
        // The instance's node binding is applied by the launcher (numactl); the program needs none of its own.
        argv: nativeArgv(posix.join(ctx.installDir, NATIVE_BINARY), {
          workload: kernel,
          merge: str(p, 'merge') as 'madvise' | 'prctl',
          footprintMiB,
          iterations: num(p, 'iterations'),
          seed: num(p, 'seed'),
          goFile,
          doneFile: releaseFile,
          lingerS: num(p, 'runTimeoutS'),
        }),
        expectedDurationS: Math.ceil(footprintMiB / 64) * num(p, 'iterations') + 5,
        timeoutS: num(p, 'runTimeoutS'),
        timed: true,
        parsed: true,
        registersItself: true,
        resident: { readyPattern: 'NUKSM_READY ', goFile, resultPattern: 'NUKSM_RESULT ', releaseFile },
      },
    ];
  };
  return {
    name,
    description: `stand-in for ${kernel} (${pattern}): nuksm-native, not the paper's benchmark`,
    paper,
    small,
    metrics: [{ metric: 'runtime_s', source: "'NUKSM_RESULT … runtime_s=<s>' (the kernel loop only)", series: false }],
    resolveParams: paramResolver(name, schema, { paper, small }),
    install,
    phases,
    parse(output, opts = {}) {
      let res;
      try {
        res = parseNativeResult(output);
      } catch (err) {
        throw new HarnessError('parse-error', `${name}: ${(err as Error).message}`, { outputTail: output.split('\n').slice(-10).join('\n') });
      }
      if (res.workload !== kernel) throw new HarnessError('parse-error', `${name}: the result line is for '${res.workload}'`);
      return [makeSample(name, 'runtime_s', res.runtimeS, opts)];
    },
  };
}

export const xsbenchNative = nativeWorkload('xsbench-native', 'xsbench', 'binary search + interpolation over grids');
export const randomaccessNative = nativeWorkload('randomaccess-native', 'randomaccess', 'random 8-byte reads');
export const btreeNative = nativeWorkload('btree-native', 'btree', 'lookups in an implicit sorted tree');
export const cgNative = nativeWorkload('cg-native', 'cg', 'sparse matrix-vector products');
