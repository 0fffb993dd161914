/**
 * Builds the emulated testbed's disk image from Debian packages only, in two cached layers:
 *  - base: debootstrap bookworm minbase (systemd, sshd, cron, numactl, grub-pc, the bookworm
 *    cloud kernel 6.1) + the bookworm-backports cloud kernel 6.12, GRUB on a raw disk, an SSH host
 *    key generated here and pinned in known_hosts next to the image, a root authorized key.
 *    Keyed by a hash of the package inputs (minutes to build; rebuilt only when they change).
 *  - image: the base plus this machine's node binary, the harness tree (so a campaign can resume
 *    inside the guest) and the native workload binaries compiled on the host. Keyed by the base
 *    key + a hash of those files (seconds to build).
 * Guests never write to the cached image: each run boots a qcow2 overlay on it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HarnessError } from '../../core/errors.ts';
import type { KernelSpec } from '../../core/testbed-file.ts';
import { LocalExecutor } from '../../host/exec/index.ts';
import { buildNativeWorkloads, NATIVE_SOURCE_DIR } from '../../workloads/native/build.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_IMAGE_CACHE_DIR = join(REPO_ROOT, '.cache', 'emulated');
/** Where the harness lives inside the guest. */
export const GUEST_HARNESS_DIR = '/opt/nuksm';
/** In a machine's state dir: the image disk its overlay is backed by (image layers in use are not pruned). */
export const MACHINE_IMAGE_FILE = 'image';
export const GUEST_NATIVE_BIN_DIR = '/opt/nuksm-native/bin';

const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const BASE_PACKAGES = ['systemd-sysv', 'openssh-server', 'cron', 'numactl', 'grub-pc', 'linux-image-cloud-amd64', 'procps', 'kmod', 'iproute2', 'util-linux'];
const BACKPORTS_KERNEL = 'linux-image-cloud-amd64';
const IMAGE_SIZE = '3G';
/** Bumped when the recipe below changes in a way the inputs do not show. */
const RECIPE_VERSION = 'emulated-base-v1';

export interface EmulatedKernel {
  /** `uname -r` of the kernel. */
  release: string;
  /** GRUB menu entry id usable with grub-reboot. */
  bootEntry: string;
  suite: 'bookworm' | 'bookworm-backports';
}

export interface EmulatedImage {
  /** Raw disk image (read-only to runs: they boot overlays). */
  disk: string;
  dir: string;
  /** Root's private key for SSH into the guest. */
  identityFile: string;
  /** known_hosts pinning the guest's host key for [127.0.0.1]:* . */
  knownHostsFile: string;
  kernels: EmulatedKernel[];
  /** Whether the backports kernel could be fetched here (if not, only the 6.1 kernel is present). */
  backportsReachable: boolean;
  key: string;
  baseKey: string;
  builtNow: boolean;
  baseBuiltNow: boolean;
  /** Wall seconds of this call's building (0 when both layers came from the cache). */
  buildSeconds: { base: number; image: number };
}

export interface BuildEmulatedImageOptions {
  cacheDir?: string;
  /** Progress lines (the build takes minutes on a cold cache). */
  log?: (line: string) => void;
  /** Rebuild even when cached. */
  force?: boolean;
}

const run = new LocalExecutor({ defaultTimeoutMs: 120_000 });

async function sh(argv: string[], timeoutMs = 120_000, env?: Record<string, string>): Promise<string> {
  const res = await run.run(argv, { timeoutMs, env: env ? { ...process.env, ...env } as Record<string, string> : undefined });
  return res.stdout;
}

