/**
 * The host's real NUMA layout, read from sysfs through an Executor (so it works over SSH too), and
 * its comparison with what a testbed file claims.
 */
import type { NodeSpec } from '../../core/testbed-file.ts';
import type { Executor } from '../../host/exec/types.ts';
import { formatCpuList, parseCpuList } from '../../host/libvirt/domain-xml.ts';

const NODE_DIR = '/sys/devices/system/node';

export async function readHostNodes(exec: Executor): Promise<NodeSpec[]> {
  const ls = await exec.run(['ls', NODE_DIR], { timeoutMs: 10_000 });
  const ids = ls.stdout
    .split(/\s+/)
    .map((e) => /^node(\d+)$/.exec(e)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const nodes: NodeSpec[] = [];
  for (const id of ids) {
    const cpus = parseCpuList(await exec.readFile(`${NODE_DIR}/node${id}/cpulist`, { timeoutMs: 10_000 }));
    const meminfo = await exec.readFile(`${NODE_DIR}/node${id}/meminfo`, { timeoutMs: 10_000 });
    const kib = Number(/MemTotal:\s+(\d+)\s*kB/.exec(meminfo)?.[1] ?? 0);
    nodes.push({ id, cpus, memoryGiB: Math.floor((kib / (1024 * 1024)) * 100) / 100 });
  }
  return nodes;
}

/** Differences between the file's nodes and the host's, as human-readable findings. */
export function compareNodes(declared: readonly NodeSpec[], actual: readonly NodeSpec[]): string[] {
  const problems: string[] = [];
  for (const d of declared) {
    const a = actual.find((n) => n.id === d.id);
    if (!a) {
      problems.push(`node ${d.id} is in the testbed file but the host has nodes ${actual.map((n) => n.id).join(', ') || 'none'}`);
      continue;
    }
    const missing = d.cpus.filter((c) => !a.cpus.includes(c));
    if (missing.length > 0) problems.push(`node ${d.id}: CPUs ${formatCpuList(missing)} are not on this node (host: ${formatCpuList(a.cpus)})`);
    if (d.memoryGiB > a.memoryGiB) problems.push(`node ${d.id}: file says ${d.memoryGiB} GiB, host node has ${a.memoryGiB} GiB`);
  }
  return problems;
}
