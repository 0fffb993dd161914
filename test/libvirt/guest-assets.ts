/**
 * A bootable test guest without a disk image: a kernel (the host's own from /boot when readable,
 * else Debian's cloud kernel fetched with `apt-get download` + `dpkg -x` into a cache directory)
 * and a busybox-static initramfs written here as a newc cpio archive (no cpio binary needed).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const GUEST_UP_MARKER = 'NUKSM-GUEST-UP';

/** QEMU runs as libvirt-qemu under qemu:///system: the cache must be outside root's 0700 home. */
export function assetCacheDir(): string {
  const dir = process.env.NUKSM_CACHE_DIR ?? (process.getuid?.() === 0 ? '/var/cache/nuksm' : join(homedir(), '.cache', 'nuksm'));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return dir;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Path of a bzImage to boot. */
export function ensureGuestKernel(cacheDir = assetCacheDir()): string {
  const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const own = `/boot/vmlinuz-${release}`;
  if (existsSync(own) && readable(own)) return own;

  const dir = join(cacheDir, 'debian-cloud-kernel');
  const found = existsSync(join(dir, 'boot')) ? readdirSync(join(dir, 'boot')).find((f) => f.startsWith('vmlinuz-')) : undefined;
  if (found) return join(dir, 'boot', found);

  // linux-image-cloud-amd64 is a metapackage: download the versioned image it depends on.
  const deps = execFileSync('apt-cache', ['depends', 'linux-image-cloud-amd64'], { encoding: 'utf8', timeout: 60_000 });
  const pkg = /Depends:\s+(linux-image-\S+)/.exec(deps)?.[1];
  if (!pkg) throw new Error(`cannot resolve linux-image-cloud-amd64 (run apt-get update?): ${deps}`);
  const dl = join(cacheDir, 'deb');
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  execFileSync('apt-get', ['download', pkg], { cwd: dl, stdio: 'pipe', timeout: 300_000 });
  const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
  rmSync(dir, { recursive: true, force: true });
  execFileSync('dpkg', ['-x', join(dl, deb), dir], { stdio: 'pipe', timeout: 120_000 });
  rmSync(dl, { recursive: true, force: true });
  const kernel = readdirSync(join(dir, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  if (!kernel) throw new Error(`no vmlinuz in ${pkg}`);
  return join(dir, 'boot', kernel);
}

interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

function newc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }] as CpioEntry[]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(e.name + '\0');
    const fields = [ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, e.rdevMajor ?? 0, e.rdevMinor ?? 0, name.length, 0];
    const header = Buffer.from('070701' + fields.map(hex).join(''));
    parts.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  }
  return Buffer.concat(parts);
}

/** Shared libraries of a dynamically linked binary, from ldd (absolute paths). */
function sharedLibs(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  return [...out.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1]).filter((v, i, a) => a.indexOf(v) === i);
}

export interface SshGuestFiles {
  /** ssh-keygen'd host key (private) the guest's sshd uses; the test pins its .pub in known_hosts. */
  hostKeyPath: string;
  /** Public key allowed to log in as root. */
  authorizedKey: string;
}

/**
 * A guest that answers SSH: busybox, the host's OpenSSH sshd with its libraries, the virtio-net
 * modules of the guest kernel (Debian's cloud kernel builds them as modules), QEMU user networking
 * (10.0.2.15/24, the harness reaches sshd through a loopback port forward), root login by key only.
 */
