// Scenario files for `nuksm trace record` (src/campaign/scenario-file.ts): JSON or YAML, defaults stated,
// every error a ConfigError naming the file and the key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenarioFile, parseScenarioFile } from '../../src/campaign/scenario-file.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { KsmScenario } from '../../src/policy/scenario.ts';
import { randomScenarios } from '../support/ksm-random-scenarios.ts';
import { KSM_SCENARIOS } from '../support/ksm-scenarios.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'experiments', 'ksm-scenarios', 'one-node-writes.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'nuksm-scenario-file-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base = (): KsmScenario => structuredClone(KSM_SCENARIOS.find((s) => s.name === 'f4-writes')!);

function why(data: unknown): ConfigError {
  try {
    parseScenarioFile('s.yaml', data);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('accepted');
}

describe('scenario file', () => {
  it('loads the example (YAML) with the knob defaults written out', () => {
    const s = loadScenarioFile(EXAMPLE);
    expect(s.name).toBe('one-node-writes');
    expect(s.family).toBe(0);
    expect(s.knobs).toEqual({ pages_to_scan: 8, merge_across_nodes: 1, max_page_sharing: 256, smart_scan: 0 });
    expect(s.procs.map((p) => p.contents.length)).toEqual([18, 17, 8]);
    expect(s.events).toHaveLength(4);
  });

  it('reads JSON too, and fills the knobs a file leaves out with the kernel defaults', () => {
    const file = join(tmp, 'min.json');
    writeFileSync(file, JSON.stringify({ name: 'min', knobs: { pages_to_scan: 4 }, procs: [{ node: 0, contents: [1, 1] }], initial: [0], endPass: 2 }));
    expect(loadScenarioFile(file)).toEqual({ name: 'min', family: 0, knobs: { pages_to_scan: 4, merge_across_nodes: 1, max_page_sharing: 256, smart_scan: 0 }, procs: [{ node: 0, contents: [1, 1] }], initial: [0], events: [], endPass: 2 });
  });

  it('accepts every scenario the trace suite runs and the random ones, unchanged', () => {
    for (const s of [...KSM_SCENARIOS, ...randomScenarios(undefined, 20)]) expect(parseScenarioFile('s.yaml', structuredClone(s))).toEqual(s);
  });

  const bad: Array<[string, (s: KsmScenario & Record<string, unknown>) => void, RegExp]> = [
    ['an unknown key', (s) => void (s.extra = 1), /s\.yaml: extra: unknown key/],
    ['pages_to_scan 0', (s) => void (s.knobs.pages_to_scan = 0), /s\.yaml: knobs\.pages_to_scan:/],
    ['content id 0', (s) => void (s.procs[0]!.contents[2] = 0), /s\.yaml: procs\[0\]\.contents\[2\]:/],
    ['content id 2^32-1 (no page)', (s) => void (s.procs[1]!.contents[0] = 2 ** 32 - 1), /s\.yaml: procs\[1\]\.contents\[0\]: a content id is at most/],
    ['17 instances', (s) => void (s.procs = Array.from({ length: 17 }, () => ({ node: 0, contents: [1] }))), /s\.yaml: procs:/],
    ['an instance that does not exist', (s) => void (s.initial = [0, 5]), /s\.yaml: initial\[1\]: instance 5 does not exist/],
    ['an instance registered twice', (s) => void s.events.push({ at: { batch: 2 }, action: { kind: 'register', proc: 1 } }), /s\.yaml: events\[8\]\.action\.proc: instance 1 is registered twice/],
    ['a pass-0 trigger', (s) => void (s.events[0]!.at = { pass: 0 }), /s\.yaml: events\[0\]\.at\.pass: pass triggers start at 1/],
    ['a trigger at or after endPass', (s) => void (s.events[0]!.at = { pass: s.endPass }), /s\.yaml: events\[0\]\.at\.pass: pass 7 is not before endPass 7/],
    ['a write past the last page', (s) => void (s.events[0]!.action = { kind: 'write', proc: 0, page: 99, content: 3 }), /s\.yaml: events\[0\]\.action\.page: instance 0 has 32 pages/],
    ['a write to an instance never registered', (s) => void ((s.procs.push({ node: 0, contents: [1] }), (s.events[0]!.action = { kind: 'write', proc: 2, page: 0, content: 3 }))), /s\.yaml: events\[0\]\.action\.proc: instance 2 is never registered/],
    ['endPass 0', (s) => void (s.endPass = 0), /s\.yaml: endPass:/],
    ['no initial instance', (s) => void (s.initial = []), /s\.yaml: initial: at least one instance/],
  ];
  for (const [what, change, message] of bad) {
    it(`refuses ${what}, naming the key`, () => {
      const s = base() as KsmScenario & Record<string, unknown>;
      expect(s.endPass).toBe(7);
      change(s);
      expect(why(s).message).toMatch(message);
    });
  }

  it('names the file for a missing file and a YAML syntax error', () => {
    expect(() => loadScenarioFile(join(tmp, 'missing.yaml'))).toThrow(/missing\.yaml: \(top level\): cannot read file/);
    const broken = join(tmp, 'broken.yaml');
    writeFileSync(broken, 'name: [unclosed\n');
    expect(() => loadScenarioFile(broken)).toThrow(/broken\.yaml: \(top level\): YAML syntax error/);
  });
});
