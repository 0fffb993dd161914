/**
 * KSM on this machine: two processes with identical MADV_MERGEABLE memory; the monitors record
 * pages_sharing rising, ksmd CPU from /proc/<ksmd>/stat, and the KSM pages per node of those PIDs
 * from pagemap + kpageflags. The knobs changed are saved first and restored at the end.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Sample } from '../../src/core/sample.ts';
import { LocalExecutor } from '../../src/host/exec/local.ts';
import { KsmControl } from '../../src/host/ksm/control.ts';
import { KsmCountersMonitor } from '../../src/host/monitors/ksm.ts';
import { KsmdCpuMonitor } from '../../src/host/monitors/ksmd-cpu.ts';
import { KsmPlacementMonitor } from '../../src/host/monitors/ksm-placement.ts';
import { MeminfoMonitor } from '../../src/host/monitors/meminfo.ts';
import { NumaPlacementMonitor } from '../../src/host/monitors/numa-placement.ts';
import { startSampling } from '../../src/host/monitors/sampler.ts';
import type { MonitoredInstance } from '../../src/host/monitors/types.ts';
import { describeWith } from '../support/components.ts';

const PAGES = 4096;

function startMergeable(bin: string): Promise<{ proc: ChildProcess; pid: number }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, [String(PAGES)], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.once('error', reject);
    proc.stdout!.once('data', (b: Buffer) => {
      const m = /ready (\d+)/.exec(b.toString());
      if (m) resolve({ proc, pid: Number(m[1]) });
      else reject(new Error(`unexpected output ${b.toString()}`));
    });
  });
}

describeWith(['root', 'ksm', 'gcc'], 'KSM control and monitors on this machine', () => {
  const exec = new LocalExecutor();
  const ksm = new KsmControl(exec, { unmergeTimeoutMs: 120_000 });
  let saved: Record<string, string> | null = null;
  let dir: string;
  const procs: ChildProcess[] = [];
  let instances: MonitoredInstance[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nuksm-ksm-'));
    execFileSync('gcc', ['-O2', '-o', join(dir, 'mergeable'), join(import.meta.dirname, '../fixtures/proc/mergeable-pages.c')]);
    saved = await ksm.save();
    const a = await startMergeable(join(dir, 'mergeable'));
    const b = await startMergeable(join(dir, 'mergeable'));
    procs.push(a.proc, b.proc);
    instances = [
      { name: 'p0', workload: 'mergeable', pid: a.pid, node: 0 },
      { name: 'p1', workload: 'mergeable', pid: b.pid, node: 0 },
    ];
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    if (saved) await ksm.reset(saved);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('merges identical pages: monitors record pages_sharing, ksmd CPU and KSM pages per node', async () => {
    const knobs = await ksm.setKnobs({ run: 1, pages_to_scan: 2000, sleep_millisecs: 10 });
    expect(knobs).toMatchObject({ run: '1', pages_to_scan: '2000', sleep_millisecs: '10' });

    const samples: Sample[] = [];
    const errors: string[] = [];
    const stepStartMs = Date.now();
    const sampling = await startSampling(
      [new KsmCountersMonitor(exec), new KsmdCpuMonitor(exec), new MeminfoMonitor(exec), new NumaPlacementMonitor(exec, instances), new KsmPlacementMonitor(exec, instances)],
      { periodMs: 500, stepStartMs, emit: (s) => samples.push(...s), onError: (m, e) => errors.push(`${m}: ${(e as Error).message}`) },
    );
    const sharing = () => samples.filter((s) => s.metric === 'ksm_pages_sharing' && s.t !== null);
    // Other tests on this machine may use KSM too: wait on OUR processes' merged pages (5.19+).
    const merged = (pid: number) => Number(readFileSync(`/proc/${pid}/ksm_merging_pages`, 'utf8'));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !instances.every((i) => merged(i.pid) >= PAGES * 0.9)) await new Promise((r) => setTimeout(r, 250));
    await new Promise((r) => setTimeout(r, 600)); // at least one sample after the merge
    const finals = await sampling.stop();
    expect(errors).toEqual([]);

    // pages_sharing rose from (about) zero to the pages the second process duplicates.
    const series = sharing();
    expect(series.length).toBeGreaterThan(1);
    expect(Math.max(...series.map((s) => s.value))).toBeGreaterThanOrEqual(PAGES * 0.9);
    expect(series.every((s) => s.t! >= 0 && s.unit === 'pages' && s.instance === 'host')).toBe(true);
    const saved = samples.filter((s) => s.metric === 'memory_saved_gib' && s.t !== null).at(-1)!;
    expect(saved.value).toBeGreaterThan((PAGES * 0.9 * 4096) / 1024 ** 3);

    // ksmd CPU from /proc/<ksmd>/stat deltas: ksmd was busy scanning at 2000 pages / 10 ms.
    const cpu = samples.filter((s) => s.metric === 'ksmd_cpu_pct' && s.t !== null);
    expect(cpu.length).toBeGreaterThan(0);
    expect(Math.max(...cpu.map((s) => s.value))).toBeGreaterThan(0);
    expect(cpu.every((s) => s.value >= 0 && s.value <= 100 * 1.1)).toBe(true);
    const cpuAvg = finals.find((s) => s.metric === 'ksmd_cpu_pct' && s.t === null);
    expect(cpuAvg!.value).toBeGreaterThan(0);

    expect(samples.some((s) => s.metric === 'mem_free_gib' && s.value > 0)).toBe(true);

    // numa_maps: each process has at least its PAGES pages resident, all on node 0 (one-node machine).
    for (const inst of instances) {
      const onNode = finals.filter((s) => s.metric === 'instance_mem_on_node_mib' && s.instance === inst.name && s.t === null);
      expect(onNode.reduce((a, s) => a + s.value, 0)).toBeGreaterThanOrEqual((PAGES * 4096) / 1024 ** 2);
      expect(finals.find((s) => s.metric === 'instance_mem_off_node_pct' && s.instance === inst.name)!.value).toBe(0);
    }

    // pagemap + kpageflags: each process maps ~PAGES KSM pages, and they sit on node 0.
    for (const inst of instances) {
      const ksmOnNode = finals.filter((s) => s.metric === 'ksm_pages_on_node' && s.instance === inst.name);
      expect(ksmOnNode.map((s) => s.node)).toEqual([0]);
      expect(ksmOnNode[0]!.value).toBeGreaterThanOrEqual(PAGES * 0.9);
      expect(ksmOnNode[0]!.value).toBeLessThanOrEqual(PAGES + 64);
      expect(finals.find((s) => s.metric === 'ksm_local_pct' && s.instance === inst.name)!.value).toBe(100);
    }
    // Host-wide end-of-run values.
    expect(finals.find((s) => s.metric === 'ksm_pages_sharing' && s.t === null)!.value).toBeGreaterThanOrEqual(PAGES * 0.9);
  });

  it('enforces the -EBUSY rule: max_page_sharing changes only after unmerging', async () => {
    const before = await ksm.readCounters();
    expect(before.pages_shared).toBeGreaterThan(0);
    const current = (await ksm.readKnobs()).max_page_sharing!;
    const other = current === '256' ? '255' : '256';
    // The kernel itself refuses while KSM pages exist.
    await expect(exec.writeFile('/sys/kernel/mm/ksm/max_page_sharing', `${other}\n`)).rejects.toMatchObject({ code: 'EBUSY' });
    // KsmControl unmerges first (run=2), then writes and reads back; run=0 keeps it unmerged to check.
    const after = await ksm.setKnobs({ max_page_sharing: other, run: 0 });
    expect(after.max_page_sharing).toBe(other);
    const counters = await ksm.readCounters();
    expect(counters.pages_shared).toBe(0);
    expect(counters.pages_sharing).toBe(0);
    expect(after.run).toBe('0');
  });

  it('refuses a knob this kernel does not have (nuKSM smart_ksm on a vanilla kernel)', async () => {
    await expect(ksm.setKnobs({ smart_ksm: 1 })).rejects.toMatchObject({ failureClass: 'unsupported', message: expect.stringMatching(/smart_ksm do not exist/) });
  });
});
