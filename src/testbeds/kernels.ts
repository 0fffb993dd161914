/**
 * Which kernel a step boots and which KSM knobs it writes, from the testbed file: shared by the
 * drivers that boot real kernels (physical, emulated).
 */
import { ConfigError } from '../core/errors.ts';
import type { KernelMode } from '../core/scenario.ts';
import type { KernelSpec, TestbedFile } from '../core/testbed-file.ts';

/** The kernel a (mode, kernel key) pair boots and the kernel + mode knobs it writes; ConfigError when the file lacks them. */
export function kernelKnobsOf(file: TestbedFile, mode: KernelMode, kernelKey?: string): { key: string; kernel: KernelSpec; knobs: Record<string, string>; placement: 'kernel' | 'userspace' } {
  const spec = file.modes[mode];
  if (!spec) throw new ConfigError(file.file, `modes.${mode}`, `kernel mode '${mode}' is not configured for this testbed`);
  const key = kernelKey ?? spec.kernels[0]!;
  if (!spec.kernels.includes(key)) throw new ConfigError(file.file, `modes.${mode}.kernel`, `kernel '${key}' is not one of this mode's kernels (${spec.kernels.join(', ')})`);
  const kernel = file.kernels[key];
  if (!kernel) throw new ConfigError(file.file, `modes.${mode}.kernel`, `kernel '${key}' is not in kernels`);
  return { key, kernel, knobs: { ...kernel.ksmKnobs, ...spec.ksmKnobs }, placement: spec.placement ?? 'kernel' };
}
