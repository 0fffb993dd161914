import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { HarnessError } from '../../src/core/errors.ts';
import { METRICS } from '../../src/core/metrics.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { Scenario } from '../../src/core/scenario.ts';
import { createModelTestbed, fairnessScenario, paperModelTestbedFile } from '../../src/testbeds/model/index.ts';
import { result } from './helpers.ts';

const log = pino({ level: 'silent' });

/** Bare-metal processes (Fig. 9 shape): one per node, both registered before ksmd's first wake-up. */
function processScenario(mode: Scenario['kernelMode']): Scenario {
  const s = fairnessScenario('randomaccess', mode, { staggerS: 0, footprintGiB: 0.5 });
  return { ...s, instances: s.instances.map((i) => ({ ...i, name: i.name.replace('vm', 'p'), kind: 'process' as const })), workloads: s.workloads.map((w) => ({ ...w, instance: w.instance.replace('vm', 'p') })) };
}

async function runOnTestbed(scenario: Scenario): Promise<Sample[]> {
  const tb = await createModelTestbed(paperModelTestbedFile());
  const samples: Sample[] = [];
  await tb.runScenario(scenario, { emit: (s) => samples.push(...s), log, signal: new AbortController().signal, rawDir: '/nonexistent' });
  await tb.close();
  return samples;
}

describe('model testbed (Testbed interface)', () => {
  it('ensureKernel is instant and describe() names the simulated platform', async () => {
    const tb = await createModelTestbed(paperModelTestbedFile());
    expect(await tb.ensureKernel('nuksm-fair', log)).toEqual({ status: 'ready', kernelRelease: 'model-nuksm' });
    const env = await tb.describe();
    expect(env.testbed).toBe('model');
    expect(env.numaNodes).toBe(2);
    expect(env.kernelRelease).toBe('model-nuksm');
    expect(env.host).toContain('Table I');
    expect(await tb.ensureKernel('ksm', log)).toEqual({ status: 'ready', kernelRelease: 'model-ksm' });
  });

  it('refuses a testbed file of another kind', async () => {
    await expect(createModelTestbed({ ...paperModelTestbedFile(), kind: 'physical' })).rejects.toThrow(HarnessError);
  });

  it('UKSM is not modelled: the step fails as unsupported', async () => {
    await expect(runOnTestbed(fairnessScenario('cg', 'uksm'))).rejects.toMatchObject({ failureClass: 'unsupported' });
  });

  it('emits only catalogued metrics with their units; processes registered together merge onto the later one (as Linux 6.12 did)', async () => {
    const ksm = await runOnTestbed(processScenario('ksm'));
    for (const s of ksm) expect(s.unit).toBe((METRICS as Record<string, { unit: string }>)[s.metric]?.unit);
    expect(result(ksm, 'p1', 'ksm_local_pct')).toBeGreaterThanOrEqual(99);
    expect(result(ksm, 'p0', 'ksm_local_pct')).toBeLessThanOrEqual(1);
    expect(result(ksm, 'p0', 'remote_access_pct')).toBeGreaterThan(result(ksm, 'p1', 'remote_access_pct'));
    const fair = await runOnTestbed(processScenario('nuksm-fair'));
    expect(Math.abs(result(fair, 'p0', 'ksm_local_pct') - 50)).toBeLessThanOrEqual(2);
    // Time series carry t; per-run results do not.
    expect(ksm.some((s) => s.metric === 'ksm_pages_sharing' && s.t !== null)).toBe(true);
    expect(ksm.filter((s) => s.metric === 'runtime_s').every((s) => s.t === null)).toBe(true);
  });

  it('sequential timed phases run one instance after the other, after a fixed merge wait', async () => {
    const s = fairnessScenario('randomaccess', 'ksm-off', { footprintGiB: 0.5 });
    const samples = await runOnTestbed({ ...s, timeline: { ...s.timeline, timedPhases: 'sequential', mergeWait: { kind: 'fixed', seconds: 100 } } });
    const throughput = (vm: string) => samples.filter((x) => x.metric === 'throughput_ops' && x.instance === vm && x.value > 0).map((x) => x.t!);
    // KSM off: the profile's all-local 600 s, times this run's noise (CV 0.86 %) and a little DRAM contention
    // (one latency-bound thread: < 1 % of the node's bandwidth).
    for (const vm of ['vm0', 'vm1']) expect(Math.abs(result(samples, vm, 'runtime_s') / 600 - 1)).toBeLessThan(0.05);
    expect(Math.min(...throughput('vm1'))).toBeGreaterThanOrEqual(Math.max(...throughput('vm0')));
    // Set-up: VM-1 starts at 60 s, boots 20 s and populates 0.5 GiB at 0.5 GiB/s; then the 100 s wait.
    expect(Math.min(...throughput('vm0'))).toBeGreaterThan(180);
  });

  it('a step longer than maxDurationS fails with a timeout', async () => {
    const s = fairnessScenario('randomaccess', 'ksm', { footprintGiB: 0.5 });
    await expect(runOnTestbed({ ...s, timeline: { ...s.timeline, maxDurationS: 100 } })).rejects.toMatchObject({ failureClass: 'timeout' });
  });
});

describe('model testbed from the repository testbed file', () => {
  it('experiments/testbeds/model.yaml loads and runs a small step', async () => {
    const { loadTestbedFile } = await import('../../src/campaign/testbed-file.ts');
    const tb = await createModelTestbed(loadTestbedFile('experiments/testbeds/model.yaml'));
    expect((await tb.describe()).numaNodes).toBe(2);
    const samples: Sample[] = [];
    await tb.runScenario(processScenario('nuksm-fair'), { emit: (s) => samples.push(...s), log, signal: new AbortController().signal, rawDir: '/nonexistent' });
    expect(result(samples, 'host', 'ksm_pages_sharing')).toBeGreaterThan(0);
  });
});
