/** KSM counters from sysfs, host-wide, each period; memory_saved_gib = pages_sharing × page size. */
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { KsmControl, type KsmCounters } from '../ksm/control.ts';
import { GIB, makeSample } from './sample.ts';
import type { Monitor } from './types.ts';

export function ksmCounterSamples(c: KsmCounters, pageSize: number, t: number | null): Sample[] {
  return [
    makeSample('host', '', 'ksm_pages_shared', c.pages_shared, t),
    makeSample('host', '', 'ksm_pages_sharing', c.pages_sharing, t),
    makeSample('host', '', 'ksm_pages_unshared', c.pages_unshared, t),
    makeSample('host', '', 'ksm_pages_volatile', c.pages_volatile, t),
    makeSample('host', '', 'ksm_full_scans', c.full_scans, t),
    makeSample('host', '', 'memory_saved_gib', (c.pages_sharing * pageSize) / GIB, t),
  ];
}

/** The target's page size; 4096 where getconf is missing (busybox guests). */
export async function pageSizeOf(exec: Executor): Promise<number> {
  return getconfNumber(exec, 'PAGESIZE', 4096);
}

export async function getconfNumber(exec: Executor, name: string, fallback: number): Promise<number> {
  const res = await exec.run(['getconf', name], { timeoutMs: 10_000, allowFailure: true });
  const v = Number(res.stdout.trim());
  return res.exitCode === 0 && Number.isFinite(v) && v > 0 ? v : fallback;
}

export class KsmCountersMonitor implements Monitor {
  readonly name = 'ksm' as const;
  private readonly ksm: KsmControl;
  private pageSize = 4096;
  last: KsmCounters | null = null;

  constructor(readonly exec: Executor) {
    this.ksm = new KsmControl(exec);
  }

  async start(): Promise<void> {
    this.pageSize = await pageSizeOf(this.exec);
  }

  async sample(t: number): Promise<Sample[]> {
    this.last = await this.ksm.readCounters();
    return ksmCounterSamples(this.last, this.pageSize, t);
  }

  /** Once-per-run values: the counters at the end. */
  async stop(): Promise<Sample[]> {
    this.last = await this.ksm.readCounters();
    return ksmCounterSamples(this.last, this.pageSize, null).filter((s) => s.metric !== 'ksm_pages_unshared' && s.metric !== 'ksm_pages_volatile');
  }
}
