/**
 * The emulated testbed's image for real: built from Debian packages (or reused from .cache/emulated,
 * keyed by the hash of its inputs) with both kernels, and reused by a second build and by the
 * `nuksm testbed build emulated` command. Booting it and running campaigns inside it:
 * emulated-campaign.test.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import yargs from 'yargs';
import { testbedBuildCommand } from '../../src/cli/commands/testbed-build.ts';
import { buildEmulatedImage, imageKernels, type EmulatedImage } from '../../src/testbeds/emulated/index.ts';
import { describeWith } from '../support/components.ts';
import { testLog } from '../support/log.ts';

const say = testLog('emulated');

describeWith(['qemu', 'debootstrap', 'root', 'gcc'], 'emulated two-node machine image', () => {
  let image: EmulatedImage;

  beforeAll(async () => {
    const t0 = Date.now();
    image = await buildEmulatedImage({ log: say });
    say(`image ${image.key} ready in ${((Date.now() - t0) / 1000).toFixed(0)} s (base built now: ${image.baseBuiltNow}, ${image.buildSeconds.base.toFixed(0)} s; layer ${image.buildSeconds.image.toFixed(0)} s)`);
  }, 1_500_000);

  it('carries both Debian kernels with GRUB entries matching the shipped testbed file', () => {
    const kernels = imageKernels(image);
    expect(Object.keys(kernels).sort()).toEqual(['backports', 'bookworm']);
    expect(kernels.bookworm!.release).toMatch(/^6\.1\./);
    expect(kernels.backports!.release).toMatch(/^6\.12\./);
    expect(kernels.backports!.ksmKnobs).toEqual({ smart_scan: '0' });
  });

  it('reuses the cached image on a second build (same key, nothing rebuilt)', async () => {
    // Built back to back (the layer key follows the harness sources, which may change during a run).
    const first = await buildEmulatedImage();
    const again = await buildEmulatedImage();
    expect(again.key).toBe(first.key);
    expect(again.builtNow).toBe(false);
    expect(again.baseBuiltNow).toBe(false);
    expect(again.baseKey).toBe(image.baseKey);
    // The same through the CLI command module.
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      await yargs([]).command(testbedBuildCommand).strict().parseAsync(['testbed', 'build', 'emulated', '--json']);
    } finally {
      process.stdout.write = write;
    }
    const viaCli = JSON.parse(out.join('')) as EmulatedImage;
    expect(viaCli.key).toBe(again.key);
    expect(viaCli.builtNow).toBe(false);
    expect(viaCli.kernels.map((k) => k.release)).toEqual(image.kernels.map((k) => k.release));
    expect(existsSync(image.knownHostsFile)).toBe(true);
    expect(readFileSync(image.knownHostsFile, 'utf8')).toMatch(/^\[127\.0\.0\.1\]:\* ssh-ed25519 /);
  });

});
