/**
 * KSM knobs for one step on a physical host: the scenario's generic settings, then the kernel's
 * knobs (e.g. nuKSM's smart_ksm=1), then the mode's, then the scenario's extra knobs, later
 * entries winning. The forest size (nuKSM multi-tree) is a property of the booted kernel here,
 * not a knob, so it is not written.
 */
import { ConfigError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { KernelSpec, TestbedFile } from '../../core/testbed-file.ts';
import { stepKsmKnobs } from '../../host/ksm/step-knobs.ts';

/**
 * `kernelKey`: the `kernels` key the step runs on (the one the last ensureKernel made ready); it
 * must be one of the mode's kernels. Absent: the mode's first kernel.
 */
export function ksmKnobsFor(scenario: Scenario, file: TestbedFile, kernelKey?: string): Record<string, string> {
  return stepKsmKnobs(scenario.ksm, kernelKnobsOf(file, scenario.kernelMode, kernelKey).knobs);
}

/** The kernel a (mode, kernel key) pair boots and the kernel + mode knobs it writes; ConfigError when the file lacks them. */
export function kernelKnobsOf(file: TestbedFile, mode: KernelMode, kernelKey?: string): { key: string; kernel: KernelSpec; knobs: Record<string, string> } {
  const spec = file.modes[mode];
  if (!spec) throw new ConfigError(file.file, `modes.${mode}`, `kernel mode '${mode}' is not configured for this testbed`);
  const key = kernelKey ?? spec.kernels[0]!;
  if (!spec.kernels.includes(key)) throw new ConfigError(file.file, `modes.${mode}.kernel`, `kernel '${key}' is not one of this mode's kernels (${spec.kernels.join(', ')})`);
  const kernel = file.kernels[key];
  if (!kernel) throw new ConfigError(file.file, `modes.${mode}.kernel`, `kernel '${key}' is not in kernels`);
  return { key, kernel, knobs: { ...kernel.ksmKnobs, ...spec.ksmKnobs } };
}
