import { describe, expect, it } from 'vitest';
import { NOT_PRESENT, type MergeEvent } from '../../src/policy/index.ts';
import { makeModel, mmOnNode, range, runPasses } from './helpers.ts';

describe('KSM scan order', () => {
  it('puts an mm registered while ksmd is idle at the tail (registration order)', () => {
    const m = makeModel();
    const a = m.registerMm(mmOnNode('a', 0, range(10)));
    const b = m.registerMm(mmOnNode('b', 0, range(10, 100)));
    const c = m.registerMm(mmOnNode('c', 0, range(10, 200)));
    expect(m.scanOrder()).toEqual([a, b, c]);
  });

  it('inserts an mm registered mid-pass just behind the cursor, so the current pass skips it', () => {
    const m = makeModel({ pagesToScan: 5 });
    const a = m.registerMm(mmOnNode('a', 0, range(10)));
    const b = m.registerMm(mmOnNode('b', 0, range(10, 100)));
    m.wake(); // pass 1 starts, cursor inside a
    m.wake(); // a fully visited; cursor still on a (the kernel advances lazily)
    m.wake(); // cursor inside b
    const c = m.registerMm(mmOnNode('c', 0, range(10, 200)));
    expect(m.scanOrder()).toEqual([a, c, b]);
    // The rest of pass 1 visits b only (5 pages), then the pass ends.
    const st = m.wake();
    expect(st.pagesVisited).toBe(5);
    const end = m.wake();
    expect(end.passEnded).toBe(true);
    expect(end.pagesVisited).toBe(0);
  });

  it('visits pages written beyond the populated part of an mm from the next time the cursor gets there', () => {
    // The scan stops at an mm's last present page (model.ts presentEnd); a later write moves that end.
    const m = makeModel({ pagesToScan: 1000 });
    const contents = new Uint32Array(40).fill(NOT_PRESENT);
    contents.set(range(10, 100), 0);
    const a = m.registerMm(mmOnNode('a', 0, contents));
    const b = m.registerMm(mmOnNode('b', 1, range(10)));
    const pass = () => {
      let visited = 0;
      for (let k = 0; k < 10; k++) {
        const st = m.wake();
        visited += st.pagesVisited;
        if (st.passEnded) return visited;
      }
      throw new Error('no pass end');
    };
    expect(pass()).toBe(20);
    m.writePage(a, 30, 3); // b's page 3
    m.writePage(a, 39, 9); // b's page 9, the last page of a
    expect(pass()).toBe(22); // checksum gate for a:30, a:39
    expect(pass()).toBe(22); // now in the unstable tree: b's pages 3 and 9 merge with them
    expect([m.isMerged(a, 30), m.isMerged(a, 39), m.isMerged(b, 3), m.isMerged(b, 9)]).toEqual([true, true, true, true]);
    expect(m.pageOwner(a, 30)).toEqual({ mm: b, page: 3 }); // Linux keeps the scanned page (b's, after a's in the pass)
    m.writePage(a, 39, NOT_PRESENT); // the page vanishes (its rmap_item goes at the next visit); a:30 stays
    expect(pass()).toBe(21);
    expect([m.isMerged(a, 39), m.pageOwner(a, 39)]).toEqual([false, null]);
  });

  it('counts budget in present pages only and drops the rest of the budget at a pass end', () => {
    const m = makeModel({ pagesToScan: 100 });
    const contents = range(30);
    for (let i = 0; i < 30; i += 3) contents[i] = NOT_PRESENT;
    m.registerMm(mmOnNode('a', 0, contents));
    const st = m.wake();
    expect(st.pagesVisited).toBe(20);
    expect(st.passEnded).toBe(true);
    expect(m.counters().fullScans).toBe(1);
  });
});

