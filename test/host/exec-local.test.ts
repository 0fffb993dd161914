import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { attachDetached, parseDetachedStatus, runDetached, waitDetached } from '../../src/host/exec/detached.ts';
import { LocalExecutor } from '../../src/host/exec/local.ts';
import { shellJoin, shellQuote } from '../../src/host/exec/quote.ts';
import { remoteCommandLine } from '../../src/host/exec/ssh.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-exec-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NASTY = ['', ' ', "'", "it's", '"', '$HOME', '`id`', '$(id)', 'a;b', 'a&&b', '|', '>', '*', '?', '~', '\\', '\n', 'tab\there', '--', '-n', 'é ü', "''\"\"", '!', '#x', '{a,b}', '%s'];

describe('shellQuote', () => {
  it('round-trips every argument through a real POSIX shell unchanged', () => {
    const out = execFileSync('sh', ['-c', `for a in ${NASTY.map(shellQuote).join(' ')}; do printf '<%s>' "$a"; done`], { encoding: 'utf8' });
    expect(out).toBe(NASTY.map((a) => `<${a}>`).join(''));
  });

  it('leaves safe words bare and refuses NUL and empty commands', () => {
    expect(shellJoin(['ls', '-l', '/tmp/a_b.c', 'k=v'])).toBe('ls -l /tmp/a_b.c k=v');
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
    expect(() => shellJoin([])).toThrow(/empty/);
  });

  it('builds the SSH command line: PID marker, cd, env, exec of the quoted argv', () => {
    const line = remoteCommandLine(['printf', '%s', "a'b"], { cwd: '/t mp', env: { X: 'y z' } });
    expect(line).toBe(`printf 'NUKSM_REMOTE_PID %s\\n' "$$" >&2; cd -- '/t mp' || exit 127; exec env 'X=y z' printf %s 'a'\\''b'`);
    expect(() => remoteCommandLine(['true'], { env: { 'A;B': '1' } })).toThrow(/invalid environment variable/);
    const dir = join(work, 't mp');
    mkdirSync(dir);
    const out = execFileSync('sh', ['-c', remoteCommandLine(['sh', '-c', 'printf "%s|%s|%s" "$1" "$X" "$(pwd)"', 'sh', "a'b"], { cwd: dir, env: { X: 'y z' } })], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(out).toBe(`a'b|y z|${dir}`);
  });
});

describe('LocalExecutor', () => {
  const exec = new LocalExecutor({ defaultTimeoutMs: 10_000 });

  it('runs argv without a shell, with cwd, env and stdin', async () => {
    const res = await exec.run(['sh', '-c', 'pwd; echo "$X"; cat', 'sh'], { cwd: '/tmp', env: { X: '$HOME;x' }, input: 'in' });
    expect(res).toMatchObject({ exitCode: 0, stdout: '/tmp\n$HOME;x\nin', stderr: '' });
    expect((await exec.run(['echo', '$(id)'])).stdout).toBe('$(id)\n');
  });

  it('throws on non-zero exit unless allowFailure, and on a missing program', async () => {
    await expect(exec.run(['sh', '-c', 'echo bad >&2; exit 4'])).rejects.toMatchObject({ name: 'CommandError', exitCode: 4, stderr: 'bad\n' });
    expect(await exec.run(['sh', '-c', 'exit 4'], { allowFailure: true })).toMatchObject({ exitCode: 4 });
    await expect(exec.run(['/nonexistent/program'])).rejects.toMatchObject({ exitCode: 127 });
  });

  it('streams output while running', async () => {
    const chunks: string[] = [];
    let firstAt = 0;
    const started = Date.now();
    const res = await exec.run(['sh', '-c', 'echo one; sleep 0.6; echo two'], {
      onStdout: (s) => {
        if (!firstAt) firstAt = Date.now() - started;
        chunks.push(s);
      },
    });
    expect(chunks.join('')).toBe('one\ntwo\n');
    expect(res.durationMs - firstAt).toBeGreaterThan(400);
  });

  it('kills a command that exceeds its timeout', async () => {
    const started = Date.now();
    const err = await exec.run(['sleep', '20'], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('aborts on a signal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(exec.run(['sleep', '20'], { signal: ac.signal })).rejects.toMatchObject({ failureClass: 'timeout', message: expect.stringMatching(/aborted/) });
  });

  it('reads and writes files', async () => {
    const p = join(work, 'f.txt');
    await exec.writeFile(p, 'x\n');
    expect(await exec.readFile(p)).toBe('x\n');
  });
});

describe('detached runs (local executor)', () => {
  const exec = new LocalExecutor();

  it('starts once per id, survives its starter and is collected', async () => {
    const counter = join(work, 'count');
    const argv = ['sh', '-c', 'echo run >> "$1"; sleep 1; printf "out %s" "$2"; echo e >&2; exit 3', 'sh', counter, "it's"];
    const h = await runDetached(exec, argv, { workDir: join(work, 'runs'), id: 'job.1' });
    expect(h).toMatchObject({ id: 'job.1', started: true });
    expect((await runDetached(exec, argv, { workDir: join(work, 'runs'), id: 'job.1' })).started).toBe(false);
    const status = await attachDetached(exec, h);
    expect(status.running).toBe(true);
    expect(status.pid).toBeGreaterThan(0);
    const polls: boolean[] = [];
    const res = await waitDetached(exec, h, { timeoutMs: 10_000, pollMs: 100, onPoll: (s) => polls.push(s.running) });
    expect(res).toEqual({ exitCode: 3, stdout: "out it's", stderr: 'e\n' });
    expect(readFileSync(counter, 'utf8')).toBe('run\n');
    expect(polls[0]).toBe(true);
  });

  it('times out waiting without killing the run, and rejects bad ids', async () => {
    const h = await runDetached(exec, ['sleep', '2'], { workDir: join(work, 'runs'), id: 'slow' });
    await expect(waitDetached(exec, h, { timeoutMs: 200, pollMs: 50 })).rejects.toMatchObject({ failureClass: 'timeout' });
    expect((await attachDetached(exec, h)).running).toBe(true);
    await expect(runDetached(exec, ['true'], { workDir: work, id: '../x' })).rejects.toMatchObject({ failureClass: 'config' });
  });

  it('reports a run that died without an exit status', async () => {
    const h = await runDetached(exec, ['sleep', '30'], { workDir: join(work, 'runs'), id: 'killed' });
    const { pid } = await attachDetached(exec, h);
    process.kill(-pid!, 'SIGKILL'); // its own session and process group (setsid)
    await expect(waitDetached(exec, h, { timeoutMs: 5_000, pollMs: 50 })).rejects.toThrow(/died without an exit status/);
  });

  it('parses status lines', () => {
    expect(parseDetachedStatus('123 - 1')).toEqual({ pid: 123, exitCode: null, running: true });
    expect(parseDetachedStatus('123 0 0')).toEqual({ pid: 123, exitCode: 0, running: false });
    expect(parseDetachedStatus('- - 0')).toEqual({ pid: null, exitCode: null, running: false });
  });
});

describe('LocalExecutor timeouts stop the whole command', () => {
  it('kills grandchildren too (the command runs in its own process group)', async () => {
    const marker = `${40 + Math.random()}`.slice(0, 8);
    await expect(new LocalExecutor().run(['sh', '-c', `sleep ${marker}; echo never`], { timeoutMs: 300 })).rejects.toMatchObject({ failureClass: 'timeout' });
    await new Promise((r) => setTimeout(r, 300));
    const left = (() => {
      try {
        return execFileSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    expect(left).toBe('');
  });
});
