/** MemFree / MemAvailable from /proc/meminfo, host-wide. */
import type { Sample } from '../../core/sample.ts';
import type { Executor } from '../exec/types.ts';
import { parseMeminfo } from './parse.ts';
import { GIB, makeSample } from './sample.ts';
import type { Monitor } from './types.ts';

export function meminfoSamples(text: string, t: number | null): Sample[] {
  const m = parseMeminfo(text);
  const out: Sample[] = [];
  if (m.MemFree !== undefined) out.push(makeSample('host', '', 'mem_free_gib', m.MemFree / GIB, t));
  if (m.MemAvailable !== undefined) out.push(makeSample('host', '', 'mem_available_gib', m.MemAvailable / GIB, t));
  return out;
}

export class MeminfoMonitor implements Monitor {
  readonly name = 'meminfo' as const;
  constructor(readonly exec: Executor) {}
  async start(): Promise<void> {}
  async sample(t: number): Promise<Sample[]> {
    return meminfoSamples(await this.exec.readFile('/proc/meminfo', { timeoutMs: 10_000 }), t);
  }
  async stop(): Promise<Sample[]> {
    return [];
  }
}
