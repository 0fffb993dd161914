/**
 * `nuksm predict`: the model testbed standing in for a real one. The real testbed file is read and
 * checked as for `nuksm run`; the model gets its topology (nodes, CPUs, memory), its kernels (each
 * release sets the comparison order and smart scan, index.ts kernelBehaviourOf) and which kernels
 * each mode runs on, so the prediction's plan has the same steps (ids, kernels) as the measured
 * campaign and `nuksm compare` lines them up. Its rows say testbed=model, implementation=model.
 */
import { ConfigError } from '../../core/errors.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { CampaignSpec } from '../../campaign/spec.ts';
import { profileOf } from './profiles.ts';

/**
 * The model testbed file for a real one, as YAML data (the campaign reloads its testbed from the file the
 * plan names). `placement: userspace` is dropped: the model runs nuKSM's fair and priority placement itself,
 * with the same placement code the user-space engine runs (src/policy/placement.ts).
 */
export function modelTestbedDataFor(real: TestbedFile): Record<string, unknown> {
  return {
    name: `${real.name}-model`,
    kind: 'model',
    host: { kind: 'local' },
    nodes: real.nodes.map((n) => ({ id: n.id, cpus: [...n.cpus], memoryGiB: n.memoryGiB })),
    kernels: Object.fromEntries(Object.entries(real.kernels).map(([k, v]) => [k, { bootEntry: v.bootEntry, release: v.release, ksmKnobs: { ...v.ksmKnobs } }])),
    modes: Object.fromEntries(Object.entries(real.modes).flatMap(([m, v]) => (v ? [[m, { kernel: [...v.kernels], ksmKnobs: { ...v.ksmKnobs } }]] : []))),
    perfEventSet: 'none',
    resume: 'none',
  };
}

/**
 * What the model cannot predict for this spec on this testbed, as ConfigErrors naming the spec key, before
 * anything is created: a workload without a model profile, UKSM (not modelled).
 */
export function checkPredictable(spec: CampaignSpec): void {
  for (const exp of spec.specs) {
    exp.configurations.forEach((c, i) => {
      if (profileOf(c.workload) === undefined) {
        throw new ConfigError(exp.file, `configurations[${i}].workload`, `the model has no profile for '${c.workload}' (src/testbeds/model/profiles.ts), so it cannot predict this run`);
      }
    });
    const k = exp.kernelModes.indexOf('uksm');
    if (k >= 0) throw new ConfigError(exp.file, `kernelModes[${k}]`, 'UKSM is not modelled (its adaptive sampling and per-region scan rates are not in the reference model)');
  }
}
