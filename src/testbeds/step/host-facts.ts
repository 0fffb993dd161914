/**
 * What a step's manifest records about the machine it ran on (BenchExec-style), read in one place
 * for every real testbed: kernel release and boot id, host name, NUMA nodes with their CPUs and
 * memory, CPU model, KSM knobs. Driver-specific facts go into `details`.
 */
import type { Executor } from '../../host/exec/types.ts';
import { KernelControl } from '../../host/kernel/index.ts';
import { KsmControl } from '../../host/ksm/index.ts';
import { readHostNodes } from '../physical/topology.ts';
import type { EnvironmentRecord, TestbedKind } from '../types.ts';

export async function describeHost(exec: Executor, testbed: TestbedKind, details: Record<string, unknown> = {}): Promise<EnvironmentRecord> {
  const info = await new KernelControl(exec).bootInfo();
  const host = (await exec.run(['uname', '-n'], { timeoutMs: 10_000 })).stdout.trim();
  const nodes = await readHostNodes(exec);
  const cpuModel = (await exec.run(['sh', '-c', "grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-"], { timeoutMs: 10_000, allowFailure: true })).stdout.trim();
  const ksmKnobs = await new KsmControl(exec).readKnobs().catch(() => ({}));
  return {
    testbed,
    host,
    kernelRelease: info.release,
    bootId: info.bootId,
    numaNodes: nodes.length,
    ksmKnobs,
    details: { target: exec.target, cpuModel, nodes, ...details },
  };
}