function hash(parts: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** An apt configuration limited to bookworm-backports, with its own lists and cache. */
async function backportsApt(workDir: string): Promise<string[]> {
  const aptDir = join(workDir, 'apt');
  await mkdir(join(aptDir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(aptDir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(aptDir, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${DEBIAN_MIRROR} bookworm-backports main\n`);
  return [
    '-o', `Dir::Etc::sourcelist=${join(aptDir, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
  ];
}

/**
 * The backports kernel's image package (name + version), or null when the suite is unreachable.
 * Tried three times: a mirror answering mid-sync once left this without the cloud kernel, and
 * falling back to a one-kernel image makes a different image.
 */
async function resolveBackportsKernel(workDir: string, log: (l: string) => void): Promise<{ aptOpts: string[]; pkg: string; version: string } | null> {
  const aptOpts = await backportsApt(workDir);
  let why = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) {
      log(`bookworm-backports: ${why}; retrying (${attempt}/3)`);
      await new Promise((r) => setTimeout(r, 5_000 * attempt));
    }
    const update = await run.run(['apt-get', ...aptOpts, 'update'], { timeoutMs: 180_000, allowFailure: true });
    if (update.exitCode !== 0 || /^(E|W): Failed/m.test(update.stderr)) {
      why = `not reachable (${update.stderr.trim().split('\n').pop()})`;
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

class Mounts {
  private readonly stack: string[] = [];
  async mount(argv: string[], target: string): Promise<void> {
    await mkdir(target, { recursive: true });
    await sh(['mount', ...argv, target], 60_000);
    this.stack.push(target);
  }
  async releaseAll(): Promise<void> {
    while (this.stack.length > 0) {
      const target = this.stack.pop()!;
      await run.run(['umount', target], { timeoutMs: 60_000, allowFailure: true });
    }
  }
}

/** Attach a raw disk with partition scanning; returns the loop device and its first partition node. */
async function attachDisk(disk: string): Promise<{ loop: string; part: string }> {
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

async function detachDisk(loop: string): Promise<void> {
  await run.run(['losetup', '-d', loop], { timeoutMs: 30_000, allowFailure: true });
}

function chroot(root: string, argv: string[], timeoutMs = 300_000): Promise<string> {
  return sh(['chroot', root, ...argv], timeoutMs, { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' });
}

const GRUB_DEFAULTS = `GRUB_DEFAULT=saved
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

const NETWORK_UNIT = `[Match]
Name=en*

[Network]
DHCP=yes
`;

async function buildBase(dir: string, backports: Awaited<ReturnType<typeof resolveBackportsKernel>>, log: (l: string) => void): Promise<EmulatedKernel[]> {
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
    log('debootstrap bookworm minbase (about 2 min)');
    await sh(['debootstrap', '--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, 'bookworm', root, DEBIAN_MIRROR], 1_200_000);
    await mounts.mount(['--bind', '/dev'], join(root, 'dev'));
    await mounts.mount(['-t', 'proc', 'proc'], join(root, 'proc'));
    await mounts.mount(['-t', 'sysfs', 'sysfs'], join(root, 'sys'));
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
    const hostPub = (await readFile(join(dir, 'host_ed25519_key.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
    await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:* ${hostPub}\n`);
    await chroot(root, ['apt-get', 'clean']);
    return grubKernels(grubCfg, backports !== null);
  } finally {
    await mounts.releaseAll();
    await detachDisk(loop);
  }
}

/** Kernel entries from the generated grub.cfg (ids usable with grub-reboot). */
export function grubKernels(grubCfg: string, withBackports: boolean): EmulatedKernel[] {
  const kernels: EmulatedKernel[] = [];
  const re = /menuentry '[^']*with Linux ([^' ]+)'[^{]*\$menuentry_id_option '([^']+)'/g;
  for (const m of grubCfg.matchAll(re)) {
    const release = m[1]!;
    if (release.includes('recovery') || m[2]!.includes('recovery')) continue;
    if (kernels.some((k) => k.release === release)) continue;
    kernels.push({ release, bootEntry: m[2]!, suite: withBackports && release.startsWith('6.12') ? 'bookworm-backports' : 'bookworm' });
  }
  return kernels;
}

/** Every file under dir (relative), sorted, skipping names in skip. */
async function listFiles(dir: string, skip: ReadonlySet<string>, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (skip.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, skip, base)));
    else if (e.isFile()) out.push(relative(base, p));
  }
  return out;
}

const HARNESS_PARTS = ['bin', 'src', 'experiments', 'vm-templates', 'package.json', 'package-lock.json', 'tsconfig.json'];

async function harnessHash(): Promise<string> {
  const h = createHash('sha256');
  for (const part of HARNESS_PARTS) {
    const p = join(REPO_ROOT, part);
    if (!existsSync(p)) continue;
    const files = (await stat(p)).isDirectory() ? (await listFiles(p, new Set())).map((f) => join(part, f)) : [part];
    for (const f of files) h.update(f).update(await readFile(join(REPO_ROOT, f)));
  }
  // node_modules is large: its lock file stands for it.
  h.update(await readFile(process.execPath).then((b) => createHash('sha256').update(b).digest('hex')));
  return h.digest('hex').slice(0, 16);
}

async function buildLayer(baseDisk: string, dir: string, log: (l: string) => void): Promise<void> {
  const disk = join(dir, 'disk.raw.partial');
  await sh(['cp', '--sparse=always', baseDisk, disk], 600_000);
  const nativeOut = join(dir, 'native-bin');
  log('compiling native workloads on the host');
  await buildNativeWorkloads(nativeOut);
  const { loop, part } = await attachDisk(disk);
  const mounts = new Mounts();
  const root = join(dir, 'root');
  try {
    await mounts.mount([part], root);
    await sh(['cp', process.execPath, join(root, 'usr/local/bin/node')]);
    const harness = join(root, GUEST_HARNESS_DIR.slice(1));
    await rm(harness, { recursive: true, force: true });
    await mkdir(harness, { recursive: true });
    for (const part of [...HARNESS_PARTS, 'node_modules']) {
      if (existsSync(join(REPO_ROOT, part))) await sh(['cp', '-a', join(REPO_ROOT, part), harness], 300_000);
    }
    const nativeBin = join(root, GUEST_NATIVE_BIN_DIR.slice(1));
    await mkdir(nativeBin, { recursive: true });
    for (const f of await readdir(nativeOut)) await sh(['cp', join(nativeOut, f), join(nativeBin, f)]);
  } finally {
    await mounts.releaseAll();
    await detachDisk(loop);
  }
  await rename(disk, join(dir, 'disk.raw'));
}

/**
 * One builder at a time per cache dir (test files and commands may start together): a lock
 * directory holding the owner's pid; a lock whose owner is gone is taken over.
 */
async function withCacheLock<T>(cacheDir: string, log: (l: string) => void, fn: () => Promise<T>): Promise<T> {
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

/** Builds (or reuses) the emulated testbed image. Needs root, debootstrap, qemu-img, losetup. */
export async function buildEmulatedImage(opts: BuildEmulatedImageOptions = {}): Promise<EmulatedImage> {
  // Absolute: apt reads relative Dir:: options under /etc/apt, and the image's paths are recorded.
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_IMAGE_CACHE_DIR);
  const log = opts.log ?? (() => undefined);
  await mkdir(cacheDir, { recursive: true });
  return withCacheLock(cacheDir, log, () => buildLocked(cacheDir, opts, log));
}

async function buildLocked(cacheDir: string, opts: BuildEmulatedImageOptions, log: (l: string) => void): Promise<EmulatedImage> {
  const probe = join(cacheDir, 'probe');
  const backports = await resolveBackportsKernel(probe, log);
  const baseKey = hash([RECIPE_VERSION, ...BASE_PACKAGES, GRUB_DEFAULTS, NETWORK_UNIT, backports ? `${backports.pkg}=${backports.version}` : 'no-backports', IMAGE_SIZE]);
  const baseDir = join(cacheDir, `base-${baseKey}`);
  const baseManifest = join(baseDir, 'manifest.json');
  let baseSeconds = 0;
  if (opts.force || !existsSync(baseManifest)) {
    const t0 = Date.now();
    log(`building base image ${baseKey} in ${baseDir}`);
    await rm(baseDir, { recursive: true, force: true });
    await mkdir(baseDir, { recursive: true });
    const kernels = await buildBase(baseDir, backports, log);
    await rename(join(baseDir, 'work', 'disk.raw'), join(baseDir, 'disk.raw'));
    await rm(join(baseDir, 'work'), { recursive: true, force: true });
    baseSeconds = (Date.now() - t0) / 1000;
    await writeFile(baseManifest, JSON.stringify({ baseKey, kernels, backportsReachable: backports !== null, buildSeconds: baseSeconds, builtAt: new Date().toISOString() }, null, 2));
    log(`base image built in ${baseSeconds.toFixed(0)} s`);
  } else {
    log(`base image ${baseKey} from cache`);
  }
  const base = JSON.parse(await readFile(baseManifest, 'utf8')) as { kernels: EmulatedKernel[]; backportsReachable: boolean };
  const key = hash([baseKey, await harnessHash(), await nativeSourceHash()]);
  const dir = join(cacheDir, `image-${key}`);
  const manifest = join(dir, 'manifest.json');
  let imageSeconds = 0;
  if (opts.force || !existsSync(manifest)) {
    const t0 = Date.now();
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    log(`building image layer ${key} (harness + native workloads)`);
    await buildLayer(join(baseDir, 'disk.raw'), dir, log);
    imageSeconds = (Date.now() - t0) / 1000;
    await writeFile(manifest, JSON.stringify({ key, baseKey, buildSeconds: imageSeconds, builtAt: new Date().toISOString() }, null, 2));
    await pruneLayers(cacheDir, dir, log);
  }
  return {
    disk: join(dir, 'disk.raw'),
    dir,
    identityFile: join(baseDir, 'id_ed25519'),
    knownHostsFile: join(baseDir, 'known_hosts'),
    kernels: base.kernels,
    backportsReachable: base.backportsReachable,
    key,
    baseKey,
    builtNow: imageSeconds > 0,
    baseBuiltNow: baseSeconds > 0,
    buildSeconds: { base: baseSeconds, image: imageSeconds },
  };
}

/** Layers are rebuilt whenever the harness changes: drop ones untouched for a day (about 1 GB each). */
async function pruneLayers(cacheDir: string, keep: string, log: (l: string) => void): Promise<void> {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  // A machine's overlay is backed by its layer's disk: a layer still under a machine stays.
  const machines = join(cacheDir, 'machines');
  const inUse = new Set<string>();
  for (const m of existsSync(machines) ? await readdir(machines) : []) {
    const disk = await readFile(join(machines, m, MACHINE_IMAGE_FILE), 'utf8').catch(() => '');
    if (disk.trim()) inUse.add(dirname(disk.trim()));
  }
  for (const name of await readdir(cacheDir)) {
    const dir = join(cacheDir, name);
    if (!name.startsWith('image-') || dir === keep || inUse.has(dir)) continue;
    const m = await stat(join(dir, 'manifest.json')).catch(() => null);
    if (m && m.mtimeMs < dayAgo) {
      log(`pruning old image layer ${name}`);
      await rm(dir, { recursive: true, force: true });
    }
  }
}

async function nativeSourceHash(): Promise<string> {
  const files = await listFiles(NATIVE_SOURCE_DIR, new Set());
  return hash(await Promise.all(files.map(async (f) => `${f}:${await readFile(join(NATIVE_SOURCE_DIR, f), 'utf8')}`)));
}

/** Kernel specs named 'bookworm' (6.1) and 'backports' (6.12, when built) for a built image. */
export function imageKernels(image: EmulatedImage): Record<string, KernelSpec> {
  const out: Record<string, KernelSpec> = {};
  for (const k of image.kernels) {
    const backports = k.suite === 'bookworm-backports';
    // 6.12 has smart scan (6.7+, on by default): a page that aged before its content became identical
    // is visited only every few passes, and two such pages may never sit in the unstable tree in the
    // same pass (seen here: 0 merges over 230 passes). The paper's 5.4 kernels have no smart scan.
    out[backports ? 'backports' : 'bookworm'] = { bootEntry: k.bootEntry, release: k.release, ksmKnobs: backports ? { smart_scan: '0' } : {} };
  }
  return out;
}
