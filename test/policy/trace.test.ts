import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultKsmModelConfig, type MergeEvent } from '../../src/policy/index.ts';
import {
  compareKeptPages,
  compareMerges,
  compareTracedRun,
  mmIdsFromEnters,
  nodeOfPfnFromMemoryBlocks,
  pageOwnersFromPagemaps,
  parseKsmTrace,
  parseNodeMemoryLinks,
  parsePagemapWords,
  registrationPoint,
  type TracedRun,
} from '../../src/policy/trace.ts';
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

// Real lines from Linux 6.12 (test/system/emulated-trace.test.ts, trimmed; see the .machine.json note):
// p0 (pid 358, node 0) and p1 (pid 368, node 1) registered before KSM ran, p2 (pid 392, node 0) during
// pass 12 with KSM stopped mid-list; all three hold the same 8 MiB of content (page j equal across them).
const FIXTURES = new URL('./fixtures/', import.meta.url);
const REAL_TRACE = readFileSync(new URL('ksm-trace-6.12.txt', FIXTURES), 'utf8');
const REAL_MACHINE = JSON.parse(readFileSync(new URL('ksm-trace-6.12.machine.json', FIXTURES), 'utf8')) as {
  pids: number[];
  pagemapsBefore: number[][];
  blockSizeBytes: number;
  nodeMemoryLinks: string;
};

function realRun(overrides: Partial<TracedRun['config']> = {}): TracedRun {
  return {
    traceText: REAL_TRACE,
    pids: REAL_MACHINE.pids,
    pagemapsBefore: REAL_MACHINE.pagemapsBefore,
    contents: REAL_MACHINE.pids.map(() => Uint32Array.from([0, 1, 2])),
    blockSizeBytes: REAL_MACHINE.blockSizeBytes,
    nodeMemoryLinks: REAL_MACHINE.nodeMemoryLinks,
    config: defaultKsmModelConfig({ nodes: 2, pagesToScan: 500, mergeAcrossNodes: true, maxPageSharing: 256, compareOrder: 'from-6.11', smartScan: false, ...overrides }),
  };
}

describe('a real Linux 6.12 ksm trace', () => {
  it('parses every line: enters, passes, unstable pairs and stable hits', () => {
    const t = parseKsmTrace(REAL_TRACE);
    expect(t.unparsed).toEqual([]);
    expect(t.failedMerges).toBe(0);
    expect(t.enters.map((e) => [e.comm, e.pid])).toEqual([
      ['nuksm-native', 358],
      ['nuksm-native', 368],
      ['nuksm-native', 392],
    ]);
    expect(t.scans.filter((s) => s.kind === 'stop').map((s) => s.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    // p1 (scanned, node 1) kept its page in place; p0 (tree page) was mapped to it. Then p2's pages hit the stable tree.
    expect(t.merges.map((m) => [m.kind, m.pfn, m.scannedMm.slice(-6), m.otherMm?.slice(-6) ?? null])).toEqual([
      ['unstable', 271742, '06b180', '06c780'],
      ['unstable', 271741, '06b180', '06c780'],
      ['unstable', 271740, '06b180', '06c780'],
      ['stable', 271742, '277900', null],
      ['stable', 271741, '277900', null],
      ['stable', 271740, '277900', null],
    ]);
    // p2 registered while pass 12 was under way (KSM stopped mid-list).
    expect(registrationPoint(t, t.enters[2]!.timestamp)).toEqual({ afterPasses: 12, midPass: true });
    expect(registrationPoint(t, t.enters[0]!.timestamp)).toEqual({ afterPasses: 0, midPass: false });
  });

  it('maps pfns to nodes from the real memory-block listing (memory_failure entries ignored)', () => {
    const blocks = parseNodeMemoryLinks(REAL_MACHINE.nodeMemoryLinks);
    expect(blocks.size).toBe(16);
    expect([...blocks.entries()].filter(([, n]) => n === 1).map(([b]) => b).sort((a, b) => a - b)).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    const nodeOf = nodeOfPfnFromMemoryBlocks(REAL_MACHINE.blockSizeBytes, blocks);
    expect(REAL_MACHINE.pagemapsBefore.map((pfns) => pfns.map(nodeOf))).toEqual([[0, 0, 0], [1, 1, 1], [0, 0, 0]]);
  });

  it('reads pagemap words (od -tx8) and traces surviving pfns to their pre-merge pages, later reads winning', () => {
    // Present (bit 63) + exclusively mapped (bit 56) + pfn; a non-present entry.
    expect(parsePagemapWords(' 8100000000042586 0000000000000000\n 8100000000073cfe\n')).toEqual([0x42586, -1, 0x73cfe]);
    expect(() => parsePagemapWords('8000000000000000')).toThrow(/non-root/);
    // pfn 29665 was p0's page 1 (freed when p0's copy was discarded in pass 1), then p2's page 1.
    const owners = pageOwnersFromPagemaps(new Map([[0, [29665, 11]], [1, [271742, 12]], [2, [13, 29665]]]));
    expect(owners.get(29665)).toEqual({ mm: 2, page: 1 });
    expect(owners.get(271742)).toEqual({ mm: 1, page: 0 });
    expect(() => pageOwnersFromPagemaps(new Map([[0, [5, 5]]]))).toThrow(/twice/);
  });

  it('agrees with the model merge by merge: kind, mms, surviving node, surviving page and pass', () => {
    const r = compareTracedRun(realRun());
    expect(r.enterOrder).toEqual([0, 1, 2]);
    expect(r.merges).toMatchObject({ kernelMerges: 6, modelMerges: 6, compared: 6, agreeing: 6, mismatches: [] });
    expect(r.keptPages).toMatchObject({ compared: 6, sameKeptPage: 6, unknownPfns: 0 });
    expect(r.kernelPasses).toEqual([1, 1, 1, 14, 14, 14]);
    expect(r.modelPasses).toEqual(r.kernelPasses);
    expect(r.sameKeptNode).toBe(6);
    // Stable hits keep the existing KSM page (p1's copies, node 1) although p2 is on node 0.
    expect(r.merges.keptNodeByScannedMm.get(2)).toEqual({ kernel: [0, 3], model: [0, 3] });
    expect(r.events.slice(3).map((e) => [e.keptMm, e.keptPage])).toEqual([[1, 0], [1, 1], [1, 2]]);
  });

  it('tells the 6.11+ checksum-first order from the older one by the pass of the stable hits', () => {
    // upto-6.10 searches the stable tree before the checksum gate: p2 would merge at its first visit (pass 13).
    const r = compareTracedRun(realRun({ compareOrder: 'upto-6.10' }));
    expect(r.modelPasses).toEqual([1, 1, 1, 13, 13, 13]);
    expect(r.samePass).toBe(3);
    expect(r.merges.agreeing).toBe(6); // the merges themselves do not tell the two orders apart
  });

  it('reports which page survived when the model keeps a different one', () => {
    const t = parseKsmTrace(REAL_TRACE);
    const model = compareTracedRun(realRun()).events.map((e, i) => (i === 1 ? { ...e, keptMm: 0, keptPage: 1 } : e));
    const owners = pageOwnersFromPagemaps(new Map(REAL_MACHINE.pagemapsBefore.map((p, i) => [i, p])));
    expect(compareKeptPages(t.merges, model, owners)).toEqual({
      compared: 6,
      sameKeptPage: 5,
      unknownPfns: 0,
      mismatches: [{ index: 1, kernel: { mm: 1, page: 1 }, model: { mm: 0, page: 1 } }],
    });
  });
});
