// The trace file format (src/policy/trace-file.ts): round trip, validation errors, replay of the recorded
// kernel runs (test/fixtures/ksm-scenarios) converted to the format, and a modified trace disagreeing.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenarioLog } from '../../src/policy/scenario.ts';
import { parseTraceText, recordFromModel, replayTrace, scanCanonicalMerge, traceFromDriverLog, traceText } from '../../src/policy/trace-file.ts';
import { KSM_SCENARIOS } from '../support/ksm-scenarios.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'ksm-scenarios');

describe('trace file', () => {
  for (const kernel of ['6.1', '6.12']) {
    const layout = JSON.parse(readFileSync(join(FIXTURES, kernel, 'layout.json'), 'utf8'));
    for (const s of KSM_SCENARIOS.filter((x) => existsSync(join(FIXTURES, kernel, `${x.name}.json`)))) {
      it(`${kernel} ${s.name}: converted, round-tripped and replayed exactly`, () => {
        const run = JSON.parse(readFileSync(join(FIXTURES, kernel, `${s.name}.json`), 'utf8'));
        const t = traceFromDriverLog(s, parseScenarioLog(run.log), layout, `fixture ${kernel}`);
        const back = parseTraceText(traceText(t), 'x.jsonl');
        expect(back).toEqual(t);
        const r = replayTrace(back);
        expect(r.comparison.stops.length).toBeGreaterThan(s.endPass);
        expect(r.comparison.pagesExact).toBe(r.comparison.pagesCompared);
        expect(r.exact).toBe(true);
      });
    }
  }

  it('a modified trace disagrees', () => {
    const t = recordFromModel(KSM_SCENARIOS[0]!, { release: '6.12.0', source: 'test' });
    expect(replayTrace(t).exact).toBe(true);
    expect(replayTrace(t).merges!.recorded).toBeGreaterThan(0);
    const snap = t.records.find((r) => r.t === 'snap' && r.n === 2)!;
    if (snap.t === 'snap') snap.c.pages_sharing! += 1;
    const r = replayTrace(t);
    expect(r.exact).toBe(false);
    expect(r.comparison.countersExact).toBe(r.comparison.stops.length - 1);
  });

  it('names file, line and key on bad input', () => {
    const t = recordFromModel(KSM_SCENARIOS[0]!, { release: '6.12.0', source: 'test' });
    const lines = traceText(t).split('\n');
    const reg = JSON.parse(lines[1]!);
    reg.node = -1;
    lines[1] = JSON.stringify(reg);
    expect(() => parseTraceText(lines.join('\n'), 'bad.jsonl')).toThrow(/bad\.jsonl: line 2: node/);
    expect(() => parseTraceText(lines.slice(0, 1).join('\n'), 'cut.jsonl')).toThrow(/does not end/);
  });

  it('reads merge lines of any layout the same way, and rejects a bad one with its line', () => {
    const t = recordFromModel(KSM_SCENARIOS[0]!, { release: '6.12.0', source: 'test' });
    const lines = traceText(t).split('\n');
    const at = lines.findIndex((l) => l.startsWith('{"t":"merge"'));
    expect(at).toBeGreaterThan(0);
    // The canonical layout takes the scanner; the same records spaced out or reordered take JSON.parse + checks.
    expect(scanCanonicalMerge(lines[at]!)).toEqual(JSON.parse(lines[at]!));
    const relaid = lines.map((l) => (l.startsWith('{"t":"merge"') ? JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(l)).reverse()), null, 0).replace(/,/g, ', ') : l));
    expect(scanCanonicalMerge(relaid[at]!)).toBeNull();
    expect(parseTraceText(relaid.join('\n'), 'x.jsonl')).toEqual(parseTraceText(lines.join('\n'), 'x.jsonl'));
    const bad = (line: string) => {
      const copy = [...lines];
      copy[at] = line;
      return () => parseTraceText(copy.join('\n'), 'bad.jsonl');
    };
    const m = lines[at]!;
    expect(bad(m.replace('"node":', '"node":0'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}: not JSON`)); // leading zero
    expect(bad(m.replace(/"node":\d+/, '"node":-1'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}: node`));
    expect(bad(m.replace(/"k":"."/, '"k":"x"'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}: k`));
    expect(bad(m.replace(/"pass":\d+/, '"pass":1.5'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}: pass`));
    expect(bad(m.replace('}', ',"extra":1}'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}`));
    expect(bad(m.replace(/"kept":\[(\d+),/, '"kept":[$1,1,'))).toThrow(new RegExp(`bad\\.jsonl: line ${at + 1}: kept`));
    for (const v of [m.replace('}', '} '), m.replace(/"pass":\d+/, '"pass":1234567890123456'), m.replace('"t":"merge"', '"t": "merge"')]) expect(scanCanonicalMerge(v)).toBeNull();
  });

  it('names the element of a per-page array that is wrong', () => {
    const t = recordFromModel(KSM_SCENARIOS[0]!, { release: '6.12.0', source: 'test' });
    const lines = traceText(t).split('\n');
    const header = JSON.parse(lines[0]!);
    header.scenario.procs[1].contents[3] = 0;
    expect(() => parseTraceText([JSON.stringify(header), ...lines.slice(1)].join('\n'), 'h.jsonl')).toThrow(/h\.jsonl: line 1: scenario\.procs\.1\.contents\.3/);
    const k = lines.findIndex((l) => l.startsWith('{"t":"snap"') && l.includes('"procs"'));
    const snap = JSON.parse(lines[k]!);
    snap.procs[0].ksm[2] = 2;
    lines[k] = JSON.stringify(snap);
    expect(() => parseTraceText(lines.join('\n'), 's.jsonl')).toThrow(new RegExp(`s\\.jsonl: line ${k + 1}: procs\\.0\\.ksm\\.2`));
  });

  it('reports a page whose recorded survivor differs, by instance and page', () => {
    const t = recordFromModel(KSM_SCENARIOS[0]!, { release: '6.12.0', source: 'test' });
    const snap = [...t.records].reverse().find((r) => r.t === 'snap' && r.procs !== undefined)!;
    if (snap.t !== 'snap') throw new Error('no snap');
    const reg = t.records.find((r) => r.t === 'reg' && r.i === 1)!;
    if (reg.t !== 'reg') throw new Error('no reg');
    const p0 = snap.procs!.find((p) => p.i === 0)!;
    p0.pfn[4] = reg.pfn[7]!; // instance 0 page 4 now maps instance 1 page 7's copy
    p0.pfn[5] = 123_456; // a pfn no page held
    const r = replayTrace(t);
    expect(r.exact).toBe(false);
    const stop = r.comparison.stops.find((s) => s.diffs.length > 0)!;
    expect(stop.samePages).toBe(stop.pages - 2);
    expect(stop.diffs.map((d) => [d.proc, d.page, d.kernel.owner])).toEqual([[0, 4, '1:7'], [0, 5, 'pfn 123456']]);
    expect(stop.diffs[0]!.model.owner).toMatch(/^[01]:4$/);
  });
});

