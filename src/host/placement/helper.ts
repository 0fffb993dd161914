/**
 * The move_pages(2) helper of the placement engine (c/nuksm-move-pages.c): built like nuksm-native (static
 * gcc build stamped with its source hash, so a stale binary is never used), prebuilt into the emulated image
 * next to nuksm-native (src/testbeds/emulated/image.ts), or compiled on a target that has gcc.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../../core/errors.ts';
import { LocalExecutor } from '../exec/index.ts';
import type { Executor } from '../exec/types.ts';

export const MOVE_PAGES_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'c', 'nuksm-move-pages.c');
export const MOVE_PAGES_BINARY = 'nuksm-move-pages';

export function movePagesSource(): string {
  return readFileSync(MOVE_PAGES_SOURCE, 'utf8');
}

/** What `nuksm-move-pages --version` prints for a binary built from this source. */
export function movePagesVersion(): string {
  return createHash('sha256').update(movePagesSource()).digest('hex').slice(0, 16);
}

export function movePagesCompileArgv(source: string, out: string): string[] {
  return ['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-static', `-DNUKSM_NATIVE_VERSION="${movePagesVersion()}"`, '-o', out, source];
}

/** Builds the helper into outDir on this machine; returns the binary's path. */
export async function buildMovePagesHelper(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, MOVE_PAGES_BINARY);
  await new LocalExecutor().run(movePagesCompileArgv(MOVE_PAGES_SOURCE, out), { timeoutMs: 120_000 });
  return out;
}

/**
 * A helper of the current version on the target: the first of `candidates` (e.g. the emulated image's
 * prebuilt one) whose --version matches, else compiled into installDir with the target's gcc.
 */
export async function ensureMovePagesHelper(exec: Executor, opts: { candidates: readonly string[]; installDir: string; timeoutMs?: number }): Promise<string> {
  const want = movePagesVersion();
  const installed = posix.join(opts.installDir, MOVE_PAGES_BINARY);
  for (const path of [...opts.candidates, installed]) {
    const r = await exec.run([path, '--version'], { allowFailure: true, timeoutMs: 30_000 });
    if (r.exitCode === 0 && r.stdout.trim() === want) return path;
  }
  const src = posix.join(opts.installDir, 'nuksm-move-pages.c');
  await exec.run(['mkdir', '-p', opts.installDir], { timeoutMs: 30_000 });
  await exec.writeFile(src, movePagesSource());
  const r = await exec.run(movePagesCompileArgv(src, installed), { allowFailure: true, timeoutMs: opts.timeoutMs ?? 300_000 });
  if (r.exitCode !== 0) {
    throw new HarnessError('unsupported', `the move_pages helper is not prebuilt on ${exec.target} and could not be compiled there (needs gcc and static libc): ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  }
  return installed;
}
