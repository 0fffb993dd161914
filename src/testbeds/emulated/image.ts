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
 * The base layer (and the helpers) are shared with the guest image: src/testbeds/images/debian.ts.
 * The Debian mirror comes from this machine's apt sources (or an option); it is not part of a key.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelSpec } from '../../core/testbed-file.ts';
import { buildMovePagesHelper } from '../../host/placement/helper.ts';
import { buildNativeWorkloads, NATIVE_SOURCE_DIR } from '../../workloads/native/build.ts';
import { ensureDebianBase, grubKernels, hash, listFiles, removeLayerDir, sh, withCacheLock, withMountedDisk, type DebianKernel } from '../images/debian.ts';

export { grubKernels };

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_IMAGE_CACHE_DIR = join(REPO_ROOT, '.cache', 'emulated');
/** Where the harness lives inside the guest. */
export const GUEST_HARNESS_DIR = '/opt/nuksm';
/** In a machine's state dir: the image disk its overlay is backed by (image layers in use are not pruned). */
export const MACHINE_IMAGE_FILE = 'image';
export const GUEST_NATIVE_BIN_DIR = '/opt/nuksm-native/bin';

export type EmulatedKernel = DebianKernel;

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
  /** Debian mirror the packages were (or would have been) fetched from; not part of any key. */
  mirror: string;
}

export interface BuildEmulatedImageOptions {
  cacheDir?: string;
  /** Progress lines (the build takes minutes on a cold cache). */
  log?: (line: string) => void;
  /** Rebuild even when cached. */
  force?: boolean;
  /** Debian mirror URI; default: the one this machine's apt sources serve bookworm main from. */
  mirror?: string;
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
  await buildMovePagesHelper(nativeOut); // the user-space placement engine's move_pages helper
  await withMountedDisk(disk, join(dir, 'root'), async ({ root }) => {
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
  });
  await rename(disk, join(dir, 'disk.raw'));
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
  const base = await ensureDebianBase({ cacheDir, mirror: opts.mirror, force: opts.force, log });
  const baseKey = base.key;
  const key = hash([baseKey, await harnessHash(), await nativeSourceHash()]);
  const dir = join(cacheDir, `image-${key}`);
  const manifest = join(dir, 'manifest.json');
  let imageSeconds = 0;
  if (opts.force || !existsSync(manifest)) {
    const t0 = Date.now();
    await removeLayerDir(dir);
    await mkdir(dir, { recursive: true });
    log(`building image layer ${key} (harness + native workloads)`);
    await buildLayer(base.disk, dir, log);
    imageSeconds = (Date.now() - t0) / 1000;
    await writeFile(manifest, JSON.stringify({ key, baseKey, buildSeconds: imageSeconds, builtAt: new Date().toISOString() }, null, 2));
    await pruneLayers(cacheDir, dir, log);
  }
  return {
    disk: join(dir, 'disk.raw'),
    dir,
    identityFile: base.identityFile,
    knownHostsFile: base.knownHostsFile,
    kernels: base.kernels,
    backportsReachable: base.backportsReachable,
    key,
    baseKey,
    builtNow: imageSeconds > 0,
    baseBuiltNow: base.builtNow,
    buildSeconds: { base: base.buildSeconds, image: imageSeconds },
    mirror: base.mirror.uri,
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
      await removeLayerDir(dir);
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
