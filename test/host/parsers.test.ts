/** Parsers against real files captured on this machine (test/fixtures/proc, test/fixtures/perf). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../src/core/metrics.ts';
import { meminfoSamples } from '../../src/host/monitors/meminfo.ts';
import { placementSamples } from '../../src/host/monitors/numa-placement.ts';
import { cpuPercent, parseMeminfo, parseNumaMaps, parseProcStat, parseUptime } from '../../src/host/monitors/parse.ts';
import { parseKsmPlacementOutput, ksmPlacementSamples } from '../../src/host/monitors/ksm-placement.ts';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/proc', name), 'utf8');

describe('/proc parsers (captured on kernel 6.18)', () => {
  it('meminfo: kB fields to bytes, counts unchanged', () => {
    const m = parseMeminfo(fixture('meminfo-6.18.captured.txt'));
    expect(m.MemTotal).toBe(24684084 * 1024);
    expect(m.MemFree).toBe(23422492 * 1024);
    expect(m.MemAvailable).toBe(23736740 * 1024);
    expect(m.HugePages_Total).toBe(0);
    const samples = meminfoSamples(fixture('meminfo-6.18.captured.txt'), 1.5);
    expect(samples.map((s) => [s.metric, s.unit, s.t])).toEqual([
      ['mem_free_gib', 'GiB', 1.5],
      ['mem_available_gib', 'GiB', 1.5],
    ]);
    expect(samples[0]!.value).toBeCloseTo((23422492 * 1024) / 1024 ** 3, 9);
  });

  it('/proc/PID/stat of ksmd, before and after scanning', () => {
    const before = parseProcStat(fixture('ksmd-stat.captured.txt'));
    expect(before).toMatchObject({ pid: 37, comm: 'ksmd', state: 'S', utime: 0, stime: 0, starttime: 27 });
    const after = parseProcStat(fixture('ksmd-stat-after-scanning.captured.txt'));
    expect(after).toMatchObject({ pid: 37, comm: 'ksmd', utime: 0, stime: 16 });
  });

  it('/proc/PID/stat with spaces and parentheses in comm', () => {
    const s = parseProcStat(fixture('stat-comm-with-space-and-paren.captured.txt'));
    expect(s.comm).toBe('we ird) (name');
    expect(s).toMatchObject({ pid: 16244, state: 'S', utime: 0, stime: 0, starttime: 3556568 });
  });

  it('CPU percent from tick and uptime deltas', () => {
    expect(parseUptime(fixture('uptime.captured.txt'))).toBe(36101.88);
    // 16 ticks at CLK_TCK 100 over 0.5 s = 32 % of a core.
    expect(cpuPercent({ ticks: 0, uptimeS: 100 }, { ticks: 16, uptimeS: 100.5 }, 100)).toBeCloseTo(32, 9);
    expect(cpuPercent({ ticks: 0, uptimeS: 100 }, { ticks: 16, uptimeS: 100 }, 100)).toBeNull();
  });

  it('numa_maps: per-node bytes, on/off-node samples', () => {
    const perNode = parseNumaMaps(fixture('numa_maps-python-64MiB.captured.txt'));
    expect([...perNode.keys()]).toEqual([0]);
    expect(perNode.get(0)).toBe(19765 * 4096);
    const two = parseNumaMaps('7f0000000000 bind:1 anon=10 dirty=10 N0=2 N1=8 kernelpagesize_kB=4\n7f0000400000 default huge anon=1 N1=1 kernelpagesize_kB=2048\n');
    expect(Object.fromEntries(two)).toEqual({ 0: 2 * 4096, 1: 8 * 4096 + 2048 * 1024 });
    const samples = placementSamples({ name: 'vm1', workload: 'xsbench', pid: 1, node: 1 }, two, null);
    expect(samples.map((s) => [s.metric, s.node])).toEqual([
      ['instance_mem_on_node_mib', 0],
      ['instance_mem_on_node_mib', 1],
      ['instance_mem_off_node_pct', 1],
    ]);
    expect(samples[2]!.value).toBeCloseTo((2 * 4096 * 100) / (10 * 4096 + 2048 * 1024), 9);
    for (const s of samples) expect(s.unit).toBe(METRICS[s.metric as keyof typeof METRICS].unit);
  });

  it('KSM placement read-out: per-node KSM pages and the local share', () => {
    const [p] = parseKsmPlacementOutput('{"pid":5,"nodes":[0,1],"presentPages":300,"presentWithoutPfn":0,"presentByNode":{"0":100,"1":200},"ksmMappedByNode":{"0":30,"1":90,"-1":1},"ksmDistinctByNode":{"0":30,"1":90}}\n');
    const samples = ksmPlacementSamples({ name: 'vm0', workload: 'btree', pid: 5, node: 0 }, p!, null);
    expect(samples.map((s) => [s.metric, s.node, s.value])).toEqual([
      ['ksm_pages_on_node', 0, 30],
      ['ksm_pages_on_node', 1, 90],
      ['ksm_local_pct', 0, 25],
    ]);
    // No KSM pages at all: zeros per node, and no local share (undefined, not 0 %).
    const none = ksmPlacementSamples({ name: 'vm1', workload: 'btree', pid: 6, node: 1 }, { ...p!, nodes: [0, 1], ksmMappedByNode: {}, ksmDistinctByNode: {} }, 2);
    expect(none.map((s) => [s.metric, s.node, s.value, s.t])).toEqual([
      ['ksm_pages_on_node', 0, 0, 2],
      ['ksm_pages_on_node', 1, 0, 2],
    ]);
  });
});
