/** The planner: step expansion, sharing across figures, kernel grouping, ABBA, estimate, and `nuksm plan` output. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planCampaign } from '../../src/campaign/campaign.ts';
import { ESTIMATE, estimateMergeWaitS, implementationOf } from '../../src/campaign/plan.ts';
import { loadTestbedFile } from '../../src/campaign/testbed-file.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PHYSICAL = join(ROOT, 'experiments', 'testbeds', 'physical-skylake.yaml');
const MODEL = join(ROOT, 'experiments', 'testbeds', 'model.yaml');
const EXP = join(ROOT, 'experiments');

describe('planner', () => {
  const { plan } = planCampaign({ spec: 'paper', testbedFile: PHYSICAL, experimentsDir: EXP, campaignId: 'p' });

  it('runs steps shared by Fig. 3 and Fig. 6 once and feeds both figures', () => {
    const xsOff = plan.steps.filter((s) => s.scenario.configId === 'xsbench' && s.scenario.kernelMode === 'ksm-off' && s.experiments.includes('fig3'));
    expect(xsOff).toHaveLength(1);
    expect(xsOff[0]!.figures).toEqual(expect.arrayContaining(['3a', '3b', '6a', '6b', 'table2']));
    // 5 benchmarks × (off, ksm, nuksm) + Fig. 4 (1) + Fig. 7 (15) + Fig. 8 (2) + Fig. 9 (2 × 3)
    expect(plan.steps).toHaveLength(15 + 1 + 15 + 2 + 6);
  });

  it('groups steps by kernel: one boot per kernel, steps of a boot contiguous', () => {
    const kernels = new Set(plan.steps.filter((s) => s.kernel).map((s) => s.kernel));
    expect(plan.boots.map((b) => b.kernel)).toEqual([...kernels]);
    expect(plan.reboots).toBe(kernels.size);
    const bootSeq = plan.steps.filter((s) => s.boot !== null).map((s) => s.boot!);
    expect(bootSeq).toEqual([...bootSeq].sort((a, b) => a - b));
  });

  it('records modes the testbed lacks as unsupported steps at the end', () => {
    const unsupported = plan.steps.filter((s) => s.unsupported);
    expect(unsupported.map((s) => s.scenario.kernelMode)).toEqual(['uksm', 'uksm']);
    expect(plan.steps.slice(-2)).toEqual(unsupported);
  });

  it('ABBA interleaving alternates the kernel order across iterations', () => {
    const { plan: abba } = planCampaign({ spec: 'fig6', testbedFile: PHYSICAL, experimentsDir: EXP, iterations: 2, interleave: 'abba', campaignId: 'a' });
    expect(abba.boots.map((b) => b.kernel)).toEqual(['v5.4', 'nuKSM_SingleTree', 'v5.4']);
    expect(abba.steps.filter((s) => s.boot === 0).every((s) => s.scenario.iteration === 1)).toBe(true);
    expect(abba.steps.filter((s) => s.boot === 2).every((s) => s.scenario.iteration === 2)).toBe(true);
    const { plan: grouped } = planCampaign({ spec: 'fig6', testbedFile: PHYSICAL, experimentsDir: EXP, iterations: 2, campaignId: 'g' });
    expect(grouped.boots.map((b) => b.kernel)).toEqual(['v5.4', 'nuKSM_SingleTree']);
    expect(grouped.steps).toHaveLength(abba.steps.length);
  });

  it('seeds depend on the campaign seed and the step, not on the campaign id', () => {
    const a = planCampaign({ spec: 'fig3', testbedFile: MODEL, experimentsDir: EXP, campaignId: 'one' }).plan;
    const b = planCampaign({ spec: 'fig3', testbedFile: MODEL, experimentsDir: EXP, campaignId: 'two' }).plan;
    expect(a.steps.map((s) => s.scenario.seed)).toEqual(b.steps.map((s) => s.scenario.seed));
    expect(new Set(a.steps.map((s) => s.scenario.seed)).size).toBe(a.steps.length);
  });

  it('estimates the merge wait as two KSM scans of the registered memory, capped at maxS', () => {
    const step = plan.steps.find((s) => s.scenario.configId === 'xsbench' && s.scenario.kernelMode === 'ksm')!;
    // 2 VMs × 30 GiB = 15 728 640 pages; 1000 pages / 100 ms = 10 000 pages/s → 2 scans = 3145.728 s (< maxS 5400).
    expect(estimateMergeWaitS(step.scenario)).toBeCloseTo(3145.728, 6);
    const capped = { ...step.scenario, timeline: { ...step.scenario.timeline, mergeWait: { kind: 'converged' as const, maxS: 1800, windowS: 60, epsilonPct: 1 } } };
    expect(estimateMergeWaitS(capped)).toBe(1800);
    const small = { ...step.scenario, instances: step.scenario.instances.map((i) => ({ ...i, memoryMiB: 2048 })) };
    expect(estimateMergeWaitS(small)).toBeCloseTo((ESTIMATE.scansToConverge * 2 * 2 * 262144) / 10_000, 6);
    const off = plan.steps.find((s) => s.scenario.configId === 'xsbench' && s.scenario.kernelMode === 'ksm-off')!;
    expect(off.scenario.timeline.mergeWait).toEqual({ kind: 'fixed', seconds: 0 });
    // start 60 + stagger 60 + prepare 60 + merge 3145.728 + timed 2400 + teardown 30
    expect(step.estimateS).toBeCloseTo(60 + 60 + 60 + 3145.728 + 2400 + 30, 6);
  });

  it('`nuksm plan paper --testbed physical-skylake.yaml` lists the reboots and an estimate well under the artifact’s ~80 h', () => {
    const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), 'plan', 'paper', '--testbed', PHYSICAL], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(out).toMatch(/Boots \(3 reboot\(s\)/); // v5.4, nuKSM_SingleTree, nuKSM_MultiTree (Fig. 8)
    expect(out).toMatch(/v5\.4\s+5\.4\.0\s+Advanced options for Ubuntu>Ubuntu, with Linux 5\.4\.0\s+14/);
    expect(out).toMatch(/nuKSM_SingleTree\s+5\.4\.0nuKSMSingleTree\+/);
    expect(out).toMatch(/fig8-xsbench-40g-nuksm-forest-i1\s+xsbench\s+nuKSM_MultiTree/);
    expect(out).toMatch(/fig3\s+xsbench\s+vm1\s+vm\s+1\s+18,19,20,21/); // pin map
    expect(out).toMatch(/0001-fig3-xsbench-ksm-off-i1 .* 3a 3b 6a 6b table2/);
    const hours = Number(/Estimated wall time: .*\(([\d.]+) h\)/.exec(out)![1]);
    expect(hours).toBeGreaterThan(10);
    expect(hours).toBeLessThan(80);
    const json = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bin', 'nuksm.js'), 'plan', 'paper', '--testbed', PHYSICAL, '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 }));
    expect(json.reboots).toBe(3);
    expect(json.estimate.totalS / 3600).toBeCloseTo(hours, 1);
  });
});

describe('a mode on several kernels', () => {
  const EMULATED = join(ROOT, 'experiments', 'testbeds', 'emulated.yaml');
  const idOf = (s: { stepId: string }) => s.stepId.slice(5); // without the sequence number

  it('the shipped emulated file runs stock KSM on both Debian kernels and KSM off on bookworm', () => {
    const tb = loadTestbedFile(EMULATED);
    expect(tb.modes.ksm!.kernels).toEqual(['bookworm', 'backports']);
    expect(tb.modes['ksm-off']!.kernels).toEqual(['bookworm']);
  });

  it('makes one step per kernel of the mode, grouped so each kernel is booted once', () => {
    const { plan } = planCampaign({ spec: 'smoke', testbedFile: EMULATED, experimentsDir: EXP, iterations: 2, campaignId: 'k' });
    expect(plan.steps.map((s) => [idOf(s), s.kernel, s.boot])).toEqual([
      ['smoke-randomaccess-ksm-off-i1', 'bookworm', 0],
      ['smoke-randomaccess-ksm-off-i2', 'bookworm', 0],
      ['smoke-randomaccess-ksm-i1-bookworm', 'bookworm', 0],
      ['smoke-randomaccess-ksm-i2-bookworm', 'bookworm', 0],
      ['smoke-randomaccess-ksm-i1-backports', 'backports', 1],
      ['smoke-randomaccess-ksm-i2-backports', 'backports', 1],
    ]);
    expect(plan.boots.map((b) => [b.kernel, b.steps])).toEqual([['bookworm', 4], ['backports', 2]]);
    expect(plan.reboots).toBe(2);
    // Ids and keys are distinct; the per-kernel keys differ from each other and from the KSM-off step.
    expect(new Set(plan.steps.map((s) => s.stepId)).size).toBe(6);
    const keyOf = (kernel: string, mode = 'ksm') => new Set(plan.steps.filter((s) => s.kernel === kernel && s.scenario.kernelMode === mode).map((s) => s.key));
    expect(keyOf('bookworm').size).toBe(1);
    expect([...keyOf('bookworm')][0]).not.toBe([...keyOf('backports')][0]);
    expect(new Set(plan.steps.map((s) => s.key)).size).toBe(3);
    // Both kernels' KSM runs of one iteration get the same seed (same workload inputs).
    const seed = (kernel: string, it: number) => plan.steps.find((s) => s.kernel === kernel && s.scenario.kernelMode === 'ksm' && s.scenario.iteration === it)!.scenario.seed;
    expect(seed('bookworm', 1)).toBe(seed('backports', 1));
    expect(seed('bookworm', 1)).not.toBe(seed('bookworm', 2));
  });

  it('ABBA boots each kernel once per slot; adjacent equal kernels share a boot', () => {
    const { plan } = planCampaign({ spec: 'smoke', testbedFile: EMULATED, experimentsDir: EXP, iterations: 3, interleave: 'abba', campaignId: 'a' });
    expect(plan.boots.map((b) => [b.kernel, b.steps])).toEqual([['bookworm', 2], ['backports', 2], ['bookworm', 4], ['backports', 1]]);
    for (const b of plan.boots) expect(plan.steps.filter((s) => s.boot === b.index).every((s) => s.kernel === b.kernel)).toBe(true);
    expect(plan.steps.filter((s) => s.boot === 1).map(idOf)).toEqual(['smoke-randomaccess-ksm-i1-backports', 'smoke-randomaccess-ksm-i2-backports']);
    expect(plan.steps.map((s) => s.boot)).toEqual([...plan.steps.map((s) => s.boot)].sort());
  });

  it('adding a second kernel to one mode leaves the steps of the other mode as they were', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-kern-'));
    try {
      const one = join(dir, 'emulated-one-kernel.yaml');
      writeFileSync(one, readFileSync(EMULATED, 'utf8').replace('ksm: { kernel: [bookworm, backports] }', 'ksm: { kernel: bookworm }'));
      expect(loadTestbedFile(one).modes.ksm!.kernels).toEqual(['bookworm']);
      const single = planCampaign({ spec: 'smoke', testbedFile: one, experimentsDir: EXP, campaignId: 'x' }).plan;
      const several = planCampaign({ spec: 'smoke', testbedFile: EMULATED, experimentsDir: EXP, campaignId: 'x' }).plan;
      expect(single.steps.map((s) => s.stepId)).toEqual(['0001-smoke-randomaccess-ksm-off-i1', '0002-smoke-randomaccess-ksm-i1']);
      const off = (p: typeof single) => p.steps.find((s) => s.scenario.kernelMode === 'ksm-off')!;
      expect(off(several)).toEqual(off(single));
      const ksmKeys = several.steps.filter((s) => s.scenario.kernelMode === 'ksm').map((s) => s.key);
      expect(ksmKeys).toHaveLength(2);
      expect(ksmKeys).not.toContain(single.steps[1]!.key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('single-kernel plans keep their step ids, keys, kernels, boots and seeds (paper on the Skylake file)', () => {
    const { plan } = planCampaign({ spec: 'paper', testbedFile: PHYSICAL, experimentsDir: EXP, campaignId: 'p' });
    const before = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'paper-skylake-steps.json'), 'utf8'));
    expect(plan.steps.map((s) => ({ stepId: s.stepId, key: s.key, kernel: s.kernel, boot: s.boot, seed: s.scenario.seed }))).toEqual(before);
  });
});

describe('baselines and implementations', () => {
  const EMULATED = join(ROOT, 'experiments', 'testbeds', 'emulated.yaml');

  it('ksm-node-local runs stock KSM with merge_across_nodes=0; every other mode keeps the spec setting; both baselines are their own steps', () => {
    const { plan } = planCampaign({ spec: join(EXP, 'baselines.yaml'), testbedFile: MODEL, experimentsDir: EXP, campaignId: 'b' });
    const of = (mode: string) => plan.steps.filter((s) => s.scenario.kernelMode === mode);
    expect(of('ksm-node-local').length).toBe(2);
    expect(of('ksm-numa-balancing').length).toBe(2);
    for (const s of of('ksm-node-local')) expect(s.scenario.ksm.mergeAcrossNodes).toBe(false);
    for (const m of ['ksm', 'ksm-numa-balancing', 'nuksm-fair']) for (const s of of(m)) expect(s.scenario.ksm.mergeAcrossNodes).toBe(true);
    expect(new Set(plan.steps.map((s) => s.implementation))).toEqual(new Set(['model']));
    expect(plan.steps.every((s) => s.unsupported === null)).toBe(true);
  });

  it('the shared fig6 steps keep their keys and seeds in the baselines spec (the same model numbers as the paper campaign)', () => {
    const paper = planCampaign({ spec: 'paper', testbedFile: MODEL, experimentsDir: EXP, campaignId: 'p' }).plan;
    const base = planCampaign({ spec: join(EXP, 'baselines.yaml'), testbedFile: MODEL, experimentsDir: EXP, campaignId: 'b' }).plan;
    const fig6Ksm = paper.steps.find((s) => s.scenario.configId === 'xsbench' && s.scenario.kernelMode === 'ksm' && s.experiments.includes('fig6'))!;
    const mine = base.steps.find((s) => s.scenario.configId === 'xsbench' && s.scenario.kernelMode === 'ksm')!;
    expect(mine.key).toBe(fig6Ksm.key);
    expect(mine.scenario.seed).toBe(fig6Ksm.scenario.seed);
  });

  it('timeline defaults written out keep the step keys; ksmdStart all-registered makes other steps', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuksm-plan-keys-'));
    try {
      const original = readFileSync(join(EXP, 'fig3.yaml'), 'utf8');
      const keysWith = (extra: string) => {
        const file = join(dir, 'fig3.yaml');
        writeFileSync(file, original.replace('  timedPhases: concurrent', `${extra}  timedPhases: concurrent`));
        const p = planCampaign({ spec: file, testbedFile: MODEL, experimentsDir: EXP, campaignId: 'k' }).plan;
        return p.steps.map((st) => st.key);
      };
      const base = planCampaign({ spec: 'fig3', testbedFile: MODEL, experimentsDir: EXP, campaignId: 'k' }).plan.steps.map((st) => st.key);
      expect(keysWith('  staggerFrom: launch\n  ksmdStart: step\n')).toEqual(base);
      const later = keysWith('  ksmdStart: all-registered\n');
      expect(later).toHaveLength(base.length);
      later.forEach((k, i) => expect(k).not.toBe(base[i]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('real testbeds: kernel unless the mode says placement: userspace; the emulated file maps both baselines to 6.12', () => {
    const tb = loadTestbedFile(EMULATED);
    expect(tb.modes['ksm-node-local']!.kernels).toEqual(['backports']);
    expect(tb.modes['ksm-numa-balancing']!.kernels).toEqual(['backports']);
    expect(implementationOf(tb, 'ksm')).toBe('kernel');
    expect(implementationOf({ ...tb, modes: { ...tb.modes, 'nuksm-fair': { kernels: ['backports'], ksmKnobs: {}, placement: 'userspace' } } }, 'nuksm-fair')).toBe('userspace');
    expect(implementationOf({ ...tb, kind: 'model' }, 'nuksm-fair')).toBe('model');
  });
});
