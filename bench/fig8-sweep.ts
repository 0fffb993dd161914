// Fig. 8 sensitivity sweep on the model testbed (issue 13): the OOM outcome of KSM and nuKSM (forest) as a
// function of the start offsets (VM-1, the memory hog), the host reserve per node and the cost of one tree
// comparison, one factor at a time around the campaign's Fig. 8 step (experiments/fig8.yaml). Each point runs
// until the hog's last allocation (>= 900 s), two at a time. Prints a Markdown table (docs/model.md).
//   node bin/run-ts.js bench/fig8-sweep.ts
import { fileURLToPath } from 'node:url';
import type { Fig8Point } from './fig8-point-child.ts';
import { pool } from './pool.ts';

interface Outcome extends Fig8Point {
  wallS: number;
  oom: boolean;
  oomAtS: number | null;
  minFreeNode0GiB: number | null;
  savedAt900GiB: number | null;
}

const child = fileURLToPath(new URL('./fig8-point-child.ts', import.meta.url));
const BASE = { vm1StartS: 10, hogStartS: 90, reserveGiB: 12, comparisonCostFactor: 1 };
const FACTORS: { key: keyof typeof BASE; label: string; values: number[] }[] = [
  { key: 'vm1StartS', label: 'VM-1 start (s)', values: [0, 5, 20, 30, 60] },
  { key: 'hogStartS', label: 'hog start (s)', values: [60, 75, 105, 120] },
  { key: 'reserveGiB', label: 'host reserve per node (GiB)', values: [6, 9, 15, 18] },
  { key: 'comparisonCostFactor', label: 'cost of one comparison (x 0.54 µs)', values: [0.5, 2, 4] },
];
const settings = [{ label: 'baseline (experiments/fig8.yaml)', value: '', p: BASE }];
for (const f of FACTORS) for (const v of f.values) settings.push({ label: f.label, value: String(v), p: { ...BASE, [f.key]: v } });
const modes = ['ksm', 'nuksm-forest'] as const;
const t0 = Date.now();
const results = await pool<Outcome>(child, settings.flatMap((s) => modes.map((mode) => [JSON.stringify({ mode, ...s.p })])));
const wall = (Date.now() - t0) / 1000;
const cell = (r: Outcome) => (r.oom ? `**OOM** at ${r.oomAtS!.toFixed(0)} s` : `no OOM (min free ${r.minFreeNode0GiB!.toFixed(1)} GiB, ${r.savedAt900GiB!.toFixed(1)} GiB saved by 900 s)`);
console.log('| varied | value | KSM | nuKSM (forest) | paper outcome (KSM OOM, nuKSM not) |');
console.log('|---|---|---|---|---|');
settings.forEach((s, i) => {
  const [k, n] = [results[2 * i]!, results[2 * i + 1]!];
  console.log(`| ${s.label} | ${s.value} | ${cell(k)} | ${cell(n)} | ${k.oom && !n.oom ? 'yes' : 'no'} |`);
});
console.log(`\n${results.length} simulations in ${wall.toFixed(0)} s wall (two at a time); CPU per simulation ${Math.min(...results.map((r) => r.wallS)).toFixed(1)}-${Math.max(...results.map((r) => r.wallS)).toFixed(1)} s`);
