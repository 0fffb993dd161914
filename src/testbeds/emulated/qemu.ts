/**
 * One emulated two-NUMA-node machine: a QEMU process (TCG; KVM only when asked and /dev/kvm works)
 * booting a qcow2 overlay on the cached image through GRUB, SSH through a loopback port forward
 * checked against the host key pinned at build time, console captured to a file, QMP for a clean
 * ACPI power-down. The overlay persists across start/stop/kill, so a machine killed mid-step
 * (power loss) boots again with its disk as it was.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { HarnessError } from '../../core/errors.ts';
import { LocalExecutor, SshExecutor } from '../../host/exec/index.ts';
import { MACHINE_IMAGE_FILE } from './image.ts';

export interface MachineShape {
  nodes: number;
  cpusPerNode: number;
  memoryMiBPerNode: number;
}

export interface QemuMachineOptions {
  /** Cached raw image the overlay is based on. */
  baseDisk: string;
  /** Holds overlay.qcow2, qmp.sock, qemu.pid. */
  stateDir: string;
  shape: MachineShape;
  sshPort: number;
  identityFile: string;
  knownHostsFile: string;
  accel?: 'tcg' | 'kvm';
  /** Seconds until SSH must answer after QEMU starts. */
  bootTimeoutS?: number;
  shutdownTimeoutS?: number;
  commandTimeoutS?: number;
  log?: (line: string) => void;
}

/** QEMU's argv for a machine (pure; unit-tested). */
export function qemuArgv(o: { disk: string; shape: MachineShape; sshPort: number; qmpSocket: string; pidFile?: string; consoleLog: string; accel: 'tcg' | 'kvm' }): string[] {
  const { nodes, cpusPerNode, memoryMiBPerNode } = o.shape;
  const argv = [
    'qemu-system-x86_64',
    // mem-merge=off: the host's KSM must not scan the machine's RAM (QEMU madvises it MERGEABLE by
    // default), so a KSM run on the host itself (`nuksm trace record`, the physical tests) sees only its own.
    '-machine', `pc,accel=${o.accel},mem-merge=off`,
    // TCG (QEMU 7.2): with CX16 the 6.12 kernel double-faults in SLUB's cmpxchg16b fast path on
    // nearly every boot, and '-cpu max' crashed in ACPI; without CX16 it uses the emulated path.
    '-cpu', o.accel === 'kvm' ? 'host' : 'qemu64,-cx16',
    '-smp', String(nodes * cpusPerNode),
    '-m', `${nodes * memoryMiBPerNode}M`,
  ];
  for (let n = 0; n < nodes; n++) {
    const first = n * cpusPerNode;
    const cpus = cpusPerNode === 1 ? String(first) : `${first}-${first + cpusPerNode - 1}`;
    argv.push('-object', `memory-backend-ram,id=m${n},size=${memoryMiBPerNode}M`, '-numa', `node,nodeid=${n},cpus=${cpus},memdev=m${n}`);
  }
  argv.push(
    // writeback, not unsafe: the guest's flushes (SQLite's fsync of the journal) must reach the
    // overlay, qcow2 metadata included, so a killed QEMU (power loss) loses nothing committed.
    '-drive', `file=${o.disk},format=qcow2,if=virtio,cache=writeback`,
    '-nic', `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    '-display', 'none',
    '-serial', `file:${o.consoleLog}`,
    '-qmp', `unix:${o.qmpSocket},server=on,wait=off`,
    '-monitor', 'none',
  );
  if (o.pidFile) argv.push('-pidfile', o.pidFile);
  // No -no-reboot: the guest reboots itself into another kernel and stays in the same QEMU.
  return argv;
}

async function qmp(socket: string, commands: object[], timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const conn = createConnection(socket);
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new HarnessError('timeout', `QMP on ${socket} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let greeted = false;
    let pending = [...commands];
    conn.on('data', (buf) => {
      for (const line of buf.toString('utf8').split('\n').filter(Boolean)) {
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        if (msg.error) {
          clearTimeout(timer);
          conn.destroy();
          reject(new HarnessError('boot', `QMP error: ${msg.error.desc}`));
          return;
        }
        if (msg.QMP && !greeted) {
          greeted = true;
          conn.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
        } else if (msg.return !== undefined) {
          const next = pending.shift();
          if (next) conn.write(JSON.stringify(next) + '\n');
          else {
            clearTimeout(timer);
            conn.end();
            resolve();
          }
        }
      }
    });
    conn.on('error', (e) => {
      clearTimeout(timer);
      reject(new HarnessError('boot', `QMP on ${socket}: ${e.message}`));
    });
    pending = [...commands];
  });
}

export class QemuMachine {
  private child: ChildProcess | null = null;
  private exited: Promise<number | null> | null = null;
  private ssh: SshExecutor | null = null;
  readonly overlay: string;
  readonly qmpSocket: string;
  readonly pidFile: string;
  /** Console log of the current boot attempt (set by start()). */
  consoleLog = '';
  /** How many boot attempts failed and were retried (logged). */
  retriedBoots = 0;

