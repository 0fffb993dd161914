// `node bin/run-ts.js bench/trace-replay.ts [merges]` (also part of `npm run bench`): replay of a trace file with
// 1 M merge events, as `nuksm trace replay` does it (read the file, validate every line, replay into the model,
// compare every stop and every merge). The trace is produced by the model itself (two instances of `merges`
// pages with equal contents on nodes 0 and 1: one merge per page pair), not measured on a kernel. It is written
// to a temporary file, then a fresh process (as the command would be) reads and replays it; only that is timed.
// Prints one JSON line last.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTraceFile, recordFromModel, replayTrace, writeTraceFile } from '../src/policy/trace-file.ts';
import { runChild } from './pool.ts';

interface Timed {
  events: number;
  wallS: number;
  cpuS: number;
  eventsPerS: number;
  exact: boolean;
  maxRssMiB: number;
}

if (process.argv[2] === '--replay') {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = replayTrace(readTraceFile(process.argv[3]!));
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const events = r.merges?.recorded ?? 0;
  const timed: Timed = { events, wallS, cpuS: (cpu.user + cpu.system) / 1e6, eventsPerS: events / wallS, exact: r.exact, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(timed)}\n`);
} else {
  const N = Number(process.argv[2] ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'nuksm-trace-bench-'));
  const file = join(dir, 'bench-1m.jsonl');
  try {
    const c = Array.from({ length: N }, (_, i) => i + 1);
    const s = { name: 'bench-1m', family: 1, knobs: { pages_to_scan: 100000, merge_across_nodes: 1 as const, max_page_sharing: 256, smart_scan: 0 as const }, procs: [{ node: 0, contents: c }, { node: 1, contents: c }], initial: [0, 1], events: [], endPass: 2 };
    const tr = recordFromModel(s, { release: '6.12.0', source: 'bench (model-produced)', pageStates: 'last-stop' });
    writeTraceFile(file, tr);
    const r = await runChild<Timed>(fileURLToPath(import.meta.url), ['--replay', file]);
    if (!r.exact || r.events !== N) throw new Error(`trace replay bench: expected ${N} merges replayed exactly, got ${r.events} (exact ${r.exact})`);
    process.stdout.write(`${JSON.stringify({ ...r, lines: tr.records.length + 1, megabytes: statSync(file).size / 1e6 })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
