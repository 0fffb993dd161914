// The trace file format (src/policy/trace-file.ts): round trip, validation errors, replay of the recorded
// kernel runs (test/fixtures/ksm-scenarios) converted to the format, and a modified trace disagreeing.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseScenarioLog } from '../../src/policy/scenario.ts';
import { parseTraceText, recordFromModel, replayTrace, traceFromDriverLog, traceText } from '../../src/policy/trace-file.ts';
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
});
