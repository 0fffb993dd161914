// Bench: a model-produced (not measured) trace of 1 M merge events, recorded then parsed and replayed; prints seconds.
import { recordFromModel, replayTrace, traceText, parseTraceText } from '../src/policy/trace-file.ts';
const N = 1_000_000;
const c = Array.from({ length: N }, (_, i) => i + 1);
const s = { name: 'bench-1m', family: 1, knobs: { pages_to_scan: 100000, merge_across_nodes: 1 as const, max_page_sharing: 256, smart_scan: 0 as const }, procs: [{ node: 0, contents: c }, { node: 1, contents: c }], initial: [0, 1], events: [], endPass: 2 };
let t = Date.now();
const tr = recordFromModel(s, { release: '6.12.0', source: 'bench (model-produced)', pageStates: 'last-stop' });
console.log('record s', (Date.now() - t) / 1000, 'merges', tr.records.filter((r) => r.t === 'merge').length);
const text = traceText(tr);
console.log('MB', (text.length / 1e6).toFixed(0));
t = Date.now();
const r = replayTrace(parseTraceText(text, 'bench.jsonl'));
console.log('parse+replay s', (Date.now() - t) / 1000, 'exact', r.exact);
