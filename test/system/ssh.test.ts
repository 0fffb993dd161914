/**
 * SshExecutor and detached runs against a real OpenSSH sshd on loopback (own keys, port, config).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { runDetached, waitDetached } from '../../src/host/exec/detached.ts';
import { SshExecutor, type SshExecutorOptions } from '../../src/host/exec/ssh.ts';
import { KsmControl } from '../../src/host/ksm/control.ts';
import { KsmdCpuMonitor } from '../../src/host/monitors/ksmd-cpu.ts';
import { readKsmPlacement } from '../../src/host/monitors/ksm-placement.ts';
import { describeWith } from '../support/components.ts';
import { TestSshd, freePort } from '../host/sshd-harness.ts';

describeWith(['sshd'], 'SshExecutor against a real sshd', () => {
  let sshd: TestSshd;
  let work: string;
  let knownHosts: string;
  const executors: SshExecutor[] = [];

  const executor = (over: Partial<SshExecutorOptions> = {}): SshExecutor => {
    const e = new SshExecutor({
      host: '127.0.0.1',
      port: sshd.port,
      username: sshd.user,
      privateKeyPath: sshd.clientKeyPath,
      knownHostsFile: knownHosts,
      connectRetries: 2,
      connectMaxDelayMs: 500,
      defaultTimeoutMs: 20_000,
      ...over,
    });
    executors.push(e);
    return e;
  };

  beforeAll(async () => {
    sshd = new TestSshd(await freePort());
    await sshd.start();
    work = mkdtempSync(join(tmpdir(), 'nuksm-ssh-test-'));
    knownHosts = join(work, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine()}\n`);
  });

  afterAll(async () => {
    for (const e of executors) await e.close();
    await sshd?.stop();
    sshd?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs an argument array with exact quoting, cwd, env and stdin, reusing one connection', async () => {
    const accepted = () => (sshd.log.match(/Accepted publickey/g) ?? []).length;
    const before = accepted();
    const exec = executor();
    const nasty = `it's a "test" $HOME \`id\` ; rm -rf / & | > * \n second line`;
    const res = await exec.run(['printf', '%s', nasty]);
    expect(res.stdout).toBe(nasty);
    expect(res.exitCode).toBe(0);
    const env = await exec.run(['sh', '-c', 'pwd; echo "$NUKSM_X"; cat'], { cwd: '/tmp', env: { NUKSM_X: 'a b;c' }, input: 'from stdin' });
    expect(env.stdout).toBe('/tmp\na b;c\nfrom stdin');
    const fail = await exec.run(['sh', '-c', 'echo oops >&2; exit 3'], { allowFailure: true });
    expect(fail).toMatchObject({ exitCode: 3, stderr: 'oops\n' });
    await expect(exec.run(['false'])).rejects.toThrow(/exited 1/);
    // One SSH connection for all of the above: sshd accepted exactly one login.
    expect(accepted() - before).toBe(1);
  });

  it('streams output while the command runs', async () => {
    const exec = executor();
    const chunks: { at: number; s: string }[] = [];
    const started = Date.now();
    const res = await exec.run(['sh', '-c', 'echo first; sleep 1; echo second; echo err >&2'], {
      onStdout: (s) => chunks.push({ at: Date.now() - started, s }),
    });
    expect(res.stdout).toBe('first\nsecond\n');
    expect(res.stderr).toBe('err\n');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks[0]!.s).toBe('first\n');
    // The first line arrived well before the command finished.
    expect(res.durationMs - chunks[0]!.at).toBeGreaterThan(700);
  });

  it('times out a command and kills the remote process', async () => {
    const exec = executor();
    const marker = `${30 + Math.random()}`.slice(0, 8);
    const started = Date.now();
    const err = await exec.run(['sleep', marker], { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(8_000);
    // The remote sleep is gone (client and server are this machine).
    await new Promise((r) => setTimeout(r, 300));
    const left = (() => {
      try {
        return execFileSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    })();
    expect(left).toBe('');
    // The connection is still usable.
    expect((await exec.run(['echo', 'still here'])).stdout).toBe('still here\n');
  });

  it('retries the connection while the port refuses, until sshd is up', async () => {
    const late = new TestSshd(await freePort());
    const kh = join(work, 'known_hosts_late');
    writeFileSync(kh, `${late.knownHostsLine()}\n`);
    const exec = new SshExecutor({
      host: '127.0.0.1',
      port: late.port,
      username: late.user,
      privateKeyPath: late.clientKeyPath,
      knownHostsFile: kh,
      connectRetries: 10,
      connectMaxDelayMs: 1_000,
    });
    try {
      const started = Date.now();
      const pending = exec.run(['echo', 'up']);
      setTimeout(() => void late.start(), 2_500);
      expect((await pending).stdout).toBe('up\n');
      expect(Date.now() - started).toBeGreaterThan(2_400);
    } finally {
      await exec.close();
      await late.stop();
      late.cleanup();
    }
  });

  it('refuses an unknown host key (strict is the default) and a changed one', async () => {
    const emptyKh = join(work, 'known_hosts_empty');
    writeFileSync(emptyKh, '');
    const err = await executor({ knownHostsFile: emptyKh }).run(['true']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('guest-unreachable');
    expect((err as Error).message).toMatch(/is not in .*known_hosts_empty/);
    expect(readFileSync(emptyKh, 'utf8')).toBe('');

    const otherKey = join(work, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const [type, key] = readFileSync(`${otherKey}.pub`, 'utf8').trim().split(/\s+/);
    const wrongKh = join(work, 'known_hosts_wrong');
    writeFileSync(wrongKh, `[127.0.0.1]:${sshd.port} ${type} ${key}\n`);
    const err2 = await executor({ knownHostsFile: wrongKh }).run(['true']).catch((e: unknown) => e);
    expect((err2 as HarnessError).failureClass).toBe('guest-unreachable');
    expect((err2 as Error).message).toMatch(/does NOT match/);
  });

  it('accepts entries hashed by ssh-keygen -H', async () => {
    const kh = join(work, 'known_hosts_hashed');
    writeFileSync(kh, `${sshd.knownHostsLine()}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', kh]);
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/);
    expect((await executor({ knownHostsFile: kh }).run(['echo', 'ok'])).stdout).toBe('ok\n');
  });

  it('pins a host key on first use only when enabled, then enforces it', async () => {
    const kh = join(work, 'known_hosts_pin');
    const strict = await executor({ knownHostsFile: kh }).run(['true']).catch((e: unknown) => e);
    expect((strict as HarnessError).failureClass).toBe('guest-unreachable');
    expect(existsSync(kh)).toBe(false);

    expect((await executor({ knownHostsFile: kh, hostKeyPolicy: 'pin-on-first-use' }).run(['echo', 'pinned'])).stdout).toBe('pinned\n');
    // The recorded entry is one OpenSSH itself finds for this host.
    const found = execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', kh], { encoding: 'utf8' });
    expect(found).toContain(sshd.hostKeyPub.split(/\s+/)[1]!);
    // From now on the strict policy accepts it, and a different key for the host is refused.
    expect((await executor({ knownHostsFile: kh }).run(['echo', 'again'])).stdout).toBe('again\n');
    const other = new TestSshd(await freePort());
    try {
      writeFileSync(kh, readFileSync(kh, 'utf8').replace(sshd.hostKeyPub.split(/\s+/)[1]!, other.hostKeyPub.split(/\s+/)[1]!));
      const err = await executor({ knownHostsFile: kh, hostKeyPolicy: 'pin-on-first-use' }).run(['true']).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/does NOT match/);
    } finally {
      other.cleanup();
    }
  });

  it('queues commands beyond the channel limit instead of failing (sshd MaxSessions)', async () => {
    const exec = executor({ maxConcurrentCommands: 3 });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => exec.run(['sh', '-c', `sleep 0.4; echo ${i}`])));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 9 }, (_, i) => `${i}\n`));
    // 9 commands, 3 at a time, 0.4 s each: at least three rounds.
    expect(Date.now() - started).toBeGreaterThan(1_150);
  });

  it('reads and writes files', async () => {
    const exec = executor();
    const path = join(work, 'remote file.txt');
    await exec.writeFile(path, "line 1\nit's line 2\n");
    expect(readFileSync(path, 'utf8')).toBe("line 1\nit's line 2\n");
    expect(await exec.readFile(path)).toBe("line 1\nit's line 2\n");
    await expect(exec.readFile(join(work, 'missing'))).rejects.toThrow(/No such file/);
  });

  it('a detached benchmark survives the SSH connection being killed and is collected after reconnecting', async () => {
    const exec = executor({ connectRetries: 5 });
    const workDir = join(work, 'detached');
    const counter = join(work, 'starts');
    const argv = ['sh', '-c', 'echo start >> "$1"; sleep 3; echo done; echo warn >&2; exit 7', 'bench', counter];
    const handle = await runDetached(exec, argv, { workDir, id: 'bench-1' });
    expect(handle.started).toBe(true);
    // Idempotent: the same id does not start a second copy.
    expect((await runDetached(exec, argv, { workDir, id: 'bench-1' })).started).toBe(false);

    // A foreground command on the same connection sees the drop.
    const inFlight = exec.run(['sleep', '20']).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 800));
    expect(sshd.killSessions()).toBeGreaterThan(0);
    const dropped = await inFlight;
    expect((dropped as HarnessError).failureClass).toBe('guest-unreachable');

    const result = await waitDetached(exec, handle, { timeoutMs: 30_000, pollMs: 300 });
    expect(result).toEqual({ exitCode: 7, stdout: 'done\n', stderr: 'warn\n' });
    expect(readFileSync(counter, 'utf8')).toBe('start\n');
    expect(sshd.log).toMatch(/Accepted publickey[\s\S]*Accepted publickey/);
  });

  describeWith(['root', 'ksm'], 'host primitives over SSH', () => {
    it('drives KSM control and the monitors over SSH (sysfs writes via cat, the node read-out script through the remote shell)', async () => {
      const exec = executor();
      const ksm = new KsmControl(exec);
      const knobs = await ksm.readKnobs();
      expect(knobs.run).toMatch(/^[012]$/);
      // A real sysfs write through `cat >` over SSH, of the current value (other tests on this
      // machine may be using KSM: its state is left unchanged).
      await exec.writeFile('/sys/kernel/mm/ksm/sleep_millisecs', `${knobs.sleep_millisecs}\n`);
      expect((await ksm.readKnobs()).sleep_millisecs).toBe(knobs.sleep_millisecs);
      // The kernel's error comes back through the remote cat.
      await expect(ksm.setKnobs({ run: 7 })).rejects.toMatchObject({ failureClass: 'config', message: expect.stringMatching(/Invalid argument/) });
      expect((await ksm.readKnobs()).run).toBe(knobs.run);
      const ksmd = new KsmdCpuMonitor(exec);
      await ksmd.start();
      await new Promise((r) => setTimeout(r, 300));
      expect((await ksmd.sample(0.3)).map((s) => s.metric)).toEqual(['ksmd_cpu_pct']);
      // The placement script is ~4 KB of JavaScript with quotes and newlines: it must arrive intact.
      const [placement] = await readKsmPlacement(exec, [process.pid]);
      expect(placement!.pid).toBe(process.pid);
      expect(placement!.presentPages).toBeGreaterThan(1000);
      expect(placement!.presentWithoutPfn).toBe(0);
    });
  });
});
