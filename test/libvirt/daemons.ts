/**
 * Start virtlogd + libvirtd for a test when they are not running (containers have no systemd),
 * and stop exactly the ones this test started.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

const DAEMONS = [
  { bin: 'virtlogd', pidFile: '/run/virtlogd.pid' },
  { bin: 'libvirtd', pidFile: '/run/libvirtd.pid' },
] as const;

function alive(pidFile: string): number | null {
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface StartedDaemons {
  pids: number[];
  stop(): Promise<void>;
}

export async function ensureLibvirtd(): Promise<StartedDaemons> {
  mkdirSync('/var/log/libvirt', { recursive: true });
  const pids: number[] = [];
  for (const d of DAEMONS) {
    if (alive(d.pidFile) !== null) continue;
    execFileSync(d.bin, ['-d'], { timeout: 30_000, stdio: 'ignore' });
    await waitFor(() => alive(d.pidFile) !== null, 15_000, `${d.bin} pid file`);
    pids.push(alive(d.pidFile)!);
  }
  await waitFor(() => {
    try {
      execFileSync('virsh', ['-c', 'qemu:///system', 'version'], { timeout: 10_000, stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }, 30_000, 'libvirtd to answer');
  return {
    pids,
    async stop() {
      for (const pid of [...pids].reverse()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          continue;
        }
        await waitFor(() => {
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        }, 15_000, `pid ${pid} to exit`).catch(() => process.kill(pid, 'SIGKILL'));
      }
    },
  };
}
