// Fig. 8 sensitivity sweep on the model testbed (issue 13): the OOM outcome of KSM and nuKSM (forest) over a grid
// of VM-1 start offset x host reserve per node x cost of one tree comparison, around the campaign's Fig. 8 step
// (experiments/fig8.yaml; hog start fixed at 90 s). Per (start, cost, mode) one run is simulated at the smallest
// reserve and the larger reserves are derived from its trajectory where that is exact (deriveAtReserve in
// src/testbeds/model/fig8-sweep.ts); the rest are simulated. Each simulation runs in its own process, two at a
// time. Prints a Markdown table (docs/model.md) and writes the rows, dated, to docs/fig8-sweep.json (model
// output, not a measurement), which the HTML report shows next to a campaign's Fig. 8.
//   node bin/run-ts.js bench/fig8-sweep.ts
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { deriveAtReserve, type Fig8Outcome, type Fig8Point, type Fig8Trajectory } from '../src/testbeds/model/fig8-sweep.ts';
import { FIG8_SWEEP_FILE, sweepCell, type Fig8SweepFile } from '../src/results/fig8-sweep.ts';
import { pool } from './pool.ts';

interface Simulated {
  outcome: Fig8Outcome;
  trajectory: Fig8Trajectory;
  wallS: number;
}

const child = fileURLToPath(new URL('./fig8-point-child.ts', import.meta.url));
const VM1_START_S = [0, 5, 10, 20, 30];
const RESERVE_GIB = [6, 9, 12, 15, 18];
const COMPARISON_COST = [0.5, 1];
const MODES = ['ksm', 'nuksm-forest'] as const;
const settings = VM1_START_S.flatMap((vm1StartS) => RESERVE_GIB.flatMap((reserveGiB) =>
  COMPARISON_COST.map((comparisonCostFactor) => ({ vm1StartS, hogStartS: 90, reserveGiB, comparisonCostFactor }))));
const key = (p: Omit<Fig8Point, 'reserveGiB'>) => `${p.mode}/${p.vm1StartS}/${p.hogStartS}/${p.comparisonCostFactor}`;
const run = (points: Fig8Point[]) => pool<Simulated>(child, points.map((p) => [JSON.stringify(p)]));

const t0 = Date.now();
const smallest = Math.min(...RESERVE_GIB);
const basePoints = VM1_START_S.flatMap((vm1StartS) => COMPARISON_COST.flatMap((comparisonCostFactor) =>
  MODES.map((mode): Fig8Point => ({ mode, vm1StartS, hogStartS: 90, reserveGiB: smallest, comparisonCostFactor }))));
const bases = new Map((await run(basePoints)).map((r, i) => [key(basePoints[i]!), r]));
const outcomes = new Map<string, Fig8Outcome>();
const direct: Fig8Point[] = [];
for (const s of settings) {
  for (const mode of MODES) {
    const p: Fig8Point = { mode, ...s };
    const base = bases.get(key(p))!;
    const o = p.reserveGiB === smallest ? base.outcome : deriveAtReserve(base.trajectory, p.reserveGiB);
    if (o) outcomes.set(`${key(p)}/${p.reserveGiB}`, o);
    else direct.push(p);
  }
}
(await run(direct)).forEach((r, i) => outcomes.set(`${key(direct[i]!)}/${direct[i]!.reserveGiB}`, r.outcome));
const wall = (Date.now() - t0) / 1000;

const rows = settings.map((s) => ({ ...s, ksm: outcomes.get(`${key({ mode: 'ksm', ...s })}/${s.reserveGiB}`)!, nuksm: outcomes.get(`${key({ mode: 'nuksm-forest', ...s })}/${s.reserveGiB}`)! }));
const cell = (r: Fig8Outcome) => (r.oom ? `**${sweepCell(r)}**` : sweepCell(r));
console.log('| VM-1 start (s) | host reserve (GiB/node) | comparison cost (x 0.54 µs) | KSM | nuKSM (forest) | paper outcome (KSM OOM, nuKSM not) |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.vm1StartS} | ${r.reserveGiB} | ${r.comparisonCostFactor} | ${cell(r.ksm)} | ${cell(r.nuksm)} | ${r.ksm.oom && !r.nuksm.oom ? 'yes' : 'no'} |`);
const simulated = basePoints.length + direct.length;
const paper = rows.filter((r) => r.ksm.oom && !r.nuksm.oom).length;
console.log(`\n${rows.length} settings (${rows.length * MODES.length} outcomes: ${simulated} simulated, ${rows.length * MODES.length - simulated} derived) in ${wall.toFixed(0)} s wall (two at a time); ` +
  `paper outcome in ${paper}; KSM OOM in ${rows.filter((r) => r.ksm.oom).length}, nuKSM OOM in ${rows.filter((r) => r.nuksm.oom).length}`);
const file: Fig8SweepFile = {
  format: 'nuksm-fig8-sweep',
  version: 1,
  source: 'model testbed (bench/fig8-sweep.ts), not a measurement',
  date: new Date().toISOString(),
  host: hostname(),
  wallS: wall,
  simulated,
  rows,
};
writeFileSync(FIG8_SWEEP_FILE, JSON.stringify(file, null, 1) + '\n');
