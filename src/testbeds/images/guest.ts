/**
 * The guest image: a qcow2 disk for libvirt VMs (the physical testbed's guests, and TCG guests in
 * tests), built from Debian packages on top of the emulated testbed's base layer (same debootstrap
 * base, kernels, GRUB, SSH host key and root login key; src/testbeds/images/debian.ts) plus a guest
 * layer:
 *  - apt-get install (in a chroot, from the building machine's Debian mirror) of MariaDB, sysbench,
 *    python3 and the compilers the benchmarks build with; the packaged mariadb service disabled
 *    (the mysql workload runs its own private mariadbd);
 *  - the artifact snapshot in GUEST_CACHE_DIR with a SHA256SUMS;
 *  - the five benchmarks pre-built by each workload's own install() run through a ChrootExecutor,
 *    with the 'small' parameters, into GUEST_WORKLOADS_DIR/<name>.
 * Keyed by a hash of its inputs: base key, package list, recipe version, snapshot sha256 and the
 * files under src/workloads/. The mirror is not part of the key.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { HarnessError } from '../../core/errors.ts';
import { ChrootExecutor } from '../../host/exec/chroot.ts';
import { ARTIFACT_SNAPSHOT, parseSha256Sums } from '../../workloads/cache.ts';
import { getWorkload } from '../../workloads/index.ts';
import { DEFAULT_IMAGE_CACHE_DIR, REPO_ROOT } from '../emulated/image.ts';
import { chroot, ensureDebianBase, hash, removeLayerDir, sh, treeHash, withCacheLock, withMountedDisk, type DebianKernel } from './debian.ts';

export const DEFAULT_GUEST_CACHE_DIR = join(REPO_ROOT, '.cache', 'guest');
/** Offline cache directory inside the guest (InstallContext.cacheDir). */
export const GUEST_CACHE_DIR = '/opt/nuksm/cache';
/** Workload install directories inside the guest: GUEST_WORKLOADS_DIR/<name>. */
export const GUEST_WORKLOADS_DIR = '/opt/nuksm/workloads';
/** Debian packages of the guest layer. */
export const GUEST_PACKAGES = ['mariadb-server', 'mariadb-client', 'sysbench', 'python3', 'gcc', 'g++', 'gfortran', 'make', 'libgomp1', 'time'];
/** The benchmarks pre-built in the image (the paper's five). */
export const GUEST_WORKLOADS = ['xsbench', 'btree', 'randomaccess', 'cg', 'mysql'] as const;
/** Timers of the base system disabled in the guest (apt downloads, weekly scans during a run). */
export const GUEST_DISABLED_TIMERS = ['apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'fstrim.timer'];
/** Bumped when the guest recipe changes in a way the inputs do not show. */
const GUEST_RECIPE_VERSION = 'guest-v2';
const WORKLOADS_SOURCE_DIR = join(REPO_ROOT, 'src', 'workloads');
/** The stable pointer in the cache dir: a symlink to the newest guest-<key> directory. */
export const CURRENT_LINK = 'current';

export interface GuestImage {
  /** qcow2 disk (read-only to runs: boot overlays backed by it). */
  disk: string;
  dir: string;
  /** `<cacheDir>/current`, the symlink to `dir`. */
  current: string;
  /** Root's private key (a copy of the base layer's). */
  identityFile: string;
  /** `[127.0.0.1]:* <host key>`: guests are reached through loopback port forwards. */
  knownHostsFile: string;
  key: string;
  baseKey: string;
  kernels: DebianKernel[];
  /** Installed package → version, read back from the image's dpkg database. */
  packages: Record<string, string>;
  snapshotSha256: string;
  /** Each workload's install record (what install() returned in the chroot). */
  workloads: Record<string, Record<string, string>>;
  /** In-guest paths: the offline cache and each workload's install directory. */
  guestPaths: { cacheDir: string; workloads: Record<string, string> };
  sizeBytes: number;
  builtNow: boolean;
  baseBuiltNow: boolean;
  /** Wall seconds of this call's building (0 for a layer that came from the cache). */
  buildSeconds: { base: number; guest: number };
  /** Seconds this call took overall (cache checks included). */
  totalSeconds: number;
  mirror: string;
  /** Directories above the disk that libvirt's unprivileged QEMU cannot traverse (should be empty). */
  accessProblems: string[];
}

export interface BuildGuestImageOptions {
  /** Where guest-<key>/ and `current` live (default <repo>/.cache/guest). */
  cacheDir?: string;
  /** The emulated builder's cache, whose base layer this image is built on (default <repo>/.cache/emulated). */
  baseCacheDir?: string;
  /** Debian mirror URI; default: the one this machine's apt sources serve bookworm main from. */
  mirror?: string;
  /** Directory holding the artifact snapshot tarball (default $NUKSM_ARTIFACT_DIR, else <repo>/../shared/artifacts). */
  artifactDir?: string;
  force?: boolean;
  log?: (line: string) => void;
}

interface GuestManifest {
  key: string;
  baseKey: string;
  kernels: DebianKernel[];
  packages: Record<string, string>;
  snapshot: { file: string; sha256: string; guestPath: string };
  workloads: Record<string, Record<string, string>>;
  guestPaths: { cacheDir: string; workloads: Record<string, string> };
  buildSeconds: { guest: number; packages: number; workloads: Record<string, number>; convert: number };
  mirror: string;
  builtAt: string;
}

export function defaultArtifactDir(): string {
  return process.env.NUKSM_ARTIFACT_DIR || resolve(REPO_ROOT, '..', 'shared', 'artifacts');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The snapshot tarball in artifactDir, checked against the project's pin (else the directory's SHA256SUMS). */
export async function verifiedSnapshot(artifactDir: string): Promise<{ path: string; sha256: string; pinnedBy: string }> {
  const path = join(artifactDir, ARTIFACT_SNAPSHOT.file);
  if (!existsSync(path)) {
    throw new HarnessError('config', `artifact snapshot ${path} not found (pass --artifact-dir or set NUKSM_ARTIFACT_DIR); make it with: ${ARTIFACT_SNAPSHOT.howToMake}`);
  }
  let expected = ARTIFACT_SNAPSHOT.sha256;
  let pinnedBy = 'src/workloads/cache.ts ARTIFACT_SNAPSHOT.sha256';
  if (!expected) {
    const sums = join(artifactDir, 'SHA256SUMS');
    expected = existsSync(sums) ? (parseSha256Sums(await readFile(sums, 'utf8'))[ARTIFACT_SNAPSHOT.file] ?? null) : null;
    pinnedBy = sums;
  }
  if (!expected) throw new HarnessError('config', `no sha256 pinned for ${ARTIFACT_SNAPSHOT.file}: neither the project pin nor ${join(artifactDir, 'SHA256SUMS')} has one`);
  const actual = await sha256File(path);
  if (actual !== expected.toLowerCase()) {
    throw new HarnessError('config', `artifact snapshot ${path}: sha256 ${actual} does not match ${expected} (${pinnedBy})`, { path, expected, actual });
  }
  return { path, sha256: actual, pinnedBy };
}

/** Directories on the way to `file` that others (libvirt's QEMU user) cannot traverse, and the file if unreadable. */
async function accessProblems(file: string): Promise<string[]> {
  const out: string[] = [];
  const st = await stat(file);
  if ((st.mode & 0o004) === 0) out.push(`${file} (not o+r)`);
  for (let d = dirname(file); ; d = dirname(d)) {
    const m = (await stat(d)).mode;
    if ((m & 0o001) === 0) out.push(`${d} (not o+x)`);
    if (d === dirname(d)) break;
  }
  return out;
}

/** Replace `<cacheDir>/current` atomically (a new symlink renamed over the old one). */
async function pointCurrent(cacheDir: string, dirName: string): Promise<string> {
  const link = join(cacheDir, CURRENT_LINK);
  const tmp = join(cacheDir, `.${CURRENT_LINK}.${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(dirName, tmp);
  await rename(tmp, link);
  return link;
}

export async function buildGuestImage(opts: BuildGuestImageOptions = {}): Promise<GuestImage> {
  const started = Date.now();
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_GUEST_CACHE_DIR);
  const baseCacheDir = resolve(opts.baseCacheDir ?? DEFAULT_IMAGE_CACHE_DIR);
  const log = opts.log ?? (() => undefined);
  const snapshot = await verifiedSnapshot(resolve(opts.artifactDir ?? defaultArtifactDir()));
  log(`artifact snapshot ${snapshot.path}: sha256 ${snapshot.sha256} (pinned by ${snapshot.pinnedBy})`);
  await mkdir(cacheDir, { recursive: true });
  await mkdir(baseCacheDir, { recursive: true });
  await chmod(cacheDir, 0o755);
  return withCacheLock(cacheDir, log, async () => {
    const workloadsHash = await treeHash(WORKLOADS_SOURCE_DIR);
    let dir = '';
    let key = '';
    let work = '';
    let cached = false;
    // The base layer is held locked only while it is checked and copied.
    const base = await withCacheLock(baseCacheDir, log, async () => {
      const b = await ensureDebianBase({ cacheDir: baseCacheDir, mirror: opts.mirror, log });
      key = hash([GUEST_RECIPE_VERSION, b.key, ...GUEST_PACKAGES, ...GUEST_DISABLED_TIMERS, snapshot.sha256, workloadsHash]);
      dir = join(cacheDir, `guest-${key}`);
      cached = !opts.force && existsSync(join(dir, 'manifest.json')) && existsSync(join(dir, 'disk.qcow2'));
      if (!cached) {
        await removeLayerDir(dir);
        work = join(dir, 'work');
        await mkdir(work, { recursive: true });
        log(`copying base layer ${b.key} for guest layer ${key}`);
        await sh(['cp', '--sparse=always', b.disk, join(work, 'disk.raw')], 600_000);
      }
      return b;
    });
    let guestSeconds = 0;
    if (cached) {
      log(`guest image ${key} from cache`);
    } else {
      const t0 = Date.now();
      const manifest = await buildGuestLayer(join(work, 'disk.raw'), work, { key, baseKey: base.key, kernels: base.kernels, mirror: base.mirror.uri, snapshot, log });
      const tc = Date.now();
      log('converting to qcow2');
      await sh(['qemu-img', 'convert', '-O', 'qcow2', join(work, 'disk.raw'), join(dir, 'disk.qcow2.partial')], 1_200_000);
      await rename(join(dir, 'disk.qcow2.partial'), join(dir, 'disk.qcow2'));
      await rm(work, { recursive: true, force: true });
      await copyFile(base.identityFile, join(dir, 'id_ed25519'));
      await chmod(join(dir, 'id_ed25519'), 0o600);
      await copyFile(`${base.identityFile}.pub`, join(dir, 'id_ed25519.pub'));
      await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:* ${base.hostKey}\n`);
      guestSeconds = (Date.now() - t0) / 1000;
      manifest.buildSeconds.convert = (Date.now() - tc) / 1000;
      manifest.buildSeconds.guest = guestSeconds;
      await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      log(`guest layer built in ${guestSeconds.toFixed(0)} s`);
    }
    // libvirt's QEMU runs as an unprivileged user: it must read the backing file.
    await chmod(dir, 0o755);
    await chmod(join(dir, 'disk.qcow2'), 0o644);
    const current = await pointCurrent(cacheDir, `guest-${key}`);
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as GuestManifest;
    const disk = join(dir, 'disk.qcow2');
    const problems = await accessProblems(disk);
    if (problems.length > 0) log(`libvirt's QEMU (an unprivileged user) cannot reach ${disk}: ${problems.join(', ')}; chmod o+x those directories or move the cache (--cache-dir)`);
    return {
      disk,
      dir,
      current,
      identityFile: join(dir, 'id_ed25519'),
      knownHostsFile: join(dir, 'known_hosts'),
      key,
      baseKey: base.key,
      kernels: m.kernels,
      packages: m.packages,
      snapshotSha256: m.snapshot.sha256,
      workloads: m.workloads,
      guestPaths: m.guestPaths,
      sizeBytes: (await stat(disk)).size,
      builtNow: guestSeconds > 0,
      baseBuiltNow: base.builtNow,
      buildSeconds: { base: base.buildSeconds, guest: guestSeconds },
      totalSeconds: (Date.now() - started) / 1000,
      mirror: base.mirror.uri,
      accessProblems: problems,
    };
  });
}

