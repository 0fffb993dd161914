/**
 * How nuksm builds its small C programs (the native workloads, the placement engine's move_pages helper):
 * static gcc builds, so they run in any guest, stamped with a hash of their source that `--version`
 * prints, so a stale prebuilt binary is never used.
 */
import { createHash } from 'node:crypto';

/** The version a binary built from this source text reports. */
export function sourceVersion(sourceText: string): string {
  return createHash('sha256').update(sourceText).digest('hex').slice(0, 16);
}

/** gcc argv building `out` from `source`, stamped with `version` (NUKSM_NATIVE_VERSION). */
export function staticCompileArgv(source: string, out: string, version: string): string[] {
  return ['gcc', '-O2', '-Wall', '-Wextra', '-Werror', '-static', `-DNUKSM_NATIVE_VERSION="${version}"`, '-o', out, source];
}
