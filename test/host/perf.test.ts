import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventSet, loadEventSets, parseCpuinfo, perfEventArgs, selectEventSet } from '../../src/host/perf/events.ts';
import { dramSamples, dramTotals } from '../../src/host/perf/monitor.ts';
import { parsePerfStatIntervals, totalsByEvent } from '../../src/host/perf/parse.ts';

const perfFixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/perf', name), 'utf8');
const inst = { name: 'vm0', workload: 'xsbench', pid: 1, node: 0 };

describe('perf stat -x, -I parser (real output of perf 6.1 in this VM)', () => {
  it('parses a busy process: software events counted, cycles <not supported>', () => {
    const rows = parsePerfStatIntervals(perfFixture('perf-6.1-stat-x-I1000-busy-loop.captured.txt'));
    expect(rows).toHaveLength(12);
    expect(rows[0]).toEqual({ time: 1.001065939, event: 'task-clock', count: 901.87, status: 'counted', unit: 'msec', pctRunning: 100 });
    expect(rows[2]).toMatchObject({ event: 'cycles', count: null, status: 'not-supported' });
    const totals = totalsByEvent(rows);
    expect(totals.get('task-clock')).toEqual({ event: 'task-clock', total: 901.87 + 992.87 + 951.08 + 441.62, intervals: 4, countedIntervals: 4, supported: true });
    expect(totals.get('page-faults')!.total).toBe(0);
    expect(totals.get('cycles')!.supported).toBe(false);
  });

  it('an idle process: <not counted> in every interval makes the event unusable', () => {
    const totals = totalsByEvent(parsePerfStatIntervals(perfFixture('perf-6.1-stat-x-I1000-idle-sleep.captured.txt')));
    expect(totals.get('task-clock')).toMatchObject({ intervals: 3, countedIntervals: 0, supported: false });
  });

  it('a process that ran only in the last interval is counted', () => {
    const totals = totalsByEvent(parsePerfStatIntervals(perfFixture('perf-6.1-stat-x-I500-page-faulting.captured.txt')));
    expect(totals.get('page-faults')).toMatchObject({ total: 4, countedIntervals: 1, supported: true });
  });

  it('every captured fixture parses to rows', () => {
    for (const f of readdirSync(join(import.meta.dirname, '../fixtures/perf'))) expect(parsePerfStatIntervals(perfFixture(f)).length).toBeGreaterThan(0);
  });

  it('turns an unsupported event into perf_event_unsupported=1, never a crash', () => {
    const rows = parsePerfStatIntervals(perfFixture('perf-6.1-stat-x-I1000-busy-loop.captured.txt'));
    const skx = eventSet('skylake-sp');
    // The real output has none of the SKX events (no PMU in this VM): all unsupported.
    const t = dramTotals(skx, rows);
    expect(t.unsupported).toEqual(['local_dram', 'remote_dram']);
    expect(dramSamples(inst, t).map((s) => [s.metric, s.value])).toEqual([['perf_event_unsupported', 1]]);
    // The software smoke set counts (task-clock as "local", page-faults as "remote").
    const smoke = dramTotals(eventSet('software-smoke'), rows);
    expect(smoke.unsupported).toEqual([]);
    const samples = dramSamples(inst, smoke);
    expect(samples.find((s) => s.metric === 'perf_event_unsupported')!.value).toBe(0);
    expect(samples.find((s) => s.metric === 'local_access_pct')!.value).toBe(100);
  });

  it('computes local/remote shares from CSV rows of named DRAM events', () => {
    const text = ['     1.000100000,300,,local_dram,1000,100.00,,', '     1.000100000,100,,remote_dram,1000,100.00,,', '     2.000200000,500,,local_dram,1000,100.00,,', '     2.000200000,100,,remote_dram,1000,100.00,,'].join('\n');
    const samples = dramSamples(inst, dramTotals(eventSet('skylake-sp'), parsePerfStatIntervals(text)));
    expect(Object.fromEntries(samples.map((s) => [s.metric, s.value]))).toEqual({
      perf_event_unsupported: 0,
      local_dram_accesses: 800,
      remote_dram_accesses: 200,
      local_access_pct: 80,
      remote_access_pct: 20,
    });
  });
});

/** Set bits of an offcore-response MSR value. */
function bits(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 64; i++) if ((v >> BigInt(i)) & 1n) out.push(i);
  return out;
}

describe('perf event sets (event-sets.yaml)', () => {
  it('loads every set and selects by CPU model', () => {
    const sets = loadEventSets();
    expect([...sets.keys()]).toEqual(expect.arrayContaining(['skylake-sp', 'skylake-sp-offcore', 'zen2', 'zen3', 'zen4', 'none', 'software-smoke']));
    const cpu = (vendor: string, family: number, model: number) => ({ vendor, family, model, modelName: '' });
    expect(selectEventSet(cpu('GenuineIntel', 6, 0x55)).id).toBe('skylake-sp'); // Skylake-SP and Cascade Lake-SP
    expect(selectEventSet(cpu('AuthenticAMD', 0x17, 0x31)).id).toBe('zen2'); // Rome
    expect(selectEventSet(cpu('AuthenticAMD', 0x19, 0x01)).id).toBe('zen3'); // Milan
    expect(selectEventSet(cpu('AuthenticAMD', 0x19, 0x11)).id).toBe('zen4'); // Genoa
    expect(selectEventSet(cpu('GenuineIntel', 6, 0x8f)).id).toBe('none'); // Sapphire Rapids: no set yet
    const here = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
    expect(here.vendor).not.toBe('');
    expect(selectEventSet(here).id).toBeTypeOf('string');
  });

  it('uses the Intel-documented offcore masks, not the artifact LOCAL mask that includes remote bit 27', () => {
    const set = eventSet('skylake-sp-offcore');
    const mask = (e: string) => BigInt(/offcore_rsp=(0x[0-9a-fA-F]+)/.exec(e)![1]!);
    const local = mask(set.local[0]!.event);
    const remote = mask(set.remote[0]!.event);
    expect(bits(local)).toEqual([0, 26, 33, 34]); // DEMAND_DATA_RD + L3_MISS_LOCAL_DRAM + SNOOP_MISS_OR_NO_FWD
    expect(bits(remote)).toEqual([0, 23, 24, 25, 27, 28, 29, 33, 34]);
    expect(local & remote & ~0x600000001n).toBe(0n); // the supplier bits never overlap
    const artifactLocal = 0x078c000001n;
    expect(bits(artifactLocal)).toContain(27); // remote hop-0 DRAM counted as "local"
    expect(bits(local)).not.toContain(27);
  });

  it('builds perf -e arguments with names (no commas in the CSV event column) and modifiers', () => {
    expect(perfEventArgs(eventSet('skylake-sp'), ':G')).toEqual(['-e', 'cpu/event=0xd3,umask=0x01,name=local_dram/G', '-e', 'cpu/event=0xd3,umask=0x02,name=remote_dram/G']);
    expect(perfEventArgs(eventSet('software-smoke'))).toEqual(['-e', 'task-clock', '-e', 'page-faults', '-e', 'cycles']);
    expect(perfEventArgs(eventSet('none'))).toEqual([]);
  });
});
