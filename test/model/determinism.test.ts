import { describe, expect, it } from 'vitest';
import { fairnessScenario } from '../../src/testbeds/model/index.ts';
import { result, run } from './helpers.ts';

describe('model testbed determinism', () => {
  it('same seed gives the same samples; the seed drives the priority draws', async () => {
    // A smaller footprint keeps this quick; nuKSM priority makes random draws from the seed.
    const scenario = (seed: number) => fairnessScenario('randomaccess', 'nuksm-priority', { seed, footprintGiB: 1, nice: [-20, -11] });
    const a = await run(scenario(7));
    const b = await run(scenario(7));
    const c = await run(scenario(8));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    // C-10:1 (Table III): most merged pages local to the high-priority VM-0.
    expect(result(a, 'vm0', 'ksm_local_pct')).toBeGreaterThan(80);
  });
});
