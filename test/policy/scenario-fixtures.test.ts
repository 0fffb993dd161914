/**
 * Runs recorded on the emulated machine's real kernels (Debian 6.1 and 6.12) by the scenario driver
 * (test/system/emulated-trace-suite.test.ts; kept under test/fixtures/ksm-scenarios/<kernel>/) replayed
 * through the model: the same exact agreement as the system suite, without a machine. And mutation
 * checks: each counterfactual rule (a new mm appended at the tail of the scan list instead of just
 * behind the cursor; the unstable-tree page kept instead of the scanned one; the other kernel's order
 * of the checksum gate and the stable-tree search) must make the validation fail.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KsmModelConfig } from '../../src/policy/index.ts';
import { KSM_SCENARIOS } from '../support/ksm-scenarios.ts';
import type { MachineLayout, RecordedRun } from '../../src/host/ksm/scenario-driver/index.ts';
import { checkRecordedRun, type ScenarioResult } from '../support/ksm-scenario-runner.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'ksm-scenarios');
const KERNELS = existsSync(FIXTURES) ? readdirSync(FIXTURES) : [];
const EXACT_FAMILIES = new Set([1, 2, 3, 4, 5, 6, 7, 8]);

function load(kernel: string): { layout: MachineLayout; runs: Array<{ run: RecordedRun; scenario: (typeof KSM_SCENARIOS)[number] }> } {
  const dir = join(FIXTURES, kernel);
  const layout = JSON.parse(readFileSync(join(dir, 'layout.json'), 'utf8')) as MachineLayout;
  const runs = KSM_SCENARIOS.filter((s) => existsSync(join(dir, `${s.name}.json`))).map((scenario) => ({ scenario, run: JSON.parse(readFileSync(join(dir, `${scenario.name}.json`), 'utf8')) as RecordedRun }));
  return { layout, runs };
}

const exact = (r: ScenarioResult): boolean => r.comparison.exact && (!r.trace || (r.trace.exact === r.trace.kernelMerges && r.trace.kernelMerges === r.trace.modelMerges));

describe('recorded kernel runs replayed through the model', () => {
  it('has recorded runs of both kernels', () => {
    expect(KERNELS.sort()).toEqual(['6.1', '6.12']);
  });

  for (const kernel of KERNELS) {
    const { layout, runs } = load(kernel);
    describe(`Linux ${layout.release}`, () => {
      for (const { scenario, run } of runs.filter((x) => EXACT_FAMILIES.has(x.scenario.family))) {
        it(`${scenario.name} (family ${scenario.family}): every counter and page state equal at every stop`, () => {
          const r = checkRecordedRun(scenario, run, layout);
          const st = r.comparison.stops.find((x) => !x.counters.equal || x.samePages !== x.pages);
          expect(st ? { at: st.at, n: st.n, kernel: st.counters.kernel, model: st.counters.model, diffs: st.diffs.slice(0, 2) } : null).toBeNull();
          expect(r.comparison.stops.length).toBeGreaterThanOrEqual(scenario.endPass + 1);
          if (r.trace) expect(r.trace.firstMismatch).toBeNull();
          expect(exact(r)).toBe(true);
        });
      }

      const mutations: Array<[string, Partial<KsmModelConfig>]> = [
        ['a new mm appended at the tail of the scan list', { mutation: 'tail-insertion' }],
        ['the unstable-tree page kept instead of the scanned page', { mutation: 'keep-tree-page' }],
        ['the other kernel generation’s gate order', { compareOrder: layout.release.startsWith('6.1.') ? 'from-6.11' : 'upto-6.10' }],
      ];
      for (const [what, overrides] of mutations) {
        it(`mutation fails the validation: ${what}`, () => {
          const failing = runs.filter(({ scenario, run }) => EXACT_FAMILIES.has(scenario.family) && !exact(checkRecordedRun(scenario, run, layout, overrides)));
          expect(failing.map((x) => x.scenario.name).length).toBeGreaterThan(0);
        });
      }
    });
  }
});
