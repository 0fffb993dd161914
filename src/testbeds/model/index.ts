/**
 * The model testbed (`--testbed model`): runs a scenario step on a simulated two-socket host (Table I) with the
 * reference KSM / nuKSM model (src/policy). No kernel to boot, no guests: a step takes seconds of wall time.
 */
import type { Logger } from 'pino';
import { HarnessError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { EnvironmentRecord, KernelState, StepContext, Testbed } from '../types.ts';
import { KSMD_COST, PLATFORM } from './profiles.ts';
import { simulateScenario, type SimulatedHost } from './simulation.ts';

export { simulateScenario } from './simulation.ts';
export type { SimulatedHost, SimulationSummary } from './simulation.ts';
export { fairnessScenario, fig8Scenario, ksmSettingsFor, paperModelTestbedFile, PAPER_WORKLOADS } from './scenarios.ts';

const RELEASES: Record<KernelMode, string> = {
  'ksm-off': 'model-ksm',
  ksm: 'model-ksm',
  'ksm-node-local': 'model-ksm',
  'ksm-numa-balancing': 'model-ksm',
  'nuksm-fair': 'model-nuksm',
  'nuksm-priority': 'model-nuksm',
  'nuksm-forest': 'model-nuksm',
  uksm: 'model-uksm-unsupported',
};

/** Host shape from the testbed file's nodes (memoryGiB each); Table I when the file lists none. */
export function simulatedHostOf(file: TestbedFile): SimulatedHost {
  if (file.nodes.length === 0) return { memoryGiBPerNode: Array.from({ length: PLATFORM.nodes }, () => PLATFORM.memoryGiBPerNode) };
  for (const n of file.nodes) {
    if (!(n.memoryGiB > PLATFORM.hostReservedGiBPerNode)) {
      throw new HarnessError('config', `${file.file}: nodes[${n.id}].memoryGiB must exceed the ${PLATFORM.hostReservedGiBPerNode} GiB the model reserves for the host`);
    }
  }
  return { memoryGiBPerNode: [...file.nodes].sort((a, b) => a.id - b.id).map((n) => n.memoryGiB) };
}

export async function createModelTestbed(file: TestbedFile): Promise<Testbed> {
  if (file.kind !== 'model') throw new HarnessError('config', `${file.file}: kind is '${file.kind}', the model testbed needs 'model'`);
  const host = simulatedHostOf(file);
  let mode: KernelMode = 'ksm-off';
  return {
    kind: 'model',
    // The step's kernel key (a mode may name several) changes nothing here: the model has one
    // simulated kernel per mode.
    async ensureKernel(wanted: KernelMode, log: Logger, _kernel?: string): Promise<KernelState> {
      mode = wanted;
      log.debug({ mode }, 'model testbed: kernel mode selected (nothing to boot)');
      return { status: 'ready', kernelRelease: RELEASES[wanted] };
    },
    async describe(): Promise<EnvironmentRecord> {
      return {
        testbed: 'model',
        host: `simulated ${host.memoryGiBPerNode.length}-socket host (paper Table I: Xeon Gold 6140)`,
        kernelRelease: RELEASES[mode],
        bootId: null,
        numaNodes: host.memoryGiBPerNode.length,
        ksmKnobs: {},
        details: { platform: PLATFORM, memoryGiBPerNode: host.memoryGiBPerNode, ksmdCost: KSMD_COST },
      };
    },
    async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
      const summary = await simulateScenario(scenario, host, ctx.emit, { signal: ctx.signal });
      ctx.log.info({ configId: scenario.configId, ...summary }, 'model testbed: step simulated');
    },
    async close(): Promise<void> {},
  };
}
