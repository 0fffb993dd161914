// `node bin/run-ts.js bench/placement.ts`: harness-side cost of the user-space placement engine
// (src/host/placement) per GiB of merged memory examined: parsing the read-out, deciding every page with
// src/policy/placement.ts, planning and parsing the moves. The target-side part (page walk, move_pages)
// is measured on the emulated machine by test/system/placement.test.ts (its `RESULT` lines).
// A stand-in executor answers with a read-out of 1 GiB of pages merged between two processes on node 1.
import type { ExecOptions, ExecResult, Executor } from '../src/host/exec/types.ts';
import { PlacementEngine } from '../src/host/placement/index.ts';

const PAGES = (1 << 30) / 4096;
const readOut = (() => {
  const lines: string[] = [];
  for (let i = 0; i < PAGES; i++) lines.push(`K ${1_000_000 + i} 1 0:${(0x7f0000000 + i).toString(16)},1:${(0x7e0000000 + i).toString(16)}`);
  lines.push('S nodes=0,1 cpu_s=0');
  return lines.join('\n') + '\n';
})();

class StandIn implements Executor {
  readonly target = 'stand-in';
  async run(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const ok = (stdout: string): ExecResult => ({ exitCode: 0, stdout, stderr: '', durationMs: 0 });
    if (argv[0] === 'getconf') return ok('4096\n');
    if (argv[0] === 'sh') return ok('1 (a) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0\n2 (b) S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 1 0\n');
    if (argv.includes('--sharers')) return ok(readOut);
    // The helper: every request moved.
    const reqs = (opts.input ?? '').trim().split('\n');
    return ok(reqs.map((l) => { const [pid, addr, node] = l.split(' '); return `${pid} ${addr} ${node}`; }).join('\n') + `\nNUKSM_MOVE requests=${reqs.length} moved=${reqs.length} failed=0 cpu_s=0\n`);
  }
  async readFile(): Promise<string> { return ''; }
  async writeFile(): Promise<void> {}
  async close(): Promise<void> {}
}

for (const policy of ['fair', 'priority'] as const) {
  const engine = new PlacementEngine(new StandIn(), [
    { name: 'a', workload: '', pid: 1, node: 0 },
    { name: 'b', workload: '', pid: 2, node: 1 },
  ], { policy, helper: '/stand-in', pagesPerSecond: 10 * PAGES, accessSignal: 'none' });
  await engine.start();
  const t0 = Date.now();
  const r1 = await engine.round();
  const t1 = Date.now();
  const r2 = await engine.round(); // decisions remembered (the stand-in does not apply the moves): the steady-state cost of a round
  const t2 = Date.now();
  console.log(`${policy.padEnd(8)} 1 GiB (${PAGES} pages): first round ${r1.cpuS.toFixed(2)} CPU s (${((t1 - t0) / 1000).toFixed(2)} s wall, ${r1.moved} moved), next round ${r2.cpuS.toFixed(2)} CPU s (${((t2 - t1) / 1000).toFixed(2)} s wall, ${r2.misplaced} misplaced)`);
}
