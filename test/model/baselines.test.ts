// Linux's own answers on the model testbed (docs/baselines.md), paper scale (§V-B setup, RandomAccess: the
// smallest footprint): merge_across_nodes=0 keeps every merged page local and saves less; NUMA balancing is
// modelled as stock KSM (it never migrates KSM pages, and the bound instances' private pages are already local).
import { describe, expect, it } from 'vitest';
import { fairnessScenario } from '../../src/testbeds/model/index.ts';
import { result, run } from './helpers.ts';

describe('model baselines: ksm-node-local and ksm-numa-balancing', () => {
  it('node-local: all merged pages local, fair, less memory saved than KSM; NUMA balancing places like KSM', async () => {
    const [off, ksm, local, balancing] = await Promise.all(
      (['ksm-off', 'ksm', 'ksm-node-local', 'ksm-numa-balancing'] as const).map((m) => run(fairnessScenario('randomaccess', m))),
    );
    expect(fairnessScenario('randomaccess', 'ksm-node-local').ksm.mergeAcrossNodes).toBe(false);
    const runtimes = (s: typeof off) => [result(s, 'vm0', 'runtime_s'), result(s, 'vm1', 'runtime_s')];
    const base = runtimes(off);
    const fairness = (s: typeof off) => {
      const slowdown = runtimes(s).map((r, i) => r / base[i]!);
      return Math.min(...slowdown) / Math.max(...slowdown);
    };
    const saved = (s: typeof off) => result(s, 'host', 'memory_saved_gib');
    console.log(
      `randomaccess: saved GiB KSM ${saved(ksm).toFixed(2)} node-local ${saved(local).toFixed(2)} balancing ${saved(balancing).toFixed(2)}; ` +
        `fairness KSM ${fairness(ksm).toFixed(3)} node-local ${fairness(local).toFixed(3)} balancing ${fairness(balancing).toFixed(3)}; ` +
        `vm0/vm1 local % KSM ${result(ksm, 'vm0', 'ksm_local_pct').toFixed(1)}/${result(ksm, 'vm1', 'ksm_local_pct').toFixed(1)} node-local ${result(local, 'vm0', 'ksm_local_pct').toFixed(1)}/${result(local, 'vm1', 'ksm_local_pct').toFixed(1)}`,
    );
    // No cross-node merge: the two VMs' identical pages stay two copies, so less is saved (within-VM duplicates still merge)…
    expect(saved(local)).toBeGreaterThan(0);
    expect(saved(local)).toBeLessThan(saved(ksm) * 0.75);
    // …and every merged page of each VM is on its own node: no NUMA tax, so both slow down alike.
    expect(result(local, 'vm0', 'ksm_local_pct')).toBeGreaterThan(99.9);
    expect(result(local, 'vm1', 'ksm_local_pct')).toBeGreaterThan(99.9);
    expect(fairness(local)).toBeGreaterThanOrEqual(0.95);
    expect(fairness(ksm)).toBeLessThan(0.9);
    // NUMA balancing does not move KSM pages: the placement (and so the unfairness) of stock KSM.
    expect(result(balancing, 'vm0', 'ksm_local_pct')).toBeGreaterThan(99);
    expect(Math.abs(saved(balancing) - saved(ksm)) / saved(ksm)).toBeLessThanOrEqual(0.02);
    expect(fairness(balancing)).toBeLessThan(0.9);
  });
});
