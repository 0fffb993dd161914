// The emulator's accessed-bit workaround against this machine's real /proc: the loop writes clear_refs of
// live processes, stops on stop(), ends by itself when its processes are gone, and refuses bad input.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../../src/host/exec/index.ts';
import { startAccessBitRefresh } from '../../../src/host/placement/access-bit-refresh.ts';

const exec = new LocalExecutor();
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(50);
  return cond();
}

describe('startAccessBitRefresh', () => {
  it('runs while asked to, then stop() ends the loop and leaves no process behind', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nuksm-refresh-'));
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const r = await startAccessBitRefresh(exec, [child.pid!], { periodMs: 50, workDir: dir, maxS: 60 });
      const loopPid = Number(readFileSync(join(r.dir, 'pid'), 'utf8'));
      await sleep(400);
      expect(alive(loopPid)).toBe(true);
      expect(existsSync(join(r.dir, 'exit'))).toBe(false);
      await r.stop();
      expect(await until(() => !alive(loopPid), 5_000)).toBe(true);
      expect(readFileSync(join(r.dir, 'exit'), 'utf8').trim()).toBe('0');
      expect(readFileSync(join(r.dir, 'stderr'), 'utf8')).toBe('');
      await r.stop(); // idempotent
    } finally {
      child.kill();
    }
  }, 30_000);

  it('ends by itself once none of its processes is left', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nuksm-refresh-'));
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const r = await startAccessBitRefresh(exec, [child.pid!], { periodMs: 50, workDir: dir, maxS: 60 });
    await sleep(200);
    child.kill();
    expect(await until(() => existsSync(join(r.dir, 'exit')), 5_000)).toBe(true);
    await r.stop();
  }, 30_000);

  it('refuses a bad period or pid before starting anything', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nuksm-refresh-'));
    await expect(startAccessBitRefresh(exec, [1], { periodMs: 1, workDir: dir, maxS: 60 })).rejects.toThrow(/periodMs/);
    await expect(startAccessBitRefresh(exec, [0], { periodMs: 50, workDir: dir, maxS: 60 })).rejects.toThrow(/bad pid/);
  });
});
