/**
 * KSM knobs for one step on a physical host: the scenario's generic settings, then the kernel's
 * knobs (e.g. nuKSM's smart_ksm=1), then the mode's, then the scenario's extra knobs, later
 * entries winning. The forest size (nuKSM multi-tree) is a property of the booted kernel here,
 * not a knob, so it is not written.
 */
import type { Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import { stepKsmKnobs } from '../../host/ksm/step-knobs.ts';
import { kernelKnobsOf } from '../kernels.ts';

export { kernelKnobsOf };

/**
 * `kernelKey`: the `kernels` key the step runs on (the one the last ensureKernel made ready); it
 * must be one of the mode's kernels. Absent: the mode's first kernel.
 */
export function ksmKnobsFor(scenario: Scenario, file: TestbedFile, kernelKey?: string): Record<string, string> {
  return stepKsmKnobs(scenario.ksm, kernelKnobsOf(file, scenario.kernelMode, kernelKey).knobs);
}
