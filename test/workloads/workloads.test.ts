/**
 * Registry, parameters, phase lists, the phase runner, the offline cache (pins, unpacking, build
 * markers) and install() of the real artifact snapshot (test/support/artifact.ts).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { ConfigError, HarnessError } from '../../src/core/errors.ts';
import { METRICS } from '../../src/core/metrics.ts';
import { ARTIFACT_SNAPSHOT, buildMarkerPath, buildOnce, parseSha256Sums, unpackCacheArchive, type CacheSource } from '../../src/workloads/cache.ts';
import { BTREE_FIG4, XSBENCH_FIG8, getWorkload, runPhases, runWorkload, standaloneArgv, type Phase } from '../../src/workloads/index.ts';
import { describeWith } from '../support/components.ts';
import { artifactDir } from '../support/artifact.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';

const ctx = { installDir: '/opt/nuksm', workDir: '/tmp/nuksm-run' };
/** The paper's five (the registry may hold more, e.g. native stand-ins). */
const PAPER = ['xsbench', 'mysql', 'btree', 'randomaccess', 'cg'] as const;

describe('workload registry and definitions', () => {
  it('has the five paper workloads and rejects unknown names with the known list', () => {
    for (const name of PAPER) expect(getWorkload(name).name).toBe(name);
    expect(() => getWorkload('gups')).toThrow(/unknown workload 'gups' \(known: xsbench, mysql, btree, randomaccess, cg\b/);
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
    for (const name of PAPER) {
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
    // Wrapped so XSBench v19's exit status 1 after its INAVALID checksum is recorded, not a failure.
    expect(xsPhases[0]!.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(xsPhases[0]!.argv.slice(3)).toEqual([
      'sh', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/XSBench/src/XSBench', '-t', '4', '-s', 'large', '-g', '20000', '-p', '72000000', '-l', '34',
    ]);
    const cgPhases = getWorkload('cg').phases(getWorkload('cg').resolveParams('paper'), ctx);
    expect(cgPhases[0]!.argv).toEqual(['/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP/bin/cg.C.x']);
    expect(cgPhases[0]!.env).toEqual({ OMP_NUM_THREADS: '4' });
    const bt = getWorkload('btree');
    const btPhases = bt.phases(bt.resolveParams('paper'), ctx);
    expect(btPhases.map((p) => [p.name, p.parsed])).toEqual([['prepare', false], ['run', true], ['collect', true]]);
    expect(btPhases[1]!.argv).toEqual(['setarch', 'x86_64', '-R', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/btree/BTree']);
    expect(btPhases[1]!.env).toEqual({ OMP_NUM_THREADS: '1' });
    const fig4 = bt.phases(bt.resolveParams('paper', { mode: 'throughput' }), ctx);
    expect(fig4.map((p) => [p.name, p.parsed])).toEqual([['prepare', false], ['run', true], ['collect', true]]);
    const mysqlRun = getWorkload('mysql').phases(getWorkload('mysql').resolveParams('paper'), ctx).find((p) => p.timed)!;
    expect(mysqlRun.argv).toEqual(expect.arrayContaining(['--threads=100', '--point-selects=100000', '--time=10', '--mysql-storage-engine=memory', '--rand-seed=1', '--table-size=40000000', 'run']));
    for (const name of PAPER) {
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

  async function makeArchive(files: Record<string, string>): Promise<{ cacheDir: string; source: CacheSource }> {
    const src = join(dir, `src-${Math.random().toString(36).slice(2)}`);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(src, 'stand-in', path, '..'), { recursive: true });
      await writeFile(join(src, 'stand-in', path), content);
    }
    const cacheDir = join(src, 'cache');
    await mkdir(cacheDir);
    await execa('tar', ['-cf', join(cacheDir, 'stand-in.tar'), '-C', src, 'stand-in']);
    const sha256 = createHash('sha256').update(await readFile(join(cacheDir, 'stand-in.tar'))).digest('hex');
    return { cacheDir, source: { file: 'stand-in.tar', description: 'a test archive', howToMake: 'tar -cf stand-in.tar stand-in', root: 'stand-in', sha256 } };
  }

  it('the artifact snapshot is pinned in the project; a file that does not match it, or a disagreeing SHA256SUMS, is refused', async () => {
    expect(ARTIFACT_SNAPSHOT.sha256).toMatch(/^[0-9a-f]{64}$/);
    const { cacheDir, source } = await makeArchive({ 'benchmarks/btree/btree.c': 'int main(void) { return 0; }\n' });
    await execa('cp', [join(cacheDir, source.file), join(cacheDir, ARTIFACT_SNAPSHOT.file)]);
    const btree = getWorkload('btree');
    const params = btree.resolveParams('small');
    const installDir = join(dir, 'install-refused');
    await expect(btree.install({ exec, cacheDir, installDir, params })).rejects.toThrow(new RegExp(`sha256 ${source.sha256} does not match the pinned ${ARTIFACT_SNAPSHOT.sha256}`));
    await writeFile(join(cacheDir, 'SHA256SUMS'), `${source.sha256}  ${ARTIFACT_SNAPSHOT.file}\n`);
    await expect(btree.install({ exec, cacheDir, installDir, params })).rejects.toThrow(/disagrees with project pin/);
    await expect(btree.install({ exec, cacheDir, installDir, params: params, pins: { [ARTIFACT_SNAPSHOT.file]: source.sha256! } })).rejects.toThrow(/disagrees with project pin/);
  });

  it('a cache file without any pin is refused, naming how to make it', async () => {
    const { cacheDir, source } = await makeArchive({ 'a.txt': 'a\n' });
    await expect(unpackCacheArchive({ exec, cacheDir, installDir: join(dir, 'no-pin'), params: {} }, { ...source, sha256: null })).rejects.toThrow(/no sha256 pinned for stand-in\.tar \(a test archive\); make it with: tar -cf/);
  });

  it('unpacks once per digest; re-unpacking (a new digest) drops the build markers of the old tree', async () => {
    const first = await makeArchive({ 'a.txt': 'one\n' });
    const installDir = join(dir, 'unpack');
    const ictx = { exec, cacheDir: first.cacheDir, installDir, params: {} };
    const { root } = await unpackCacheArchive(ictx, first.source);
    await writeFile(join(root, 'a.txt'), 'edited\n');
    await writeFile(buildMarkerPath(installDir, 'x'), '{}\n');
    await unpackCacheArchive(ictx, first.source); // same digest: left alone
    await expect(readFile(join(root, 'a.txt'), 'utf8')).resolves.toBe('edited\n');
    await expect(readFile(buildMarkerPath(installDir, 'x'), 'utf8')).resolves.toBe('{}\n');
    const second = await makeArchive({ 'a.txt': 'two\n' });
    await unpackCacheArchive({ ...ictx, cacheDir: second.cacheDir }, second.source);
    await expect(readFile(join(root, 'a.txt'), 'utf8')).resolves.toBe('two\n');
    await expect(readFile(buildMarkerPath(installDir, 'x'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('buildOnce: builds, then keeps the build while key and binary stay; a new key, a missing binary or a failed build rebuilds', async () => {
    const installDir = join(dir, 'build-once');
    await mkdir(installDir, { recursive: true });
    const binary = join(installDir, 'bin');
    let builds = 0;
    const opts = (key: Record<string, string>, fail = false) => ({
      id: 'demo',
      binary,
      key,
      build: async () => {
        builds++;
        if (fail) throw new Error('compiler exploded');
        await writeFile(binary, '#!/bin/sh\n', { mode: 0o755 });
      },
    });
    const ictx = { exec, cacheDir: dir, installDir, params: {} };
    expect(await buildOnce(ictx, opts({ snapshot: 'a', compiler: 'gcc 12' }))).toBe('no');
    expect(await buildOnce(ictx, opts({ compiler: 'gcc 12', snapshot: 'a' }))).toBe('yes'); // key order does not matter
    expect(builds).toBe(1);
    expect(JSON.parse(await readFile(buildMarkerPath(installDir, 'demo'), 'utf8'))).toEqual({ compiler: 'gcc 12', snapshot: 'a' });
    expect(await buildOnce(ictx, opts({ snapshot: 'a', compiler: 'gcc 13' }))).toBe('no');
    await rm(binary);
    expect(await buildOnce(ictx, opts({ snapshot: 'a', compiler: 'gcc 13' }))).toBe('no');
    expect(builds).toBe(3);
    await expect(buildOnce(ictx, opts({ snapshot: 'b', compiler: 'gcc 13' }, true))).rejects.toThrow(/compiler exploded/);
    // The failed build left no marker: the next call builds again even though the old binary is there.
    await expect(readFile(buildMarkerPath(installDir, 'demo'), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(await buildOnce(ictx, opts({ snapshot: 'a', compiler: 'gcc 13' }))).toBe('no');
    expect(builds).toBe(5);
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
    expect(standaloneArgv(run!)).toEqual(['env', '-C', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP', 'OMP_NUM_THREADS=2', '/opt/nuksm/nuKSM-pact21-artifact/benchmarks/NPB3.4-OMP/bin/cg.W.x']);
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
    const phases = mysql.phases(mysql.resolveParams('small', { password: "a'b\\c-long" }), ctx);
    // The statement goes to the client on stdin from a secret file, not in argv.
    const sql = phases[0]!.secretFiles!.find((f) => f.path.endsWith('mariadb-setup.sql'))!.content;
    expect(sql).toContain("IDENTIFIED BY 'a''b\\\\c-long'");
    expect(() => mysql.resolveParams('small', { host: "x' OR 1" })).toThrow(/params\.host/);
  });
});

describeWith(['gcc', 'artifact'], 'BTree from the real artifact snapshot (compile-time sizes, build markers, Fig. 4 series)', () => {
  const exec = new LocalExecutor();
  const btree = getWorkload('btree');
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nuksm-btree-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('install rewrites the #defines, builds once per size, and the binary runs with them', async () => {
    const installDir = join(dir, 'install');
    const params = btree.resolveParams('small', { elements: 4096, lookupIterations: 1000, sleepS: 0 });
    const ictx = { exec, cacheDir: artifactDir(), installDir, params };
    const first = await btree.install(ictx);
    expect(first.record).toMatchObject({ sha256: ARTIFACT_SNAPSHOT.sha256, prebuilt: 'no' });
    expect(first.record.compiler).toMatch(/^gcc /);
    const source = await readFile(join(installDir, ARTIFACT_SNAPSHOT.root, 'benchmarks/btree/btree.c'), 'utf8');
    // Both branches of btree.c's #ifdef _OPENMP carry the size.
    expect(source.match(/^#define NELEMENTS.*$/gm)).toEqual(['#define NELEMENTS   (4096UL)', '#define NELEMENTS (4096UL)']);
    expect(source.match(/^#define SLEEP_INTERVAL.*$/gm)).toEqual(['#define SLEEP_INTERVAL 0']);
    const marker = JSON.parse(await readFile(buildMarkerPath(installDir, 'btree-runtime'), 'utf8'));
    expect(marker).toMatchObject({ workload: 'btree', mode: 'runtime', snapshot: ARTIFACT_SNAPSHOT.sha256, NELEMENTS: '(4096UL)', NLOOKUP: '1000UL', SLEEP_INTERVAL: '0' });

    expect((await btree.install(ictx)).record.prebuilt).toBe('yes');
    const run = await runPhases(exec, btree.phases(params, { installDir, workDir: join(dir, 'work') }));
    expect(run.parsedOutput).toMatch(/^BTree Elements: 4096$/m);
    expect(run.parsedOutput).toMatch(/^Lookups : 1000$/m);
    expect(btree.parse(run.parsedOutput, { params }).map((s) => s.metric)).toEqual(['runtime_s']);

    const bigger = { ...params, elements: 8192 };
    expect((await btree.install({ ...ictx, params: bigger })).record.prebuilt).toBe('no');
    const again = await runPhases(exec, btree.phases(bigger, { installDir, workDir: join(dir, 'work') }));
    expect(again.parsedOutput).toMatch(/^BTree Elements: 8192$/m);
  });

  it('throughput mode (the Fig. 4 build): the alarm period is rewritten and the series is placed after the tree build and sleep', async () => {
    const installDir = join(dir, 'install-fig4');
    const params = btree.resolveParams('small', { mode: 'throughput', lookupIterations: 1_500_000, sleepS: 1, intervalS: 1 });
    const installed = await btree.install({ exec, cacheDir: artifactDir(), installDir, params });
    expect(installed.record.prebuilt).toBe('no');
    const source = await readFile(join(installDir, ARTIFACT_SNAPSHOT.root, 'benchmarks/btree_throughput/btree.c'), 'utf8');
    expect(source.match(/alarm\(\d+\)/g)).toEqual(['alarm(1)', 'alarm(1)']);
    const stepStartedAtMs = Date.now();
    const { samples, run } = await runWorkload(exec, btree, params, { installDir, workDir: join(dir, 'work-fig4') }, { instance: 'vm0', stepStartedAtMs });
    expect(run.parsedOutput).toMatch(/^lookups started after: \d+\.\d{3} s$/m);
    expect(run.parsedOutput).toMatch(/^Time, Entries$/m);
    const points = samples.filter((s) => s.metric === 'throughput_ops' && s.t !== null);
    expect(points.length).toBeGreaterThanOrEqual(1);
    // The lookups begin after the tree build and the 1 s sleep (file mtimes come from the kernel's coarse clock: a few ms early at most).
    const lookupStart = Number(/lookups started after: ([\d.]+)/.exec(run.parsedOutput)![1]);
    expect(lookupStart).toBeGreaterThanOrEqual(0.95);
    const offset = (run.timedPhaseStartedAtMs! - stepStartedAtMs) / 1000;
    expect(points.map((s) => s.t! - offset - lookupStart)).toEqual(points.map((_, i) => expect.closeTo(i + 1, 6)));
    for (const s of points) expect(s.value).toBeGreaterThan(0);
    const runtime = samples.find((s) => s.metric === 'runtime_s')!;
    expect(runtime.value).toBeGreaterThan(0);
    expect(runtime.value).toBeLessThanOrEqual(run.timedPhaseS!);
  });
});