describe('checksum gate', () => {
  it('needs two visits before a new page can enter the unstable tree, so identical pages merge in pass 2', () => {
    for (const compareOrder of ['upto-6.10', 'from-6.11'] as const) {
      const m = makeModel({ pagesToScan: 1000, compareOrder });
      m.registerMm(mmOnNode('a', 0, range(50)));
      m.registerMm(mmOnNode('b', 0, range(50)));
      runPasses(m, 1);
      expect(m.counters()).toMatchObject({ pagesShared: 0, pagesSharing: 0, pagesUnshared: 0, pagesVolatile: 100 });
      runPasses(m, 1);
      expect(m.counters()).toMatchObject({ pagesShared: 50, pagesSharing: 50, pagesUnshared: 0, pagesVolatile: 0 });
    }
  });

  it('keeps a page that changes between visits out of the unstable tree', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, [1, 2]));
    m.registerMm(mmOnNode('b', 0, [1, 2]));
    runPasses(m, 1);
    m.writePage(a, 0, 77); // a page 0 changes right after its first visit
    runPasses(m, 1);
    expect(m.isMerged(a, 0)).toBe(false);
    expect(m.isMerged(a, 1)).toBe(true);
  });
});

describe('survivor rule (Linux)', () => {
  it('keeps the scanned page on an unstable match: the later-visited copy survives', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, range(100)));
    const b = m.registerMm(mmOnNode('b', 1, range(100)));
    const events: MergeEvent[] = [];
    m.onMerge = (e) => events.push(e);
    runPasses(m, 2);
    expect(m.mergedPagesPerNode(a)).toEqual([0, 100]);
    expect(m.mergedPagesPerNode(b)).toEqual([0, 100]);
    expect(events.every((e) => e.kind === 'unstable' && e.keptMm === b && e.scannedMm === b && e.otherMm === a)).toBe(true);
  });

  it('keeps the existing KSM page on a stable hit', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, range(20)));
    const b = m.registerMm(mmOnNode('b', 0, range(20)));
    runPasses(m, 2); // KSM pages on node 0
    const c = m.registerMm(mmOnNode('c', 1, range(20)));
    const events: MergeEvent[] = [];
    m.onMerge = (e) => events.push(e);
    runPasses(m, 1);
    expect(events).toHaveLength(20);
    expect(events.every((e) => e.kind === 'stable' && e.keptNode === 0 && e.otherMm === c)).toBe(true);
    expect(m.mergedPagesPerNode(c)).toEqual([20, 0]);
    expect(m.counters()).toMatchObject({ pagesShared: 20, pagesSharing: 40 });
    expect(m.mergedPagesPerNode(a)).toEqual([20, 0]);
    expect(m.mergedPagesPerNode(b)).toEqual([20, 0]);
  });
});

describe('unstable tree reset at each pass start', () => {
  it('forgets pages inserted in the previous pass', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, [5]));
    const b = m.registerMm(mmOnNode('b', 0, [6]));
    runPasses(m, 2); // both pages in the unstable tree of pass 2
    expect(m.counters().pagesUnshared).toBe(2);
    m.writePage(b, 0, 5); // b now equals a, but a's unstable entry belongs to pass 2
    runPasses(m, 1); // pass 3: a re-inserted; b is volatile (changed since its last visit)
    expect(m.isMerged(a, 0)).toBe(false);
    runPasses(m, 1); // pass 4: a inserted, then b (stable content) matches it
    expect(m.isMerged(a, 0)).toBe(true);
    expect(m.isMerged(b, 0)).toBe(true);
  });

  it('without the reset a page inserted last pass would match; with it, a one-sided pass finds nothing', () => {
    // a's page is in the unstable tree only during pass 2. c registers after pass 2 and,
    // once its gate opens in pass 4, matches a's page re-inserted in pass 4, never a stale pass-2 entry.
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, [9]));
    runPasses(m, 2);
    const c = m.registerMm(mmOnNode('c', 1, [9]));
    runPasses(m, 1); // c's first visit (gate)
    expect(m.isMerged(c, 0)).toBe(false);
    runPasses(m, 1);
    expect(m.isMerged(c, 0)).toBe(true);
    expect(m.pageNode(a, 0)).toBe(1); // c scanned after a in the same pass: c's copy kept
  });
});

