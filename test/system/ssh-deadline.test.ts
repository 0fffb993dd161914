/**
 * Waits over SSH end by their deadline plus a small bound, whatever the server does (issue 10
 * item 10): a real sshd stopped with SIGSTOP mid-wait (its port still accepts, nothing answers),
 * and a loopback port that accepts and never sends an SSH banner.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { failureClassOf } from '../../src/core/errors.ts';
import { runDetached, waitDetached } from '../../src/host/exec/detached.ts';
import { KILL_BOUND_MS, SshExecutor, type SshExecutorOptions } from '../../src/host/exec/ssh.ts';
import { describeWith } from '../support/components.ts';
import { startSshdWithWorkDir, type TestSshd } from '../host/sshd-harness.ts';

/** How long after deadline + KILL_BOUND_MS a wait may end (timers and a loaded 2-core machine). */
const SLACK_MS = 1_500;


describeWith(['sshd'], 'SSH waits end by their deadline', () => {
  let sshd: TestSshd;
  let work: string;
  let knownHosts: string;
  const executors: SshExecutor[] = [];
  const marker = `nuksm-deadline-${process.pid}`;

  const executor = (over: Partial<SshExecutorOptions> = {}): SshExecutor => {
    // The defaults a campaign uses (20 s handshake timeout, 5 reconnects, 10 s keepalive): today's
    // waits would sit through them.
    const e = new SshExecutor({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKeyPath: sshd.clientKeyPath, knownHostsFile: knownHosts, ...over });
    executors.push(e);
    return e;
  };

  /** Time `work`, expecting a 'timeout' error. */
  const timedFailure = async (work: Promise<unknown>): Promise<{ ms: number; err: unknown }> => {
    const t0 = Date.now();
    const err = await work.then(
      () => new Error('expected a timeout, the call succeeded'),
      (e: unknown) => e,
    );
    return { ms: Date.now() - t0, err };
  };

  let server: Awaited<ReturnType<typeof startSshdWithWorkDir>>;
  beforeAll(async () => {
    server = await startSshdWithWorkDir('nuksm-ssh-deadline-');
    ({ sshd, work, knownHosts } = server);
  });

  afterEach(() => {
    sshd.signalAll('SIGCONT');
  });

  afterAll(async () => {
    sshd?.signalAll('SIGCONT');
    for (const e of executors) await e.close();
    // The commands these tests left running (their kill could not reach a stopped sshd).
    let left: number[] = [];
    try {
      left = execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
    } catch {
      /* none left (pgrep exits 1) */
    }
    for (const pid of left.filter((p) => p !== process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await server?.stop();
  });

  it('waitDetached ends by its deadline with a timeout error when sshd stops answering mid-wait', async () => {
    const exec = executor();
    const handle = await runDetached(exec, ['sh', '-c', `sleep 60; : ${marker}`], { workDir: join(work, 'runs'), id: 'sleeper' });
    const timeoutMs = 4_000;
    setTimeout(() => sshd.signalAll('SIGSTOP'), 1_000);
    const { ms, err } = await timedFailure(waitDetached(exec, handle, { timeoutMs, pollMs: 300 }));
    expect(failureClassOf(err), String(err)).toBe('timeout');
    expect(ms).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(ms).toBeLessThan(timeoutMs + KILL_BOUND_MS + SLACK_MS);
    sshd.signalAll('SIGCONT');
    process.kill(Number(readFileSync(join(handle.dir, 'pid'), 'utf8')), 'SIGKILL');
  }, 60_000);

  it('a timed-out command whose kill cannot reach the stopped sshd ends by its timeout plus the kill bound, as a timeout', async () => {
    const exec = executor();
    expect((await exec.run(['true'])).exitCode).toBe(0); // connected
    const accepted = (sshd.log.match(/Accepted publickey/g) ?? []).length;
    const timeoutMs = 1_500;
    setTimeout(() => sshd.signalAll('SIGSTOP'), 500);
    const { ms, err } = await timedFailure(exec.run(['sh', '-c', `sleep 30; : ${marker}`], { timeoutMs }));
    expect(failureClassOf(err), String(err)).toBe('timeout');
    expect(ms).toBeLessThan(timeoutMs + KILL_BOUND_MS + SLACK_MS);
    sshd.signalAll('SIGCONT');
    // The kill went over the command's own connection: no new login for it.
    await new Promise((r) => setTimeout(r, 300));
    expect((sshd.log.match(/Accepted publickey/g) ?? []).length).toBe(accepted);
  }, 60_000);

  it('a port that accepts and never sends a banner: the command times out by its timeout, reconnects included', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n[127.0.0.1]:${port} ${sshd.hostKeyPub.split(/\s+/).slice(0, 2).join(' ')}\n`);
    try {
      const exec = executor({ port });
      const timeoutMs = 2_000;
      const { ms, err } = await timedFailure(exec.run(['true'], { timeoutMs }));
      expect(failureClassOf(err), String(err)).toBe('timeout');
      expect(ms).toBeLessThan(timeoutMs + SLACK_MS);
      expect(sockets.length).toBeGreaterThan(0); // it did connect: the handshake is what hung
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 60_000);
});
