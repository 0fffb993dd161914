/**
 * What every nuksm disk image is made of, shared by the emulated testbed's image and the guest
 * image: a raw disk with one partition, debootstrap bookworm minbase + the packages every image
 * needs, GRUB, an SSH host key pinned in known_hosts next to the image and root's login key (the
 * "base layer", cached by a hash of its inputs), and the helpers layers are built with (loop
 * attach, mounts, chroot, the cache lock, hashing).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { HarnessError } from '../../core/errors.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { resolveDebianMirror, type DebianMirror } from './apt-mirror.ts';

export const BASE_PACKAGES = ['systemd-sysv', 'openssh-server', 'cron', 'numactl', 'grub-pc', 'linux-image-cloud-amd64', 'procps', 'kmod', 'iproute2', 'util-linux'];
const BACKPORTS_KERNEL = 'linux-image-cloud-amd64';
export const IMAGE_SIZE = '3G';
/** Bumped when the base recipe changes in a way the inputs do not show. */
const RECIPE_VERSION = 'emulated-base-v1';

export interface DebianKernel {
  /** `uname -r` of the kernel. */
  release: string;
  /** GRUB menu entry id usable with grub-reboot. */
  bootEntry: string;
  suite: 'bookworm' | 'bookworm-backports';
}

const run = new LocalExecutor({ defaultTimeoutMs: 120_000 });

export async function sh(argv: string[], timeoutMs = 120_000, env?: Record<string, string>): Promise<string> {
  const res = await run.run(argv, { timeoutMs, env: env ? { ...process.env, ...env } as Record<string, string> : undefined });
  return res.stdout;
}

export function hash(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Every file under dir (relative), sorted, skipping names in skip. */
export async function listFiles(dir: string, skip: ReadonlySet<string>, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (skip.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, skip, base)));
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

