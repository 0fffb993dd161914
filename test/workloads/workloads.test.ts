/** Registry, parameters, phase lists, the phase runner and install-from-cache, without the real benchmarks. */
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { ConfigError, HarnessError } from '../../src/core/errors.ts';
import { METRICS } from '../../src/core/metrics.ts';
import { ARTIFACT_SNAPSHOT, parseSha256Sums } from '../../src/workloads/cache.ts';
import { BTREE_FIG4, WORKLOAD_NAMES, XSBENCH_FIG8, getWorkload, runPhases, runWorkload, standaloneArgv, type Phase } from '../../src/workloads/index.ts';
import { describeWith } from '../support/components.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';

const ctx = { installDir: '/opt/nuksm', workDir: '/tmp/nuksm-run' };

describe('workload registry and definitions', () => {
  it('has the five paper workloads and rejects unknown names with the known list', () => {
    expect([...WORKLOAD_NAMES]).toEqual(['xsbench', 'mysql', 'btree', 'randomaccess', 'cg']);
    for (const name of WORKLOAD_NAMES) expect(getWorkload(name).name).toBe(name);
    expect(() => getWorkload('gups')).toThrow(/unknown workload 'gups' \(known: xsbench, mysql, btree, randomaccess, cg\)/);
  });

  it('carries the paper parameters of BRIEF §1 / artifact.md §2.5', () => {
    const p = (n: string) => getWorkload(n).resolveParams('paper');
    expect(p('xsbench')).toMatchObject({ footprintGiB: 11, threads: 4, gridpoints: 20_000, particles: 72_000_000 });
    expect(p('mysql')).toMatchObject({ footprintGiB: 20, threads: 1, clients: 100, tableSize: 40_000_000, pointSelects: 100_000, storageEngine: 'memory', randSeed: 1 });
    expect(p('btree')).toMatchObject({ footprintGiB: 5.6, threads: 1, elements: 39_321_600, lookupIterations: 500_000_000, sleepS: 1000 });
    expect(p('randomaccess')).toMatchObject({ footprintGiB: 2.8, threads: 1, pages: 600_000, loops: 30 });
    expect(p('cg')).toMatchObject({ footprintGiB: 3.5, threads: 4, class: 'C' });
  });

  it('every workload has a smaller variant and declares only catalogued metrics', () => {
    for (const name of WORKLOAD_NAMES) {
      const w = getWorkload(name);
      expect(w.resolveParams('small').footprintGiB).toBeLessThan(w.resolveParams('paper').footprintGiB as number);
      for (const m of w.metrics) expect(METRICS[m.metric]).toBeDefined();
    }
  });

  it('rejects misspelt or ill-typed parameters as ConfigError naming the key', () => {
    const xs = getWorkload('xsbench');
    expect(() => xs.resolveParams('paper', { gridpoint: 5 }, 'spec.yaml')).toThrow(ConfigError);
    expect(() => xs.resolveParams('paper', { gridpoint: 5 }, 'spec.yaml')).toThrow(/spec\.yaml: params\.gridpoint/);
    expect(() => xs.resolveParams('paper', { threads: 0 })).toThrow(/params\.threads/);
    expect(() => getWorkload('mysql').resolveParams('small', { database: 'x; DROP' })).toThrow(/params\.database/);
    expect(() => getWorkload('btree').resolveParams('paper', { threads: 4 })).toThrow(/params\.threads/);
  });

  it('builds the artifact invocations as argument arrays with exactly one timed phase', () => {
    const xsPhases = getWorkload('xsbench').phases(getWorkload('xsbench').resolveParams('paper'), ctx);
    expect(xsPhases).toHaveLength(1);
    expect(xsPhases[0]!.argv).toEqual([
      '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/XSBench/src/XSBench', '-t', '4', '-s', 'large', '-g', '20000', '-p', '72000000', '-l', '34',
    ]);
    const cgPhases = getWorkload('cg').phases(getWorkload('cg').resolveParams('paper'), ctx);
    expect(cgPhases[0]!.argv).toEqual(['/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP/bin/cg.C.x']);
    expect(cgPhases[0]!.env).toEqual({ OMP_NUM_THREADS: '4' });
    const bt = getWorkload('btree');
    expect(bt.phases(bt.resolveParams('paper'), ctx).map((p) => p.argv)).toEqual([
      ['setarch', 'x86_64', '-R', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/btree/BTree'],
    ]);
    expect(bt.phases(bt.resolveParams('paper'), ctx)[0]!.env).toEqual({ OMP_NUM_THREADS: '1' });
    const fig4 = bt.phases(bt.resolveParams('paper', { mode: 'throughput' }), ctx);
    expect(fig4.map((p) => [p.name, p.parsed])).toEqual([['prepare', false], ['run', true], ['collect', true]]);
    const mysqlRun = getWorkload('mysql').phases(getWorkload('mysql').resolveParams('paper'), ctx).find((p) => p.timed)!;
    expect(mysqlRun.argv).toEqual(expect.arrayContaining(['--threads=100', '--point-selects=100000', '--time=10', '--mysql-storage-engine=memory', '--rand-seed=1', '--table-size=40000000', 'run']));
    for (const name of WORKLOAD_NAMES) {
      const w = getWorkload(name);
      for (const variant of ['paper', 'small'] as const) {
        const phases = w.phases(w.resolveParams(variant), ctx);
        expect(phases.filter((p) => p.timed)).toHaveLength(1);
        for (const p of phases) expect(p.timeoutS).toBeGreaterThan(0);
      }
    }
  });

  it('the managed MySQL server stays on loopback with its own socket and datadir under workDir', () => {
    const phases = getWorkload('mysql').phases(getWorkload('mysql').resolveParams('small', { port: 40123 }), ctx);
    const start = phases.find((p) => p.description.startsWith('start mariadbd'))!;
    expect(start.argv).toEqual(expect.arrayContaining(['--bind-address=127.0.0.1', '--port=40123', '--socket=/tmp/nuksm-run/mariadb.sock', '--datadir=/tmp/nuksm-run/mariadb-data']));
    expect(phases.at(-1)!).toMatchObject({ name: 'cleanup', alwaysRun: true });
    expect(phases.at(-1)!.argv.at(-1)).toBe('shutdown');
  });
});

describeWith(['gcc'], 'phase runner and install from the offline cache (local executor, real commands)', () => {
  const exec = new LocalExecutor();
  let dir = '';
  const phase = (over: Partial<Phase>): Phase => ({ name: 'run', description: 'x', argv: ['true'], expectedDurationS: 1, timeoutS: 10, timed: false, parsed: false, ...over });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuksm-workloads-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('concatenates the parsed phases’ output and times the timed phase', async () => {
    const result = await runPhases(exec, [
      phase({ name: 'prepare', argv: ['sh', '-c', 'echo not-parsed'] }),
      phase({ argv: ['sh', '-c', 'echo out; echo err >&2; sleep 0.3'], timed: true, parsed: true }),
      phase({ name: 'collect', argv: ['echo', 'collected'], parsed: true }),
    ]);
    expect(result.parsedOutput).toBe('out\nerr\n\ncollected\n');
    expect(result.timedPhaseS).toBeGreaterThanOrEqual(0.25);
    expect(result.outcomes.map((o) => o.exitCode)).toEqual([0, 0, 0]);
  });

  it('a failing phase stops the sequence as benchmark-error, but alwaysRun cleanup still runs', async () => {
    const marker = join(dir, 'cleaned');
    const err = await runPhases(exec, [
      phase({ argv: ['sh', '-c', 'echo boom >&2; exit 3'], timed: true }),
      phase({ name: 'collect', argv: ['touch', join(dir, 'must-not-exist')] }),
      phase({ name: 'cleanup', argv: ['touch', marker], alwaysRun: true }),
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('benchmark-error');
    expect((err as HarnessError).message).toMatch(/exited with 3: boom/);
    await expect(readFile(marker, 'utf8')).resolves.toBe('');
    await expect(readFile(join(dir, 'must-not-exist'), 'utf8')).rejects.toThrow();
  });

  it('a phase over its timeout fails with class timeout', async () => {
    const err = await runPhases(exec, [phase({ argv: ['sleep', '5'], timeoutS: 0.3, timed: true })]).catch((e: unknown) => e);
    expect((err as HarnessError).failureClass).toBe('timeout');
  });

  async function makeSnapshot(files: Record<string, string>): Promise<{ cacheDir: string; sha256: string }> {
    const src = join(dir, `src-${Math.random().toString(36).slice(2)}`);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(src, ARTIFACT_SNAPSHOT.root, path, '..'), { recursive: true });
      await writeFile(join(src, ARTIFACT_SNAPSHOT.root, path), content);
    }
    const cacheDir = join(src, 'cache');
    await mkdir(cacheDir);
    await execa('tar', ['-cf', join(cacheDir, ARTIFACT_SNAPSHOT.file), '-C', src, ARTIFACT_SNAPSHOT.root]);
    const sha256 = createHash('sha256').update(await readFile(join(cacheDir, ARTIFACT_SNAPSHOT.file))).digest('hex');
    return { cacheDir, sha256 };
  }

  // A stand-in for the artifact snapshot (the real one is not reachable from this machine): it
  // exercises the hash check, unpacking, #define rewriting and the make invocation, not BTree itself.
  const standInBtree = {
    'benchmarks/btree/btree.c':
      '#include <stdio.h>\n#ifdef _OPENMP\n#define NELEMENTS   (1500UL << 20)\n#else\n#define NELEMENTS (150UL << 18)\n#define NLOOKUP 500000000\n#endif\n#define SLEEP_INTERVAL 1000\n' +
      'int main(void) { printf("got 0 matches in %lu seconds\\n", (unsigned long)(NELEMENTS + NLOOKUP + SLEEP_INTERVAL)); return 0; }\n',
    'benchmarks/btree/Makefile': 'BTree: btree.c\n\tgcc -O2 -o BTree btree.c\n',
  };

  it('install refuses a cache file without any sha256 pin, and one whose hash does not match', async () => {
    const { cacheDir } = await makeSnapshot(standInBtree);
    const btree = getWorkload('btree');
    const params = btree.resolveParams('small');
    const installDir = join(dir, 'install-refused');
    await expect(btree.install({ exec, cacheDir, installDir, params })).rejects.toThrow(/no sha256 pinned for nuKSM-pact21-artifact-5403aa1\.tar/);
    await expect(btree.install({ exec, cacheDir, installDir, params, pins: { [ARTIFACT_SNAPSHOT.file]: '0'.repeat(64) } })).rejects.toThrow(/does not match the pinned 0{64}/);
  });

  it('install verifies the pin from SHA256SUMS, unpacks, rewrites the size #defines and builds', async () => {
    const { cacheDir, sha256 } = await makeSnapshot(standInBtree);
    await writeFile(join(cacheDir, 'SHA256SUMS'), `${sha256}  ${ARTIFACT_SNAPSHOT.file}\n`);
    const btree = getWorkload('btree');
    const params = btree.resolveParams('small', { elements: 1000, lookupIterations: 20, sleepS: 3 });
    const installDir = join(dir, 'install-ok');
    const result = await btree.install({ exec, cacheDir, installDir, params });
    expect(result.record.sha256).toBe(sha256);
    const source = await readFile(join(installDir, ARTIFACT_SNAPSHOT.root, 'benchmarks/btree/btree.c'), 'utf8');
    expect(source.match(/^#define NELEMENTS.*$/gm)).toEqual(['#define NELEMENTS   (1000UL)', '#define NELEMENTS (1000UL)']);
    // The built binary carries the rewritten constants: 1000 + 20 + 3.
    const phases = btree.phases(params, { installDir, workDir: dir });
    const run = await runPhases(exec, phases);
    expect(btree.parse(run.parsedOutput).map((s) => s.value)).toEqual([1023]);
  });

  it('throughput mode (Fig. 4): the alarm period is rewritten and the series is placed after the tree build and sleep', async () => {
    // Stand-in with btree_throughput's protocol (CSV header + "k,count" per SIGALRM, ready file
    // before the lookups, the same #defines and alarm(45)); each "lookup" sleeps 1 ms.
    const standIn =
      '#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\n#define NELEMENTS (150UL << 18)\n#define NLOOKUP 1200000000\n#define SLEEP_INTERVAL 10\n' +
      'FILE *fp; unsigned long processed = 0, k = 0;\n' +
      'void tick(int s) { (void)s; fprintf(fp, "%lu,%lu\\n", ++k, processed); processed = 0; fflush(fp); alarm(45); }\n' +
      'int main(void) { fp = fopen("/tmp/btree_throughput.csv", "w+"); fprintf(fp, "Time, Entries\\n"); signal(SIGALRM, tick);\n' +
      '  printf("Sleeping %d seconds\\n", SLEEP_INTERVAL); fflush(stdout); sleep(SLEEP_INTERVAL); fclose(fopen("/tmp/alloctest-bench.ready", "w"));\n' +
      '  alarm(45); for (unsigned long i = 0; i < NLOOKUP; i++) { usleep(1000); processed++; }\n' +
      '  printf("got 0 matches in %lu seconds\\n", (unsigned long)NELEMENTS); return 0; }\n';
    const { cacheDir, sha256 } = await makeSnapshot({
      'benchmarks/btree_throughput/btree.c': standIn,
      'benchmarks/btree_throughput/Makefile': 'BTree: btree.c\n\tgcc -O2 -o BTree btree.c\n',
    });
    const btree = getWorkload('btree');
    const params = btree.resolveParams('small', { mode: 'throughput', elements: 3, lookupIterations: 2600, sleepS: 1, intervalS: 1 });
    const installDir = join(dir, 'install-fig4');
    await btree.install({ exec, cacheDir, installDir, params, pins: { [ARTIFACT_SNAPSHOT.file]: sha256 } });
    const stepStartedAtMs = Date.now();
    const { samples, run } = await runWorkload(exec, btree, params, { installDir, workDir: join(dir, 'work-fig4') }, { instance: 'vm0', stepStartedAtMs });
    expect(run.parsedOutput).toMatch(/^lookups started after: \d+\.\d{3} s$/m);
    expect(samples.filter((s) => s.t === null).map((s) => [s.metric, s.value])).toEqual([['runtime_s', 3]]);
    const points = samples.filter((s) => s.metric === 'throughput_ops' && s.t !== null);
    expect(points.length).toBeGreaterThanOrEqual(2);
    // First row 1 s after the lookups began, which is ≥ the 1 s sleep after the phase started.
    const lookupStart = Number(/lookups started after: ([\d.]+)/.exec(run.parsedOutput)![1]);
    // (file mtimes come from the kernel's coarse clock: a few ms early at most)
    expect(lookupStart).toBeGreaterThanOrEqual(0.95);
    expect(lookupStart).toBeLessThan(3);
    const offset = (run.timedPhaseStartedAtMs! - stepStartedAtMs) / 1000;
    expect(points.map((s) => s.t! - offset - lookupStart)).toEqual(points.map((_, i) => expect.closeTo(i + 1, 6)));
    // 1 ms per iteration: at most 1000 iterations per second, and clearly more than none.
    for (const s of points) expect(s.value).toBeGreaterThan(200);
    for (const s of points) expect(s.value).toBeLessThanOrEqual(1000);
  });

  it('SHA256SUMS parsing accepts text and binary markers', () => {
    expect(parseSha256Sums(`${'a'.repeat(64)}  dir/x.tar\n${'B'.repeat(64)} *y.tar\ngarbage\n`)).toEqual({ 'x.tar': 'a'.repeat(64), 'y.tar': 'b'.repeat(64) });
  });
});

describe('figure-specific parameter sets and detached argv', () => {
  it('Fig. 4 BTree and Fig. 8 XSBench overrides resolve against the paper variant', () => {
    expect(getWorkload('btree').resolveParams('paper', BTREE_FIG4)).toMatchObject({ mode: 'throughput', lookupIterations: 1_200_000_000, sleepS: 10, intervalS: 45 });
    expect(getWorkload('xsbench').resolveParams('paper', XSBENCH_FIG8)).toMatchObject({ gridpoints: 80_000, particles: 21_600_000, threads: 4 });
  });

  it('standaloneArgv folds cwd and env into an env(1) prefix', () => {
    const cg = getWorkload('cg');
    const [run] = cg.phases(cg.resolveParams('small'), ctx);
    expect(standaloneArgv(run!)).toEqual(['env', '-C', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP', 'OMP_NUM_THREADS=2', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP/bin/cg.A.x']);
    expect(standaloneArgv({ name: 'run', description: '', argv: ['true'], expectedDurationS: 1, timeoutS: 1, timed: true, parsed: false })).toEqual(['true']);
  });
});

describeWith(['gcc'], 'runWorkload (phases + parse in one call)', () => {
  it('places the benchmark interval times on the step clock', async () => {
    const mysql = getWorkload('mysql');
    const captured = join(import.meta.dirname, '../fixtures/workloads/sysbench-1.0.20-oltp_read_only-interval.captured.txt');
    // The real parser over a real captured output, replayed by a one-phase workload.
    const replay = { ...mysql, phases: (): Phase[] => [{ name: 'run', description: 'replay', argv: ['cat', captured], expectedDurationS: 1, timeoutS: 10, timed: true, parsed: true }] };
    const stepStartedAtMs = Date.now() - 30_000;
    const { samples, run } = await runWorkload(new LocalExecutor(), replay, mysql.resolveParams('small'), ctx, { instance: 'vm0', stepStartedAtMs });
    const first = samples.find((s) => s.metric === 'throughput_ops' && s.t !== null)!;
    const offset = (run.timedPhaseStartedAtMs! - stepStartedAtMs) / 1000;
    expect(offset).toBeGreaterThanOrEqual(30);
    expect(first.t).toBeCloseTo(1 + offset, 6);
    expect(first.instance).toBe('vm0');
    const { samples: unshifted } = await runWorkload(new LocalExecutor(), replay, mysql.resolveParams('small'), ctx, { instance: 'vm0' });
    expect(unshifted.find((s) => s.metric === 'throughput_ops' && s.t !== null)!.t).toBe(1);
  });
});

describe('mysql setup SQL', () => {
  it('escapes the password as a SQL literal and refuses a host that is not a plain name or address', () => {
    const mysql = getWorkload('mysql');
    const phases = mysql.phases(mysql.resolveParams('small', { password: "a'b\\c" }), ctx);
    const sql = phases.find((p) => p.description.startsWith('create database'))!.argv.at(-1)!;
    expect(sql).toContain("IDENTIFIED BY 'a''b\\\\c'");
    expect(() => mysql.resolveParams('small', { host: "x' OR 1" })).toThrow(/params\.host/);
  });
});
