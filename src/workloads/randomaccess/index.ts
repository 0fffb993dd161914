/**
 * RandomAccess, as vendored in the artifact (benchmarks/randomAccess, EXP00): a process that
 * fills `pages` × 4 KiB with int[i] = i (identical across instances), then does `loops` rounds of
 * random int reads. The artifact drives it with signals: prepare-workload.sh starts it in the
 * background, `complete_script.py filldata` triggers the fill, `complete_script.py access` the
 * timed reads (timed with /usr/bin/time -p). The same sequence is kept here, with a bounded
 * wait for the pid file instead of a fixed sleep. Needs python3 and /usr/bin/time in the guest.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { num, paramResolver, positive, positiveInt } from '../common.ts';
import { ARTIFACT_SNAPSHOT, build, buildOnce, compilerVersion, unpackCacheArchive } from '../cache.ts';
import type { InstallContext, InstallResult, Phase, RunContext, Workload, WorkloadParams } from '../types.ts';
import { parseRandomAccess } from './parse.ts';

export const RANDOMACCESS_DIR = 'benchmarks/randomAccess';

const schema = z.object({
  /** Nominal (paper Table I: 2.8 GiB; 600000 pages are 2.29 GiB of data). */
  footprintGiB: positive,
  threads: z.literal(1),
  pages: positiveInt,
  loops: positiveInt,
  runTimeoutS: positiveInt,
});

const paper: WorkloadParams = { footprintGiB: 2.8, threads: 1, pages: 600_000, loops: 30, runTimeoutS: 4 * 3600 };
// 64 MiB, 4 × 2 M random reads: ≈ 1.2 s natively (the -O0 build does ≈ 7 M reads/s here).
const small: WorkloadParams = { footprintGiB: 0.0625, threads: 1, pages: 16_384, loops: 4, runTimeoutS: 600 };

// Fixed scripts; arguments arrive as positional parameters, never spliced into the script text.
const WAIT_FOR_PID_FILE = 'i=0; while [ ! -s pid_file ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i+1)); done; [ -s pid_file ]';
const KILL_IF_ALIVE = 'if [ -s pid_file ]; then kill "$(cat pid_file)" 2>/dev/null; fi; rm -f pid_file; true';

function phases(p: WorkloadParams, ctx: RunContext): Phase[] {
  const dir = posix.join(ctx.installDir, ARTIFACT_SNAPSHOT.root, RANDOMACCESS_DIR);
  const pages = num(p, 'pages');
  const loops = num(p, 'loops');
  // 8 reads per 4 KiB page per loop ≈ 25 ns each in DRAM; fill ≈ 1 µs per page.
  const readsS = Math.ceil((loops * pages * 1024) / 8 * 25e-9);
  const common = { cwd: dir, timed: false, parsed: false } as const;
  return [
    { ...common, name: 'prepare', description: 'remove a stale pid file and log', argv: ['rm', '-f', 'pid_file', 'process_log'], expectedDurationS: 1, timeoutS: 30 },
    {
      ...common,
      name: 'prepare',
      description: `start wl-randomreads-inputpages ${pages} ${loops} in the background (prepare-workload.sh)`,
      // The background benchmark inherits the script's stdio: detach it from ours, or the command never completes.
      argv: ['sh', '-c', 'sh prepare-workload.sh "$1" "$2" </dev/null >prepare-workload.log 2>&1', 'sh', String(pages), String(loops)],
      expectedDurationS: 1,
      timeoutS: 30,
    },
    { ...common, name: 'prepare', description: 'wait for the benchmark pid file', argv: ['sh', '-c', WAIT_FOR_PID_FILE], expectedDurationS: 1, timeoutS: 60 },
    { ...common, name: 'prepare', description: `fill ${pages} pages (complete_script.py filldata)`, argv: ['python3', 'complete_script.py', 'filldata'], expectedDurationS: Math.ceil(pages * 1e-6) + 1, timeoutS: 1800 },
    {
      ...common,
      name: 'run',
      description: `${loops} rounds of random reads (complete_script.py access)`,
      argv: ['/usr/bin/time', '-p', 'python3', 'complete_script.py', 'access'],
      expectedDurationS: readsS + 1,
      timeoutS: num(p, 'runTimeoutS'),
      timed: true,
      parsed: true,
    },
    {
      ...common,
      name: 'collect',
      description: "the benchmark's own log (prepare-workload.sh sends its stdout to process_log)",
      argv: ['cat', 'process_log'],
      expectedDurationS: 1,
      timeoutS: 30,
      parsed: true,
    },
    { ...common, name: 'cleanup', description: 'stop the benchmark process if it is still alive', argv: ['sh', '-c', KILL_IF_ALIVE], expectedDurationS: 1, timeoutS: 30, alwaysRun: true },
  ];
}

async function install(ctx: InstallContext): Promise<InstallResult> {
  const { root, sha256 } = await unpackCacheArchive(ctx, ARTIFACT_SNAPSHOT);
  const dir = posix.join(root, RANDOMACCESS_DIR);
  const compiler = await compilerVersion(ctx, 'g++');
  // The vendored Makefile: `g++ wl-randomreads-inputpages.c -o wl-randomreads-inputpages`, no
  // optimisation flags, as the paper ran it. Sizes are command-line arguments: nothing else to key on.
  const prebuilt = await buildOnce(ctx, {
    id: 'randomaccess',
    binary: posix.join(dir, 'wl-randomreads-inputpages'),
    key: { workload: 'randomaccess', snapshot: sha256, compiler, make: `make -B -C ${RANDOMACCESS_DIR} wl-randomreads-inputpages` },
    build: () => build(ctx, ['make', '-B', '-C', dir, 'wl-randomreads-inputpages']),
  });
  return { record: { source: ARTIFACT_SNAPSHOT.file, sha256, randomaccess: 'wl-randomreads-inputpages (artifact vendored)', compiler, prebuilt } };
}

export const randomaccess: Workload = {
  name: 'randomaccess',
  description: "The artifact's random-read microbenchmark over an identical, de-duplicable buffer (single-threaded)",
  paper,
  small,
  metrics: [{ metric: 'runtime_s', source: "/usr/bin/time -p 'real S' around complete_script.py access (what the artifact parsed)", series: false }],
  resolveParams: paramResolver('randomaccess', schema, { paper, small }),
  install,
  phases,
  parse: parseRandomAccess,
};
