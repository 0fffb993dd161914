/**
 * The resources one attempt creates on the host, written down BEFORE each is created, one JSON
 * line each, fsynced. A kill -9, crash or power loss leaves the list in the attempt's raw
 * directory; on resume the runner hands the interrupted attempts' directories to the testbed
 * (Testbed.reclaim), which undoes exactly what is listed (reclaim in engine.ts) before anything
 * runs again, so a re-run is never measured next to an old attempt's VMs or processes.
 * A ledger whose last line is `closed` was torn down by the attempt itself.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LEDGER_FILE = 'resources.jsonl';

export type LedgerEntry =
  /** A libvirt domain (destroyed and undefined on reclaim). */
  | { kind: 'domain'; name: string; uri: string }
  /** A file on the host (a VM overlay, a console log). */
  | { kind: 'file'; path: string }
  /** Host processes whose environment carries NUKSM_INSTANCE=<marker> (killed on reclaim). */
  | { kind: 'processes'; marker: string }
  /** A per-step directory on the host. */
  | { kind: 'workdir'; path: string }
  /** KSM knobs as they were before the step (written back on reclaim). */
  | { kind: 'ksm-knobs'; knobs: Record<string, string> }
  /** A /proc/sys setting as it was before the step wrote it (e.g. kernel.numa_balancing; written back on reclaim). */
  | { kind: 'sysctl'; name: string; value: string }
  | { kind: 'closed' };

export class Ledger {
  readonly path: string;
  constructor(rawDir: string) {
    this.path = join(rawDir, LEDGER_FILE);
  }

  /** Appends durably: the entry is on disk when this returns. */
  record(entry: LedgerEntry): void {
    const fd = openSync(this.path, 'a');
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Entries of a ledger (a torn last line from a power loss is ignored). */
export function readLedger(rawDir: string): LedgerEntry[] {
  const path = join(rawDir, LEDGER_FILE);
  if (!existsSync(path)) return [];
  const out: LedgerEntry[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as LedgerEntry);
    } catch {
      // only the last line can be torn
    }
  }
  return out;
}

/** True when the attempt tore itself down (nothing to reclaim). */
export function ledgerClosed(entries: readonly LedgerEntry[]): boolean {
  return entries.length > 0 && entries[entries.length - 1]!.kind === 'closed';
}
