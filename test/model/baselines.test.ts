// Linux's own answers on the model testbed (docs/baselines.md). merge_across_nodes=0 (ksm-node-local) is one
// stable/unstable tree pair per node in the reference model; NUMA balancing (ksm-numa-balancing) is modelled as
// stock KSM (it never migrates KSM pages, and the bound instances' private pages are already on their node).
import { describe, expect, it } from 'vitest';
import type { KernelMode, Scenario } from '../../src/core/scenario.ts';
import { fairnessScenario } from '../../src/testbeds/model/index.ts';
import { result, run } from './helpers.ts';

type Samples = Awaited<ReturnType<typeof run>>;
const saved = (s: Samples) => result(s, 'host', 'memory_saved_gib');
const localPct = (s: Samples, vm: string) => s.find((x) => x.t === null && x.instance === vm && x.metric === 'ksm_local_pct')?.value ?? null;

describe('model baselines: ksm-node-local and ksm-numa-balancing', () => {
  it('paper setup (one VM per node, RandomAccess): node-local merges nothing across the VMs and so saves ~nothing but is fair; NUMA balancing is KSM', async () => {
    const [off, ksm, local, balancing] = await Promise.all((['ksm-off', 'ksm', 'ksm-node-local', 'ksm-numa-balancing'] as const).map((m) => run(fairnessScenario('randomaccess', m))));
    expect(fairnessScenario('randomaccess', 'ksm-node-local').ksm.mergeAcrossNodes).toBe(false);
    const base = [result(off, 'vm0', 'runtime_s'), result(off, 'vm1', 'runtime_s')];
    const fairness = (s: Samples) => {
      const slowdown = ['vm0', 'vm1'].map((vm, i) => result(s, vm, 'runtime_s') / base[i]!);
      return Math.min(...slowdown) / Math.max(...slowdown);
    };
    console.log(`randomaccess: saved GiB KSM ${saved(ksm).toFixed(2)} node-local ${saved(local).toFixed(2)} balancing ${saved(balancing).toFixed(2)}; fairness KSM ${fairness(ksm).toFixed(3)} node-local ${fairness(local).toFixed(3)} balancing ${fairness(balancing).toFixed(3)}`);
    // The model's identical pages are the two VMs' (guest OS + workload data), one VM per node: no same-node pair.
    expect(saved(ksm)).toBeGreaterThan(1);
    expect(saved(local)).toBeLessThan(saved(ksm) * 0.05);
    expect(localPct(local, 'vm0') ?? 100).toBeGreaterThan(99.9);
    expect(fairness(local)).toBeGreaterThanOrEqual(0.95);
    expect(fairness(ksm)).toBeLessThan(0.9);
    // NUMA balancing does not move KSM pages: stock KSM's placement, saving and unfairness.
    expect(localPct(balancing, 'vm0')).toBeGreaterThan(99);
    expect(Math.abs(saved(balancing) - saved(ksm)) / saved(ksm)).toBeLessThanOrEqual(0.02);
    expect(fairness(balancing)).toBeLessThan(0.9);
  }, 300_000); // four paper-scale simulations: ~60 s alone, 110 s on a shared 2-core machine

  it('two identical VMs per node: node-local keeps one copy per node (about 2/3 of what KSM saves), every merged page local', async () => {
    const fourVms = (mode: KernelMode): Scenario => {
      const s = fairnessScenario('randomaccess', mode, { footprintGiB: 0.5, staggerS: 10 });
      const instances = [0, 1, 2, 3].map((i) => ({ ...s.instances[0]!, name: `vm${i}`, node: i < 2 ? 0 : 1, startAtS: i * 10 }));
      return { ...s, instances, workloads: instances.map((inst) => ({ ...s.workloads[0]!, instance: inst.name })) };
    };
    const [ksm, local] = await Promise.all((['ksm', 'ksm-node-local'] as const).map((m) => run(fourVms(m))));
    const shares = (s: Samples) => ['vm0', 'vm1', 'vm2', 'vm3'].map((vm) => localPct(s, vm));
    console.log(`4 VMs: saved GiB KSM ${saved(ksm).toFixed(2)} node-local ${saved(local).toFixed(2)}; local % KSM ${shares(ksm).join('/')} node-local ${shares(local).join('/')}`);
    const ratio = saved(local) / saved(ksm);
    expect(ratio).toBeGreaterThan(0.6);
    expect(ratio).toBeLessThan(0.72);
    for (const p of shares(local)) expect(p).toBeGreaterThan(99.9);
    // Stock KSM: one copy for all four, so one node's VMs see their merged pages remote.
    expect(Math.min(...shares(ksm).map((p) => p ?? 0))).toBeLessThan(50);
  }, 300_000);
});
