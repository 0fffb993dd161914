/**
 * BTree, as vendored in the artifact: benchmarks/btree (EXP04, Fig. 3/6/7: runtime) and
 * benchmarks/btree_throughput (Fig. 4: lookups per 45 s written to /tmp/btree_throughput.csv).
 * Single-threaded; fixed seed 0xcafebabe, so two instances build identical trees. The tree size,
 * lookup count and pre-lookup sleep are compile-time #defines, so install rebuilds with the
 * requested values. ASLR is turned off for the process only (setarch -R) instead of the
 * artifact's system-wide `randomize_va_space=0`.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { HarnessError } from '../../core/errors.ts';
import { num, paramResolver, positive, positiveInt, str } from '../common.ts';
import { ARTIFACT_SNAPSHOT, build, buildOnce, compilerVersion, setDefines, unpackCacheArchive } from '../cache.ts';
import type { InstallContext, InstallResult, Phase, RunContext, Workload, WorkloadParams } from '../types.ts';
import { BTREE_DEFAULT_INTERVAL_S, parseBtree } from './parse.ts';

export const BTREE_THROUGHPUT_CSV = '/tmp/btree_throughput.csv';
/** CONFIG_SHM_FILE_NAME in btree.c: '.ready' is created right before the lookups start. */
export const BTREE_READY_FILE_BASE = '/tmp/alloctest-bench';

const schema = z.object({
  footprintGiB: positive,
  /** Always 1: the benchmark is single-threaded. */
  threads: z.literal(1),
  /** 'runtime' = benchmarks/btree (Fig. 3/6/7); 'throughput' = benchmarks/btree_throughput (Fig. 4). */
  mode: z.enum(['runtime', 'throughput']),
  elements: positiveInt,
  lookupIterations: positiveInt,
  /** Seconds the benchmark sleeps between building the tree and the lookups (KSM merges meanwhile). */
  sleepS: z.number().int().min(0),
  /** Throughput mode: SIGALRM period of the per-interval counter. */
  intervalS: positiveInt,
  runTimeoutS: positiveInt,
});

const paper: WorkloadParams = {
  footprintGiB: 5.6,
  threads: 1,
  mode: 'runtime',
  elements: 150 << 18,
  lookupIterations: 500_000_000,
  sleepS: 1000,
  intervalS: BTREE_DEFAULT_INTERVAL_S,
  runTimeoutS: 6 * 3600,
};
// ≈ 55 MiB resident (tree + elements), ≈ 1.2 s of lookups natively (2 µs per iteration here).
const small: WorkloadParams = { ...paper, footprintGiB: 0.06, elements: 1 << 19, lookupIterations: 600_000, sleepS: 1, intervalS: 1, runTimeoutS: 900 };

/** Fig. 4 (config_chisel1_btree_throughput.sh): the throughput build with its own lookup count and a 10 s sleep. */
export const BTREE_FIG4: WorkloadParams = { mode: 'throughput', lookupIterations: 1_200_000_000, sleepS: 10 };

function sourceDir(mode: string): string {
  return mode === 'throughput' ? 'benchmarks/btree_throughput' : 'benchmarks/btree';
}

// Fixed scripts; paths arrive as positional parameters. The timed phase records its start (guest
// clock) so the collect phase can say when the lookups began: the benchmark's k × period counts
// from there, after the tree build and the sleep, not from the phase start.
const RECORD_START_AND_RUN = 'date +%s.%N > "$1" && shift && exec "$@"';
// btree.c creates <base>.ready right before its timed lookup loop and <base>.done right after it:
// the difference of their mtimes is the loop's duration, which the benchmark itself prints only in
// whole seconds ("got N matches in S seconds").
const REPORT_LOOKUPS =
  'ready=$(date -r "$1" +%s.%N) && fin=$(date -r "$2" +%s.%N) && ' +
  "awk -v a=\"$ready\" -v b=\"$fin\" 'BEGIN { printf \"lookups took: %.3f s\\n\", b - a }'";
const REPORT_THROUGHPUT =
  'start=$(cat "$1") && ready=$(date -r "$2" +%s.%N) && fin=$(date -r "$4" +%s.%N) && cat "$3" && ' +
  "awk -v a=\"$start\" -v b=\"$ready\" -v c=\"$fin\" " +
  "'BEGIN { printf \"lookups started after: %.3f s\\n\", b - a; printf \"lookups took: %.3f s\\n\", c - b }'";

