// Fig. 8 (§V-D): two 40 GiB XSBench VMs and a memory hog on node 0 (~180 GiB usable), 10 000 pages / 100 ms.
// The runs are the steps `npm start` runs (experiments/fig8.yaml through the planner), so what is checked here
// is what the paper campaign's figures 8a-8c show. The two runs are separate tests (each under a minute).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../src/campaign/plan.ts';
import { loadCampaignSpec } from '../../src/campaign/spec.ts';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';
import type { KernelMode, Scenario } from '../../src/core/scenario.ts';
import type { Sample } from '../../src/core/sample.ts';
import { fig8Scenario } from '../../src/testbeds/model/index.ts';
import { result, run, series } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const planned = buildPlan(loadCampaignSpec('fig8', join(ROOT, 'experiments')), loadTestbedFile(join(ROOT, 'experiments', 'testbeds', 'model.yaml')), 'fig8-test').steps;
const fig8Step = (mode: KernelMode): Scenario => planned.find((s) => s.scenario.kernelMode === mode)!.scenario;

const freeOnNode0 = (s: Sample[]) => series(s, 'host', 'mem_free_gib', 0).map((x) => x.value);
const comparisonsPerMerge: Record<string, number> = {};

describe('Fig. 8 scalability scenario', () => {
  it('KSM: free memory on node 0 reaches zero (OOM) and the step stops cleanly with what it measured', async () => {
    const ksm = await run(fig8Step('ksm'));
    const free = freeOnNode0(ksm);
    const oomAt = series(ksm, 'host', 'hog_registered_gib').at(-1)!;
    comparisonsPerMerge.ksm = result(ksm, 'host', 'ksm_comparisons_per_merge');
    console.log(`Fig. 8 KSM: OOM at t=${oomAt.t} s with ${oomAt.value.toFixed(0)} GiB registered by the hog; saved ${result(ksm, 'host', 'memory_saved_gib').toFixed(2)} GiB; comparisons/merge ${comparisonsPerMerge.ksm.toFixed(0)}`);
    expect(result(ksm, 'host', 'oom')).toBe(1);
    expect(Math.min(...free)).toBe(0);
    expect(free.length).toBeGreaterThan(50); // a time series (every 10 s, the spec's samplePeriodS), not a single point
    expect(free[0]).toBeGreaterThan(100);
    expect(series(ksm, 'host', 'ksmd_cpu_pct').every((x) => x.value >= 0 && x.value <= 100)).toBe(true);
    // The XSBench runs never finished: no runtime is reported for them.
    expect(ksm.some((s) => s.metric === 'runtime_s')).toBe(false);
  });

  it('nuKSM (fair + forest): de-duplicates fast enough, no OOM, the runs complete', async () => {
    const nuksm = await run(fig8Step('nuksm-forest'));
    const free = freeOnNode0(nuksm);
    comparisonsPerMerge.nuksm = result(nuksm, 'host', 'ksm_comparisons_per_merge');
    console.log(`Fig. 8 nuKSM: min free on node 0 ${Math.min(...free).toFixed(2)} GiB; saved ${result(nuksm, 'host', 'memory_saved_gib').toFixed(2)} GiB; comparisons/merge ${comparisonsPerMerge.nuksm.toFixed(0)}`);
    expect(result(nuksm, 'host', 'oom')).toBe(0);
    expect(Math.min(...free)).toBeGreaterThan(0);
    expect(result(nuksm, 'vm0', 'runtime_s')).toBeGreaterThan(0);
    expect(result(nuksm, 'vm1', 'runtime_s')).toBeGreaterThan(0);
    expect(series(nuksm, 'host', 'hog_registered_gib').at(-1)!.value).toBeCloseTo(100, 5);
    // Fig. 8b: de-duplicated memory over time grows to the two copies' shared part (it read 0 when the campaign's
    // XSBench ended after the profile's 600 s, before ksmd's first pass over ~180 GiB finished).
    const saved = series(nuksm, 'host', 'memory_saved_gib').map((x) => x.value);
    expect(Math.max(...saved)).toBeGreaterThan(30);
    expect(result(nuksm, 'host', 'memory_saved_gib')).toBeGreaterThan(30);
  });

  it("the bench's fig8Scenario is the campaign's step: same starts, hog, scan rate and XSBench inputs' runtime", () => {
    for (const mode of ['ksm', 'nuksm-forest'] as const) {
      const a = fig8Scenario(mode);
      const b = fig8Step(mode);
      expect(a.instances.map((i) => [i.node, i.startAtS])).toEqual(b.instances.map((i) => [i.node, i.startAtS]));
      expect(a.memoryHog).toEqual(b.memoryHog);
      expect([a.ksm.pagesToScan, a.ksm.sleepMillisecs, a.ksm.forestMibPerTree]).toEqual([b.ksm.pagesToScan, b.ksm.sleepMillisecs, b.ksm.forestMibPerTree]);
      expect(a.workloads.map((w) => w.params)).toEqual(b.workloads.map((w) => w.params));
    }
  });

  it('the forest makes fewer comparisons per merged page than the single KSM tree', () => {
    expect(comparisonsPerMerge.ksm).toBeGreaterThan(0);
    expect(comparisonsPerMerge.nuksm).toBeGreaterThan(0);
    expect(comparisonsPerMerge.nuksm).toBeLessThan(comparisonsPerMerge.ksm);
  });
});
