// Fig. 8 sensitivity sweep on the model testbed (issue 13): the OOM outcome of KSM and nuKSM (forest) over a grid
// of VM-1 start offset x host reserve per node x cost of one tree comparison, around the campaign's Fig. 8 step
// (experiments/fig8.yaml; hog start fixed at 90 s). Each point runs in its own process until the hog's last
// allocation (>= 900 s), two at a time. Prints a Markdown table (docs/model.md) and writes the rows, dated, to
// docs/fig8-sweep.json (model output, not a measurement).
//   node bin/run-ts.js bench/fig8-sweep.ts
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
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
const VM1_START_S = [0, 5, 10, 20, 30];
const RESERVE_GIB = [6, 9, 12, 15, 18];
const COMPARISON_COST = [0.5, 1];
const settings = VM1_START_S.flatMap((vm1StartS) => RESERVE_GIB.flatMap((reserveGiB) =>
  COMPARISON_COST.map((comparisonCostFactor) => ({ vm1StartS, hogStartS: 90, reserveGiB, comparisonCostFactor }))));
const modes = ['ksm', 'nuksm-forest'] as const;
const t0 = Date.now();
const results = await pool<Outcome>(child, settings.flatMap((s) => modes.map((mode) => [JSON.stringify({ mode, ...s })])));
const wall = (Date.now() - t0) / 1000;
const cell = (r: Outcome) => (r.oom ? `**OOM** at ${r.oomAtS!.toFixed(0)} s` : `no OOM (min free ${r.minFreeNode0GiB!.toFixed(1)} GiB, ${r.savedAt900GiB!.toFixed(1)} GiB saved by 900 s)`);
console.log('| VM-1 start (s) | host reserve (GiB/node) | comparison cost (x 0.54 µs) | KSM | nuKSM (forest) | paper outcome (KSM OOM, nuKSM not) |');
console.log('|---|---|---|---|---|---|');
const rows = settings.map((s, i) => ({ ...s, ksm: results[2 * i]!, nuksm: results[2 * i + 1]! }));
for (const r of rows) {
  console.log(`| ${r.vm1StartS} | ${r.reserveGiB} | ${r.comparisonCostFactor} | ${cell(r.ksm)} | ${cell(r.nuksm)} | ${r.ksm.oom && !r.nuksm.oom ? 'yes' : 'no'} |`);
}
const paper = rows.filter((r) => r.ksm.oom && !r.nuksm.oom).length;
console.log(`\n${rows.length} settings (${results.length} simulations) in ${wall.toFixed(0)} s wall (two at a time); paper outcome in ${paper}; ` +
  `KSM OOM in ${rows.filter((r) => r.ksm.oom).length}, nuKSM OOM in ${rows.filter((r) => r.nuksm.oom).length}`);
writeFileSync(fileURLToPath(new URL('../docs/fig8-sweep.json', import.meta.url)), JSON.stringify({
  source: 'model testbed (bench/fig8-sweep.ts), not a measurement', date: new Date().toISOString(), host: hostname(), wallS: wall, rows,
}, null, 1) + '\n');