  constructor(readonly opts: QemuMachineOptions) {
    this.overlay = join(opts.stateDir, 'overlay.qcow2');
    this.qmpSocket = join(opts.stateDir, 'qmp.sock');
    this.pidFile = join(opts.stateDir, 'qemu.pid');
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** A fresh overlay on the cached image (drops everything the guest wrote). */
  async resetDisk(): Promise<void> {
    await mkdir(this.opts.stateDir, { recursive: true });
    await writeFile(join(this.opts.stateDir, MACHINE_IMAGE_FILE), `${this.opts.baseDisk}\n`);
    await new LocalExecutor().run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', this.opts.baseDisk, this.overlay], { timeoutMs: 30_000 });
  }

  /**
   * Start QEMU and wait for SSH. consoleDir receives console-<n>.log per attempt. A boot that
   * fails (QEMU exits, or no SSH in time) is retried once — TCG very rarely double-faults.
   */
  async start(consoleDir: string): Promise<SshExecutor> {
    if (!existsSync(this.overlay)) await this.resetDisk();
    await this.killStale();
    await mkdir(consoleDir, { recursive: true });
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.bootOnce(join(consoleDir, `console-${Date.now()}.log`));
      } catch (e) {
        await this.kill();
        if (attempt >= 2) throw e;
        this.retriedBoots++;
        this.log(`boot attempt ${attempt} failed (${(e as Error).message}); console in ${this.consoleLog}; retrying once`);
      }
    }
  }

  private async bootOnce(consoleLog: string): Promise<SshExecutor> {
    this.consoleLog = consoleLog;
    closeSync(openSync(consoleLog, 'a'));
    const accel = this.opts.accel ?? 'tcg';
    const argv = qemuArgv({ disk: this.overlay, shape: this.opts.shape, sshPort: this.opts.sshPort, qmpSocket: this.qmpSocket, pidFile: this.pidFile, consoleLog, accel });
    this.log(`starting ${argv.join(' ')}`);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const bootTimeoutMs = (this.opts.bootTimeoutS ?? 240) * 1000;
    const ssh = this.executor(0);
    const started = Date.now();
    const answered = (async () => {
      for (;;) {
        if (!this.running) throw new HarnessError('boot', `QEMU exited during boot: ${stderr.trim() || 'no message'} (console: ${consoleLog})`);
        if (Date.now() - started > bootTimeoutMs) throw new HarnessError('boot', `no SSH on 127.0.0.1:${this.opts.sshPort} within ${bootTimeoutMs / 1000} s (console: ${consoleLog})`);
        const ok = await ssh.run(['true'], { timeoutMs: 15_000 }).then(() => true, async () => {
          await ssh.close().catch(() => undefined);
          return false;
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })();
    await answered;
    this.log(`SSH answered ${((Date.now() - started) / 1000).toFixed(1)} s after QEMU started`);
    await ssh.close().catch(() => undefined);
    this.ssh = this.executor(5);
    return this.ssh;
  }

  /** An SSH executor for the guest (one connection, reconnected with up to connectRetries retries). */
  executor(connectRetries = 5): SshExecutor {
    return new SshExecutor({
      host: '127.0.0.1',
      port: this.opts.sshPort,
      username: 'root',
      privateKeyPath: this.opts.identityFile,
      knownHostsFile: this.opts.knownHostsFile,
      hostKeyPolicy: 'strict',
      defaultTimeoutMs: (this.opts.commandTimeoutS ?? 120) * 1000,
      connectTimeoutMs: 10_000,
      connectRetries,
    });
  }

  /** Wait for QEMU to exit on its own (e.g. after a guest power-off); false on timeout. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.exited || !this.running) return true;
    // The timer is cleared when QEMU exits first: left armed, it kept `nuksm run` alive for a
    // minute after a finished campaign.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), timeoutMs);
    });
    return Promise.race([this.exited.then(() => true), late]).finally(() => clearTimeout(timer));
  }

  /**
   * Clean stop: `systemctl poweroff` over SSH, else an ACPI power-down through QMP (the minimal
   * guest may not act on the power button), then kill if the guest does not power off in time.
   */
  async stop(): Promise<'powered-off' | 'killed' | 'not-running'> {
    if (!this.running) {
      await this.ssh?.close().catch(() => undefined);
      this.ssh = null;
      return 'not-running';
    }
    const timeoutMs = (this.opts.shutdownTimeoutS ?? 60) * 1000;
    const viaSsh = this.ssh ? await this.ssh.run(['systemctl', 'poweroff'], { timeoutMs: 15_000, allowFailure: true }).then(() => true, () => true) : false;
    await this.ssh?.close().catch(() => undefined);
    this.ssh = null;
    if (viaSsh && (await this.waitExit(timeoutMs))) return 'powered-off';
    const asked = await qmp(this.qmpSocket, [{ execute: 'system_powerdown' }], 10_000).then(() => true, (e: Error) => {
      this.log(`QMP power-down failed: ${e.message}`);
      return false;
    });
    if (asked && (await this.waitExit(viaSsh ? 10_000 : timeoutMs))) return 'powered-off';
    this.log(`guest did not power off within ${timeoutMs / 1000} s; killing QEMU`);
    await this.kill();
    return 'killed';
  }

  /**
   * A QEMU left running on this overlay by a harness process that died (kill -9 of `nuksm`): two
   * QEMUs on one disk would corrupt it, so the old one is killed first (a power cycle to the guest).
   */
  private async killStale(): Promise<void> {
    if (this.running || !existsSync(this.pidFile)) return;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    const cmdline = Number.isInteger(pid) && pid > 0 ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '') : '';
    if (!cmdline.includes(this.overlay)) return;
    this.log(`a QEMU (pid ${pid}) left by an earlier harness process still runs this machine: killing it (power cycle)`);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 200));
  }

  /** Pull the plug (SIGKILL): what a power loss looks like to the guest. */
  async kill(): Promise<void> {
    await this.ssh?.close().catch(() => undefined);
    this.ssh = null;
    if (this.child && this.running) {
      this.child.kill('SIGKILL');
      await this.waitExit(10_000);
    }
    this.child = null;
  }
}
