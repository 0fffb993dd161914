/**
 * The model testbed (`--testbed model`): runs a scenario step on a simulated two-socket host (Table I) with the
 * reference KSM / nuKSM model (src/policy). No kernel to boot, no guests: a step takes seconds of wall time.
 */
import type { Logger } from 'pino';
import { HarnessError } from '../../core/errors.ts';
import type { KernelMode, Scenario } from '../../core/scenario.ts';
import type { TestbedFile } from '../../core/testbed-file.ts';
import type { CompareOrder } from '../../policy/index.ts';
import { compareOrderOf, releaseAtLeast, type KsmScenario } from '../../policy/scenario.ts';
import { recordFromModel, type TraceFile } from '../../policy/trace-file.ts';
import type { EnvironmentRecord, KernelState, RecordKsmTraceOptions, StepContext, Testbed } from '../types.ts';
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

/**
 * Host shape from the testbed file's nodes (memoryGiB each); Table I when the file lists none. The host's own
 * share of a node is 12 GiB (§V-D: "about 180 GiB available" of 192); on nodes of 24 GiB or less (a prediction
 * for the emulated machine's 2 GiB nodes) the same fraction of the node, 1/16, so instances keep most of it.
 */
export function simulatedHostOf(file: TestbedFile): SimulatedHost {
  if (file.nodes.length === 0) return { memoryGiBPerNode: Array.from({ length: PLATFORM.nodes }, () => PLATFORM.memoryGiBPerNode) };
  const memoryGiBPerNode = [...file.nodes].sort((a, b) => a.id - b.id).map((n) => n.memoryGiB);
  const smallest = Math.min(...memoryGiBPerNode);
  const reservedGiBPerNode = smallest > 2 * PLATFORM.hostReservedGiBPerNode ? PLATFORM.hostReservedGiBPerNode : (smallest * PLATFORM.hostReservedGiBPerNode) / PLATFORM.memoryGiBPerNode;
  return { memoryGiBPerNode, reservedGiBPerNode };
}


/**
 * What the model takes from the step's kernel: the release's comparison order (src/policy: the checksum gate
 * moved before the stable-tree search in 6.11) and smart scan (6.7+, on unless the kernel's or mode's knobs
 * write smart_scan=0). A kernel without a Linux release (a model testbed's own) is the paper's v5.4.
 */
export function kernelBehaviourOf(file: TestbedFile, mode: KernelMode, kernel: string | undefined): KernelBehaviour {
  const spec = kernel !== undefined ? file.kernels[kernel] : undefined;
  if (!spec || releaseAtLeast(spec.release, 0, 0) === null) return { release: null, compareOrder: 'upto-6.10', smartScan: false, newAnonPagesActive: true };
  const knob = file.modes[mode]?.ksmKnobs.smart_scan ?? spec.ksmKnobs.smart_scan;
  return {
    release: spec.release,
    compareOrder: compareOrderOf(spec.release),
    smartScan: releaseAtLeast(spec.release, 6, 7) === true && knob !== '0',
    // 5.9 ("protect the workingset on anonymous LRU") starts new anonymous pages on the inactive list.
    newAnonPagesActive: releaseAtLeast(spec.release, 5, 9) !== true,
  };
}

/** The simulation options a kernel release implies (kernelBehaviourOf). */
export interface KernelBehaviour {
  release: string | null;
  compareOrder: CompareOrder;
  smartScan: boolean;
  newAnonPagesActive: boolean;
}

export async function createModelTestbed(file: TestbedFile): Promise<Testbed> {
  if (file.kind !== 'model') throw new HarnessError('config', `${file.file}: kind is '${file.kind}', the model testbed needs 'model'`);
  const host = simulatedHostOf(file);
  let mode: KernelMode = 'ksm-off';
  let behaviour = kernelBehaviourOf(file, mode, undefined);
  const releaseLabel = () =>
    behaviour.release === null
      ? RELEASES[mode]
      : `${RELEASES[mode]} (as ${behaviour.release}: ${behaviour.compareOrder} order, smart scan ${behaviour.smartScan ? 'on' : 'off'}, new anonymous pages ${behaviour.newAnonPagesActive ? 'active' : 'inactive'})`;
  return {
    kind: 'model',
    // The step's kernel key picks the release whose behaviour the model follows (kernelBehaviourOf);
    // nothing boots. The release label says model, then which kernel it stands for.
    async ensureKernel(wanted: KernelMode, log: Logger, kernel?: string): Promise<KernelState> {
      mode = wanted;
      behaviour = kernelBehaviourOf(file, wanted, kernel);
      log.debug({ mode, ...behaviour }, 'model testbed: kernel mode selected (nothing to boot)');
      return { status: 'ready', kernelRelease: releaseLabel() };
    },
    async describe(): Promise<EnvironmentRecord> {
      return {
        testbed: 'model',
        host: `simulated ${host.memoryGiBPerNode.length}-socket host (paper Table I: Xeon Gold 6140)`,
        kernelRelease: releaseLabel(),
        bootId: null,
        numaNodes: host.memoryGiBPerNode.length,
        ksmKnobs: {},
        details: { platform: PLATFORM, memoryGiBPerNode: host.memoryGiBPerNode, reservedGiBPerNode: host.reservedGiBPerNode, ksmdCost: KSMD_COST, compareOrder: behaviour.compareOrder, smartScan: behaviour.smartScan, newAnonPagesActive: behaviour.newAnonPagesActive },
      };
    },
    async runScenario(scenario: Scenario, ctx: StepContext): Promise<void> {
      const summary = await simulateScenario(scenario, host, ctx.emit, { signal: ctx.signal, compareOrder: behaviour.compareOrder, smartScan: behaviour.smartScan, newAnonPagesActive: behaviour.newAnonPagesActive });
      ctx.log.info({ configId: scenario.configId, ...summary }, 'model testbed: step simulated');
    },
    // The model's own recording (producer 'model' in the header): what the model predicts the kernel of
    // `opts.kernel` would do, never a measurement. Nodes: the testbed file's (Table I when it lists none).
    async recordKsmTrace(scenario: KsmScenario, opts: RecordKsmTraceOptions): Promise<TraceFile> {
      const b = kernelBehaviourOf(file, 'ksm', opts.kernel);
      const nodes = host.memoryGiBPerNode.length;
      scenario.procs.forEach((p, i) => {
        if (p.node >= nodes) throw new HarnessError('config', `scenario ${scenario.name}: instance ${i} is bound to node ${p.node}, but the model testbed ${file.name} has ${nodes} node(s)`);
      });
      const release = b.release ?? PAPER_KERNEL_RELEASE;
      return recordFromModel(scenario, {
        release,
        nodes,
        smartScanKnob: releaseAtLeast(release, 6, 7) === true,
        source: `model testbed ${file.name} (${file.file}): the reference model following ${b.release === null ? "the paper's v5.4" : release}, not a kernel measurement`,
      });
    },
    async close(): Promise<void> {},
  };
}

/** The release a model recording names when the testbed's kernel is no Linux release: the paper's v5.4. */
export const PAPER_KERNEL_RELEASE = '5.4 (paper kernel, as modelled)';
