/**
 * Offline benchmark sources. The machines the harness is built on reach only npm and Debian,
 * so XSBench, NPB CG, BTree and RandomAccess come from a cache directory the user fills once:
 * a `git archive` of the paper's artifact repository, whose vendored benchmark sources are
 * exactly what the paper ran (artifact.md §1). Every file is checked against a sha256 before use.
 *
 * Pins: the project pins the artifact snapshot's sha256 (a `git archive` of commit 5403aa1 is
 * byte-for-byte reproducible); the user may add pins (InstallContext.pins or a `SHA256SUMS` file in
 * the cache directory, as written by sha256sum). Install refuses a file with no pin at all, and any
 * two pins that are present must agree.
 *
 * Builds are idempotent (buildOnce): a marker file in installDir records what was built (snapshot
 * digest, compiler versions, the build-affecting parameters); a later install() with the same key
 * and the binary still present does not rebuild.
 */
import { posix } from 'node:path';
import { ConfigError, HarnessError } from '../core/errors.ts';
import type { Executor } from '../host/exec/types.ts';
import type { InstallContext } from './types.ts';

export interface CacheSource {
  /** File name inside the cache directory. */
  file: string;
  /** What it is and how to produce it, for error messages and docs. */
  description: string;
  howToMake: string;
  /** Top-level directory inside the archive. */
  root: string;
  /** sha256 pinned in the project, when it was possible to compute it; null = the user pins it. */
  sha256: string | null;
}

export const ARTIFACT_SNAPSHOT: CacheSource = {
  file: 'nuKSM-pact21-artifact-5403aa1.tar',
  description: 'csl-iisc/nuKSM-pact21-artifact at commit 5403aa1 ("figures updated", 2021-07-27), without submodules',
  howToMake:
    'git clone https://github.com/csl-iisc/nuKSM-pact21-artifact && cd nuKSM-pact21-artifact && ' +
    'git archive --format=tar --prefix=nuKSM-pact21-artifact/ -o nuKSM-pact21-artifact-5403aa1.tar 5403aa1 && ' +
    'sha256sum nuKSM-pact21-artifact-5403aa1.tar >> SHA256SUMS',
  root: 'nuKSM-pact21-artifact',
  // sha256 of `git archive --format=tar --prefix=nuKSM-pact21-artifact/ 5403aa1` (the file in /work/shared/artifacts).
  sha256: '77c9d76d4589853fe99cbfe5208d10ee6c2ca2b21be31a6bc36deeb21b7f85e9',
};

const HEX64 = /^[0-9a-f]{64}$/;

/** `SHA256SUMS` lines: "<hex>  <file>" or "<hex> *<file>". */
export function parseSha256Sums(text: string): Record<string, string> {
  const sums: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums[posix.basename(m[2]!)] = m[1]!.toLowerCase();
  }
  return sums;
}

async function expectedHash(exec: Executor, cacheDir: string, source: CacheSource, pins: Record<string, string>): Promise<string> {
  const sumsPath = posix.join(cacheDir, 'SHA256SUMS');
  const sumsText = await exec.run(['cat', sumsPath], { allowFailure: true, timeoutMs: 30_000 });
  const fromSums = sumsText.exitCode === 0 ? parseSha256Sums(sumsText.stdout)[source.file] : undefined;
  const candidates: Array<[string, string]> = [];
  if (source.sha256) candidates.push(['project pin', source.sha256]);
  if (pins[source.file]) candidates.push(['pins', pins[source.file]!.toLowerCase()]);
  if (fromSums) candidates.push([sumsPath, fromSums]);
  if (candidates.length === 0) {
    throw new ConfigError(sumsPath, source.file, `no sha256 pinned for ${source.file} (${source.description}); make it with: ${source.howToMake}`);
  }
  for (const [where, hash] of candidates) {
    if (!HEX64.test(hash)) throw new ConfigError(where, source.file, `not a sha256 hex digest: '${hash}'`);
    if (hash !== candidates[0]![1]) {
      throw new ConfigError(where, source.file, `sha256 ${hash} disagrees with ${candidates[0]![0]} ${candidates[0]![1]}`);
    }
  }
  return candidates[0]![1];
}

/** Verifies the cache file's sha256 on the target; returns the verified digest. */
export async function verifyCacheFile(ctx: InstallContext, source: CacheSource): Promise<string> {
  const path = posix.join(ctx.cacheDir, source.file);
  const expected = await expectedHash(ctx.exec, ctx.cacheDir, source, ctx.pins ?? {});
  const r = await ctx.exec.run(['sha256sum', '--', path], { allowFailure: true, timeoutMs: 600_000 });
  if (r.exitCode !== 0) {
    throw new HarnessError('config', `cache file ${path} on ${ctx.exec.target} is not readable (${r.stderr.trim()}); make it with: ${source.howToMake}`);
  }
  const actual = r.stdout.trim().split(/\s+/)[0]!.toLowerCase();
  if (actual !== expected) {
    throw new HarnessError('config', `cache file ${path}: sha256 ${actual} does not match the pinned ${expected}`, { path, expected, actual });
  }
  return actual;
}

