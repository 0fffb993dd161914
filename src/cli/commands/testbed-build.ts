/**
 * `nuksm testbed build emulated [--cache-dir DIR] [--force]`: builds (or reuses) the emulated
 * testbed's disk image from Debian packages and prints where it is, its kernels and build times.
 */
import type { Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../core/errors.ts';
import { buildEmulatedImage, DEFAULT_IMAGE_CACHE_DIR } from '../../testbeds/emulated/index.ts';

export interface TestbedBuildArgs {
  kind: string;
  cacheDir: string;
  force: boolean;
  json: boolean;
}

export const testbedBuildCommand: CommandModule<object, TestbedBuildArgs> = {
  command: 'testbed build <kind>',
  describe: 'Build (or reuse from the cache) the disk image of a testbed (emulated only)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('kind', { type: 'string', choices: ['emulated'], demandOption: true, describe: 'testbed kind' })
      .option('cache-dir', { type: 'string', default: DEFAULT_IMAGE_CACHE_DIR, describe: 'image cache directory (keyed by a hash of the inputs)' })
      .option('force', { type: 'boolean', default: false, describe: 'rebuild even when the cache has the image' })
      .option('json', { type: 'boolean', default: false, describe: 'print the image description as JSON' }) as unknown as Argv<TestbedBuildArgs>,
  handler: async (args) => {
    if (args.kind !== 'emulated') throw new ConfigError('command line', 'kind', `only 'emulated' images are built by nuksm (got '${args.kind}')`);
    const image = await buildEmulatedImage({ cacheDir: args.cacheDir, force: args.force, log: (l) => process.stderr.write(`${l}\n`) });
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