function phases(p: WorkloadParams, ctx: RunContext): Phase[] {
  const mode = str(p, 'mode');
  const binary = posix.join(ctx.installDir, ARTIFACT_SNAPSHOT.root, sourceDir(mode), 'BTree');
  const startFile = posix.join(ctx.workDir, 'btree-run-start');
  const ready = `${BTREE_READY_FILE_BASE}.ready`;
  const done = `${BTREE_READY_FILE_BASE}.done`;
  // ~2 µs per iteration (two lookups) on this build machine and ~1.5 µs on the paper's Xeon; tree build ~0.5 µs per element.
  const expected = num(p, 'sleepS') + Math.ceil(num(p, 'lookupIterations') * 2e-6 + num(p, 'elements') * 0.5e-6);
  const benchmark = ['setarch', 'x86_64', '-R', binary];
  const stale = mode === 'runtime' ? [ready, done] : [startFile, BTREE_THROUGHPUT_CSV, ready, done];
  const prepare: Phase = {
    name: 'prepare',
    description: mode === 'runtime' ? 'remove stale readiness files' : 'remove a previous throughput log and readiness files',
    argv: ['sh', '-c', 'mkdir -p "$1" && shift && rm -f "$@"', 'sh', ctx.workDir, ...stale],
    expectedDurationS: 1,
    timeoutS: 30,
    timed: false,
    parsed: false,
  };
  const run: Phase = {
    name: 'run',
    description: `BTree (${mode}): ${num(p, 'elements')} keys, ${num(p, 'lookupIterations')} lookup iterations after ${num(p, 'sleepS')} s`,
    argv: mode === 'runtime' ? benchmark : ['sh', '-c', RECORD_START_AND_RUN, 'sh', startFile, ...benchmark],
    // btree_throughput is built with -fopenmp and `#pragma omp parallel for` over the lookups; the
    // artifact kept it to one thread only by pinning it to one CPU (numactl -C 0). Say so directly.
    env: { OMP_NUM_THREADS: '1' },
    cwd: posix.dirname(binary),
    expectedDurationS: expected,
    timeoutS: num(p, 'runTimeoutS'),
    timed: true,
    parsed: true,
  };
  const collect: Phase =
    mode === 'runtime'
      ? {
          name: 'collect',
          description: 'time the lookup loop from the mtimes of the readiness files',
          argv: ['sh', '-c', REPORT_LOOKUPS, 'sh', ready, done],
          expectedDurationS: 1,
          timeoutS: 30,
          timed: false,
          parsed: true,
        }
      : {
          name: 'collect',
          description: `read the per-interval lookup counts from ${BTREE_THROUGHPUT_CSV}, when the lookups started and how long they took`,
          argv: ['sh', '-c', REPORT_THROUGHPUT, 'sh', startFile, ready, BTREE_THROUGHPUT_CSV, done],
          expectedDurationS: 1,
          timeoutS: 30,
          timed: false,
          parsed: true,
        };
  return [prepare, run, collect];
}

async function install(ctx: InstallContext): Promise<InstallResult> {
  const { root, sha256 } = await unpackCacheArchive(ctx, ARTIFACT_SNAPSHOT);
  const mode = ctx.params.mode === 'throughput' ? 'throughput' : 'runtime';
  const dir = posix.join(root, sourceDir(mode));
  const source = posix.join(dir, 'btree.c');
  const p = ctx.params;
  const defines: Record<string, string> = {
    NELEMENTS: `(${num(p, 'elements')}UL)`,
    NLOOKUP: `${num(p, 'lookupIterations')}UL`,
    SLEEP_INTERVAL: String(num(p, 'sleepS')),
  };
  const compiler = await compilerVersion(ctx, 'gcc');
  const key: Record<string, string> = { workload: 'btree', mode, snapshot: sha256, compiler, make: `make -B -C ${sourceDir(mode)}`, ...defines };
  if (mode === 'throughput') key.alarm = String(num(p, 'intervalS'));
  const prebuilt = await buildOnce(ctx, {
    // One binary per mode directory: a different size rebuilds it.
    id: `btree-${mode}`,
    binary: posix.join(dir, 'BTree'),
    key,
    build: async () => {
      await setDefines(ctx, source, defines);
      if (mode === 'throughput') {
        const text = await ctx.exec.readFile(source);
        if (!/alarm\(\d+\)/.test(text)) throw new HarnessError('config', `${source}: no alarm(<seconds>) call to set the interval`);
        await ctx.exec.writeFile(source, text.replace(/alarm\(\d+\)/g, `alarm(${num(p, 'intervalS')})`));
      }
      // The vendored Makefile: gcc -std=gnu99 -Wall -O3 (btree_throughput adds -fopenmp).
      await build(ctx, ['make', '-B', '-C', dir]);
    },
  });
  return {
    record: {
      source: ARTIFACT_SNAPSHOT.file,
      sha256,
      btree: `bpt 1.16.1 (artifact ${sourceDir(mode)}), NELEMENTS=${num(p, 'elements')} NLOOKUP=${num(p, 'lookupIterations')} SLEEP_INTERVAL=${num(p, 'sleepS')}`,
      compiler,
      prebuilt,
    },
  };
}

export const btree: Workload = {
  name: 'btree',
  description: 'B+ tree (bpt 1.16.1) random lookups, single-threaded; runtime or per-interval throughput variant',
  paper,
  small,
  metrics: [
    { metric: 'runtime_s', source: "lookup loop from the readiness files' mtimes (ms), checked against 'got N matches in S seconds' (whole seconds; what the artifact parsed)", series: false },
    { metric: 'throughput_ops', source: "/tmp/btree_throughput.csv rows 'k,iterations' (throughput mode), iterations/s", series: true },
  ],
  resolveParams: paramResolver('btree', schema, { paper, small }),
  install,
  phases,
  parse: parseBtree,
};