/** Hash of the names and contents of every file under dir. */
export async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of await listFiles(dir, new Set())) h.update(f).update('\0').update(await readFile(join(dir, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** apt-get options for a configuration limited to bookworm-backports, with its own lists and cache under workDir. */
export async function backportsApt(workDir: string, mirror: DebianMirror): Promise<string[]> {
  const aptDir = join(workDir, 'apt');
  await mkdir(join(aptDir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(aptDir, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror.backportsUri} bookworm-backports main\n`);
  return [
    '-o', `Dir::Etc::sourcelist=${join(aptDir, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
  ];
}

type Backports = { aptOpts: string[]; pkg: string; version: string } | null;

/**
 * The backports kernel's image package (name + version), or null when the suite is unreachable.
 * Tried three times: a mirror answering mid-sync once left this without the cloud kernel, and
 * falling back to a one-kernel image makes a different image.
 */
async function resolveBackportsKernel(workDir: string, mirror: DebianMirror, log: (l: string) => void): Promise<Backports> {
  const aptOpts = await backportsApt(workDir, mirror);
  let why = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) {
      log(`bookworm-backports: ${why}; retrying (${attempt}/3)`);
      await new Promise((r) => setTimeout(r, 5_000 * attempt));
    }
    const update = await run.run(['apt-get', ...aptOpts, 'update'], { timeoutMs: 180_000, allowFailure: true });
    if (update.exitCode !== 0 || /^(E|W): Failed/m.test(update.stderr)) {
      why = `not reachable at ${mirror.backportsUri} (${update.stderr.trim().split('\n').pop()})`;
      continue;
    }
    const depends = await run.run(['apt-cache', ...aptOpts, 'depends', BACKPORTS_KERNEL], { timeoutMs: 60_000, allowFailure: true });
    const pkg = /Depends: (linux-image-\S+)/.exec(depends.stdout)?.[1];
    if (!pkg) {
      why = `no cloud kernel in the index (apt-cache: ${(depends.stderr || depends.stdout).trim().split('\n').slice(0, 2).join(' ') || 'no output'})`;
      continue;
    }
    const show = await sh(['apt-cache', ...aptOpts, 'show', pkg], 60_000);
    const version = /^Version: (\S+)/m.exec(show)?.[1] ?? 'unknown';
    return { aptOpts, pkg, version };
  }
  log(`bookworm-backports: ${why}; building with the 6.1 kernel only`);
  return null;
}

/** Mounts made for a build, released in reverse order. */
export class Mounts {
  private readonly stack: string[] = [];
  async mount(argv: string[], target: string): Promise<void> {
    await mkdir(target, { recursive: true });
    await sh(['mount', ...argv, target], 60_000);
    this.stack.push(target);
  }
  /** /dev (bind), /proc and /sys of a chroot. */
  async chrootFilesystems(root: string): Promise<void> {
    await this.mount(['--bind', '/dev'], join(root, 'dev'));
    await this.mount(['-t', 'proc', 'proc'], join(root, 'proc'));
    await this.mount(['-t', 'sysfs', 'sysfs'], join(root, 'sys'));
  }
  async releaseAll(): Promise<void> {
    while (this.stack.length > 0) {
      const target = this.stack.pop()!;
      await run.run(['umount', target], { timeoutMs: 60_000, allowFailure: true });
    }
  }
}

/** Mount points at or under dir, deepest first (from /proc/self/mounts; octal escapes decoded). */
export function mountsUnder(mountsText: string, dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return mountsText
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((t): t is string => !!t)
    .map((t) => t.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((t) => t === dir || t.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove a layer directory left by an earlier build. A build killed half-way can leave its
 * chroot mounts (a bind mount of the host's /dev among them) and loop devices: those are
 * unmounted and detached first, and nothing is removed while anything is still mounted there,
 * since a recursive remove would go into the host's /dev.
 */
export async function removeLayerDir(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (let pass = 0; pass < 3; pass++) {
    const targets = mountsUnder(await readFile('/proc/self/mounts', 'utf8'), dir);
    if (targets.length === 0) break;
    for (const t of targets) await run.run(['umount', t], { timeoutMs: 60_000, allowFailure: true });
  }
  const left = mountsUnder(await readFile('/proc/self/mounts', 'utf8'), dir);
  if (left.length > 0) {
    for (const t of left) await run.run(['umount', '-l', t], { timeoutMs: 60_000, allowFailure: true });
    const still = mountsUnder(await readFile('/proc/self/mounts', 'utf8'), dir);
    if (still.length > 0) throw new HarnessError('config', `cannot remove ${dir}: still mounted there: ${still.join(', ')}`);
  }
  for (const f of await listFiles(dir, new Set(['root'])).catch(() => [] as string[])) {
    if (!f.endsWith('.raw') && !f.endsWith('.partial')) continue;
    const loops = await run.run(['losetup', '-j', join(dir, f)], { timeoutMs: 30_000, allowFailure: true });
    for (const line of loops.stdout.split('\n')) {
      const dev = /^(\/dev\/loop\d+):/.exec(line)?.[1];
      if (dev) await detachDisk(dev);
    }
  }
  await rm(dir, { recursive: true, force: true });
}

/** Attach a raw disk with partition scanning; returns the loop device and its first partition node. */
export async function attachDisk(disk: string): Promise<{ loop: string; part: string }> {
  const loop = (await sh(['losetup', '-fP', '--show', disk], 60_000)).trim();
  await run.run(['partx', '-a', loop], { timeoutMs: 30_000, allowFailure: true });
  const name = loop.replace('/dev/', '');
  const part = `${loop}p1`;
  // In containers udev does not create partition nodes: make it from sysfs.
  for (let i = 0; i < 50 && !existsSync(part); i++) {
    const devFile = `/sys/block/${name}/${name}p1/dev`;
    if (existsSync(devFile)) {
      const [major, minor] = (await readFile(devFile, 'utf8')).trim().split(':');
      await run.run(['mknod', part, 'b', major!, minor!], { timeoutMs: 10_000, allowFailure: true });
    } else {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (!existsSync(part)) throw new HarnessError('boot', `partition node ${part} did not appear for ${disk}`);
  return { loop, part };
}

export async function detachDisk(loop: string): Promise<void> {
  await run.run(['losetup', '-d', loop], { timeoutMs: 30_000, allowFailure: true });
}

/**
 * Attach a raw disk, mount its root partition at `root`, run fn, then unmount everything fn
 * mounted through the given Mounts and detach the disk, whatever happens.
 */
export async function withMountedDisk<T>(disk: string, root: string, fn: (ctx: { root: string; loop: string; part: string; mounts: Mounts }) => Promise<T>): Promise<T> {
  const { loop, part } = await attachDisk(disk);
  const mounts = new Mounts();
  try {
    await mounts.mount([part], root);
    return await fn({ root, loop, part, mounts });
  } finally {
    await mounts.releaseAll();
    await detachDisk(loop);
  }
}

export const CHROOT_ENV = { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

export function chroot(root: string, argv: string[], timeoutMs = 300_000): Promise<string> {
  return sh(['chroot', root, ...argv], timeoutMs, CHROOT_ENV);
}

export const GRUB_DEFAULTS = `GRUB_DEFAULT=saved
GRUB_SAVEDEFAULT=false
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 panic=10"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_SUBMENU=y
`;

export const NETWORK_UNIT = `[Match]
Name=en*

[Network]
DHCP=yes
`;

async function buildBaseDisk(dir: string, mirror: DebianMirror, backports: Backports, log: (l: string) => void): Promise<DebianKernel[]> {
  const work = join(dir, 'work');
  await mkdir(work, { recursive: true });
  const disk = join(work, 'disk.raw');
  await rm(disk, { force: true });
  await sh(['qemu-img', 'create', '-f', 'raw', disk, IMAGE_SIZE], 60_000);
  await run.run(['sfdisk', '--quiet', disk], { input: 'label: dos\nstart=2048, type=83, bootable\n', timeoutMs: 60_000 });
  const { loop, part } = await attachDisk(disk);
  const mounts = new Mounts();
  const root = join(work, 'root');
  try {
    await sh(['mkfs.ext4', '-q', '-L', 'nuksm-root', part], 120_000);
    const uuid = (await sh(['blkid', '-s', 'UUID', '-o', 'value', part], 30_000)).trim();
    await mounts.mount([part], root);
    log(`debootstrap bookworm minbase from ${mirror.uri} (about 2-3 min)`);
    await sh(['debootstrap', '--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, 'bookworm', root, mirror.uri], 1_200_000);
    await mounts.chrootFilesystems(root);
    await writeFile(join(root, 'etc/fstab'), `UUID=${uuid} / ext4 errors=remount-ro 0 1\n`);
    await writeFile(join(root, 'etc/hostname'), 'nuksm-emulated\n');
    await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n127.0.1.1 nuksm-emulated\n');
    await writeFile(join(root, 'etc/default/grub'), GRUB_DEFAULTS);
    await writeFile(join(root, 'etc/systemd/network/20-wired.network'), NETWORK_UNIT);
    await chroot(root, ['systemctl', 'enable', 'systemd-networkd', 'ssh', 'cron']);
    await chroot(root, ['sh', '-c', 'echo root:nuksm | chpasswd']);
    if (backports) {
      log(`adding ${backports.pkg} ${backports.version} from bookworm-backports`);
      const debs = join(work, 'debs');
      await mkdir(debs, { recursive: true });
      await run.run(['apt-get', ...backports.aptOpts, 'download', `${backports.pkg}=${backports.version}`], { cwd: debs, timeoutMs: 600_000 });
      const deb = (await readdir(debs)).find((f) => f.endsWith('.deb'))!;
      await mkdir(join(root, 'tmp/debs'), { recursive: true });
      await sh(['cp', join(debs, deb), join(root, 'tmp/debs', deb)]);
      await chroot(root, ['dpkg', '-i', `/tmp/debs/${deb}`], 900_000);
      await rm(join(root, 'tmp/debs'), { recursive: true, force: true });
    }
    log('grub-install + update-grub');
    await chroot(root, ['grub-install', '--target=i386-pc', '--modules=part_msdos ext2', loop], 300_000);
    await chroot(root, ['update-grub'], 300_000);
    // update-grub in a chroot names the loop partition as root; the guest needs the UUID.
    const grubCfgPath = join(root, 'boot/grub/grub.cfg');
    const grubCfg = (await readFile(grubCfgPath, 'utf8')).replaceAll(`root=${part}`, `root=UUID=${uuid}`);
    await writeFile(grubCfgPath, grubCfg);
    // Keys: a host key made here (pinned next to the image) and root's login key.
    for (const f of await readdir(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) await rm(join(root, 'etc/ssh', f));
    await sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nuksm-emulated-host', '-f', join(dir, 'host_ed25519_key')]);
    await sh(['cp', join(dir, 'host_ed25519_key'), join(root, 'etc/ssh/ssh_host_ed25519_key')]);
    await sh(['cp', join(dir, 'host_ed25519_key.pub'), join(root, 'etc/ssh/ssh_host_ed25519_key.pub')]);
    await sh(['chmod', '600', join(root, 'etc/ssh/ssh_host_ed25519_key')]);
    await writeFile(join(root, 'etc/ssh/sshd_config.d/nuksm.conf'), 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUseDNS no\n');
    await sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nuksm-harness', '-f', join(dir, 'id_ed25519')]);
    await mkdir(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    await sh(['cp', join(dir, 'id_ed25519.pub'), join(root, 'root/.ssh/authorized_keys')]);
    await sh(['chmod', '600', join(root, 'root/.ssh/authorized_keys')]);
    await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:* ${await hostKeyOf(dir)}\n`);
    await chroot(root, ['apt-get', 'clean']);
    return grubKernels(grubCfg, backports !== null);
  } finally {
    await mounts.releaseAll();
    await detachDisk(loop);
  }
}

/** `<type> <base64>` of the host key generated for a base layer. */
export async function hostKeyOf(baseDir: string): Promise<string> {
  return (await readFile(join(baseDir, 'host_ed25519_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
}

/** Kernel entries from the generated grub.cfg (ids usable with grub-reboot). */
export function grubKernels(grubCfg: string, withBackports: boolean): DebianKernel[] {
  const kernels: DebianKernel[] = [];
  const re = /menuentry '[^']*with Linux ([^' ]+)'[^{]*\$menuentry_id_option '([^']+)'/g;
  for (const m of grubCfg.matchAll(re)) {
    const release = m[1]!;
    if (release.includes('recovery') || m[2]!.includes('recovery')) continue;
    if (kernels.some((k) => k.release === release)) continue;
    kernels.push({ release, bootEntry: m[2]!, suite: withBackports && release.startsWith('6.12') ? 'bookworm-backports' : 'bookworm' });
  }
  return kernels;
}

/**
 * One builder at a time per cache dir (test files and commands may start together): a lock
 * directory holding the owner's pid; a lock whose owner is gone is taken over.
 */
export async function withCacheLock<T>(cacheDir: string, log: (l: string) => void, fn: () => Promise<T>): Promise<T> {
  const lock = join(cacheDir, '.build-lock');
  const deadline = Date.now() + 40 * 60_000;
  let told = false;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
      const alive = owner > 0 && (() => {
        try {
          process.kill(owner, 0);
          return true;
        } catch {
          return false;
        }
      })();
      if (!alive && owner > 0) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new HarnessError('timeout', `image cache ${cacheDir} stayed locked by pid ${owner} for 40 min`);
      if (!told) log(`waiting for another image build (pid ${owner}) to finish`);
      told = true;
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

export interface DebianBase {
  dir: string;
  /** Raw disk of the base layer (never written after it is built). */
  disk: string;
  key: string;
  /** Root's private key; its public half is root's authorized key in the image. */
  identityFile: string;
  /** `[127.0.0.1]:* <host key>`. */
  knownHostsFile: string;
  /** `<type> <base64>` of the image's SSH host key. */
  hostKey: string;
  kernels: DebianKernel[];
  backportsReachable: boolean;
  mirror: DebianMirror;
  builtNow: boolean;
  buildSeconds: number;
}

export interface EnsureBaseOptions {
  /** Cache directory holding `base-<key>/` (absolute or relative to the working directory). */
  cacheDir: string;
  /** Explicit Debian mirror URI; default: the one this machine's apt sources serve bookworm main from. */
  mirror?: string;
  force?: boolean;
  log?: (line: string) => void;
}

/**
 * The base layer in cacheDir, built when missing (or forced). The caller must hold cacheDir's
 * lock (withCacheLock). The mirror is not part of the key: the package set and the backports
 * kernel version are.
 */
export async function ensureDebianBase(opts: EnsureBaseOptions): Promise<DebianBase> {
  // Absolute: apt reads relative Dir:: options under /etc/apt, and the image's paths are recorded.
  const cacheDir = resolve(opts.cacheDir);
  const log = opts.log ?? (() => undefined);
  const mirror = await resolveDebianMirror({ mirror: opts.mirror });
  log(`Debian mirror ${mirror.uri} (from ${mirror.from})${mirror.backportsUri !== mirror.uri ? `, backports from ${mirror.backportsUri}` : ''}`);
  const backports = await resolveBackportsKernel(join(cacheDir, 'probe'), mirror, log);
  const key = hash([RECIPE_VERSION, ...BASE_PACKAGES, GRUB_DEFAULTS, NETWORK_UNIT, backports ? `${backports.pkg}=${backports.version}` : 'no-backports', IMAGE_SIZE]);
  const dir = join(cacheDir, `base-${key}`);
  const manifestPath = join(dir, 'manifest.json');
  let buildSeconds = 0;
  if (opts.force || !existsSync(manifestPath)) {
    const t0 = Date.now();
    log(`building base image ${key} in ${dir}`);
    await removeLayerDir(dir);
    await mkdir(dir, { recursive: true });
    const kernels = await buildBaseDisk(dir, mirror, backports, log);
    await rename(join(dir, 'work', 'disk.raw'), join(dir, 'disk.raw'));
    await rm(join(dir, 'work'), { recursive: true, force: true });
    buildSeconds = (Date.now() - t0) / 1000;
    await writeFile(manifestPath, JSON.stringify({ baseKey: key, kernels, backportsReachable: backports !== null, buildSeconds, builtAt: new Date().toISOString() }, null, 2));
    log(`base image built in ${buildSeconds.toFixed(0)} s`);
  } else {
    log(`base image ${key} from cache`);
  }
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { kernels: DebianKernel[]; backportsReachable: boolean };
  return {
    dir,
    disk: join(dir, 'disk.raw'),
    key,
    identityFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    hostKey: await hostKeyOf(dir),
    kernels: manifest.kernels,
    backportsReachable: manifest.backportsReachable,
    mirror,
    builtNow: buildSeconds > 0,
    buildSeconds,
  };
}

/** Mtime of a layer's manifest (for pruning), or null when it has none. */
export async function manifestMtime(dir: string): Promise<number | null> {
  const m = await stat(join(dir, 'manifest.json')).catch(() => null);
  return m ? m.mtimeMs : null;
}
