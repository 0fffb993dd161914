import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.ts';
import { startSampling } from '../../src/host/monitors/sampler.ts';
import { makeSample } from '../../src/host/monitors/sample.ts';
import type { Monitor } from '../../src/host/monitors/types.ts';

class CountingMonitor implements Monitor {
  readonly name = 'meminfo' as const;
  started = 0;
  ts: number[] = [];
  constructor(readonly delayMs = 0) {}
  async start() {
    this.started++;
  }
  async sample(t: number): Promise<Sample[]> {
    this.ts.push(t);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return [makeSample('host', '', 'mem_free_gib', this.ts.length, t)];
  }
  async stop() {
    return [makeSample('host', '', 'mem_free_gib', -1, null)];
  }
}

class FailingMonitor implements Monitor {
  readonly name = 'ksm' as const;
  async start() {}
  async sample(): Promise<Sample[]> {
    throw new Error('boom');
  }
  async stop(): Promise<Sample[]> {
    return [];
  }
}

describe('startSampling', () => {
  it('samples on a fixed period with t relative to the step start, then emits stop() samples', async () => {
    const m = new CountingMonitor();
    const emitted: Sample[] = [];
    const errors: string[] = [];
    const stepStartMs = Date.now() - 1_000; // the step started a second ago
    const s = await startSampling([m, new FailingMonitor()], { periodMs: 100, stepStartMs, emit: (x) => emitted.push(...x), onError: (n, e) => errors.push(`${n}:${(e as Error).message}`) });
    await new Promise((r) => setTimeout(r, 550));
    const finals = await s.stop();
    expect(m.started).toBe(1);
    expect(m.ts[0]).toBeGreaterThanOrEqual(1.0);
    expect(m.ts.length).toBeGreaterThanOrEqual(4);
    expect(m.ts.length).toBeLessThanOrEqual(8);
    for (let i = 1; i < m.ts.length; i++) expect(m.ts[i]).toBeGreaterThan(m.ts[i - 1]!);
    expect(finals).toEqual([makeSample('host', '', 'mem_free_gib', -1, null)]);
    expect(emitted.at(-1)).toEqual(finals[0]);
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(errors[0]).toBe('ksm:boom');
    const n = m.ts.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(m.ts.length).toBe(n); // stopped
  });

  it('never overlaps a slow monitor with itself; skipped ticks are counted', async () => {
    const m = new CountingMonitor(250);
    const s = await startSampling([m], { periodMs: 50, stepStartMs: Date.now(), emit: () => undefined });
    await new Promise((r) => setTimeout(r, 600));
    await s.stop();
    expect(m.ts.length).toBeLessThanOrEqual(4);
    expect(s.skippedTicks).toBeGreaterThan(3);
  });
});

describe('createMonitors', () => {
  it('maps scenario monitor names to monitors', async () => {
    const { createMonitors } = await import('../../src/host/monitors/create.ts');
    const { LocalExecutor } = await import('../../src/host/exec/local.ts');
    const { eventSet } = await import('../../src/host/perf/events.ts');
    const exec = new LocalExecutor();
    const inst = [{ name: 'vm0', workload: 'x', pid: 1, node: 0 }];
    const ms = createMonitors(['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'perf-dram', 'throughput'], { exec, instances: inst, perfEventSet: eventSet('none') });
    expect(ms.map((m) => m.name)).toEqual(['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'ksm-placement', 'perf-dram']);
    expect(() => createMonitors(['perf-dram'], { exec, instances: inst })).toThrow(/needs a perf event set/);
    expect(() => createMonitors(['bogus'], { exec, instances: inst })).toThrow(/unknown monitor 'bogus'/);
  });
});
