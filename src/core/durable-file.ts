/**
 * The one way files a resume depends on are written (plan.json, progress.json, machine.json, the
 * boot-resume guard, unit and cron file): atomically and durably — write a temp file next to the
 * target, fsync it, rename it over the target, fsync the directory — so a power loss leaves the old
 * or the new content, never an empty or half-written file. And only when the content changes: a
 * resume that would write the same bytes leaves the file (and its directory) alone.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface DurableWriteOptions {
  /** File mode of a new file (default 0o644). */
  mode?: number;
  /** Write even when the content is unchanged (progress.json: its time stamp is the point). */
  always?: boolean;
}

function currentContent(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** fsync a directory, so a rename (a new name) in it survives a power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `content` to `path` atomically and durably; returns false (and writes nothing) when the
 * file already has exactly this content.
 */
export function writeFileDurable(path: string, content: string | Buffer, opts: DurableWriteOptions = {}): boolean {
  const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (!opts.always) {
    const now = currentContent(path);
    if (now !== null && now.equals(data)) return false;
  }
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
  return true;
}

/**
 * The same through a shell on another machine (an Executor): the script `durableWriteScript` runs
 * with the target path and the temp file the content was written to. `sync FILE` is fsync(2)
 * (coreutils ≥ 8.24), on the file and then on its directory after the rename.
 */
export const DURABLE_RENAME_SH = 'sync "$1" && mv -f "$1" "$2" && sync "$(dirname "$2")"';
