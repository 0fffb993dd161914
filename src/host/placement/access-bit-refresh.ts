/**
 * A workaround for emulators, not needed on hardware: DAMON clears a PTE's accessed bit without flushing the
 * TLB (x86), and QEMU's TCG keeps every translation of a small working set cached, so the bit is never set
 * again and DAMON sees no access (measured in the emulated machine: nr_accesses 0 on a reader's data while it
 * ran at 90 % CPU). Until something else flushes the mm (a KSM merge, a migration), the process looks idle,
 * so which instances look active depends on where KSM happens to be. A loop writing 4 to each instance's
 * /proc/PID/clear_refs (soft-dirty reset, which flushes the mm's TLB; no page is written) every periodMs
 * lets the accessed bits work as a hardware TLB's evictions would.
 *
 * The loop runs detached on the target (src/host/exec/detached.ts) and ends by itself when its stop file
 * appears, when none of the processes is left, or after maxS. Call order: startAccessBitRefresh() → stop()
 * (always; idempotent).
 */
import { runDetached } from '../exec/detached.ts';
import type { Executor } from '../exec/types.ts';

export interface AccessBitRefresh {
  /** The detached run's directory (its pid, stdout, stderr). */
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startAccessBitRefresh(exec: Executor, pids: readonly number[], opts: { periodMs: number; workDir: string; maxS: number }): Promise<AccessBitRefresh> {
  if (!(opts.periodMs >= 10)) throw new RangeError('startAccessBitRefresh: periodMs must be >= 10');
  if (pids.some((p) => !Number.isInteger(p) || p <= 0)) throw new RangeError(`startAccessBitRefresh: bad pid in ${pids.join(',')}`);
  const id = `access-bit-refresh-${Date.now()}-${process.pid}`;
  const dir = `${opts.workDir.replace(/\/+$/, '')}/${id}`;
  const script = [
    `end=$(( $(date +%s) + ${Math.ceil(opts.maxS)} ))`,
    `while [ ! -e ${dir}/stop ] && [ $(date +%s) -lt $end ]; do`,
    `  alive=0; for p in ${pids.join(' ')}; do echo 4 > /proc/$p/clear_refs 2>/dev/null && alive=1; done`,
    `  [ $alive = 1 ] || break`,
    `  sleep ${(opts.periodMs / 1000).toFixed(3)}`,
    `done`,
  ].join('\n');
  const handle = await runDetached(exec, ['sh', '-c', script], { workDir: opts.workDir, id });
  let stopped = false;
  return {
    dir: handle.dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      // The stop file ends the loop within one period; a loop still there after 5 s is killed with its process group (setsid made one).
      await exec.run(['sh', '-c', `touch ${dir}/stop; i=0; while [ ! -e ${dir}/exit ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; [ -e ${dir}/exit ] || kill -- "-$(cat ${dir}/pid)" 2>/dev/null; true`], { timeoutMs: 30_000, allowFailure: true });
    },
  };
}
