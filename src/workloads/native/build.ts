/** Compiles the native workload programs on the host (the guest image carries only the binaries). */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalExecutor } from '../../host/exec/index.ts';

export const NATIVE_SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'c');
export const NATIVE_BINARY = 'nuksm-native';

/** Builds nuksm-native into outDir (static, so it runs in any guest); returns the binary's path. */
export async function buildNativeWorkloads(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, NATIVE_BINARY);
  await new LocalExecutor().run(['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-static', '-o', out, join(NATIVE_SOURCE_DIR, 'nuksm-native.c')], { timeoutMs: 120_000 });
  return out;
}
