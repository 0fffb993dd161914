/**
 * Builds Linux's KSM selftests from Debian's linux-source package of a kernel of the emulated
 * machine, and runs them in the machine. The cases and the model's side: ksm-selftest-cases.ts.
 *
 * Build (on this host, static, so the binaries run in the guest as they are):
 *   1. `apt-get download linux-source-<maj.min>=<version> linux-libc-dev=<version>`, the version being
 *      the guest's linux-image package of the running kernel (a bpo version through an apt
 *      configuration limited to bookworm-backports, as the image build does);
 *   2. from the source tarball only the selftest directory (tools/testing/selftests/vm before 6.3,
 *      mm from 6.3), kselftest.h and include/vdso (ksm_tests includes <include/vdso/time64.h>):
 *      one pass of xz over the 138-153 MB tarball, 12-18 s here;
 *   3. gcc -static with the selftest Makefile's flags, the kernel tree as -I and linux-libc-dev of the
 *      same version as the uapi headers (what `make headers` would give: 6.12's vm_util.c needs the
 *      6.7+ PAGEMAP_SCAN definitions that bookworm's 6.1 headers lack).
 * The result (binaries, run_vmtests.sh, manifest) is cached under .cache/ksm-selftests/<package>=<version>;
 * the packages are not kept.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Executor } from '../../src/host/exec/index.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { releaseAtLeast } from '../../src/policy/scenario.ts';
import { REPO_ROOT } from '../../src/testbeds/emulated/image.ts';
import { resolveDebianMirror } from '../../src/testbeds/images/apt-mirror.ts';
import { backportsApt } from '../../src/testbeds/images/debian.ts';
import { parseDebugCounters, parseTap, type KernelKnobs, type SelftestCase, type TapResult } from './ksm-selftest-cases.ts';

export const KSM_SELFTESTS_CACHE = join(REPO_ROOT, '.cache', 'ksm-selftests');
/** Bumped when the build recipe below changes. */
const RECIPE = 'ksm-selftests-v1';
const KSM = '/sys/kernel/mm/ksm';
const BINARIES = ['ksm_tests', 'ksm_functional_tests'] as const;

const local = new LocalExecutor({ defaultTimeoutMs: 120_000 });

export interface SelftestBuild {
  sourcePackage: string;
  version: string;
  dir: string;
  /** Selftest directory in the tree: 'vm' (before 6.3) or 'mm'. */
  selftestDir: 'vm' | 'mm';
  /** Built binaries (ksm_functional_tests only where the tree has it). */
  binaries: Record<string, string>;
  runVmtests: string;
  /** ksm_tests accepts -d (prints the KSM counters at its check; 6.12, not 6.1). */
  debugFlag: boolean;
  cached: boolean;
  /** Wall seconds of this call's download, extraction and compilation (0 when cached). */
  seconds: { download: number; extract: number; compile: number };
}

interface Manifest {
  recipe: string;
  sourcePackage: string;
  version: string;
  selftestDir: 'vm' | 'mm';
  binaries: Record<string, string>;
  debugFlag: boolean;
  seconds: SelftestBuild['seconds'];
  builtAt: string;
}

/** linux-source-<maj.min> for a release ("6.12.95+deb12-cloud-amd64" -> linux-source-6.12). */
export function sourcePackageOf(release: string): string {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) throw new Error(`'${release}' is not a Linux release`);
  return `linux-source-${m[1]}.${m[2]}`;
}

/** Debian version of the running kernel's image package in the machine (e.g. 6.1.176-1). */
export async function guestKernelVersion(exec: Executor, release: string): Promise<string> {
  const r = await exec.run(['dpkg-query', '-W', '-f=${Version}', `linux-image-${release}`], { timeoutMs: 60_000 });
  const v = r.stdout.trim();
  if (!/^[0-9][0-9A-Za-z.+~-]*$/.test(v)) throw new Error(`linux-image-${release}: unexpected version '${v}'`);
  return v;
}

