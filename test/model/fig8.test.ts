// Fig. 8 (§V-D): two 40 GiB XSBench VMs and a memory hog on node 0 (~180 GiB usable), 10 000 pages / 100 ms.
import { describe, expect, it } from 'vitest';
import { fig8Scenario } from '../../src/testbeds/model/index.ts';
import { result, run, series } from './helpers.ts';

describe('Fig. 8 scalability scenario', () => {
  it('KSM runs node 0 out of memory, nuKSM (forest) does not, with fewer comparisons per merged page', async () => {
    const ksm = await run(fig8Scenario('ksm'));
    const nuksm = await run(fig8Scenario('nuksm-fair'));
    const free = (s: typeof ksm) => series(s, 'host', 'mem_free_gib', 0).map((x) => x.value);
    const minFreeKsm = Math.min(...free(ksm));
    const minFreeNuksm = Math.min(...free(nuksm));
    const cpm = (s: typeof ksm) => result(s, 'host', 'ksm_comparisons_per_merge');
    const hogEnd = (s: typeof ksm) => series(s, 'host', 'hog_registered_gib').at(-1)!;
    console.log(`Fig. 8: KSM oom=${result(ksm, 'host', 'oom')} at t=${hogEnd(ksm).t}s min free ${minFreeKsm.toFixed(1)} GiB, comparisons/merge ${cpm(ksm).toFixed(0)}; ` +
      `nuKSM oom=${result(nuksm, 'host', 'oom')} min free ${minFreeNuksm.toFixed(1)} GiB, saved ${result(nuksm, 'host', 'memory_saved_gib').toFixed(1)} GiB, comparisons/merge ${cpm(nuksm).toFixed(0)}`);
    expect(result(ksm, 'host', 'oom')).toBe(1);
    expect(minFreeKsm).toBe(0);
    expect(result(nuksm, 'host', 'oom')).toBe(0);
    expect(minFreeNuksm).toBeGreaterThan(0);
    // The run under nuKSM completes: both XSBench instances report a runtime and the hog registered everything.
    expect(result(nuksm, 'vm0', 'runtime_s')).toBeGreaterThan(0);
    expect(result(nuksm, 'vm1', 'runtime_s')).toBeGreaterThan(0);
    expect(hogEnd(nuksm).value).toBeCloseTo(100, 5);
    expect(cpm(nuksm)).toBeLessThan(cpm(ksm));
    // Free memory is a time series over the run, and ksmd CPU is measured per period.
    expect(free(ksm).length).toBeGreaterThan(100);
    expect(series(ksm, 'host', 'ksmd_cpu_pct').every((x) => x.value >= 0 && x.value <= 100)).toBe(true);
  });
});
