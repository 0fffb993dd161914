/** The randomized differential scenarios (test/support/ksm-random-scenarios.ts): deterministic and well formed. */
import { describe, expect, it } from 'vitest';
import { scenarioScript } from '../../src/policy/scenario.ts';
import { randomScenario, randomScenarios, RANDOM_COUNT, RANDOM_SEED } from '../support/ksm-random-scenarios.ts';

describe('random KSM scenarios', () => {
  const all = randomScenarios();
  it('are at least 50, named by seed and index, and reproducible from the name', () => {
    expect(all.length).toBe(RANDOM_COUNT);
    expect(all.length).toBeGreaterThanOrEqual(50);
    all.forEach((s, i) => {
      expect(s.name).toBe(`rand-${RANDOM_SEED}-${i}`);
      expect(randomScenario(RANDOM_SEED, i)).toEqual(s);
    });
  });
  it('stay small and valid for the driver (2-5 instances, events on live instances)', () => {
    for (const s of all) {
      expect(s.procs.length).toBeGreaterThanOrEqual(2);
      expect(s.procs.length).toBeLessThanOrEqual(5);
      expect(() => scenarioScript(s, { smartScanKnob: false })).not.toThrow();
      for (const e of s.events) {
        const a = e.action;
        if (a.kind === 'write') {
          expect(s.initial).toContain(a.proc);
          expect(a.page).toBeLessThan(s.procs[a.proc]!.contents.length);
        }
      }
    }
  });
  it('cover the varied dimensions (mid-pass registrations, writes, exits, knobs, in-process duplicates)', () => {
    const has = (f: (s: (typeof all)[number]) => boolean) => all.filter(f).length;
    expect(has((s) => s.events.some((e) => e.action.kind === 'register' && 'batch' in e.at))).toBeGreaterThan(0);
    expect(has((s) => s.events.some((e) => e.action.kind === 'write'))).toBeGreaterThan(0);
    expect(has((s) => s.events.some((e) => e.action.kind === 'exit'))).toBeGreaterThan(0);
    expect(has((s) => s.knobs.merge_across_nodes === 0)).toBeGreaterThan(0);
    expect(has((s) => s.knobs.max_page_sharing < 256)).toBeGreaterThan(0);
    expect(has((s) => s.procs.some((p) => new Set(p.contents).size < p.contents.length))).toBeGreaterThan(0);
  });
});
