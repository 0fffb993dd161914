/**
 * A campaign plan of hand-made steps for the emulated tests (the planner does not yet plan native
 * bare-metal steps from an experiment spec): enough for the journal, the runner and the figure
 * export to treat the steps like any planned ones.
 */
import { createHash } from 'node:crypto';
import type { Plan } from '../../../src/campaign/plan.ts';
import type { FigureName } from '../../../src/campaign/spec.ts';
import type { Scenario } from '../../../src/core/scenario.ts';

export function handPlan(campaign: string, testbedFile: string, steps: { scenario: Scenario; figures: FigureName[]; kernel: string }[]): Plan {
  return {
    campaign,
    spec: 'emulated-test',
    specFile: '(test)',
    testbed: { file: testbedFile, name: 'emulated-test', kind: 'emulated' },
    seed: 1,
    interleave: 'none',
    steps: steps.map((s, i) => ({
      stepId: `s${String(i + 1).padStart(3, '0')}-${s.scenario.configId}`,
      seq: i + 1,
      key: createHash('sha256').update(JSON.stringify(s.scenario)).digest('hex'),
      scenario: s.scenario,
      experiments: [s.scenario.experiment],
      figures: s.figures,
      kernel: s.kernel,
      boot: 0,
      unsupported: null,
      estimateS: 60,
    })),
    boots: [],
    reboots: 0,
    estimate: { stepsS: 60 * steps.length, rebootsS: 0, totalS: 60 * steps.length },
    pinMap: [],
  };
}