describe('max_page_sharing', () => {
  it('stops a full KSM page from taking more sharers and forms a new dup', () => {
    const m = makeModel({ pagesToScan: 1000, maxPageSharing: 4 });
    const a = m.registerMm(mmOnNode('a', 0, new Array(10).fill(42)));
    runPasses(m, 3);
    // 10 identical pages: dup 1 takes 4 (pair + 2 stable hits), dup 2 takes 4, the last 2 form dup 3.
    expect(m.counters()).toMatchObject({ pagesShared: 3, pagesSharing: 7 });
    expect(m.mergedPages(a)).toBe(10);
  });

  it('with the default 256, 300 identical pages make two KSM pages', () => {
    const m = makeModel({ pagesToScan: 1000 });
    m.registerMm(mmOnNode('a', 0, new Array(300).fill(7)));
    runPasses(m, 3);
    expect(m.counters()).toMatchObject({ pagesShared: 2, pagesSharing: 298 });
  });
});

describe('merge_across_nodes = 0', () => {
  it('merges only pages on the same node, one tree pair per node', () => {
    const m = makeModel({ pagesToScan: 1000, mergeAcrossNodes: false });
    const a = m.registerMm(mmOnNode('a', 0, range(30)));
    const b = m.registerMm(mmOnNode('b', 1, range(30)));
    const c = m.registerMm(mmOnNode('c', 1, range(30)));
    runPasses(m, 3);
    expect(m.isMerged(a, 0)).toBe(false);
    expect(m.mergedPagesPerNode(b)).toEqual([0, 30]);
    expect(m.mergedPagesPerNode(c)).toEqual([0, 30]);
    expect(m.counters()).toMatchObject({ pagesShared: 30, pagesSharing: 30, pagesUnshared: 30 });
  });

  it('with mixed-node mms the page node decides the tree', () => {
    const m = makeModel({ pagesToScan: 1000, mergeAcrossNodes: false });
    const reg = mmOnNode('a', 0, [1, 1, 1, 1]);
    reg.nodes.set([0, 1, 0, 1]);
    const a = m.registerMm(reg);
    runPasses(m, 2);
    expect([0, 1, 2, 3].map((p) => m.pageNode(a, p))).toEqual([0, 1, 0, 1]);
    expect(m.counters()).toMatchObject({ pagesShared: 2, pagesSharing: 2 });
  });
});

describe('copy-on-write', () => {
  it('breaks a merge on write, allocates the copy on the writer\'s node and updates counters at the next visit', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, range(3)));
    const b = m.registerMm(mmOnNode('b', 1, range(3)));
    const c = m.registerMm(mmOnNode('c', 1, range(3)));
    runPasses(m, 2);
    expect(m.counters()).toMatchObject({ pagesShared: 3, pagesSharing: 6 });
    expect(m.pageNode(a, 0)).toBe(1);
    m.writePage(a, 0, 1000);
    expect(m.isMerged(a, 0)).toBe(false);
    expect(m.pageNode(a, 0)).toBe(0);
    expect(m.isMerged(b, 0)).toBe(true);
    // The rmap_item stays in the stable node's hlist until ksmd revisits the address.
    expect(m.counters()).toMatchObject({ pagesShared: 3, pagesSharing: 6 });
    runPasses(m, 1);
    expect(m.counters()).toMatchObject({ pagesShared: 3, pagesSharing: 5 });
  });

  it('frees the KSM page when every sharer has written', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, [1, 2]));
    const b = m.registerMm(mmOnNode('b', 1, [1, 2]));
    runPasses(m, 2);
    m.writePage(a, 0, 10);
    m.writePage(b, 0, 11);
    expect(m.counters()).toMatchObject({ pagesShared: 1, pagesSharing: 1 });
    expect(m.ksmPagesPerNode()).toEqual([0, 1]);
  });

  it('unregistering an mm releases its mappings', () => {
    const m = makeModel({ pagesToScan: 1000 });
    const a = m.registerMm(mmOnNode('a', 0, range(5)));
    const b = m.registerMm(mmOnNode('b', 1, range(5)));
    runPasses(m, 2);
    m.unregisterMm(a);
    expect(m.counters()).toMatchObject({ pagesShared: 5, pagesSharing: 0, pagesVolatile: 0 });
    expect(m.isMerged(b, 0)).toBe(true);
    expect(m.scanOrder()).toEqual([b]);
  });
});

