/**
 * A real OpenSSH sshd for tests: own temp dir, host key, client key, authorized_keys and config,
 * loopback only, its own port, run in the foreground (`-D -e -f cfg`) and stopped by stop().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export class TestSshd {
  readonly dir: string;
  readonly hostKeyPub: string;
  readonly clientKeyPath: string;
  readonly user = userInfo().username;
  proc: ChildProcess | null = null;
  log = '';

  constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'nuksm-sshd-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(this.dir, 'host_ed25519')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(this.dir, 'client_ed25519')]);
    this.hostKeyPub = readFileSync(join(this.dir, 'host_ed25519.pub'), 'utf8').trim();
    this.clientKeyPath = join(this.dir, 'client_ed25519');
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.clientKeyPath}.pub`));
    mkdirSync('/run/sshd', { recursive: true });
    writeFileSync(
      join(this.dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(this.dir, 'host_ed25519')}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PermitRootLogin prohibit-password',
        'MaxSessions 20',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
  }

  /** known_hosts line for this server, as ssh-keyscan would print it. */
  knownHostsLine(): string {
    const [type, key] = this.hostKeyPub.split(/\s+/);
    return `[127.0.0.1]:${this.port} ${type} ${key}`;
  }

  async start(): Promise<void> {
    this.proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(this.dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.on('data', (b: Buffer) => (this.log += b.toString()));
    // Ready when the port accepts.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.log.includes('Server listening')) return;
      if (this.proc.exitCode !== null) throw new Error(`sshd exited: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`sshd did not start: ${this.log}`);
  }

  /** The per-connection sshd processes (children of the listener, recursively). */
  sessionPids(): number[] {
    const master = this.proc?.pid;
    if (!master) return [];
    const sessions: number[] = [];
    const walk = (pid: number) => {
      let children: number[] = [];
      try {
        children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
      } catch {
        /* no children */
      }
      for (const c of children) {
        const comm = readFileSync(`/proc/${c}/comm`, 'utf8').trim();
        if (comm.startsWith('sshd')) {
          sessions.push(c);
          walk(c);
        }
      }
    };
    walk(master);
    return sessions;
  }

  /** Kill the per-connection sshd processes (not the listener): every open SSH connection drops. */
  killSessions(): number {
    return this.signalAll('SIGKILL', { listener: false });
  }

  /**
   * Send `signal` to the sessions (and the listener unless told not to; returns how many processes): SIGSTOP makes the server
   * hang with its connections and port open (accepted by the kernel, never answered); SIGCONT resumes it.
   */
  signalAll(signal: NodeJS.Signals, opts: { listener?: boolean } = {}): number {
    const pids = [...(opts.listener === false || !this.proc?.pid ? [] : [this.proc.pid]), ...this.sessionPids()];
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
    return pids.length;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A started TestSshd plus a scratch directory holding its known_hosts file; stop() ends the server and removes both. */
export async function startSshdWithWorkDir(prefix: string): Promise<{ sshd: TestSshd; work: string; knownHosts: string; stop: () => Promise<void> }> {
  const sshd = new TestSshd(await freePort());
  await sshd.start();
  const work = mkdtempSync(join(tmpdir(), prefix));
  const knownHosts = join(work, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  const stop = async () => {
    await sshd.stop();
    sshd.cleanup();
    rmSync(work, { recursive: true, force: true });
  };
  return { sshd, work, knownHosts, stop };
}
