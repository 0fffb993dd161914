/**
 * timeline.staggerFrom 'workload' on a real step (physical testbed, this host, three node-bound native
 * stand-ins under KSM): every instance is launched and installed before the stagger clock starts, each
 * instance's phases start at its stagger time on that clock, and the instances register their memory (their
 * resident phase is ready) in the spec's order. With 'launch', install latency (1.9-5.5 s per instance was
 * measured in the emulated machine under load) could reorder registrations 2 s apart, and stock KSM's
 * placement depends on that order (docs/policy.md §9). With ksmdStart 'all-registered' ksmd stays off until
 * the last instance is registered (nothing merges before), so its first pass finds them in that order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { createPhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import { describeWith } from '../support/components.ts';
import { testLog } from '../support/log.ts';
import { thisHostTestbedFile } from '../support/this-host.ts';

const say = testLog('stagger-from');
const STAGGER_S = 2;

describeWith(['root', 'ksm', 'numactl', 'gcc'], "timeline.staggerFrom 'workload' on a real step", () => {
  const work = mkdtempSync(join(tmpdir(), 'nuksm-stagger-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  type LogLine = { time: number; msg: string; instance?: string; atS?: number; afterS?: number };
  /** One step of three node-bound stand-ins under KSM, STAGGER_S apart from their installs; its log and samples. */
  async function runStep(ksmdStart: Scenario['timeline']['ksmdStart']): Promise<{ lines: LogLine[]; samples: Sample[] }> {
    const lines: LogLine[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    const node = 0;
    const scenario: Scenario = {
      campaign: 'test',
      experiment: 'stagger-from',
      configId: 'randomaccess-native',
      kernelMode: 'ksm',
      iteration: 0,
      seed: 1,
      memoryHog: null,
      ksm: { run: true, pagesToScan: 2000, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
      instances: names.map((name, i) => ({ name, kind: 'process', node, vcpus: 1, memoryMiB: 64, nice: 0, template: null, startAtS: i * STAGGER_S })),
      workloads: names.map((instance) => ({ instance, workload: 'randomaccess-native', params: { footprintGiB: 4 / 1024, iterations: 1 } })),
      timeline: { staggerS: STAGGER_S, staggerFrom: 'workload', ksmdStart, mergeWait: { kind: 'fixed', seconds: 2 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 300 },
      monitors: ['ksm'],
    };
    const file = await thisHostTestbedFile({ file: 'stagger-from.test.yaml' });
    const testbed = await createPhysicalTestbed(file, { hostWorkRoot: join(work, 'hostwork'), hostInstallRoot: join(work, 'install'), defaultVariant: 'small' });
    const ksm = new KsmControl(new LocalExecutor());
    const knobsBefore = await ksm.readKnobs();
    const samples: Sample[] = [];
    try {
      await testbed.runScenario(scenario, { emit: (s) => samples.push(...s), log: pino({ level: 'info' }, sink), signal: new AbortController().signal, rawDir: join(work, `raw-${ksmdStart}`) });
    } finally {
      await testbed.close();
    }
    expect(await ksm.readKnobs()).toEqual(knobsBefore);
    return { lines, samples };
  }
  const names = ['p0', 'p1', 'p2'];

  it('installs every instance first, then starts each one’s phases at its stagger time, in order', async () => {
    const { lines, samples } = await runStep('step');
    const at = (msg: string, instance?: string) => lines.filter((l) => l.msg === msg && (instance === undefined || l.instance === instance));
    const clock = at('every instance launched and installed: the stagger clock starts');
    expect(clock).toHaveLength(1);
    const installed = at('workload installed');
    expect(installed.map((l) => l.instance).sort()).toEqual(names);
    for (const l of installed) expect(l.time).toBeLessThanOrEqual(clock[0]!.time);
    const starts = names.map((n) => at('phases start', n)[0]!);
    const offsets = starts.map((l) => l.atS! - clock[0]!.afterS!);
    const ready = names.map((n) => at('resident phase ready (memory filled)', n)[0]!.time);
    say(`installs done ${clock[0]!.afterS!.toFixed(2)} s into the step; phases started ${offsets.map((o) => o.toFixed(2)).join(' / ')} s after it; ready ${ready.map((t) => ((t - ready[0]!) / 1000).toFixed(2)).join(' / ')} s after p0's`);
    offsets.forEach((o, i) => expect(Math.abs(o - i * STAGGER_S), names[i]).toBeLessThan(0.5));
    expect([...ready].sort((a, b) => a - b)).toEqual(ready);
    // The step ran: each instance timed, and KSM merged the identical copies.
    expect(samples.filter((s) => s.metric === 'runtime_s').map((s) => s.instance).sort()).toEqual(names);
    expect(Math.max(...samples.filter((s) => s.metric === 'ksm_pages_sharing').map((s) => s.value))).toBeGreaterThan(0);
    // ksmdStart 'step': ksmd runs from the start, so p0 and p1 merge before p2 has registered.
    const p2ReadyS = (ready[2]! - (clock[0]!.time - clock[0]!.afterS! * 1000)) / 1000;
    expect(samples.some((x) => x.metric === 'ksm_pages_sharing' && x.t !== null && x.t < p2ReadyS && x.value > 0)).toBe(true);
  }, 300_000);

  it("ksmdStart 'all-registered': ksmd runs only once every instance's memory is registered", async () => {
    const { lines, samples } = await runStep('all-registered');
    const clock = lines.find((l) => l.msg === 'every instance launched and installed: the stagger clock starts')!;
    const stepStartMs = clock.time - clock.afterS! * 1000;
    const configured = lines.find((l) => l.msg === 'KSM configured') as unknown as { ksmdStartsWhenAllRegistered: boolean };
    expect(configured.ksmdStartsWhenAllRegistered).toBe(true);
    const started = lines.filter((l) => l.msg === 'every instance registered: ksmd started');
    expect(started).toHaveLength(1);
    const readyS = names.map((n) => (lines.find((l) => l.msg === 'resident phase ready (memory filled)' && l.instance === n)!.time - stepStartMs) / 1000);
    for (const r of readyS) expect(r).toBeLessThanOrEqual(started[0]!.atS!);
    // Until then nothing merges, although p0 and p1 (identical contents) were registered for STAGGER_S or more.
    const sharing = samples.filter((x) => x.metric === 'ksm_pages_sharing' && x.t !== null);
    const before = sharing.filter((x) => x.t! < started[0]!.atS!);
    say(`ready ${readyS.map((r) => r.toFixed(2)).join(' / ')} s, ksmd started ${started[0]!.atS!.toFixed(2)} s; pages_sharing before: ${before.map((x) => `${x.t}s=${x.value}`).join(' ')}; max after ${Math.max(...sharing.map((x) => x.value))}`);
    expect(before.filter((x) => x.t! >= readyS[1]!).length).toBeGreaterThan(0);
    for (const x of before) expect(x.value, `pages_sharing at ${x.t} s`).toBe(0);
    expect(Math.max(...sharing.map((x) => x.value))).toBeGreaterThan(0);
  }, 300_000);
});
