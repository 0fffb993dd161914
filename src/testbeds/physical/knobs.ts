/**
 * KSM knobs for one step on a physical host: the scenario's generic settings, then the kernel's
 * knobs (e.g. nuKSM's smart_ksm=1), then the mode's, then the scenario's extra knobs, later
 * entries winning. The forest size (nuKSM multi-tree) is a property of the booted kernel here,
 * not a knob, so it is not written.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { stepKsmKnobs } from '../../host/ksm/step-knobs.ts';

export function ksmKnobsFor(scenario: Scenario, file: TestbedFile): Record<string, string> {
  const mode = file.modes[scenario.kernelMode];
  if (!mode) throw new ConfigError(file.file, `modes.${scenario.kernelMode}`, `kernel mode '${scenario.kernelMode}' is not configured for this testbed`);
  const kernel = file.kernels[mode.kernel];
  if (!kernel) throw new ConfigError(file.file, `modes.${scenario.kernelMode}.kernel`, `kernel '${mode.kernel}' is not in kernels`);
  return stepKsmKnobs(scenario.ksm, { ...kernel.ksmKnobs, ...mode.ksmKnobs });
}
