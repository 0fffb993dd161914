/**
 * Copying a directory out of a machine over a real sshd (copyDirectoryOut, the emulated machine's
 * copy-back): streamed into a file, byte-exact, and tar's own failure reported (issue 10 item 11).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyDirectoryOut } from '../../src/campaign/in-machine.ts';
import { SshExecutor } from '../../src/host/exec/ssh.ts';
import { describeWith } from '../support/components.ts';
import { startSshdWithWorkDir } from '../host/sshd-harness.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeWith(['sshd'], 'copyDirectoryOut over a real sshd', () => {
  let server: Awaited<ReturnType<typeof startSshdWithWorkDir>>;
  let work: string;
  let exec: SshExecutor;

  beforeAll(async () => {
    server = await startSshdWithWorkDir('nuksm-copy-out-');
    const { sshd } = server;
    work = server.work;
    exec = new SshExecutor({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKeyPath: sshd.clientKeyPath, knownHostsFile: server.knownHosts });
  });

  afterAll(async () => {
    await exec?.close();
    await server?.stop();
  });

  it('copies a campaign directory byte for byte (binary, incompressible, nested), leaving no archive behind', async () => {
    const src = join(work, 'guest-results');
    const files: Record<string, Buffer> = {
      'c1/results.db': randomBytes(16 * 1024 * 1024), // incompressible: the archive is as large
      'c1/raw/step-1/attempt-1/stdout': Buffer.from('line\n'.repeat(1000)),
      'c1/raw/step-1/attempt-1/empty': Buffer.alloc(0),
      "c1/raw/odd name 'q'/x": Buffer.from([0, 255, 10, 13]),
    };
    for (const [rel, data] of Object.entries(files)) {
      mkdirSync(join(src, rel, '..'), { recursive: true });
      writeFileSync(join(src, rel), data);
    }
    const into = join(work, 'host-results');
    await copyDirectoryOut(exec, src, 'c1', into);
    for (const [rel, data] of Object.entries(files)) expect(sha(readFileSync(join(into, rel))), rel).toBe(sha(data));
    expect(readdirSync(into)).toEqual(['c1']);
  }, 120_000);

  it("reports tar's failure (a missing directory) instead of unpacking an empty archive", async () => {
    const into = join(work, 'host-missing');
    await expect(copyDirectoryOut(exec, join(work, 'guest-results'), 'no-such-campaign', into)).rejects.toThrow(/tar exited 2: .*no-such-campaign: Cannot stat/);
    expect(readdirSync(into)).toEqual([]);
  }, 60_000);
});
