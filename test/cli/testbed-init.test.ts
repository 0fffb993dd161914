/** `nuksm testbed init`: a testbed file for libvirt TCG guests on this machine, validated by the loader. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { readHostNodes } from '../../src/testbeds/physical/topology.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-tb-init-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function nuksm(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Stand-ins for the guest image (the loader checks that key and known_hosts exist).
const imageDir = join(tmp, 'guest', 'current');
mkdirSync(imageDir, { recursive: true });
for (const f of ['id_ed25519', 'known_hosts', 'disk.qcow2']) writeFileSync(join(imageDir, f), 'stand-in\n');

describe('nuksm testbed init', () => {
  it("writes this machine's nodes, running kernel and guest image with loopback user networking, and the file loads", async () => {
    const out = join(tmp, 'this-host.yaml');
    const r = nuksm('testbed', 'init', '--out', out, '--guest-image-dir', imageDir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(out);
    const tb = loadTestbedFile(out);
    const host = await readHostNodes(new LocalExecutor());
    expect(tb.nodes.map((n) => [n.id, n.cpus])).toEqual(host.map((n) => [n.id, n.cpus]));
    // Node memory as sysfs reports it (this VM's node MemTotal can grow while it runs, never shrink).
    for (const n of tb.nodes) expect(n.memoryGiB).toBeLessThanOrEqual(host.find((h) => h.id === n.id)!.memoryGiB);
    const release = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
    expect(tb.kernels).toEqual({ running: { bootEntry: 'current', release, ksmKnobs: {} } });
    expect(tb.modes).toEqual({ 'ksm-off': { kernels: ['running'], ksmKnobs: {}, placement: 'kernel' }, ksm: { kernels: ['running'], ksmKnobs: {}, placement: 'kernel' } });
    expect(tb).toMatchObject({ kind: 'physical', host: { kind: 'local' }, perfEventSet: 'none', resume: 'none', libvirtUri: 'qemu:///system', timeouts: { bootS: 300, commandS: 900 } });
    expect(tb.guests).toEqual({
      user: 'root',
      identityFile: join(imageDir, 'id_ed25519'),
      knownHostsFile: join(imageDir, 'known_hosts'),
      baseImage: join(imageDir, 'disk.qcow2'),
      overlayDir: '/var/lib/nuksm/overlays',
      network: '',
      networking: { kind: 'user', sshHost: '127.0.0.1' },
    });
    expect(readFileSync(out, 'utf8')).toMatch(/^# Written by `nuksm testbed init`/);
  });

  it('refuses to overwrite without --force (exit 2, file unchanged), overwrites with it', () => {
    const out = join(tmp, 'keep.yaml');
    writeFileSync(out, 'mine\n');
    const r = nuksm('testbed', 'init', '--out', out, '--guest-image-dir', imageDir);
    expect(r.code).toBe(EXIT.config);
    expect(r.stderr).toContain(`--out: ${out} exists; pass --force`);
    expect(readFileSync(out, 'utf8')).toBe('mine\n');
    expect(nuksm('testbed', 'init', '--out', out, '--guest-image-dir', imageDir, '--force').code).toBe(EXIT.ok);
    expect(loadTestbedFile(out).name).toBe('this-host-vms');
  });

  it('a missing guest image or a non-loopback SSH host is refused with the key named, and nothing is written', () => {
    const dir = join(tmp, 'refused');
    mkdirSync(dir);
    const out = join(dir, 'tb.yaml');
    const missing = nuksm('testbed', 'init', '--out', out, '--guest-image-dir', join(tmp, 'no-image'));
    expect(missing.code).toBe(EXIT.config);
    expect(missing.stderr).toContain(`${out}: guests.identityFile: ${join(tmp, 'no-image', 'id_ed25519')} does not exist`);
    const exposed = nuksm('testbed', 'init', '--out', out, '--guest-image-dir', imageDir, '--ssh-host', '0.0.0.0');
    expect(exposed.code).toBe(EXIT.config);
    expect(exposed.stderr).toContain(`${out}: guests.network.user.sshHost: '0.0.0.0' is not a loopback address`);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('testbed build stays reachable under the same parent command', () => {
    const r = nuksm('testbed', 'build', '--help');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain('nuksm testbed build <kind>');
    const none = nuksm('testbed');
    expect(none.code).toBe(EXIT.config);
    expect(none.stderr).toMatch(/build or init/);
  });
});
