// The Fig. 8 sweep derives outcomes at larger host reserves from one simulated run (src/testbeds/model/fig8-sweep.ts):
// checked here against direct simulations at those reserves.
import { describe, expect, it } from 'vitest';
import { deriveAtReserve, simulateFig8Point, type Fig8Point } from '../../src/testbeds/model/fig8-sweep.ts';
import { paperModelTestbedFile, simulatedHostOf } from '../../src/testbeds/model/index.ts';

const host = simulatedHostOf(paperModelTestbedFile());
const point = (reserveGiB: number): Fig8Point => ({ mode: 'ksm', vm1StartS: 10, hogStartS: 90, reserveGiB, comparisonCostFactor: 1 });

describe('Fig. 8 sweep: outcomes derived across host reserves', () => {
  it('a derived outcome equals the direct simulation at that reserve (OOM time, min free, memory saved)', async () => {
    const base = await simulateFig8Point(point(6), host);
    const compared: string[] = [];
    for (const reserve of [9, 18]) {
      const derived = deriveAtReserve(base.trajectory, reserve);
      const direct = (await simulateFig8Point(point(reserve), host)).outcome;
      console.log(`reserve ${reserve} GiB: direct ${JSON.stringify(direct)}; derived ${JSON.stringify(derived)}`);
      if (derived === null) continue; // reclaim would differ: the sweep simulates such points
      compared.push(`${reserve}: ${direct.oom ? `OOM at ${direct.oomAtS} s` : 'no OOM'}`);
      expect(derived.oom).toBe(direct.oom);
      expect(derived.oomAtS).toBe(direct.oomAtS);
      expect(derived.minFreeNode0GiB!).toBeCloseTo(direct.minFreeNode0GiB!, 9);
      expect(derived.savedAt900GiB).toBe(direct.savedAt900GiB);
      expect(derived.derivedFromReserveGiB).toBe(6);
    }
    console.log(`compared: ${compared.join(', ')}`);
    // Both kinds of outcome were derived and checked: a run that keeps free memory and one that runs out.
    expect(compared.map((c) => c.replace(/ at \d+ s$/, ''))).toEqual(['9: no OOM', '18: OOM']);
  }, 300_000);

  it('refuses to derive below the simulated reserve', async () => {
    expect(() => deriveAtReserve({ reserveGiB: 6, t: [5], freeGiB: [[10, 10]], watermarkGiB: [0.2, 0.2], savedGiB: [0] }, 5)).toThrow(RangeError);
  });
});
