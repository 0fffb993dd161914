/**
 * The emulated testbed: a two-NUMA-node Debian machine under QEMU (qemu.ts), built from Debian
 * packages (image.ts). Campaigns run inside it (inside.ts), started and watched from the host by
 * src/campaign/in-machine.ts; the driver the campaign runner gets is therefore the inside one.
 */
import { ConfigError } from '../../core/errors.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { EmulatedHostTestbed } from './host.ts';
import { EmulatedInsideTestbed } from './inside.ts';

export { buildEmulatedImage, imageKernels, grubKernels, DEFAULT_IMAGE_CACHE_DIR, GUEST_HARNESS_DIR, GUEST_NATIVE_BIN_DIR, type EmulatedImage, type EmulatedKernel, type BuildEmulatedImageOptions } from './image.ts';
export { QemuMachine, qemuArgv, type MachineShape, type QemuMachineOptions } from './qemu.ts';
export { GUEST_STEP_ROOT } from './inside.ts';
export { EmulatedInsideTestbed } from './inside.ts';

export { EmulatedHostTestbed } from './host.ts';

/** Inside the machine (`emulated.inside`): the campaign driver; on the host: the host side, which refuses campaign steps. */
export async function createEmulatedTestbed(file: TestbedFile): Promise<EmulatedInsideTestbed | EmulatedHostTestbed> {
  if (file.kind !== 'emulated' || !file.emulated) throw new ConfigError(file.file, 'emulated', `kind must be 'emulated' with an 'emulated' section`);
  return file.emulated.inside ? new EmulatedInsideTestbed(file) : new EmulatedHostTestbed(file);
}
