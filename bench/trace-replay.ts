// `node bin/run-ts.js bench/trace-replay.ts [merges]` (also part of `npm run bench`): replay of a trace file with
// 1 M merge events, as `nuksm trace replay` does it (read the file, validate every line, replay into the model,
// compare every stop and every merge). The trace is produced by the model itself (two instances of `merges`
// pages with equal contents on nodes 0 and 1: one merge per page pair), not measured on a kernel; it is written
// to a temporary file first, and only reading + replaying is timed. Prints one JSON line last.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTraceFile, recordFromModel, replayTrace, writeTraceFile } from '../src/policy/trace-file.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'nuksm-trace-bench-'));
const file = join(dir, 'bench-1m.jsonl');
try {
  // In a function, so the recorded trace is garbage before the timed part starts.
  const lines = ((): number => {
    const c = Array.from({ length: N }, (_, i) => i + 1);
    const s = { name: 'bench-1m', family: 1, knobs: { pages_to_scan: 100000, merge_across_nodes: 1 as const, max_page_sharing: 256, smart_scan: 0 as const }, procs: [{ node: 0, contents: c }, { node: 1, contents: c }], initial: [0, 1], events: [], endPass: 2 };
    const tr = recordFromModel(s, { release: '6.12.0', source: 'bench (model-produced)', pageStates: 'last-stop' });
    writeTraceFile(file, tr);
    return tr.records.length + 1;
  })();
  const bytes = statSync(file).size;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = replayTrace(readTraceFile(file));
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const events = r.merges?.recorded ?? 0;
  if (!r.exact || events !== N) throw new Error(`trace replay bench: expected ${N} merges replayed exactly, got ${events} (exact ${r.exact})`);
  const result = { events, lines, megabytes: bytes / 1e6, wallS, cpuS: (cpu.user + cpu.system) / 1e6, eventsPerS: events / wallS, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