export function buildSshInitramfs(path: string, kernel: string, files: SshGuestFiles, fillMiB = 16): string {
  const release = /vmlinuz-(.+)$/.exec(kernel)?.[1];
  const modRoot = join(kernel, '..', '..', 'lib', 'modules', release ?? '');
  if (!release || !existsSync(modRoot)) throw new Error(`no modules for ${kernel} (expected ${modRoot})`);
  const modules = ['virtio/virtio.ko', 'virtio/virtio_ring.ko', 'virtio/virtio_pci_modern_dev.ko', 'virtio/virtio_pci_legacy_dev.ko', 'virtio/virtio_pci.ko', '../net/core/failover.ko', 'net/net_failover.ko', 'net/virtio_net.ko'].map(
    (m) => join(modRoot, 'kernel', 'drivers', m),
  );
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run',
    'mkdir -p /dev/pts /run/sshd /var/empty && mount -t devpts devpts /dev/pts',
    // Load order by retry: a module whose dependencies are not in yet fails and is retried next pass.
    `for pass in 1 2 3 4; do for m in /lib/nuksm-modules/*.ko; do insmod "$m" 2>/dev/null; done; done`,
    'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2',
    '/usr/sbin/sshd -e -f /etc/ssh/sshd_config',
    `echo ${GUEST_UP_MARKER} $(uname -r) cpus=$(nproc) sshd`,
    `yes nuksm-identical-page | head -c ${fillMiB * 1024 * 1024} > /tmp/fill`,
    'echo NUKSM-GUEST-FILLED',
    'while true; do sleep 3600; done',
    '',
  ].join('\n');
  const sshdConfig = ['Port 22', 'HostKey /etc/ssh/ssh_host_key', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'AuthorizedKeysFile /root/.ssh/authorized_keys', 'StrictModes no', 'PidFile /run/sshd.pid', ''].join('\n');
  const DIR = 0o040755;
  const dirs = new Set<string>(['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'etc', 'etc/ssh', 'root', 'root/.ssh', 'usr', 'usr/sbin', 'lib', 'lib/nuksm-modules', 'var']);
  const entries: CpioEntry[] = [];
  const addFile = (dest: string, data: Buffer, mode = 0o100644) => {
    const parts = dest.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    entries.push({ name: dest, mode, data });
  };
  addFile('bin/busybox', readFileSync('/bin/busybox'), 0o100755);
  addFile('init', Buffer.from(init), 0o100755);
  addFile('usr/sbin/sshd', readFileSync('/usr/sbin/sshd'), 0o100755);
  for (const lib of sharedLibs('/usr/sbin/sshd')) addFile(lib.replace(/^\//, ''), readFileSync(lib), 0o100755);
  modules.forEach((m, i) => addFile(`lib/nuksm-modules/${i}.ko`, readFileSync(m)));
  addFile('etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n'));
  addFile('etc/group', Buffer.from('root:x:0:\nnogroup:x:65534:\n'));
  addFile('etc/shadow', Buffer.from('root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n'), 0o100600);
  addFile('etc/ssh/sshd_config', Buffer.from(sshdConfig));
  addFile('etc/ssh/ssh_host_key', readFileSync(files.hostKeyPath), 0o100600);
  addFile('root/.ssh/authorized_keys', Buffer.from(`${files.authorizedKey.trim()}\n`), 0o100600);
  const archive = newc([
    ...[...dirs].sort().map((name) => ({ name, mode: DIR })),
    { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
    ...entries,
  ]);
  writeFileSync(path, gzipSync(archive));
  return path;
}

/**
 * The guest's /init: print a marker on the serial console, then fill `fillMiB` of tmpfs with the
 * same bytes in every guest (so KSM has identical pages to merge) and idle.
 */
export function buildInitramfs(path: string, fillMiB = 32): string {
  const init = [
    '#!/bin/busybox sh',
    '/bin/busybox --install -s /bin',
    'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs -o size=90% tmpfs /tmp',
    `echo ${GUEST_UP_MARKER} $(uname -r) cpus=$(nproc)`,
    `yes nuksm-identical-page | head -c ${fillMiB * 1024 * 1024} > /tmp/fill`,
    'echo NUKSM-GUEST-FILLED',
    'while true; do sleep 3600; done',
    '',
  ].join('\n');
  const DIR = 0o040755;
  const archive = newc([
    { name: 'bin', mode: DIR },
    { name: 'dev', mode: DIR },
    { name: 'proc', mode: DIR },
    { name: 'sys', mode: DIR },
    { name: 'tmp', mode: DIR },
    { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
    { name: 'bin/busybox', mode: 0o100755, data: readFileSync('/bin/busybox') },
    { name: 'init', mode: 0o100755, data: Buffer.from(init) },
  ]);
  writeFileSync(path, gzipSync(archive));
  return path;
}
