/**
 * ksmd CPU % over each sampling interval from /proc/<ksmd>/stat utime+stime deltas, divided by the
 * /proc/uptime delta read in the same command on the target (so network latency does not skew
 * it). Not `ps %cpu`, which is a lifetime average. ksmd is found by its comm, not by grep.
 */
import { HarnessError } from '../../core/errors.ts';
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { cpuPercent, parseProcStat, parseUptime } from './parse.ts';
import { getconfNumber } from './ksm.ts';
import { makeSample } from './sample.ts';
import type { Monitor } from './types.ts';

export async function findPidByComm(exec: Executor, comm: string): Promise<number[]> {
  // grep -x matches the whole comm line; -l prints /proc/<pid>/comm.
  const res = await exec.run(['sh', '-c', 'grep -lx -- "$1" /proc/[0-9]*/comm 2>/dev/null; true', 'sh', comm], { timeoutMs: 15_000 });
  return res.stdout
    .split('\n')
    .map((l) => /^\/proc\/(\d+)\/comm$/.exec(l.trim())?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number);
}

export class KsmdCpuMonitor implements Monitor {
  readonly name = 'ksmd-cpu' as const;
  private pid = 0;
  private clkTck = 100;
  private prev: { ticks: number; uptimeS: number } | null = null;
  private first: { ticks: number; uptimeS: number } | null = null;

  constructor(readonly exec: Executor) {}

  async start(): Promise<void> {
    const pids = await findPidByComm(this.exec, 'ksmd');
    if (pids.length !== 1) throw new HarnessError('unsupported', `expected one ksmd thread on ${this.exec.target}, found ${pids.length}`);
    this.pid = pids[0]!;
    // USER_HZ is 100 on every Linux architecture in use; getconf is missing on busybox guests.
    this.clkTck = await getconfNumber(this.exec, 'CLK_TCK', 100);
    this.prev = await this.read();
    this.first = this.prev;
  }

  private async read(): Promise<{ ticks: number; uptimeS: number }> {
    const res = await this.exec.run(['cat', `/proc/${this.pid}/stat`, '/proc/uptime'], { timeoutMs: 10_000 });
    const [statLine, uptimeLine] = res.stdout.split('\n');
    const stat = parseProcStat(statLine ?? '');
    if (stat.comm !== 'ksmd') throw new HarnessError('unsupported', `pid ${this.pid} is no longer ksmd on ${this.exec.target}`);
    return { ticks: stat.utime + stat.stime, uptimeS: parseUptime(uptimeLine ?? '') };
  }

  async sample(t: number): Promise<Sample[]> {
    const cur = await this.read();
    const pct = this.prev ? cpuPercent(this.prev, cur, this.clkTck) : null;
    this.prev = cur;
    return pct === null ? [] : [makeSample('host', '', 'ksmd_cpu_pct', pct, t)];
  }

  /** Once per run: ksmd's average CPU over the whole step. */
  async stop(): Promise<Sample[]> {
    if (!this.first) return [];
    const pct = cpuPercent(this.first, await this.read(), this.clkTck);
    return pct === null ? [] : [makeSample('host', '', 'ksmd_cpu_pct', pct, null)];
  }
}
