// Timeline.staggerFrom on the model testbed: with 'launch' VM-1 boots at its stagger time; with 'workload' both
// VMs boot at 0 and the stagger times their workloads from when the boots are done (the model has no install
// time). Read off the per-node free memory the model reports, with KSM off so nothing but the instances moves it.
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { fairnessScenario, simulateScenario } from '../../src/testbeds/model/index.ts';
import { GUEST_OS } from '../../src/testbeds/model/profiles.ts';

const STAGGER_S = 300;
const FOOTPRINT_GIB = 0.25;

async function freeByNode(staggerFrom: Scenario['timeline']['staggerFrom']): Promise<(t: number, node: number) => number> {
  const base = fairnessScenario('randomaccess', 'ksm-off', { footprintGiB: FOOTPRINT_GIB, staggerS: STAGGER_S });
  const scenario: Scenario = { ...base, timeline: { ...base.timeline, staggerFrom, samplePeriodS: 10 } };
  const out: Sample[] = [];
  await simulateScenario(scenario, { memoryGiBPerNode: [192, 192], reservedGiBPerNode: 6 }, (s) => out.push(...s));
  const free = out.filter((s) => s.metric === 'mem_free_gib' && s.node !== null && s.t !== null);
  return (t, node) => free.filter((s) => s.node === node && s.t! <= t).at(-1)!.value;
}

describe("model testbed: timeline.staggerFrom", () => {
  it("'launch' boots VM-1 at its stagger time; 'workload' boots both at 0 and staggers the workloads after the boots", async () => {
    const launch = await freeByNode('launch');
    const workload = await freeByNode('workload');
    const idle = launch(10, 1);
    const guestGiB = GUEST_OS.commonGiB;
    // At 60 s: with 'launch' node 1 is untouched (VM-1 starts at 300 s); with 'workload' VM-1 has booted.
    expect(idle - launch(60, 1)).toBeCloseTo(0, 2);
    expect(idle - workload(60, 1)).toBeGreaterThan(0.9 * guestGiB);
    // VM-1's workload: with 'workload' it starts at boot end + 300 s, so at 310 s VM-1 holds only its guest OS.
    expect(idle - workload(310, 1)).toBeLessThan(guestGiB + 0.05 * FOOTPRINT_GIB);
    expect(idle - workload(GUEST_OS.bootS + STAGGER_S + 60, 1)).toBeGreaterThan(guestGiB + 0.9 * FOOTPRINT_GIB);
  }, 120_000);
});
