import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { grubKernels, mountsUnder, removeLayerDir } from '../../../src/testbeds/images/debian.ts';
import { describeWith } from '../../support/components.ts';

const work = mkdtempSync(join(tmpdir(), 'nuksm-debian-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('layer helpers', () => {
  it('lists the mount points under a directory, deepest first, decoding /proc/self/mounts escapes', () => {
    const mounts = [
      '/dev/vda / ext4 rw 0 0',
      '/dev/loop3p1 /c/base-1/work/root ext4 rw 0 0',
      'udev /c/base-1/work/root/dev devtmpfs rw 0 0',
      'proc /c/base-1/work/root/proc proc rw 0 0',
      '/dev/loop4p1 /c/base-10/work/root ext4 rw 0 0',
      'tmpfs /c/base-1/work/my\\040dir tmpfs rw 0 0',
    ].join('\n');
    expect(mountsUnder(mounts, '/c/base-1')).toEqual(['/c/base-1/work/root/proc', '/c/base-1/work/root/dev', '/c/base-1/work/my dir', '/c/base-1/work/root']);
    expect(mountsUnder(mounts, '/c/none')).toEqual([]);
  });

  it('reads kernel entries from grub.cfg, skipping recovery entries', () => {
    const cfg = [
      "menuentry 'Debian GNU/Linux, with Linux 6.12.95+deb12-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.12.95+deb12-cloud-amd64-advanced-u' {",
      "menuentry 'Debian GNU/Linux, with Linux 6.12.95+deb12-cloud-amd64 (recovery mode)' --class debian $menuentry_id_option 'gnulinux-6.12.95+deb12-cloud-amd64-recovery-u' {",
      "menuentry 'Debian GNU/Linux, with Linux 6.1.0-50-cloud-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-50-cloud-amd64-advanced-u' {",
    ].join('\n');
    expect(grubKernels(cfg, true)).toEqual([
      { release: '6.12.95+deb12-cloud-amd64', bootEntry: 'gnulinux-6.12.95+deb12-cloud-amd64-advanced-u', suite: 'bookworm-backports' },
      { release: '6.1.0-50-cloud-amd64', bootEntry: 'gnulinux-6.1.0-50-cloud-amd64-advanced-u', suite: 'bookworm' },
    ]);
  });
});

describeWith(['root'], 'removeLayerDir with a mount left by a killed build', () => {
  it('unmounts what is mounted inside before removing, so the mounted source survives', async () => {
    // Stands in for the host's /dev bind-mounted into a chroot.
    const source = join(work, 'host-dev');
    mkdirSync(source);
    writeFileSync(join(source, 'precious'), 'keep me');
    const layer = join(work, 'guest-abc');
    mkdirSync(join(layer, 'work/root/dev'), { recursive: true });
    writeFileSync(join(layer, 'work/disk.raw'), '');
    execFileSync('mount', ['--bind', source, join(layer, 'work/root/dev')]);
    try {
      expect(mountsUnder(readFileSync('/proc/self/mounts', 'utf8'), layer)).toEqual([join(layer, 'work/root/dev')]);
      await removeLayerDir(layer);
    } finally {
      execFileSync('sh', ['-c', `umount "${join(layer, 'work/root/dev')}" 2>/dev/null || true`]);
    }
    expect(existsSync(layer)).toBe(false);
    expect(readFileSync(join(source, 'precious'), 'utf8')).toBe('keep me');
  });
});
