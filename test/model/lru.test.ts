// The model testbed's LRU flags (simulation.ts lruActiveFlags / LruState): what nuKSM's activity test sees.
// Without memory pressure every page is on the list new anonymous pages start on, so fair placement is round
// robin whatever the workloads touch; reclaim on a node sorts its pages, and only then does the "only one copy
// active" branch keep one side's copies. Three VMs exercise the 1/K rule of a sharer joining a KSM page.
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.ts';
import type { KernelMode, Scenario } from '../../src/core/scenario.ts';
import { fairnessScenario, simulateScenario } from '../../src/testbeds/model/index.ts';
import { lowWatermarkGiB, type SimulatedHost, type SimulationOptions } from '../../src/testbeds/model/simulation.ts';
import { result } from './helpers.ts';

const FOOTPRINT_GIB = 0.25;
const RESERVE_GIB = 6;
/** Guest OS (0.5 GiB) + footprint: what one VM of these scenarios maps. */
const VM_GIB = 0.5 + FOOTPRINT_GIB;

async function simulate(scenario: Scenario, host: SimulatedHost, opts: SimulationOptions = {}) {
  const out: Sample[] = [];
  const summary = await simulateScenario(scenario, host, (s) => out.push(...s), opts);
  return { samples: out, summary };
}

/**
 * vm0 on node 1 starts first and populates alone; vm1 on node 0 starts 300 s later. Node 1 is sized so that
 * vm0 leaves it `spareGiB` free: below its low watermark, reclaim runs there while vm0 is idle (populated,
 * waiting for vm1), so vm0's pages end inactive; vm1's node never reclaims.
 */
function oneSided(mode: KernelMode, spareGiB: number) {
  const base = fairnessScenario('randomaccess', mode, { footprintGiB: FOOTPRINT_GIB, staggerS: 300 });
  const scenario: Scenario = { ...base, instances: base.instances.map((i) => ({ ...i, node: 1 - i.node })) };
  const host: SimulatedHost = { memoryGiBPerNode: [192, RESERVE_GIB + VM_GIB + spareGiB], reservedGiBPerNode: RESERVE_GIB };
  return { scenario, host };
}

describe('model testbed LRU flags', () => {
  it('low watermark: about 0.22 GiB on a paper node (min_free_kbytes capped at 64 MiB, watermark_scale_factor 10)', () => {
    const [w0, w1] = lowWatermarkGiB([192, 192]);
    expect(w0).toBe(w1);
    // 32 MiB of min_free_kbytes per node + 0.1 % of 192 GiB
    expect(w0).toBeCloseTo(32 / 1024 + 0.192, 6);
  });

  it('one-sided: reclaim on the idle VM\'s node leaves only the other copy active, and nuKSM keeps it; without pressure it is round robin', async () => {
    const tight = oneSided('nuksm-fair', 0.004);
    const roomy = oneSided('nuksm-fair', 20);
    const [pressed, free] = await Promise.all([simulate(tight.scenario, tight.host), simulate(roomy.scenario, roomy.host)]);
    expect(lowWatermarkGiB(tight.host.memoryGiBPerNode)[1]).toBeGreaterThan(0.004);
    expect(pressed.summary.oom).toBe(false);
    expect(pressed.summary.reclaimFromS).not.toBeNull();
    expect(free.summary.reclaimFromS).toBeNull();
    const local = (r: { samples: Sample[] }, vm: string) => result(r.samples, vm, 'ksm_local_pct');
    console.log(`one-sided nuKSM: with reclaim on vm0's node vm0 ${local(pressed, 'vm0').toFixed(1)} % / vm1 ${local(pressed, 'vm1').toFixed(1)} % local; without ${local(free, 'vm0').toFixed(1)} / ${local(free, 'vm1').toFixed(1)} %`);
    // vm1's pages are still on the start (active) list, vm0's were found idle: every pair keeps vm1's copy.
    expect(local(pressed, 'vm1')).toBeGreaterThan(99);
    expect(local(pressed, 'vm0')).toBeLessThan(1);
    // No reclaim: all flags equal (both active on v5.4), round robin over the nodes.
    expect(Math.abs(local(free, 'vm0') - 50)).toBeLessThan(5);
  }, 240_000);

  it('one-sided on a 5.9+ kernel: new pages start inactive, so the aged idle copy ties with the other and it stays round robin', async () => {
    const tight = oneSided('nuksm-fair', 0.004);
    const r = await simulate(tight.scenario, tight.host, { newAnonPagesActive: false });
    expect(r.summary.reclaimFromS).not.toBeNull();
    expect(Math.abs(result(r.samples, 'vm0', 'ksm_local_pct') - 50)).toBeLessThan(5);
  }, 240_000);

  it('KSM ignores the flags: the same placement with and without reclaim', async () => {
    const tight = oneSided('ksm', 0.004);
    const roomy = oneSided('ksm', 20);
    const [pressed, free] = await Promise.all([simulate(tight.scenario, tight.host), simulate(roomy.scenario, roomy.host)]);
    expect(pressed.summary.reclaimFromS).not.toBeNull();
    for (const vm of ['vm0', 'vm1']) expect(result(pressed.samples, vm, 'ksm_local_pct')).toBe(result(free.samples, vm, 'ksm_local_pct'));
  }, 240_000);

  it('three VMs, a third sharer from the other node joins KSM pages: nuKSM moves each with p = 1/2 (1/K, K = 2), KSM never', async () => {
    const three = (mode: KernelMode): Scenario => {
      const base = fairnessScenario('randomaccess', mode, { footprintGiB: FOOTPRINT_GIB, staggerS: 0 });
      const vm = base.instances[0]!;
      return {
        ...base,
        // vm0 and vm1 on node 0 merge first (no choice: same node); vm2 on node 1 registers 900 s later.
        instances: [{ ...vm, name: 'vm0', node: 0 }, { ...vm, name: 'vm1', node: 0 }, { ...vm, name: 'vm2', node: 1, startAtS: 900 }],
        workloads: ['vm0', 'vm1', 'vm2'].map((instance) => ({ ...base.workloads[0]!, instance })),
      };
    };
    const host: SimulatedHost = { memoryGiBPerNode: [192, 192] };
    const [nu, ksm] = await Promise.all([simulate(three('nuksm-fair'), host), simulate(three('ksm'), host)]);
    const vm2Nu = result(nu.samples, 'vm2', 'ksm_local_pct');
    const vm2Ksm = result(ksm.samples, 'vm2', 'ksm_local_pct');
    console.log(`three VMs: vm2 (the late sharer on node 1) ${vm2Nu.toFixed(1)} % local under nuKSM, ${vm2Ksm.toFixed(1)} % under KSM`);
    // ~190 000 pages, each moved with p = 1/2: binomial spread well under 1 pp.
    expect(Math.abs(vm2Nu - 50)).toBeLessThan(3);
    expect(vm2Ksm).toBeLessThan(1);
    // The pages vm0 and vm1 share stay where vm2's do: their local share is the complement.
    expect(result(nu.samples, 'vm0', 'ksm_local_pct') + vm2Nu).toBeCloseTo(100, 0);
  }, 240_000);
});
