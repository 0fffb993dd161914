// `npm run bench`: the model testbed at paper scale. Each scenario runs in a child process (peak RSS per scenario);
// two run at a time on this 2-core machine. (a) the fairness experiment (KSM off, KSM, nuKSM; five workloads;
// two 30 GiB VMs, 1000 pages / 100 ms); (b) the Fig. 8 scenario; (c) replay of a model-produced trace file with 1 M
// merge events (bench/trace-replay.ts). Prints page visits per CPU-second of the simulation (model + testbed loops,
// not module loading) and per wall second, wall time, peak RSS; for (c) events, seconds and events per second.
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { PAPER_WORKLOADS } from '../src/testbeds/model/index.ts';
import { pool as poolOf, runChild } from './pool.ts';

const child = fileURLToPath(new URL('./scenario-child.ts', import.meta.url));
const traceChild = fileURLToPath(new URL('./trace-replay.ts', import.meta.url));

interface Result {
  kind: string; workload: string; mode: string; wallS: number; cpuS: number; simCpuS: number; maxRssMiB: number; pagesVisited: number; comparisons: number; merges: number;
  simulatedS: number; oom: boolean; runtimes: (number | null)[]; savedGiB: number | null; comparisonsPerMerge: number | null; minFreeNode0GiB: number | null; savedAt900: number | null;
}

const pool = (jobs: string[][]) => poolOf<Result>(child, jobs);

const line = (r: Result) =>
  `${(r.kind === 'fig8' ? 'fig8' : r.workload).padEnd(13)} ${r.mode.padEnd(12)} visits ${(r.pagesVisited / 1e6).toFixed(1).padStart(6)} M  ` +
  `${(r.pagesVisited / r.simCpuS / 1e6).toFixed(2).padStart(5)} M visits/CPU-s (${(r.pagesVisited / r.wallS / 1e6).toFixed(2).padStart(5)} M/wall-s)  wall ${r.wallS.toFixed(1).padStart(5)} s (CPU ${r.simCpuS.toFixed(1).padStart(5)} s)  peak RSS ${r.maxRssMiB.toFixed(0).padStart(5)} MiB  simulated ${r.simulatedS.toFixed(0)} s`;

const modes = ['ksm-off', 'ksm', 'nuksm-fair'];
console.log('(a) paper-scale fairness experiment (two 30 GiB VMs, 1000 pages / 100 ms, VM-1 60 s after VM-0)');
const t0 = Date.now();
const a = await pool(PAPER_WORKLOADS.flatMap((w) => modes.map((m) => ['fairness', w, m])));
const aWall = (Date.now() - t0) / 1000;
a.forEach((r) => console.log('  ' + line(r)));
const rate = (rs: Result[]) => `${(rs.reduce((x, r) => x + r.pagesVisited, 0) / rs.reduce((x, r) => x + r.simCpuS, 0) / 1e6).toFixed(2)} M visits/CPU-s`;
console.log(`  all 15: ${rate(a)} (visits over simulation CPU seconds, summed)`);
console.log(`  total wall ${aWall.toFixed(1)} s (two scenarios at a time; CPU ${a.reduce((x, r) => x + r.cpuS, 0).toFixed(1)} s in all; load average now ${loadavg()[0].toFixed(1)}), peak RSS max ${Math.max(...a.map((r) => r.maxRssMiB)).toFixed(0)} MiB`);
console.log('  Table II from the model (fairness = min/max slowdown vs KSM off; perf = combined runtime nuKSM/KSM):');
for (const w of PAPER_WORKLOADS) {
  const [off, ksm, nuksm] = modes.map((m) => a.find((r) => r.workload === w && r.mode === m)!);
  const fair = (r: Result) => {
    const s = r.runtimes.map((x, i) => x! / off.runtimes[i]!);
    return Math.min(...s) / Math.max(...s);
  };
  const sum = (r: Result) => r.runtimes[0]! + r.runtimes[1]!;
  console.log(`    ${w.padEnd(13)} fairness KSM ${fair(ksm).toFixed(2)} nuKSM ${fair(nuksm).toFixed(2)}  perf ${(sum(nuksm) / sum(ksm)).toFixed(2)}  saved GiB KSM ${ksm.savedGiB!.toFixed(2)} nuKSM ${nuksm.savedGiB!.toFixed(2)}`);
}

console.log('(b) Fig. 8: two 40 GiB XSBench VMs + 2 GiB / 15 s memory hog to 100 GiB on node 0, 10 000 pages / 100 ms');
const t1 = Date.now();
const b = await pool([['fig8', 'xsbench', 'ksm'], ['fig8', 'xsbench', 'nuksm-forest']]);
const bWall = (Date.now() - t1) / 1000;
b.forEach((r) => console.log('  ' + line(r)));
console.log(`  both: ${rate(b)}`);
for (const r of b) {
  console.log(`    ${r.mode.padEnd(12)} OOM ${r.oom ? `yes, at ${r.simulatedS.toFixed(0)} s` : 'no'}; min free node 0 ${r.minFreeNode0GiB?.toFixed(2)} GiB; saved at 900 s ${r.savedAt900?.toFixed(2) ?? '(stopped before)'} GiB, at end ${r.savedGiB?.toFixed(2)} GiB; comparisons per merged page ${r.comparisonsPerMerge?.toFixed(1)}`);
}
console.log(`  total wall ${bWall.toFixed(1)} s (both at once; CPU ${b.reduce((x, r) => x + r.cpuS, 0).toFixed(1)} s in all; load average now ${loadavg()[0].toFixed(1)}), peak RSS max ${Math.max(...b.map((r) => r.maxRssMiB)).toFixed(0)} MiB`);

console.log('(c) trace replay: a model-produced trace file of 1 M merge events (two instances x 1 M pages), read, validated line by line and replayed as `nuksm trace replay` does');
const c = await runChild<{ events: number; lines: number; megabytes: number; wallS: number; cpuS: number; eventsPerS: number; maxRssMiB: number }>(traceChild, []);
console.log(`  ${c.events} merge events (${c.lines} lines, ${c.megabytes.toFixed(0)} MB): ${c.wallS.toFixed(1)} s wall (CPU ${c.cpuS.toFixed(1)} s), ${(c.eventsPerS / 1e3).toFixed(0)} k events/s; peak RSS ${c.maxRssMiB.toFixed(0)} MiB; load average now ${loadavg()[0].toFixed(1)}`);
