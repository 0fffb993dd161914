import { describe, expect, it } from 'vitest';
import { U32IntMap } from '../../src/policy/hash.ts';
import { SplitMix32 } from '../../src/policy/random.ts';
import { makeModel, mmOnNode, range, runPasses } from './helpers.ts';

describe('U32IntMap', () => {
  it('agrees with Map under random get/set/delete/getOrInsert/clear, including clustered keys', () => {
    const rng = new SplitMix32(99);
    const ours = new U32IntMap(4);
    let ref = new Map<number, number>();
    for (let step = 0; step < 200_000; step++) {
      const r = rng.next();
      // Mix of consecutive keys (one block), multiples of 64 (same low bits) and random keys.
      const pick = rng.next();
      const key = pick < 0.4 ? rng.nextUint32() % 5000 : pick < 0.7 ? (rng.nextUint32() % 3000) * 64 : rng.nextUint32() >>> 0;
      if (r < 0.35) {
        const v = rng.nextUint32() & 0x7fffffff;
        ours.set(key, v);
        ref.set(key, v);
      } else if (r < 0.6) {
        if (ours.get(key) !== (ref.get(key) ?? -1)) expect.fail(`get(${key}) = ${ours.get(key)}, expected ${ref.get(key) ?? -1}`);
      } else if (r < 0.8) {
        if (ours.delete(key) !== ref.delete(key)) expect.fail(`delete(${key}) disagrees`);
      } else if (r < 0.9999) {
        const v = step;
        const got = ours.getOrInsert(key, v);
        if (got !== (ref.get(key) ?? -1)) expect.fail(`getOrInsert(${key}) = ${got}`);
        if (!ref.has(key)) ref.set(key, v);
      } else {
        ours.clear();
        ref = new Map();
      }
      if (step % 1000 === 0) expect(ours.size).toBe(ref.size);
    }
    expect(ours.size).toBe(ref.size);
    const seen = new Map<number, number>();
    ours.forEach((k, v) => seen.set(k, v));
    expect(seen).toEqual(ref);
  });

  it('swap sets a key and returns its previous value (-1 if none), as Map get + set, across rebuilds', () => {
    const rng = new SplitMix32(7);
    const ours = new U32IntMap(4);
    const ref = new Map<number, number>();
    for (let step = 0; step < 100_000; step++) {
      const key = rng.next() < 0.5 ? rng.nextUint32() % 4000 : rng.nextUint32() >>> 0;
      if (rng.next() < 0.2) {
        if (ours.delete(key) !== ref.delete(key)) expect.fail(`delete(${key}) disagrees`);
        continue;
      }
      const v = rng.nextUint32() & 0x7fffffff;
      const got = ours.swap(key, v);
      if (got !== (ref.get(key) ?? -1)) expect.fail(`swap(${key}) = ${got}, expected ${ref.get(key) ?? -1}`);
      ref.set(key, v);
    }
    expect(ours.size).toBe(ref.size);
    for (const [k, v] of ref) expect(ours.get(k)).toBe(v);
  });
});

describe('U32IntMap memory', () => {
  it('holds N entries in at most 20 bytes each, and clearFor resizes an empty map to the coming pass', () => {
    const map = new U32IntMap(16);
    const n = 300_000;
    for (let i = 0; i < n; i++) map.set(0x8000_0000 + i, i); // grows step by step (load <= 80 %, 8-byte slots)
    expect(map.size).toBe(n);
    expect(map.bytes / n).toBeLessThanOrEqual(20);
    for (let i = 0; i < n; i += 997) expect(map.get(0x8000_0000 + i)).toBe(i);
    map.clearFor(1000); // a much smaller pass: the big table is dropped
    expect(map.size).toBe(0);
    expect(map.get(0x8000_0000)).toBe(-1);
    expect(map.bytes).toBeLessThanOrEqual(1000 * 20);
    map.clearFor(n); // sized once for the whole pass: no growth while it fills
    const sized = map.bytes;
    for (let i = 0; i < n; i++) map.getOrInsert(i * 64, i);
    expect(map.bytes).toBe(sized);
    expect(sized / n).toBeLessThanOrEqual(20);
  });

  it('rejects values it cannot store', () => {
    const map = new U32IntMap();
    expect(() => map.set(1, -1)).toThrow(RangeError);
    expect(() => map.getOrInsert(1, 2 ** 31)).toThrow(RangeError);
  });
});

describe('max_page_sharing chains', () => {
  it('a full dup that loses a sharer takes sharers again before a newer dup', () => {
    const m = makeModel({ pagesToScan: 1000, maxPageSharing: 3 });
    const a = m.registerMm(mmOnNode('a', 0, new Array(6).fill(5)));
    runPasses(m, 2); // dup X = pages 0,1,2 (full), dup Y = pages 3,4,5 (full)
    expect(m.counters()).toMatchObject({ pagesShared: 2, pagesSharing: 4 });
    m.writePage(a, 1, 9); // X loses a mapper; its item leaves X's hlist at the next visit
    const b = m.registerMm(mmOnNode('b', 1, [5]));
    runPasses(m, 1); // page 1 revisited (X now has 2 items), then b's page: first visit, stable hit under <=6.10
    expect(m.isMerged(b, 0)).toBe(true);
    expect(m.pageNode(b, 0)).toBe(m.pageNode(a, 0)); // joined X (the non-full dup), not a new one
    expect(m.counters()).toMatchObject({ pagesShared: 2, pagesSharing: 4 });
  });
});

describe('KSM-page counts wider than 16 bits', () => {
  it('max_page_sharing above 65535 (32-bit counts) merges and counts like the default', () => {
    for (const maxPageSharing of [256, 100_000]) {
      const m = makeModel({ pagesToScan: 1000, maxPageSharing });
      const a = m.registerMm(mmOnNode('a', 0, new Array(300).fill(7)));
      runPasses(m, 2);
      expect(m.counters()).toMatchObject({ pagesShared: maxPageSharing === 256 ? 2 : 1, pagesSharing: maxPageSharing === 256 ? 298 : 299 });
      m.writePage(a, 0, 8); // COW: one mapper fewer
      runPasses(m, 1);
      expect(m.mergedPages(a)).toBe(299);
    }
  });
});

describe('unregistering the mm under the scan cursor', () => {
  it('continues the pass with the next mm', () => {
    const m = makeModel({ pagesToScan: 5 });
    const a = m.registerMm(mmOnNode('a', 0, range(10)));
    const b = m.registerMm(mmOnNode('b', 0, range(10, 100)));
    m.wake(); // cursor in a
    m.unregisterMm(a);
    expect(m.scanOrder()).toEqual([b]);
    expect(m.wake().pagesVisited).toBe(5); // b's first 5 pages
    expect(m.wake().pagesVisited).toBe(5);
    expect(m.wake().passEnded).toBe(true);
    expect(m.counters()).toMatchObject({ pagesVolatile: 10, fullScans: 1 });
  });
});
