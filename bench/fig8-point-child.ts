// One point of the Fig. 8 sensitivity sweep (bench/fig8-sweep.ts) in its own process. Argument: a JSON object
// { mode, vm1StartS, hogStartS, reserveGiB, comparisonCostFactor }. Prints one JSON line.
import type { KernelMode } from '../src/core/scenario.ts';
import type { Sample } from '../src/core/sample.ts';
import { fig8Scenario, paperModelTestbedFile, simulatedHostOf, simulateScenario } from '../src/testbeds/model/index.ts';

export interface Fig8Point {
  mode: KernelMode;
  vm1StartS: number;
  hogStartS: number;
  reserveGiB: number;
  comparisonCostFactor: number;
}

const p = JSON.parse(process.argv[2]!) as Fig8Point;
const base = fig8Scenario(p.mode);
const scenario = {
  ...base,
  instances: base.instances.map((i, k) => (k === 1 ? { ...i, startAtS: p.vm1StartS } : i)),
  memoryHog: { ...base.memoryHog!, startAtS: p.hogStartS },
};
const hog = scenario.memoryHog;
// After the hog's last allocation (and its 2 s fill) nothing allocates any more: free memory only grows as ksmd
// merges, so whether the step runs out of memory is decided by then. 900 s: the paper's "by 900 s" reading.
const lastAllocS = hog.startAtS + (Math.ceil(hog.maxGiB / hog.stepGiB) - 1) * hog.everyS + hog.stepGiB + 5;
const stopAtS = Math.max(900, lastAllocS);
const samples: Sample[] = [];
const t0 = process.hrtime.bigint();
const summary = await simulateScenario(scenario, simulatedHostOf(paperModelTestbedFile()), (s) => samples.push(...s), {
  hostReservedGiBPerNode: p.reserveGiB,
  comparisonCostFactor: p.comparisonCostFactor,
  stopAtS,
});
const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
const free0 = samples.filter((s) => s.metric === 'mem_free_gib' && s.node === 0 && s.t !== null);
const saved = samples.filter((s) => s.metric === 'memory_saved_gib' && s.t !== null);
process.stdout.write(JSON.stringify({
  ...p,
  wallS,
  oom: summary.oom,
  oomAtS: summary.oom ? summary.simulatedS : null,
  minFreeNode0GiB: free0.length > 0 ? Math.min(...free0.map((s) => s.value)) : null,
  savedAt900GiB: saved.filter((s) => s.t! <= 900).at(-1)?.value ?? null,
}) + '\n');
