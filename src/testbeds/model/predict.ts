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
import type { Scenario } from '../../core/scenario.ts';
import { mix32, SplitMix32 } from '../../policy/index.ts';
import { profileOf } from './profiles.ts';
import { simulateScenario, type SimulatedHost, type SimulationOptions } from './simulation.ts';

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

/** Per-instance merged-page placement of one simulated run. */
export type PlacementByInstance = Record<string, number | null>;

export interface PhaseSweep {
  /** The spec's own timeline (no offsets): what `nuksm predict` stores. */
  nominal: PlacementByInstance;
  /** One entry per start-phase draw: ksm_local_pct per instance. */
  draws: PlacementByInstance[];
  /** Start offsets drawn per instance, uniform in [0, spreadS). */
  spreadS: number;
}

/**
 * Which node keeps a merged page depends on where ksmd's cursor is when an instance registers
 * (__ksm_enter inserts the mm just behind it; the page scanned second survives a merge). ksmd's cycle
 * is tens of ms; a real instance registers after a launch whose latency varies by far more (exec, the
 * stand-in's install check, its mmap), so the phase is effectively uniform. This runs the step again
 * with every instance's start moved by an offset uniform in [0, spreadS), one draw per `phases`, from
 * the step's seed, and reports ksm_local_pct per instance of each draw next to the nominal run.
 */
export async function startPhaseSweep(
  scenario: Scenario,
  host: SimulatedHost,
  sim: SimulationOptions,
  phases: number,
  spreadS = 1,
): Promise<PhaseSweep> {
  const once = async (s: Scenario): Promise<PlacementByInstance> => {
    const out: PlacementByInstance = Object.fromEntries(s.instances.map((i) => [i.name, null]));
    await simulateScenario(s, host, (samples) => {
      for (const x of samples) if (x.metric === 'ksm_local_pct' && x.t === null) out[x.instance] = x.value;
    }, sim);
    return out;
  };
  const nominal = await once(scenario);
  const draws: PlacementByInstance[] = [];
  for (let k = 0; k < phases; k++) {
    const rng = new SplitMix32(mix32((scenario.seed ^ Math.imul(k + 1, 0x9e3779b9)) >>> 0));
    draws.push(await once({ ...scenario, instances: scenario.instances.map((i) => ({ ...i, startAtS: i.startAtS + rng.next() * spreadS })) }));
  }
  return { nominal, draws, spreadS };
}