/**
 * Verifies and unpacks a cache archive into installDir (once per digest: a marker file records
 * what was unpacked). Returns the unpacked root directory.
 */
export async function unpackCacheArchive(ctx: InstallContext, source: CacheSource): Promise<{ root: string; sha256: string }> {
  const sha256 = await verifyCacheFile(ctx, source);
  const root = posix.join(ctx.installDir, source.root);
  const marker = posix.join(ctx.installDir, `.unpacked-${source.file}.sha256`);
  const existing = await ctx.exec.run(['cat', marker], { allowFailure: true, timeoutMs: 30_000 });
  if (existing.exitCode !== 0 || existing.stdout.trim() !== sha256) {
    const timeoutMs = ctx.timeoutMs ?? 1_800_000;
    await ctx.exec.run(['rm', '-rf', '--', root], { timeoutMs });
    // Build markers describe binaries inside the old tree: they go with it.
    await ctx.exec.run(['sh', '-c', 'rm -f -- "$1"/.built-*.json', 'sh', ctx.installDir], { timeoutMs });
    await ctx.exec.run(['mkdir', '-p', '--', ctx.installDir], { timeoutMs });
    await ctx.exec.run(['tar', '-xf', posix.join(ctx.cacheDir, source.file), '-C', ctx.installDir], { timeoutMs });
    await ctx.exec.writeFile(marker, `${sha256}\n`);
  }
  return { root, sha256 };
}

/** Runs one build command on the target; a failure is a config problem of the guest (missing compiler…). */
export async function build(ctx: InstallContext, argv: string[], cwd?: string): Promise<void> {
  const r = await ctx.exec.run(argv, { cwd, allowFailure: true, timeoutMs: ctx.timeoutMs ?? 1_800_000, onStdout: ctx.onOutput, onStderr: ctx.onOutput });
  if (r.exitCode !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new HarnessError('config', `build failed on ${ctx.exec.target}: ${argv.join(' ')} exited with ${r.exitCode}\n${tail}`, { argv });
  }
}

export async function compilerVersion(ctx: InstallContext, compiler: string): Promise<string> {
  const r = await ctx.exec.run([compiler, '--version'], { allowFailure: true, timeoutMs: 30_000 });
  return r.exitCode === 0 ? r.stdout.split('\n')[0]!.trim() : `${compiler}: not found`;
}

/**
 * Rewrites `#define NAME value` lines of a C source on the target. Used where the artifact's
 * benchmarks take their size only at compile time (BTree), so the small variant needs a rebuild.
 */
export async function setDefines(ctx: InstallContext, path: string, defines: Record<string, string>): Promise<void> {
  let text = await ctx.exec.readFile(path);
  for (const [name, value] of Object.entries(defines)) {
    const re = new RegExp(`^(\\s*#define\\s+${name}\\s+).*$`, 'gm');
    if (!re.test(text)) throw new HarnessError('config', `${path}: no '#define ${name}' to set`);
    text = text.replace(re, `$1${value}`);
  }
  await ctx.exec.writeFile(path, text);
}

/** File name of a build marker inside installDir. */
export function buildMarkerPath(installDir: string, id: string): string {
  return posix.join(installDir, `.built-${id}.json`);
}

export interface BuildOnceOptions {
  /** Marker id, unique per binary: e.g. 'xsbench', 'btree-runtime', 'cg-C'. */
  id: string;
  /** The binary the build produces; the marker only counts while it exists. */
  binary: string;
  /**
   * Everything that decides the binary's content: snapshot digest, compiler version lines, make
   * invocation, compile-time parameters. Compared as canonical JSON (sorted keys).
   */
  key: Record<string, string>;
  /** Prepares the sources and builds (rebuilding everything: make -B). */
  build: () => Promise<void>;
}

function canonical(key: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/**
 * Builds unless installDir/.built-<id>.json holds exactly `key` and `binary` exists. The marker is
 * removed before building and written only after a successful build, so an interrupted build is
 * never taken for a finished one. Returns 'yes' when the existing build was kept.
 */
export async function buildOnce(ctx: InstallContext, opts: BuildOnceOptions): Promise<'yes' | 'no'> {
  const marker = buildMarkerPath(ctx.installDir, opts.id);
  const wanted = canonical(opts.key);
  const existing = await ctx.exec.run(['cat', '--', marker], { allowFailure: true, timeoutMs: 30_000 });
  if (existing.exitCode === 0 && existing.stdout.trim() === wanted) {
    const present = await ctx.exec.run(['test', '-x', opts.binary], { allowFailure: true, timeoutMs: 30_000 });
    if (present.exitCode === 0) return 'yes';
  }
  await ctx.exec.run(['rm', '-f', '--', marker], { timeoutMs: 30_000 });
  await opts.build();
  const built = await ctx.exec.run(['test', '-x', opts.binary], { allowFailure: true, timeoutMs: 30_000 });
  if (built.exitCode !== 0) throw new HarnessError('config', `build on ${ctx.exec.target} finished but ${opts.binary} is missing`);
  await ctx.exec.writeFile(marker, `${wanted}\n`);
  return 'no';
}
