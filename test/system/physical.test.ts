/**
 * The physical testbed end to end on this machine (local host access, bare-metal 'process'
 * instances, Fig. 9 style): two MySQL (MariaDB + sysbench, the workload module's small variant)
 * instances bound to node 0 with numactl, KSM on, real monitors, samples emitted; then the
 * teardown guarantees (KSM knobs restored, no process left) and failures before/while starting.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../support/components.ts';
import { thisHostTestbedFile } from '../support/this-host.ts';
import { HarnessError } from '../../src/core/errors.ts';
import { metricDef } from '../../src/core/metrics.ts';
import type { Sample } from '../../src/core/sample.ts';
import type { InstanceSpec, Scenario } from '../../src/core/scenario.ts';
import type { TestbedFile } from '../../src/core/testbed-file.ts';
import { LocalExecutor } from '../../src/host/exec/index.ts';
import { KsmControl } from '../../src/host/ksm/index.ts';
import { createPhysicalTestbed } from '../../src/testbeds/physical/index.ts';
import type { Testbed } from '../../src/testbeds/types.ts';

describeWith(['root', 'ksm', 'mariadb', 'sysbench', 'numactl'], 'physical testbed: bare-metal MySQL instances on this host', () => {
  const exec = new LocalExecutor();
  const ksm = new KsmControl(exec);
  let work = '';
  let file: TestbedFile;
  let testbed: Testbed;
  let knobsBefore: Record<string, string> = {};
  const samples: Sample[] = [];

  const instance = (name: string, startAtS: number, node = 0): InstanceSpec => ({ name, kind: 'process', node, vcpus: 1, memoryMiB: 512, nice: 0, template: null, startAtS });

  const scenario = (overrides: Partial<Scenario> = {}): Scenario => ({
    campaign: 'test',
    experiment: 'fig9-mini',
    configId: 'mysql/ksm',
    kernelMode: 'ksm',
    iteration: 0,
    seed: 1,
    memoryHog: null,
    ksm: { run: true, pagesToScan: 1000, sleepMillisecs: 20, mergeAcrossNodes: true, maxPageSharing: 256, forestMibPerTree: null, extraKnobs: {} },
    instances: [instance('p0', 0), instance('p1', 1)],
    // Same seed, same table: identical pages in both servers for KSM to merge.
    workloads: ['p0', 'p1'].map((i) => ({ instance: i, workload: 'mysql', params: { tableSize: 10_000, timeS: 3, clients: 2, serverUser: 'root' } })),
    timeline: { staggerS: 1, staggerFrom: 'launch', ksmdStart: 'step', mergeWait: { kind: 'converged', maxS: 30, windowS: 4, epsilonPct: 5 }, timedPhases: 'concurrent', samplePeriodS: 1, maxDurationS: 600 },
    monitors: ['ksm', 'meminfo', 'ksmd-cpu', 'numa-placement', 'perf-dram'],
    ...overrides,
  });

  const ctx = (sink: Sample[]) => ({
    emit: (s: Sample[]) => sink.push(...s),
    log: pino({ level: 'warn' }),
    signal: new AbortController().signal,
    rawDir: join(work, 'raw'),
  });

  const once = (metric: string, inst: string) => samples.filter((s) => s.metric === metric && s.instance === inst && s.t === null);
  const leftovers = () => {
    try {
      return execFileSync('pgrep', ['-f', `${work}/hostwork`], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nuksm-physical-'));
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    file = await thisHostTestbedFile({
      file: 'physical.test.yaml',
      modes: { ksm: { kernels: ['running'], ksmKnobs: {} }, 'ksm-off': { kernels: ['running'], ksmKnobs: {} } },
      // This machine is an AMD EPYC VM without a virtual PMU: the events are "not supported".
      perfEventSet: 'zen4',
    });
    testbed = await createPhysicalTestbed(file, { hostWorkRoot: join(work, 'hostwork'), hostInstallRoot: join(work, 'install'), defaultVariant: 'small' });
    knobsBefore = await ksm.readKnobs();
    await testbed.runScenario(scenario(), ctx(samples));
  }, 600_000);

  afterAll(async () => {
    await testbed?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('describes the host it runs on', async () => {
    const env = await testbed.describe();
    expect(env.testbed).toBe('physical');
    expect(env.kernelRelease).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(env.numaNodes).toBe(file.nodes.length);
    expect(env.ksmKnobs.run).toBeDefined();
  });

  it('emits only catalogued metrics with their units', () => {
    expect(samples.length).toBeGreaterThan(50);
    for (const s of samples) {
      expect(metricDef(s.metric), s.metric).toBeDefined();
      expect(s.unit, s.metric).toBe(metricDef(s.metric)!.unit);
    }
  });

  it('runs the real benchmark in both instances and parses its results', () => {
    for (const inst of ['p0', 'p1']) {
      const runtime = once('runtime_s', inst);
      expect(runtime).toHaveLength(1);
      expect(runtime[0].workload).toBe('mysql');
      expect(runtime[0].value).toBeGreaterThan(2.5); // sysbench --time=3
      expect(runtime[0].value).toBeLessThan(10);
      expect(once('throughput_ops', inst)[0].value).toBeGreaterThan(0);
      // --report-interval=1: a throughput series placed after the step start.
      const series = samples.filter((s) => s.metric === 'throughput_ops' && s.instance === inst && s.t !== null);
      expect(series.length).toBeGreaterThanOrEqual(2);
      expect(Math.min(...series.map((s) => s.t!))).toBeGreaterThan(1);
    }
  });

  it('merges the identical tables of the two servers (processes registered with KSM)', () => {
    const sharing = samples.filter((s) => s.metric === 'ksm_pages_sharing' && s.instance === 'host' && s.t === null);
    expect(sharing).toHaveLength(1);
    expect(sharing[0].value).toBeGreaterThan(1000);
    const saved = samples.find((s) => s.metric === 'memory_saved_gib' && s.t === null)!;
    expect(saved.value).toBeCloseTo((sharing[0].value * 4096) / 1024 ** 3, 6);
    for (const inst of ['p0', 'p1']) {
      const onNode = once('ksm_pages_on_node', inst);
      expect(onNode.find((s) => s.node === 0)?.value ?? 0).toBeGreaterThan(0);
      // One NUMA node here: every merged page is local.
      expect(once('ksm_local_pct', inst)[0].value).toBe(100);
    }
  });

  it('records placement, host time series, ksmd CPU, perf support and no OOM', () => {
    for (const inst of ['p0', 'p1']) {
      expect(once('instance_mem_on_node_mib', inst).find((s) => s.node === 0)!.value).toBeGreaterThan(10);
      expect(once('instance_mem_off_node_pct', inst)[0].value).toBe(0);
      const perf = once('perf_event_unsupported', inst);
      expect(perf).toHaveLength(1);
      if (perf[0].value === 0) expect(once('local_dram_accesses', inst)).toHaveLength(1);
    }
    for (const metric of ['mem_free_gib', 'ksm_pages_sharing', 'ksmd_cpu_pct', 'memory_saved_gib']) {
      const series = samples.filter((s) => s.metric === metric && s.instance === 'host' && s.t !== null);
      expect(series.length, metric).toBeGreaterThan(5);
    }
    const rising = samples.filter((s) => s.metric === 'ksm_pages_sharing' && s.t !== null).map((s) => s.value);
    expect(Math.max(...rising)).toBeGreaterThan(rising[0]);
    expect(samples.filter((s) => s.metric === 'ksmd_cpu_pct' && s.t !== null).some((s) => s.value > 0)).toBe(true);
    expect(samples.find((s) => s.metric === 'oom')!.value).toBe(0);
  });

  it('tears down: KSM knobs restored and unmerged, no process or work dir left', async () => {
    expect(await ksm.readKnobs()).toEqual(knobsBefore);
    const counters = await ksm.readCounters();
    expect(counters.pages_sharing).toBe(0);
    expect(leftovers()).toBe('');
    expect(existsSync(join(work, 'hostwork'))).toBe(true);
    expect(execFileSync('ls', [join(work, 'hostwork')], { encoding: 'utf8' }).trim()).toBe('');
  });

  it('rejects an instance on a node the testbed lacks before touching the host', async () => {
    const bad = scenario({ instances: [instance('p0', 0), instance('p1', 0, 7)] });
    const before = await ksm.readKnobs();
    await expect(testbed.runScenario(bad, ctx([]))).rejects.toThrowError(/node 7, which this testbed does not have/);
    expect(await ksm.readKnobs()).toEqual(before);
  });

  it('cleans up after a benchmark that fails, with the failure class', async () => {
    // An 'external' server on a port nothing listens on: sysbench prepare cannot connect.
    const failing = scenario({
      workloads: ['p0', 'p1'].map((i) => ({ instance: i, workload: 'mysql', params: { tableSize: 10_000, timeS: 3, clients: 2, server: 'external', port: 9 } })),
      timeline: { ...scenario().timeline, mergeWait: { kind: 'fixed', seconds: 0 } },
    });
    const before = await ksm.readKnobs();
    const err = await testbed.runScenario(failing, ctx([])).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).failureClass).toBe('benchmark-error');
    expect((err as Error).message).toMatch(/p0\/mysql: sysbench oltp_read_only prepare/);
    expect(await ksm.readKnobs()).toEqual(before);
    expect(leftovers()).toBe('');
  });
});