/** Whether `<cacheDir>/current` points at a guest dir with a disk (for callers that only read the cache). */
export async function currentGuestDir(cacheDir = DEFAULT_GUEST_CACHE_DIR): Promise<string | null> {
  const link = join(resolve(cacheDir), CURRENT_LINK);
  const st = await lstat(link).catch(() => null);
  if (!st?.isSymbolicLink()) return null;
  const dir = resolve(dirname(link), await readlink(link));
  return existsSync(join(dir, 'disk.qcow2')) ? dir : null;
}

const POLICY_RC_D = '#!/bin/sh\n# nuksm image build: no service starts in the chroot\nexit 101\n';

async function buildGuestLayer(
  disk: string,
  work: string,
  ctx: { key: string; baseKey: string; kernels: DebianKernel[]; mirror: string; snapshot: { path: string; sha256: string }; log: (l: string) => void },
): Promise<GuestManifest> {
  const { log } = ctx;
  return withMountedDisk(disk, join(work, 'root'), async ({ root, mounts }) => {
    await mounts.chrootFilesystems(root);
    // Name resolution from the host for apt; the image's own file is put back afterwards.
    const resolvPath = join(root, 'etc/resolv.conf');
    const resolvStat = await lstat(resolvPath).catch(() => null);
    const savedResolv: { link?: string; text?: string } | null = resolvStat?.isSymbolicLink() ? { link: await readlink(resolvPath) } : resolvStat ? { text: await readFile(resolvPath, 'utf8') } : null;
    await rm(resolvPath, { force: true });
    await writeFile(resolvPath, await readFile('/etc/resolv.conf', 'utf8'));
    const policy = join(root, 'usr/sbin/policy-rc.d');
    await writeFile(policy, POLICY_RC_D, { mode: 0o755 });
    const aptDir = join(root, 'tmp/nuksm-apt');
    await mkdir(aptDir, { recursive: true });
    await writeFile(join(aptDir, 'sources.list'), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${ctx.mirror} bookworm main\n`);
    const aptOpts = ['-o', 'Dir::Etc::sourcelist=/tmp/nuksm-apt/sources.list', '-o', 'Dir::Etc::sourceparts=-'];
    try {
      const tp = Date.now();
      log(`apt-get install ${GUEST_PACKAGES.join(' ')} (from ${ctx.mirror})`);
      await chroot(root, ['apt-get', ...aptOpts, 'update'], 600_000);
      await chroot(root, ['apt-get', ...aptOpts, 'install', '-y', '--no-install-recommends', ...GUEST_PACKAGES], 1_800_000);
      const packagesSeconds = (Date.now() - tp) / 1000;
      // The packaged server would hold memory in every guest; the mysql workload starts its own.
      // mariadb.socket would start it on a connection to the packaged socket/port: disabled too.
      await chroot(root, ['systemctl', 'disable', 'mariadb.service', 'mariadb.socket']);
      // Periodic jobs that would download or scan in the middle of a benchmark.
      await chroot(root, ['systemctl', 'disable', ...GUEST_DISABLED_TIMERS]);
      await writeFile(join(root, 'etc/hostname'), 'nuksm-guest\n');
      await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n127.0.1.1 nuksm-guest\n');
      const cacheInGuest = join(root, GUEST_CACHE_DIR.slice(1));
      await mkdir(cacheInGuest, { recursive: true });
      await copyFile(ctx.snapshot.path, join(cacheInGuest, ARTIFACT_SNAPSHOT.file));
      await writeFile(join(cacheInGuest, 'SHA256SUMS'), `${ctx.snapshot.sha256}  ${ARTIFACT_SNAPSHOT.file}\n`);
      const exec = new ChrootExecutor(root, { defaultTimeoutMs: 600_000 });
      const workloads: Record<string, Record<string, string>> = {};
      const workloadDirs: Record<string, string> = {};
      const workloadSeconds: Record<string, number> = {};
      for (const name of GUEST_WORKLOADS) {
        const workload = getWorkload(name);
        const installDir = `${GUEST_WORKLOADS_DIR}/${name}`;
        const tw = Date.now();
        log(`pre-building ${name} in the chroot (${installDir})`);
        const result = await workload.install({ exec, cacheDir: GUEST_CACHE_DIR, installDir, params: workload.resolveParams('small'), timeoutMs: 1_800_000 });
        workloads[name] = result.record;
        workloadDirs[name] = installDir;
        workloadSeconds[name] = (Date.now() - tw) / 1000;
      }
      const query = await chroot(root, ['dpkg-query', '-W', '-f', '${Package}\t${Version}\n', ...GUEST_PACKAGES]);
      const packages: Record<string, string> = {};
      for (const line of query.split('\n')) {
        const [pkg, version] = line.split('\t');
        if (pkg && version) packages[pkg] = version;
      }
      for (const p of GUEST_PACKAGES) if (!packages[p]) throw new HarnessError('config', `guest image: package ${p} is not installed after apt-get install`);
      return {
        key: ctx.key,
        baseKey: ctx.baseKey,
        kernels: ctx.kernels,
        packages,
        snapshot: { file: ARTIFACT_SNAPSHOT.file, sha256: ctx.snapshot.sha256, guestPath: `${GUEST_CACHE_DIR}/${ARTIFACT_SNAPSHOT.file}` },
        workloads,
        guestPaths: { cacheDir: GUEST_CACHE_DIR, workloads: workloadDirs },
        buildSeconds: { guest: 0, packages: packagesSeconds, workloads: workloadSeconds, convert: 0 },
        mirror: ctx.mirror,
        builtAt: new Date().toISOString(),
      };
    } finally {
      await chroot(root, ['apt-get', 'clean']).catch(() => undefined);
      await rm(join(root, 'var/lib/apt/lists'), { recursive: true, force: true });
      await mkdir(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
      await rm(aptDir, { recursive: true, force: true });
      await unlink(policy).catch(() => undefined);
      await rm(resolvPath, { force: true });
      if (savedResolv?.link !== undefined) await symlink(savedResolv.link, resolvPath);
      else if (savedResolv?.text !== undefined) await writeFile(resolvPath, savedResolv.text);
      // Blocks freed in the build (apt lists, build trees) become holes in the raw file: a smaller qcow2.
      await sh(['fstrim', root], 120_000).catch(() => log('fstrim failed (the qcow2 is larger, not wrong)'));
    }
  });
}
