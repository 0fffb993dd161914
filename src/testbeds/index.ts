/**
 * Testbed factory: a TestbedFile → its driver. Drivers are imported on demand, so a missing or
 * broken driver only fails campaigns on that kind, with a clear error.
 */
import { HarnessError } from '../core/errors.ts';
import type { TestbedFile } from '../core/testbed-file.ts';
import type { Testbed } from './types.ts';

type Factory = (file: TestbedFile) => Promise<Testbed>;

const DRIVERS: Record<TestbedFile['kind'], { path: string; export: string; load: () => Promise<Record<string, unknown>> }> = {
  model: { path: 'src/testbeds/model/index.ts', export: 'createModelTestbed', load: () => import('./model/index.ts') },
  emulated: { path: 'src/testbeds/emulated/index.ts', export: 'createEmulatedTestbed', load: () => import('./emulated/index.ts') },
  physical: { path: 'src/testbeds/physical/index.ts', export: 'createPhysicalTestbed', load: () => import('./physical/index.ts') },
};

/** The driver's factory for a testbed kind; throws HarnessError('unsupported') naming the module when it cannot load. */
export async function loadTestbedDriver(kind: TestbedFile['kind'], file = '(testbed file)'): Promise<{ path: string; factory: Factory }> {
  const driver = DRIVERS[kind];
  let mod: Record<string, unknown>;
  try {
    mod = await driver.load();
  } catch (err) {
    throw new HarnessError('unsupported', `${file}: the '${kind}' testbed driver could not be loaded (${driver.path}): ${(err as Error).message}`, { kind }, { cause: err });
  }
  const factory = mod[driver.export];
  if (typeof factory !== 'function') throw new HarnessError('unsupported', `${file}: ${driver.path} does not export ${driver.export}()`, { kind });
  return { path: driver.path, factory: factory as Factory };
}

export async function createTestbed(file: TestbedFile): Promise<Testbed> {
  const { factory } = await loadTestbedDriver(file.kind, file.file);
  return factory(file);
}
