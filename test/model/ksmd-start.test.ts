// Timeline.ksmdStart on the model testbed, with the emulated central spec (two identical 16 MiB instances on
// nodes 0 and 1, registering 3 s apart) on the emulated testbed file's kernels. With 'step', ksmd runs while
// they register, so which instance it scans second in a pass (the one whose page survives a merge) hangs on
// where its cursor is when p1 registers: start jitter below 1 s gives both one-node outcomes. With
// 'all-registered', ksmd's first pass finds both mms in registration order, p0 then p1, at every start phase.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planCampaign } from '../../src/campaign/campaign.ts';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { kernelBehaviourOf, simulatedHostOf } from '../../src/testbeds/model/index.ts';
import { startPhaseSweep, type PlacementByInstance } from '../../src/testbeds/model/predict.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TESTBED = join(ROOT, 'experiments', 'testbeds', 'emulated.yaml');
const DRAWS = 24;

const outcome = (d: PlacementByInstance): string => (d.p0! >= 95 && d.p1! <= 5 ? 'p0 keeps' : d.p1! >= 95 && d.p0! <= 5 ? 'p1 keeps' : `split ${JSON.stringify(d)}`);

describe('model testbed: timeline.ksmdStart', () => {
  const { plan } = planCampaign({ spec: join(ROOT, 'experiments', 'emulated', 'central.yaml'), testbedFile: TESTBED, experimentsDir: join(ROOT, 'experiments') });
  const tb = loadTestbedFile(TESTBED);
  for (const kernel of ['bookworm', 'backports']) {
    it(`central, stock KSM on ${kernel}: 'step' leaves the surviving copy to the start phase, 'all-registered' fixes it`, async () => {
      const step = plan.steps.find((s) => s.scenario.kernelMode === 'ksm' && s.kernel === kernel)!;
      expect(step.scenario.timeline.ksmdStart).toBe('all-registered'); // as the spec says
      const b = kernelBehaviourOf(tb, 'ksm', kernel);
      const sweep = (ksmdStart: Scenario['timeline']['ksmdStart']) =>
        startPhaseSweep({ ...step.scenario, timeline: { ...step.scenario.timeline, ksmdStart } }, simulatedHostOf(tb), { compareOrder: b.compareOrder, smartScan: b.smartScan }, DRAWS);
      const count = (ds: PlacementByInstance[]) => ds.map(outcome).reduce<Record<string, number>>((m, o) => ({ ...m, [o]: (m[o] ?? 0) + 1 }), {});
      const early = await sweep('step');
      const late = await sweep('all-registered');
      process.stderr.write(`[ksmd-start] central ksm ${kernel}: ksmdStart step ${JSON.stringify(count(early.draws))}, all-registered ${JSON.stringify(count(late.draws))} of ${DRAWS} start draws\n`);
      expect(Object.keys(count(early.draws)).sort()).toEqual(['p0 keeps', 'p1 keeps']);
      expect(count([late.nominal, ...late.draws])).toEqual({ 'p1 keeps': DRAWS + 1 });
    }, 120_000);
  }
});
