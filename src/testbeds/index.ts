/**
 * Testbed factory: a TestbedFile → its driver. Drivers are imported on demand, so a missing or
 * broken driver only fails campaigns on that kind, with a clear error.
 */
import { HarnessError } from '../core/errors.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import type { Testbed } from './types.ts';

type Factory = (file: TestbedFile) => Promise<Testbed>;

const DRIVERS: Record<TestbedFile['kind'], { module: string; export: string }> = {
  model: { module: './model/index.ts', export: 'createModelTestbed' },
  emulated: { module: './emulated/index.ts', export: 'createEmulatedTestbed' },
  physical: { module: './physical/index.ts', export: 'createPhysicalTestbed' },
};

export async function createTestbed(file: TestbedFile): Promise<Testbed> {
  const driver = DRIVERS[file.kind];
  let mod: Record<string, unknown>;
  try {
    mod = (await import(driver.module)) as Record<string, unknown>;
  } catch (err) {
    throw new HarnessError('unsupported', `${file.file}: the '${file.kind}' testbed driver could not be loaded (src/testbeds/${driver.module.slice(2)}): ${(err as Error).message}`, { kind: file.kind }, { cause: err });
  }
  const factory = mod[driver.export];
  if (typeof factory !== 'function') {
    throw new HarnessError('unsupported', `${file.file}: src/testbeds/${driver.module.slice(2)} does not export ${driver.export}()`, { kind: file.kind });
  }
  return (factory as Factory)(file);
}
