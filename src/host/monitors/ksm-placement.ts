/**
 * Which NUMA node the KSM pages an instance maps sit on: /proc/PID/pagemap (virtual page → pfn)
 * + /proc/kpageflags (bit 21 = KSM) + pfn → node from /sys/devices/system/memory/block_size_bytes
 * and the /sys/devices/system/node/nodeN/memoryM links.
 *
 * Choice: the read-out runs ON the target with `node` (ksm-pages.cjs passed by `node -e`): the
 * files are binary, indexed by pfn and large, so moving them through an Executor would cost far
 * more than running a small script there. The harness already needs Node, the physical host runs
 * it, and the emulated testbed's guest runs the host's node binary. Needs root (pfns are zeroed
 * without CAP_SYS_ADMIN); this is checked and reported.
 *
 * ksm_pages_on_node counts the instance's virtual pages backed by a KSM page on that node (a KSM
 * page mapped twice by the instance counts twice, like numa_maps); the distinct-pfn counts are in
 * the raw read-out.
 */
import { readFileSync } from 'node:fs';
import { HarnessError } from '../../core/errors.ts';
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { pageSizeOf } from './ksm.ts';
import { makeSample } from './sample.ts';
import type { Monitor, MonitoredInstance } from './types.ts';

export const KSM_PAGES_SCRIPT = readFileSync(new URL('./ksm-pages.cjs', import.meta.url), 'utf8');

export interface KsmPlacement {
  pid: number;
  /** NUMA nodes with memory on the target. */
  nodes: number[];
  presentPages: number;
  /** Present pages whose pfn read as 0 (no CAP_SYS_ADMIN, or special mappings). */
  presentWithoutPfn: number;
  /** node → present pages (node -1: pfn outside every memory block). */
  presentByNode: Record<string, number>;
  /** node → this PID's virtual pages backed by a KSM page on that node. */
  ksmMappedByNode: Record<string, number>;
  /** node → distinct KSM pages this PID maps. */
  ksmDistinctByNode: Record<string, number>;
}

export function parseKsmPlacementOutput(text: string): KsmPlacement[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as KsmPlacement);
}

export async function readKsmPlacement(exec: Executor, pids: readonly number[], opts: { nodeBinary?: string; timeoutMs?: number; pageSize?: number } = {}): Promise<KsmPlacement[]> {
  const pageSize = opts.pageSize ?? (await pageSizeOf(exec));
  const res = await exec.run([opts.nodeBinary ?? 'node', '-e', KSM_PAGES_SCRIPT, '--', String(pageSize), ...pids.map(String)], { timeoutMs: opts.timeoutMs ?? 300_000, allowFailure: true });
  if (res.exitCode !== 0) {
    throw new HarnessError('unsupported', `KSM page placement read-out failed on ${exec.target} (needs root, node, /proc/kpageflags and /sys/devices/system/memory): ${res.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }
  const out = parseKsmPlacementOutput(res.stdout);
  for (const p of out) {
    if (p.presentPages > 0 && p.presentWithoutPfn === p.presentPages) {
      throw new HarnessError('unsupported', `pagemap of pid ${p.pid} on ${exec.target} shows no pfns: the read-out needs root (CAP_SYS_ADMIN)`);
    }
  }
  return out;
}

export function ksmPlacementSamples(inst: MonitoredInstance, p: KsmPlacement, t: number | null): Sample[] {
  const out: Sample[] = [];
  let total = 0;
  // Every node with memory gets a value (0 = none of this instance's KSM pages there).
  const nodes = [...new Set([...(p.nodes ?? []), ...Object.keys(p.ksmMappedByNode).map(Number)])].filter((n) => n >= 0).sort((a, b) => a - b);
  for (const node of nodes) {
    const pages = p.ksmMappedByNode[String(node)] ?? 0;
    out.push(makeSample(inst.name, inst.workload, 'ksm_pages_on_node', pages, t, node));
    total += pages;
  }
  // No KSM pages: the local share is undefined, not 0 or 100.
  if (total > 0) out.push(makeSample(inst.name, inst.workload, 'ksm_local_pct', ((p.ksmMappedByNode[String(inst.node)] ?? 0) / total) * 100, t, inst.node));
  return out;
}

export class KsmPlacementMonitor implements Monitor {
  readonly name = 'ksm-placement' as const;
  last: KsmPlacement[] = [];

  constructor(
    readonly exec: Executor,
    readonly instances: readonly MonitoredInstance[],
    /** The read-out walks every mapped page: by default only once, at stop(). */
    readonly opts: { periodic?: boolean; nodeBinary?: string } = {},
  ) {}

  async start(): Promise<void> {}

  private async read(t: number | null): Promise<Sample[]> {
    this.last = await readKsmPlacement(this.exec, this.instances.map((i) => i.pid), { nodeBinary: this.opts.nodeBinary });
    return this.instances.flatMap((inst) => {
      const p = this.last.find((x) => x.pid === inst.pid);
      return p ? ksmPlacementSamples(inst, p, t) : [];
    });
  }

  async sample(t: number): Promise<Sample[]> {
    return this.opts.periodic ? this.read(t) : [];
  }

  async stop(): Promise<Sample[]> {
    return this.read(null);
  }
}
