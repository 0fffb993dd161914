/**
 * Compiles nuksm-native: on the machine running nuksm for the emulated image (the guest carries
 * only the static binary), or on the target by a native workload's install() where gcc exists.
 * The binary prints its source hash for `--version`, so a stale prebuilt binary is never used.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalExecutor } from '../../host/exec/index.ts';
import { sourceVersion, staticCompileArgv } from '../../host/native/static-c.ts';

export const NATIVE_SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'c');
export const NATIVE_SOURCE_FILE = 'nuksm-native.c';
export const NATIVE_BINARY = 'nuksm-native';

/** The C source's text (written to a target that compiles it itself). */
export function nativeSource(): string {
  return readFileSync(join(NATIVE_SOURCE_DIR, NATIVE_SOURCE_FILE), 'utf8');
}

/** What `nuksm-native --version` prints for a binary built from this source. */
export function nativeVersion(): string {
  return sourceVersion(nativeSource());
}

/** gcc argv building `out` from `source` (static, so it runs in any guest). */
export function nativeCompileArgv(source: string, out: string): string[] {
  return staticCompileArgv(source, out, nativeVersion());
}

/** Builds nuksm-native into outDir; returns the binary's path. */
export async function buildNativeWorkloads(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, NATIVE_BINARY);
  await new LocalExecutor().run(nativeCompileArgv(join(NATIVE_SOURCE_DIR, NATIVE_SOURCE_FILE), out), { timeoutMs: 120_000 });
  return out;
}
