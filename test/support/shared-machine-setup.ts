/**
 * globalSetup of the system project: gives the shared emulated machines (shared-machine.ts) a state
 * directory for this run, and at the end of the run kills every QEMU recorded there and removes it,
 * whether the test fork exited cleanly or not.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function setup(): () => Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nuksm-shared-machines-'));
  process.env.NUKSM_SHARED_MACHINES_DIR = dir;
  return async () => {
    for (const kernel of readdirSync(dir)) {
      const pidFile = join(dir, kernel, 'qemu.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      const cmdline = Number.isInteger(pid) && pid > 0 ? (() => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } })() : '';
      // Only a QEMU of this run's overlay: the pid may have been reused.
      if (!cmdline.includes(join(dir, kernel))) continue;
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 200));
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
