/**
 * Which processes `nuksm place` places, and the node each calls home: PIDs given or read from a cgroup's
 * cgroup.procs; a home node given per PID or, by default, the node holding most of the process's resident
 * memory (numa_maps), which is where a node-bound instance's private pages are.
 */
import { ConfigError } from '../../core/errors.ts';
import type { Executor } from '../exec/types.ts';
import { readNumaPlacement } from '../monitors/numa-placement.ts';
import type { MonitoredInstance } from '../monitors/types.ts';

export async function resolvePlacementTargets(exec: Executor, opts: { pids?: readonly number[]; cgroup?: string; nodes?: readonly number[] }): Promise<MonitoredInstance[]> {
  let pids = [...(opts.pids ?? [])];
  if (opts.cgroup) {
    const dir = opts.cgroup.startsWith('/sys/fs/cgroup') ? opts.cgroup : `/sys/fs/cgroup/${opts.cgroup.replace(/^\/+/, '')}`;
    const text = await exec.readFile(`${dir}/cgroup.procs`, { timeoutMs: 30_000 }).catch((e: unknown) => {
      throw new ConfigError('command line', '--cgroup', `cannot read ${dir}/cgroup.procs: ${(e as Error).message}`);
    });
    pids.push(...text.split('\n').filter((l) => l.trim() !== '').map(Number));
  }
  pids = [...new Set(pids)];
  if (pids.length < 2) throw new ConfigError('command line', opts.cgroup ? '--cgroup' : '--pids', `placement needs at least two processes sharing merged pages (got ${pids.length})`);
  if (opts.nodes && opts.nodes.length !== pids.length) throw new ConfigError('command line', '--nodes', `one home node per process: ${pids.length} processes, ${opts.nodes.length} nodes`);
  const out: MonitoredInstance[] = [];
  for (const [i, pid] of pids.entries()) {
    let node = opts.nodes?.[i];
    if (node === undefined) {
      const perNode = await readNumaPlacement(exec, pid).catch((e: unknown) => {
        throw new ConfigError('command line', '--pids', `process ${pid}: cannot read /proc/${pid}/numa_maps (${(e as Error).message})`);
      });
      const best = [...perNode].sort((a, b) => b[1] - a[1])[0];
      if (!best) throw new ConfigError('command line', '--nodes', `process ${pid} has no resident memory to infer its home node from: give --nodes`);
      node = best[0];
    }
    const comm = (await exec.readFile(`/proc/${pid}/comm`, { timeoutMs: 30_000 }).catch(() => '')).trim();
    out.push({ name: `${comm || 'pid'}-${pid}`, workload: comm, pid, node });
  }
  return out;
}
