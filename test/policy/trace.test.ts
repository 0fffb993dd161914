import { describe, expect, it } from 'vitest';
import type { MergeEvent } from '../../src/policy/index.ts';
import { compareMerges, mmIdsFromEnters, nodeOfPfnFromMemoryBlocks, parseKsmTrace } from '../../src/policy/trace.ts';
import { makeModel, mmOnNode, runPasses } from './helpers.ts';

// Synthetic trace in the documented text format of /sys/kernel/tracing/trace (Linux 6.12 ksm events,
// hash-ptr off). Processes A (pid 100, node 0) and B (pid 200, node 1) share pages 1, 2, 3; C (pid 300,
// node 0) registers later with page 1. Memory blocks of 128 MiB (32768 pages): blocks 0-1 node 0, 2-3 node 1.
const TRACE = `# tracer: nop
#
# entries-in-buffer/entries-written: 15/15   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
           procA-100     [000] .....    10.000100: ksm_enter: mm ffff888001000000
           procB-200     [001] .....    10.000200: ksm_enter: mm ffff888002000000
            ksmd-38      [000] .....    10.100000: ksm_start_scan: seq 0 rmap size 0
            ksmd-38      [000] .....    10.100400: ksm_stop_scan: seq 0 rmap size 6
            ksmd-38      [000] .....    10.200000: ksm_start_scan: seq 1 rmap size 6
            ksmd-38      [000] .....    10.200100: ksm_merge_with_ksm_page: pfn 70001 rmap_item ffff888003000040 mm ffff888002000000 error 0
            ksmd-38      [000] .....    10.200101: ksm_merge_with_ksm_page: ksm pfn 70001 rmap_item ffff888003000000 mm ffff888001000000 error 0
            ksmd-38      [000] .....    10.200200: ksm_merge_with_ksm_page: pfn 70002 rmap_item ffff888003000080 mm ffff888002000000 error 0
            ksmd-38      [000] .....    10.200201: ksm_merge_with_ksm_page: ksm pfn 70002 rmap_item ffff8880030000c0 mm ffff888001000000 error -16
            ksmd-38      [000] .....    10.200300: ksm_merge_with_ksm_page: pfn 70003 rmap_item ffff888003000100 mm ffff888002000000 error 0
            ksmd-38      [000] .....    10.200301: ksm_merge_with_ksm_page: ksm pfn 70003 rmap_item ffff888003000140 mm ffff888001000000 error 0
            ksmd-38      [000] .....    10.200400: ksm_stop_scan: seq 1 rmap size 6
           procC-300     [001] .....    11.000000: ksm_enter: mm ffff888004000000
            ksmd-38      [000] .....    11.100000: ksm_start_scan: seq 2 rmap size 6
            ksmd-38      [000] .....    11.100100: ksm_merge_with_ksm_page: ksm pfn 70001 rmap_item ffff888003000180 mm ffff888004000000 error 0
`;

const nodeOfPfn = nodeOfPfnFromMemoryBlocks(0x8000000, new Map([[0, 0], [1, 0], [2, 1], [3, 1]]));

describe('ksm trace parser', () => {
  it('rebuilds unstable merges from E1/E2 pairs, stable hits from lone ksm lines, and drops undone merges', () => {
    const t = parseKsmTrace(TRACE);
    expect(t.unparsed).toEqual([]);
    expect(t.enters.map((e) => [e.pid, e.mm])).toEqual([
      [100, 'ffff888001000000'],
      [200, 'ffff888002000000'],
      [300, 'ffff888004000000'],
    ]);
    expect(t.scans.filter((s) => s.kind === 'stop').map((s) => s.seq)).toEqual([0, 1]);
    expect(t.failedMerges).toBe(1);
    expect(t.merges).toEqual([
      { kind: 'unstable', timestamp: 10.2001, pfn: 70001, scannedMm: 'ffff888002000000', otherMm: 'ffff888001000000' },
      { kind: 'unstable', timestamp: 10.2003, pfn: 70003, scannedMm: 'ffff888002000000', otherMm: 'ffff888001000000' },
      { kind: 'stable', timestamp: 11.1001, pfn: 70001, scannedMm: 'ffff888004000000', otherMm: null },
    ]);
    expect(nodeOfPfn(70001)).toBe(1);
    expect(nodeOfPfn(100)).toBe(0);
  });

  it('accepts hashed pointers, a tgid column and no flags column', () => {
    const t = parseKsmTrace(
      [
        ' qemu-system-x86-4242  (   4240) [001]  5.000001: ksm_enter: mm 00000000deadbeef',
        ' ksmd-38 [000] 6.000001: ksm_merge_with_ksm_page: ksm pfn 12 rmap_item 00000000aaaa0000 mm 00000000deadbeef error 0',
      ].join('\n'),
    );
    expect(t.unparsed).toEqual([]);
    expect(t.enters[0]).toMatchObject({ comm: 'qemu-system-x86', pid: 4242, mm: '00000000deadbeef' });
    expect(t.merges[0]).toMatchObject({ kind: 'stable', pfn: 12 });
  });
});

describe('model vs trace comparison', () => {
  function modelEvents(): MergeEvent[] {
    // The same scenario in the model: A and B merge pages 1 and 3 (page 2's merge failed in the kernel,
    // so the model is given different content there), then C joins the KSM page of content 1.
    const m = makeModel({ pagesToScan: 1000, compareOrder: 'from-6.11' });
    const events: MergeEvent[] = [];
    m.onMerge = (e) => events.push(e);
    m.registerMm(mmOnNode('A', 0, [1, 20, 3]));
    m.registerMm(mmOnNode('B', 1, [1, 21, 3]));
    runPasses(m, 2);
    m.registerMm(mmOnNode('C', 0, [1]));
    runPasses(m, 2);
    return events;
  }

  it('agrees merge by merge with the Linux survivor rule', () => {
    const t = parseKsmTrace(TRACE);
    const ids = mmIdsFromEnters(t, new Map([[100, 0], [200, 1], [300, 2]]));
    const cmp = compareMerges(t.merges, modelEvents(), ids, nodeOfPfn, 2);
    expect(cmp).toMatchObject({ kernelMerges: 3, modelMerges: 3, compared: 3, agreeing: 3, mismatches: [] });
    expect(cmp.keptNodeByScannedMm.get(1)).toEqual({ kernel: [0, 2], model: [0, 2] });
  });

  it('reports the first disagreement when the kernel kept the other copy', () => {
    // Pretend the kernel kept the copy on node 0 for the second merge (pfn in block 0).
    const t = parseKsmTrace(TRACE.replaceAll('pfn 70003', 'pfn 3'));
    const ids = mmIdsFromEnters(t, new Map([[100, 0], [200, 1], [300, 2]]));
    const cmp = compareMerges(t.merges, modelEvents(), ids, nodeOfPfn, 2);
    expect(cmp.agreeing).toBe(2);
    expect(cmp.mismatches).toEqual([
      {
        index: 1,
        field: 'keptNode',
        kernel: { kind: 'unstable', scannedMm: 1, otherMm: 0, keptNode: 0 },
        model: { kind: 'unstable', scannedMm: 1, otherMm: 0, keptNode: 1 },
      },
    ]);
  });
});