describe('counters', () => {
  it('pages_unshared counts unstable-tree items and pages_volatile the rest', () => {
    const m = makeModel({ pagesToScan: 1000 });
    m.registerMm(mmOnNode('a', 0, [1, 2, 3, 4]));
    m.registerMm(mmOnNode('b', 0, [1, 2, 5, 6]));
    runPasses(m, 1);
    expect(m.counters()).toEqual({ pagesShared: 0, pagesSharing: 0, pagesUnshared: 0, pagesVolatile: 8, fullScans: 1 });
    runPasses(m, 1);
    expect(m.counters()).toEqual({ pagesShared: 2, pagesSharing: 2, pagesUnshared: 4, pagesVolatile: 0, fullScans: 2 });
  });
});

describe('comparison order', () => {
  // A KSM page for content 50 exists. mm c's page changes to 50 after its first visit.
  function scenario(compareOrder: 'upto-6.10' | 'from-6.11'): boolean {
    const m = makeModel({ pagesToScan: 1000, compareOrder });
    m.registerMm(mmOnNode('a', 0, [50]));
    m.registerMm(mmOnNode('b', 0, [50]));
    const c = m.registerMm(mmOnNode('c', 0, [7]));
    runPasses(m, 2);
    m.writePage(c, 0, 50);
    runPasses(m, 1);
    return m.isMerged(c, 0);
  }
  it('up to 6.10 searches the stable tree before the checksum gate: a just-changed page still joins a KSM page', () => {
    expect(scenario('upto-6.10')).toBe(true);
  });
  it('from 6.11 the checksum gate comes first: the just-changed page waits one more pass', () => {
    expect(scenario('from-6.11')).toBe(false);
  });
  it('from 6.11 a stable hit on a first visit is impossible; up to 6.10 it merges on the first visit', () => {
    for (const [order, expected] of [['upto-6.10', true], ['from-6.11', false]] as const) {
      const m = makeModel({ pagesToScan: 1000, compareOrder: order });
      m.registerMm(mmOnNode('a', 0, [3]));
      m.registerMm(mmOnNode('b', 0, [3]));
      runPasses(m, 2);
      const c = m.registerMm(mmOnNode('c', 1, [3]));
      runPasses(m, 1);
      expect(m.isMerged(c, 0)).toBe(expected);
    }
  });
});

describe('smart scan (Linux 6.7+, optional)', () => {
  it('visits a page that stays unmerged at passes 1-4, 6, 9, 14, 23 (skips of 1, 2, 4, 8 passes)', () => {
    const m = makeModel({ pagesToScan: 100, smartScan: true });
    m.registerMm(mmOnNode('a', 0, [1]));
    const visitedIn: number[] = [];
    for (let pass = 1; pass <= 25; pass++) {
      let visited = 0;
      for (;;) {
        const st = m.wake();
        visited += st.pagesVisited;
        if (st.passEnded) break;
      }
      if (visited > 0) visitedIn.push(pass);
    }
    expect(visitedIn).toEqual([1, 2, 3, 4, 6, 9, 14, 23]);
    expect(m.pagesSkipped).toBe(25 - 8);
  });

  it('never skips KSM pages, and is off by default', () => {
    const on = makeModel({ pagesToScan: 1000, smartScan: true });
    const off = makeModel({ pagesToScan: 1000 });
    for (const m of [on, off]) {
      m.registerMm(mmOnNode('a', 0, [...range(10), ...range(10, 500)]));
      m.registerMm(mmOnNode('b', 1, range(10)));
      runPasses(m, 10);
    }
    expect(on.counters()).toMatchObject({ pagesShared: 10, pagesSharing: 10 });
    expect(off.pagesSkipped).toBe(0);
    // a's 10 unique pages are visited in passes 1-4, 6, 9 and skipped in passes 5, 7, 8, 10.
    expect(on.pagesSkipped).toBe(40);
    expect(on.totalPagesVisited).toBe(off.totalPagesVisited - on.pagesSkipped);
  });
});
