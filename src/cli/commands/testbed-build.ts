/**
 * `nuksm testbed build <emulated|guest> [--cache-dir DIR] [--mirror URL] [--artifact-dir DIR] [--force] [--json]`:
 * builds (or reuses) a disk image from Debian packages and prints where it is, what is in it and
 * the build times.
 *  - emulated: the emulated testbed's two-NUMA-node machine (raw disk, .cache/emulated);
 *  - guest: the qcow2 base image for libvirt VMs, on the emulated builder's base layer, with the
 *    five benchmarks pre-built (.cache/guest, `current` points at the newest).
 */
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/errors.ts';
import { buildEmulatedImage, DEFAULT_IMAGE_CACHE_DIR } from '../../testbeds/emulated/index.ts';
import { buildGuestImage, DEFAULT_GUEST_CACHE_DIR, defaultArtifactDir } from '../../testbeds/images/guest.ts';

export interface TestbedBuildArgs {
  kind: string;
  cacheDir?: string;
  mirror?: string;
  artifactDir?: string;
  force: boolean;
  json: boolean;
}

const KINDS = ['emulated', 'guest'] as const;

export const testbedBuildCommand: CommandModule<object, TestbedBuildArgs> = {
  command: 'testbed build <kind>',
  describe: 'Build (or reuse from the cache) a disk image: the emulated testbed machine, or the guest image for libvirt VMs',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('kind', { type: 'string', choices: KINDS, demandOption: true, describe: 'emulated | guest' })
      .option('cache-dir', { type: 'string', describe: `image cache directory, keyed by a hash of the inputs (default ${DEFAULT_IMAGE_CACHE_DIR} for emulated, ${DEFAULT_GUEST_CACHE_DIR} for guest)` })
      .option('mirror', { type: 'string', describe: "Debian mirror URI (default: the one this machine's apt sources serve bookworm main from); not part of any cache key" })
      .option('artifact-dir', { type: 'string', describe: `guest: directory with the artifact snapshot tarball (default $NUKSM_ARTIFACT_DIR, else ${defaultArtifactDir()})` })
      .option('force', { type: 'boolean', default: false, describe: 'rebuild even when the cache has the image' })
      .option('json', { type: 'boolean', default: false, describe: 'print the image description as JSON' }) as unknown as Argv<TestbedBuildArgs>,
  handler: async (args) => {
    const log = (l: string) => process.stderr.write(`${l}\n`);
    if (args.kind === 'guest') {
      const image = await buildGuestImage({ cacheDir: args.cacheDir, mirror: args.mirror, artifactDir: args.artifactDir, force: args.force, log });
      if (args.json) {
        process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
        return;
      }
      const lines = [
        `guest image ${image.key}: ${image.disk} (${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB qcow2)`,
        `  current:      ${image.current} -> ${image.dir}`,
        `  ssh identity: ${image.identityFile} (root)`,
        `  known_hosts:  ${image.knownHostsFile}`,
        `  base layer:   ${image.baseKey} (${image.baseBuiltNow ? `built now, ${image.buildSeconds.base.toFixed(0)} s` : 'cached'})`,
        ...image.kernels.map((k) => `  kernel ${k.release} (${k.suite})`),
        `  packages:     ${Object.entries(image.packages).map(([p, v]) => `${p} ${v}`).join(', ')}`,
        `  snapshot:     ${image.guestPaths.cacheDir} (sha256 ${image.snapshotSha256})`,
        ...Object.entries(image.workloads).map(([w, r]) => `  ${w}: ${image.guestPaths.workloads[w]} — ${Object.entries(r).filter(([k]) => k !== 'source' && k !== 'sha256').map(([k, v]) => `${k}=${v}`).join('; ')}`),
        `  built now: ${image.builtNow ? `guest layer ${image.buildSeconds.guest.toFixed(0)} s` : 'no (cached)'}; this command ${image.totalSeconds.toFixed(0)} s`,
        image.accessProblems.length > 0 ? `  WARNING: libvirt's QEMU cannot reach the disk: ${image.accessProblems.join(', ')}` : '',
      ].filter(Boolean);
      process.stdout.write(`${lines.join('\n')}\n`);
      return;
    }
    if (args.kind !== 'emulated') throw new ConfigError('command line', 'kind', `images nuksm builds: ${KINDS.join(', ')} (got '${args.kind}')`);
    const image = await buildEmulatedImage({ cacheDir: args.cacheDir ?? DEFAULT_IMAGE_CACHE_DIR, mirror: args.mirror, force: args.force, log });
    if (args.json) {
      process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
      return;
    }
    const lines = [
      `image ${image.key}: ${image.disk}`,
      `  ssh identity: ${image.identityFile}`,
      `  known_hosts:  ${image.knownHostsFile}`,
      ...image.kernels.map((k) => `  kernel ${k.release} (${k.suite}), GRUB entry ${k.bootEntry}`),
      image.backportsReachable ? '' : '  bookworm-backports was not reachable: only the 6.1 kernel is in the image',
      `  built now: base ${image.baseBuiltNow ? `${image.buildSeconds.base.toFixed(0)} s` : 'no (cached)'}, layer ${image.builtNow ? `${image.buildSeconds.image.toFixed(0)} s` : 'no (cached)'}`,
    ].filter(Boolean);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};
