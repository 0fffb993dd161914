import { describe, expect, it } from 'vitest';
import { KsmModel, defaultKsmModelConfig, type MmRegistration } from '../../src/policy/index.ts';

// A floor, not a benchmark (`node bin/run-ts.js src/policy/bench.ts` measures at paper scale): it catches an
// accidental return to per-page objects or O(n) searches. Measured in CPU time because the machine is shared.
function vm(node: number, pages: number, uniqueBase: number): MmRegistration {
  const contents = new Uint32Array(pages);
  for (let i = 0; i < pages; i++) contents[i] = i % 20 < 10 ? i : i % 20 === 10 ? 4_000_000_000 : uniqueBase + i;
  return { name: `vm${node}`, nice: 0, contents, nodes: new Uint8Array(pages).fill(node), active: new Uint8Array(pages) };
}

describe('model throughput', () => {
  it('visits at least 3 M pages per CPU-second at steady state (two VMs of 1 M pages)', () => {
    const model = new KsmModel(defaultKsmModelConfig({ policy: 'nuksm-fair', pagesToScan: 100_000 }));
    model.registerMm(vm(0, 1_000_000, 1_000_000_000));
    model.registerMm(vm(1, 1_000_000, 2_000_000_000));
    while (model.counters().fullScans < 2) model.wake(); // gate pass + merging pass
    const visits0 = model.totalPagesVisited;
    const cpu0 = process.cpuUsage();
    while (model.counters().fullScans < 6) model.wake();
    const cpu = process.cpuUsage(cpu0);
    const rate = (model.totalPagesVisited - visits0) / ((cpu.user + cpu.system) / 1e6);
    expect(model.totalPagesVisited - visits0).toBe(8_000_000);
    expect(rate).toBeGreaterThan(3e6);
  });
});
