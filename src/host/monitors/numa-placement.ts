/**
 * Each instance's resident memory per NUMA node from /proc/PID/numa_maps (what `numastat -p`
 * aggregates): instance_mem_on_node_mib per node and instance_mem_off_node_pct against the
 * instance's own node. KSM pages are counted in every sharer, as numa_maps does.
 */
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { parseNumaMaps } from './parse.ts';
import { MIB, makeSample } from './sample.ts';
import type { Monitor, MonitoredInstance } from './types.ts';

export function placementSamples(inst: MonitoredInstance, perNodeBytes: Map<number, number>, t: number | null): Sample[] {
  const out: Sample[] = [];
  let total = 0;
  for (const [node, bytes] of [...perNodeBytes].sort((a, b) => a[0] - b[0])) {
    out.push(makeSample(inst.name, inst.workload, 'instance_mem_on_node_mib', bytes / MIB, t, node));
    total += bytes;
  }
  const off = total - (perNodeBytes.get(inst.node) ?? 0);
  if (total > 0) out.push(makeSample(inst.name, inst.workload, 'instance_mem_off_node_pct', (off / total) * 100, t, inst.node));
  return out;
}

export async function readNumaPlacement(exec: Executor, pid: number): Promise<Map<number, number>> {
  return parseNumaMaps(await exec.readFile(`/proc/${pid}/numa_maps`, { timeoutMs: 30_000 }));
}

export class NumaPlacementMonitor implements Monitor {
  readonly name = 'numa-placement' as const;
  constructor(
    readonly exec: Executor,
    readonly instances: readonly MonitoredInstance[],
  ) {}
  async start(): Promise<void> {}
  async sample(t: number): Promise<Sample[]> {
    const all = await Promise.all(this.instances.map(async (i) => placementSamples(i, await readNumaPlacement(this.exec, i.pid), t)));
    return all.flat();
  }
  /** Once per run: the placement at the end. */
  async stop(): Promise<Sample[]> {
    const all = await Promise.all(this.instances.map(async (i) => placementSamples(i, await readNumaPlacement(this.exec, i.pid), null)));
    return all.flat();
  }
}
