// Run-to-run noise of the model testbed (profiles.ts RUN_TO_RUN_NOISE, source: the artifact's repeated MySQL
// runs): seeded, a function of the step's seed and the instance's name only, with the documented spread.
import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../src/core/scenario.ts';
import { RUN_TO_RUN_NOISE } from '../../src/testbeds/model/profiles.ts';
import { lognormalFactor, standardNormal } from '../../src/testbeds/model/noise.ts';
import { fairnessScenario } from '../../src/testbeds/model/index.ts';
import { result, run } from './helpers.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const cv = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) / m;
};

describe('noise draws', () => {
  it('log-normal factors have mean 1 and the asked coefficient of variation; a (seed, salt) pair always draws the same', () => {
    const factors = Array.from({ length: 20_000 }, (_, i) => lognormalFactor(0.01, standardNormal(i, 'x')));
    expect(Math.abs(mean(factors) - 1)).toBeLessThan(0.0005);
    expect(cv(factors)).toBeGreaterThan(0.0095);
    expect(cv(factors)).toBeLessThan(0.0105);
    expect(standardNormal(42, 'vm0')).toBe(standardNormal(42, 'vm0'));
    expect(standardNormal(42, 'vm0')).not.toBe(standardNormal(42, 'vm1'));
    expect(standardNormal(42, 'vm0')).not.toBe(standardNormal(43, 'vm0'));
    expect(lognormalFactor(0, 2.5)).toBe(1);
  });
});

describe('model testbed run-to-run noise', () => {
  // KSM off, RandomAccess at 0.5 GiB: no ksmd, so a run takes well under a second of CPU.
  const scenario = (seed: number): Scenario => fairnessScenario('randomaccess', 'ksm-off', { seed, footprintGiB: 0.5 });
  const runtimes = async (seed: number) => {
    const s = await run(scenario(seed));
    return [result(s, 'vm0', 'runtime_s'), result(s, 'vm1', 'runtime_s')] as const;
  };

  it('a seed fixes the runtimes; seeds differ; the spread across seeds is the documented one', async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => 1000 + i);
    const all = [];
    for (const seed of seeds) all.push(await runtimes(seed));
    expect(await runtimes(seeds[0]!)).toEqual(all[0]);
    expect(new Set(all.map((r) => r[0])).size).toBe(seeds.length);
    // Each instance: CV of step x instance noise = sqrt(0.78² + 0.37²) = 0.86 %. A sample CV of twelve draws has a
    // relative sd of about 1/√22 ≈ 0.21: the bounds are ~3 sd either side; nothing else in a KSM-off run varies.
    const expected = Math.hypot(RUN_TO_RUN_NOISE.stepCv, RUN_TO_RUN_NOISE.instanceCv);
    for (const k of [0, 1]) {
      const c = cv(all.map((r) => r[k]!));
      console.log(`KSM-off runtime of vm${k} over 12 seeds: CV ${(c * 100).toFixed(3)} % (documented ${(expected * 100).toFixed(3)} %)`);
      expect(c).toBeGreaterThan(expected * 0.4);
      expect(c).toBeLessThan(expected * 1.6);
    }
    // The two VMs of one run share the step's factor: their ratio varies only by the per-instance part (√2 × 0.37 %).
    const ratioCv = cv(all.map((r) => r[1]! / r[0]!));
    expect(ratioCv).toBeLessThan(expected);
    expect(ratioCv).toBeGreaterThan(0);
  });
});
