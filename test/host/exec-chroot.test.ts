/**
 * ChrootExecutor: the command line it builds, path mapping, and real runs inside a tiny root made
 * here (busybox-static for sh/cat/pwd, the machine's coreutils env with its libraries).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChrootExecutor } from '../../src/host/exec/chroot.ts';
import { CommandError } from '../../src/host/exec/errors.ts';
import { describeWith } from '../support/components.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-chroot-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('ChrootExecutor (no chroot needed)', () => {
  const exec = new ChrootExecutor('/srv/root', { env: { A: '1' } });

  it('runs argv through chroot + env -i with a clean environment, cwd and extra variables', () => {
    expect(exec.target).toBe('chroot:/srv/root');
    const line = exec.commandLine(['make', '-C', 'x y'], { cwd: '/opt/w', env: { CC: 'gcc' } });
    expect(line.slice(0, 6)).toEqual(['chroot', '/srv/root', '/usr/bin/env', '-i', '-C', '/opt/w']);
    expect(line).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(line).toContain('A=1');
    expect(line).toContain('CC=gcc');
    expect(line.slice(-3)).toEqual(['make', '-C', 'x y']);
    // A command word with '=' would be an assignment to env(1): it goes through sh.
    expect(exec.commandLine(['./a=b', 'x']).slice(-6)).toEqual(['/bin/sh', '-c', 'exec "$@"', 'sh', './a=b', 'x']);
  });

  it('refuses relative roots, relative cwd and paths, bad variable names; .. stops at the root', () => {
    expect(() => new ChrootExecutor('rel/root')).toThrow(/absolute/);
    expect(() => exec.commandLine(['true'], { cwd: 'opt' })).toThrow(/absolute/);
    expect(() => exec.commandLine(['true'], { env: { 'A;B': 'x' } })).toThrow(/invalid environment variable/);
    expect(() => exec.commandLine([])).toThrow(/empty/);
    expect(exec.hostPath('/etc//hosts')).toBe('/srv/root/etc/hosts');
    expect(exec.hostPath('/a/../../etc/passwd')).toBe('/srv/root/etc/passwd');
    expect(() => exec.hostPath('etc/hosts')).toThrow(/absolute/);
  });
});

/** A root with busybox (sh, cat, pwd, printf) and the host's /usr/bin/env plus its shared libraries. */
function tinyRoot(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  execFileSync('chmod', ['755', join(root, 'bin/busybox')]);
  for (const app of ['sh', 'cat', 'pwd', 'printf', 'false']) symlinkSync('busybox', join(root, 'bin', app));
  const env = execFileSync('readlink', ['-f', '/usr/bin/env'], { encoding: 'utf8' }).trim();
  copyFileSync(env, join(root, 'usr/bin/env'));
  execFileSync('chmod', ['755', join(root, 'usr/bin/env')]);
  const libs = execFileSync('ldd', [env], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
  for (const lib of libs) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
}

describeWith(['root'], 'ChrootExecutor in a real chroot', () => {
  it('runs inside the root with its own environment and cwd, maps readFile/writeFile under the root', async () => {
    const root = join(work, 'root');
    tinyRoot(root);
    mkdirSync(join(root, 'work dir'));
    process.env.NUKSM_CHROOT_LEAK = 'host-only';
    const exec = new ChrootExecutor(root);
    const r = await exec.run(['sh', '-c', 'printf "%s|%s|%s|%s" "$1" "$X" "$(pwd)" "${NUKSM_CHROOT_LEAK-unset}"', 'sh', "a'b"], { cwd: '/work dir', env: { X: 'y z' } });
    expect(r.stdout).toBe("a'b|y z|/work dir|unset");
    expect(r.exitCode).toBe(0);

    await exec.writeFile('/etc/nuksm/marker', 'inside\n');
    expect(readFileSync(join(root, 'etc/nuksm/marker'), 'utf8')).toBe('inside\n');
    expect((await exec.run(['cat', '/etc/nuksm/marker'])).stdout).toBe('inside\n');
    expect(await exec.readFile('/etc/nuksm/marker')).toBe('inside\n');
    expect(existsSync('/etc/nuksm/marker')).toBe(false);

    expect((await exec.run(['false'], { allowFailure: true })).exitCode).toBe(1);
    await expect(exec.run(['false'])).rejects.toBeInstanceOf(CommandError);
    const input = await exec.run(['cat'], { input: 'from stdin' });
    expect(input.stdout).toBe('from stdin');
  });
});