const secondsSince = (t0: number) => Math.round((Date.now() - t0) / 100) / 10;

/** Builds (or takes from the cache) the KSM selftests of the kernel `release`, Debian version `version`. */
export async function buildKsmSelftests(opts: { release: string; version: string; cacheDir?: string; log?: (l: string) => void }): Promise<SelftestBuild> {
  const log = opts.log ?? (() => undefined);
  const sourcePackage = sourcePackageOf(opts.release);
  const cacheDir = opts.cacheDir ?? KSM_SELFTESTS_CACHE;
  const dir = join(cacheDir, `${sourcePackage}=${opts.version}`);
  const manifestFile = join(dir, 'manifest.json');
  if (existsSync(manifestFile)) {
    const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    if (m.recipe === RECIPE) return fromManifest(dir, m, true);
  }
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(cacheDir, '.build-'));
  try {
    const m = await build(work, sourcePackage, opts.release, opts.version, log);
    await rm(dir, { recursive: true, force: true });
    await rename(join(work, 'out'), dir);
    await writeFile(manifestFile, JSON.stringify(m, null, 2));
    return fromManifest(dir, m, false);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function fromManifest(dir: string, m: Manifest, cached: boolean): SelftestBuild {
  const binaries = Object.fromEntries(Object.keys(m.binaries).map((b) => [b, join(dir, b)]));
  return {
    sourcePackage: m.sourcePackage,
    version: m.version,
    dir,
    selftestDir: m.selftestDir,
    binaries,
    runVmtests: readFileSync(join(dir, 'run_vmtests.sh'), 'utf8'),
    debugFlag: m.debugFlag,
    cached,
    seconds: cached ? { download: 0, extract: 0, compile: 0 } : m.seconds,
  };
}

async function build(work: string, sourcePackage: string, release: string, version: string, log: (l: string) => void): Promise<Manifest> {
  const seconds = { download: 0, extract: 0, compile: 0 };
  let t0 = Date.now();
  // A bpo version is only in bookworm-backports, which this host's apt sources may not list.
  const aptOpts = version.includes('~bpo') ? await backportsApt(join(work, 'apt-bpo'), await resolveDebianMirror()) : [];
  if (aptOpts.length > 0) await local.run(['apt-get', ...aptOpts, 'update'], { timeoutMs: 300_000 });
  const debs = join(work, 'debs');
  await mkdir(debs, { recursive: true });
  log(`downloading ${sourcePackage}=${version} and linux-libc-dev=${version}`);
  await local.run(['apt-get', ...aptOpts, 'download', `${sourcePackage}=${version}`, `linux-libc-dev=${version}`], { cwd: debs, timeoutMs: 900_000 });
  const files = await readdir(debs);
  const srcDeb = files.find((f) => f.startsWith(`${sourcePackage}_`) && f.endsWith('.deb'));
  const hdrDeb = files.find((f) => f.startsWith('linux-libc-dev_') && f.endsWith('.deb'));
  if (!srcDeb || !hdrDeb) throw new Error(`apt-get download left ${files.join(', ')} (wanted ${sourcePackage} and linux-libc-dev)`);
  seconds.download = secondsSince(t0);

  t0 = Date.now();
  const selftestDir = releaseAtLeast(release, 6, 3) ? 'mm' : 'vm';
  const top = sourcePackage; // the tarball's top directory
  const members = [`${top}/tools/testing/selftests/${selftestDir}`, `${top}/tools/testing/selftests/kselftest.h`, `${top}/include/vdso`];
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  log(`extracting ${members.join(', ')} from ${srcDeb}`);
  // The .deb's data is an uncompressed tar holding the xz tarball: one pass of xz, members to disk.
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  await local.run(
    ['bash', '-o', 'pipefail', '-c', `dpkg-deb --fsys-tarfile ${q(join(debs, srcDeb))} | tar -xO ./usr/src/${top}.tar.xz | xz -dc | tar -x -C ${q(src)} ${members.map(q).join(' ')}`],
    { timeoutMs: 900_000 },
  );
  const hdr = join(work, 'hdr');
  await local.run(['dpkg-deb', '-x', join(debs, hdrDeb), hdr], { timeoutMs: 300_000 });
  await rm(debs, { recursive: true, force: true });
  seconds.extract = secondsSince(t0);

  t0 = Date.now();
  const out = join(work, 'out');
  await mkdir(out, { recursive: true });
  const tree = join(src, top);
  const testDir = join(tree, 'tools', 'testing', 'selftests', selftestDir);
  const multiarch = (await local.run(['gcc', '-print-multiarch'])).stdout.trim();
  const inc = join(hdr, 'usr', 'include');
  // The selftest Makefile's CFLAGS / LDLIBS of each tree (6.1: -Wall, -lrt -lpthread; 6.3+: -O2, -lm,
  // -U_FORTIFY_SOURCE, vm_util.c and thp_settings.c linked into every test), -lnuma for ksm_tests.
  const cflags = ['-static', '-Wall', '-no-pie', '-I', tree, '-isystem', inc, '-isystem', join(inc, multiarch)];
  const mmTree = selftestDir === 'mm';
  if (mmTree) cflags.push('-O2', '-U_FORTIFY_SOURCE');
  const helpers = mmTree ? ['vm_util.c', 'thp_settings.c'].filter((f) => existsSync(join(testDir, f))) : [];
  const binaries: Record<string, string> = {};
  for (const b of BINARIES) {
    if (!existsSync(join(testDir, `${b}.c`))) continue;
    const dst = join(out, b);
    const libs = ['-lrt', '-lpthread', ...(mmTree ? ['-lm'] : []), ...(b === 'ksm_tests' ? ['-lnuma'] : [])];
    log(`compiling ${b} (${selftestDir}/)`);
    await local.run(['gcc', ...cflags, `${b}.c`, ...helpers, ...libs, '-o', dst], { cwd: testDir, timeoutMs: 300_000 });
    binaries[b] = createHash('sha256').update(await readFile(dst)).digest('hex');
  }
  if (!binaries.ksm_tests) throw new Error(`${sourcePackage}=${version}: no ksm_tests.c in tools/testing/selftests/${selftestDir}`);
  await copyFile(join(testDir, 'run_vmtests.sh'), join(out, 'run_vmtests.sh'));
  const debugFlag = /getopt\(argc, argv, "d/.test(await readFile(join(testDir, 'ksm_tests.c'), 'utf8'));
  seconds.compile = secondsSince(t0);
  return { recipe: RECIPE, sourcePackage, version, selftestDir, binaries, debugFlag, seconds, builtAt: new Date().toISOString() };
}

async function sh(exec: Executor, script: string, timeoutMs = 120_000): Promise<string> {
  return (await exec.run(['sh', '-c', script], { timeoutMs })).stdout;
}

/** Copies the built binaries into guestDir (base64 over the command channel). */
export async function installSelftests(exec: Executor, b: SelftestBuild, guestDir: string): Promise<void> {
  await sh(exec, `mkdir -p '${guestDir}'`);
  for (const [name, path] of Object.entries(b.binaries)) {
    await exec.writeFile(`${guestDir}/${name}.b64`, (await readFile(path)).toString('base64'), { timeoutMs: 300_000 });
    await sh(exec, `base64 -d '${guestDir}/${name}.b64' > '${guestDir}/${name}' && chmod +x '${guestDir}/${name}' && rm '${guestDir}/${name}.b64'`);
  }
}

/** The knobs the cases depend on, as the machine has them now. */
export async function readKnobs(exec: Executor, release: string): Promise<KernelKnobs> {
  const out = await sh(exec, `cat ${KSM}/max_page_sharing ${KSM}/pages_to_scan; cat ${KSM}/smart_scan 2>/dev/null || echo none`);
  const [mps, pts, smart] = out.trim().split(/\s+/);
  return { release, maxPageSharing: Number(mps), pagesToScan: Number(pts), smartScan: smart === 'none' ? null : smart === '1' ? 1 : 0 };
}

/** Empties KSM (run=2, until pages_shared and pages_sharing are 0, 60 s at most) and writes max_page_sharing. */
function prepScript(maxPageSharing: number): string {
  return [
    `echo 2 > ${KSM}/run`,
    `i=0; while { [ "$(cat ${KSM}/pages_shared)" != 0 ] || [ "$(cat ${KSM}/pages_sharing)" != 0 ]; } && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`,
    `[ "$(cat ${KSM}/pages_shared)" = 0 ] || { echo "KSM still has $(cat ${KSM}/pages_shared) shared pages after run=2" >&2; exit 90; }`,
    `echo ${maxPageSharing} > ${KSM}/max_page_sharing`,
  ].join('\n');
}

export interface KsmTestsRun {
  case: SelftestCase;
  exitCode: number;
  output: string;
  seconds: number;
  /** pages_shared / pages_sharing at the selftest's check, where ksm_tests prints them (-d, 6.12). */
  kernelCounters: { shared: number; sharing: number } | null;
}

/**
 * A run, and once more if it failed (a selftest bounds its merging by full scans, which a loaded TCG machine
 * sometimes does not finish in time). Returns the last run and the first one when it was retried, so a report
 * can print both; a second failure stays a failure.
 */
export async function withOneRetry<R>(run: () => Promise<R>, passed: (r: R) => boolean, onFirstFailure: (r: R) => void = () => undefined): Promise<{ last: R; firstFailure: R | null }> {
  const first = await run();
  if (passed(first)) return { last: first, firstFailure: null };
  onFirstFailure(first);
  return { last: await run(), firstFailure: first };
}

/** Runs one ksm_tests case in the machine (KSM emptied first; -d added where the tree has it). */
export async function runKsmTestsCase(exec: Executor, b: SelftestBuild, guestDir: string, c: SelftestCase, bootMaxPageSharing: number): Promise<KsmTestsRun> {
  const argv = [...c.argv, ...(b.debugFlag ? ['-d'] : [])];
  const t0 = Date.now();
  // ksm_tests bounds its own scans (-l, 120 s by default); `timeout` bounds the rest.
  const r = await exec.run(['sh', '-c', `${prepScript(c.presetMaxPageSharing ?? bootMaxPageSharing)}\ncd '${guestDir}' && exec timeout -s KILL 400 ./ksm_tests ${argv.join(' ')}`], { timeoutMs: 480_000, allowFailure: true });
  const output = `${r.stdout}${r.stderr ? `\n[stderr] ${r.stderr}` : ''}`;
  return { case: c, exitCode: r.exitCode, output, seconds: secondsSince(t0), kernelCounters: parseDebugCounters(r.stdout) };
}

export interface FunctionalRun {
  exitCode: number;
  output: string;
  seconds: number;
  results: TapResult[];
  planned: number | null;
  totals: string | null;
  /** A forked child's own TAP stream is mixed into the output (see parseTap). */
  strayChild: boolean;
}

/** Runs ksm_functional_tests in the machine, from its directory (its fork+exec test runs ./ksm_functional_tests). */
export async function runFunctionalTests(exec: Executor, guestDir: string, bootMaxPageSharing: number): Promise<FunctionalRun> {
  const t0 = Date.now();
  const r = await exec.run(['sh', '-c', `${prepScript(bootMaxPageSharing)}\ncd '${guestDir}' && exec timeout -s KILL 600 ./ksm_functional_tests`], { timeoutMs: 700_000, allowFailure: true });
  const tap = parseTap(r.stdout);
  return { exitCode: r.exitCode, output: `${r.stdout}${r.stderr ? `\n[stderr] ${r.stderr}` : ''}`, seconds: secondsSince(t0), ...tap };
}
