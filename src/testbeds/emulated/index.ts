/**
 * The emulated testbed: a two-NUMA-node Debian machine under QEMU (qemu.ts), built from Debian
 * packages (image.ts). Campaigns run inside it (inside.ts), started and watched from the host by
 * src/campaign/in-machine.ts; the driver the campaign runner gets is therefore the inside one.
 */
import { ConfigError } from '../../core/errors.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { EmulatedInsideTestbed } from './inside.ts';

export { buildEmulatedImage, imageKernels, grubKernels, DEFAULT_IMAGE_CACHE_DIR, GUEST_HARNESS_DIR, GUEST_NATIVE_BIN_DIR, type EmulatedImage, type EmulatedKernel, type BuildEmulatedImageOptions } from './image.ts';
export { QemuMachine, qemuArgv, type MachineShape, type QemuMachineOptions } from './qemu.ts';
export { GUEST_STEP_ROOT } from './inside.ts';
export { EmulatedInsideTestbed } from './inside.ts';

export async function createEmulatedTestbed(file: TestbedFile): Promise<EmulatedInsideTestbed> {
  if (file.kind !== 'emulated' || !file.emulated) throw new ConfigError(file.file, 'emulated', `kind must be 'emulated' with an 'emulated' section`);
  if (!file.emulated.inside) {
    throw new ConfigError(file.file, 'emulated.inside', "campaigns on the emulated testbed run inside the machine: 'nuksm run' starts them there (src/campaign/in-machine.ts)");
  }
  return new EmulatedInsideTestbed(file);
}
