import { describe, expect, it } from 'vitest';
import { ContentMap, type ContentMapLayout } from '../../src/policy/content-map.ts';
import { firstByteAtLeast, presentEndOf, remainderU32 } from '../../src/policy/model.ts';
import { SplitMix32 } from '../../src/policy/random.ts';
import { KsmModel, NOT_PRESENT, defaultKsmModelConfig, type KsmModelConfig, type MergeEvent } from '../../src/policy/index.ts';

/** Random get/set/swap/delete/getOrInsert/clearFor against a Map; keyOf(rng, step) picks the key. */
function agreesWithMap(layout: ContentMapLayout, steps: number, keyOf: (rng: SplitMix32, step: number) => number, seed = 1): ContentMap {
  const rng = new SplitMix32(seed);
  const ours = new ContentMap(layout);
  let ref = new Map<number, number>();
  for (let step = 0; step < steps; step++) {
    const key = keyOf(rng, step);
    const r = rng.next();
    if (r < 0.3) {
      const v = rng.nextUint32() & 0x7fffffff;
      ours.set(key, v);
      ref.set(key, v);
    } else if (r < 0.5) {
      if (ours.get(key) !== (ref.get(key) ?? -1)) expect.fail(`get(${key}) = ${ours.get(key)}, expected ${ref.get(key) ?? -1}`);
    } else if (r < 0.6) {
      if (ours.delete(key) !== ref.delete(key)) expect.fail(`delete(${key}) disagrees`);
    } else if (r < 0.8) {
      const v = step;
      const got = ours.swap(key, v);
      if (got !== (ref.get(key) ?? -1)) expect.fail(`swap(${key}) = ${got}, expected ${ref.get(key) ?? -1}`);
      ref.set(key, v);
    } else if (r < 0.99999) {
      const got = ours.getOrInsert(key, step);
      if (got !== (ref.get(key) ?? -1)) expect.fail(`getOrInsert(${key}) = ${got}`);
      if (!ref.has(key)) ref.set(key, step);
    } else {
      ours.clearFor(ref.size);
      ref = new Map();
    }
    if (step % 5000 === 0) expect(ours.size).toBe(ref.size);
  }
  expect(ours.size).toBe(ref.size);
  const seen = new Map<number, number>();
  ours.forEach((k, v) => seen.set(k, v));
  expect(seen).toEqual(ref);
  for (const [k, v] of ref) if (ours.get(k) !== v) expect.fail(`final get(${k})`);
  return ours;
}

// Runs of consecutive ids in a few ranges across the 32-bit space (as the model testbed numbers contents).
const dense = (rng: SplitMix32) => [0x0100_0000, 0x1000_0000, 0x8000_0000, 0xffff_0000][rng.nextUint32() & 3] + (rng.nextUint32() % 20_000);
const scattered = (rng: SplitMix32) => rng.nextUint32() >>> 0;

describe('ContentMap', () => {
  for (const layout of ['auto', 'hash', 'direct'] as const) {
    it(`agrees with Map (${layout} layout, runs of consecutive ids)`, () => {
      const m = agreesWithMap(layout, 300_000, dense);
      if (layout !== 'hash') expect(m.direct).toBe(true);
      else expect(m.direct).toBe(false);
    });
  }

  it('stays hashed for scattered ids (auto) and agrees with Map', () => {
    const m = agreesWithMap('auto', 200_000, scattered);
    expect(m.direct).toBe(false);
    expect(m.layoutChanges).toBe(0);
  });

  it('switches to direct when runs fill it, back to hash when scattered ids follow, and agrees with Map throughout', () => {
    // 150 000 steps of runs, then scattered ids only: the map goes direct, then back.
    const m = agreesWithMap('auto', 400_000, (rng, step) => (step < 150_000 ? dense(rng) : scattered(rng)), 5);
    expect(m.layoutChanges).toBeGreaterThanOrEqual(2);
    expect(m.direct).toBe(false);
  });

  it('direct layout: ~4 bytes per id of a filled run plus the directory; dropped chunks are freed', () => {
    const m = new ContentMap('auto');
    const n = 1_000_000;
    for (let i = 0; i < n; i++) m.getOrInsert(0x8000_0000 + i, i);
    expect(m.direct).toBe(true);
    expect(m.bytes - 4 * 2 ** 20).toBeLessThanOrEqual(n * 4.1);
    for (let i = 0; i < n; i++) if (!m.delete(0x8000_0000 + i)) expect.fail(`delete ${i}`);
    expect(m.size).toBe(0);
    expect(m.bytes).toBeLessThan(4 * 2 ** 20 + 64 * 1024);
    expect(m.get(0x8000_0000)).toBe(-1);
  });

  it('clearFor keeps the chunks a pass used and drops those left empty for a whole pass', () => {
    const m = new ContentMap('direct');
    for (let i = 0; i < 100_000; i++) m.getOrInsert(i, i);
    const full = m.bytes;
    m.clearFor(100_000);
    expect(m.size).toBe(0);
    expect(m.get(5)).toBe(-1);
    expect(m.bytes).toBe(full); // kept for the next pass
    for (let i = 0; i < 4096; i++) m.getOrInsert(i, i + 1); // the next pass fills one chunk only
    m.clearFor(4096);
    const dir = 4 * 2 ** 20;
    expect(m.bytes - dir).toBeLessThan((full - dir) / 10); // the others stayed empty for a pass: dropped
    expect(m.getOrInsert(50_000, 3)).toBe(-1);
    expect(m.get(50_000)).toBe(3);
  });

  it('rejects values it cannot store', () => {
    for (const layout of ['hash', 'direct'] as const) {
      const m = new ContentMap(layout);
      expect(() => m.set(1, -1)).toThrow(RangeError);
      expect(() => m.getOrInsert(1, 2 ** 31)).toThrow(RangeError);
      m.set(0xffff_fffe, 2 ** 31 - 1);
      expect(m.get(0xffff_fffe)).toBe(2 ** 31 - 1);
    }
  });
});

describe('model helpers', () => {
  it('remainderU32 equals % for uint32 checksums, including values next to multiples of n', () => {
    const rng = new SplitMix32(3);
    const ns = [1, 2, 3, 7, 313, 1837, 65_535, 65_536, 1_000_003, 2 ** 31 - 1];
    for (let k = 0; k < 20; k++) ns.push((rng.nextUint32() % 100_000) + 1, (rng.nextUint32() >>> 1) + 1);
    for (const n of ns) {
      const inv = 1 / n;
      const cs = [0, 1, n - 1, n, n + 1, 2 ** 32 - 1, 2 ** 32 - 2, 2 ** 31, 2 ** 31 - 1];
      const top = Math.floor((2 ** 32 - 1) / n);
      for (const q of [top, top - 1, Math.floor(top / 2)]) for (const d of [-1, 0, 1]) cs.push(q * n + d);
      for (let i = 0; i < 2000; i++) cs.push(rng.nextUint32() >>> 0);
      for (const c of cs) {
        if (c < 0 || c > 2 ** 32 - 1) continue;
        if (remainderU32(c, n, inv) !== c % n) expect.fail(`remainderU32(${c}, ${n}) = ${remainderU32(c, n, inv)}, expected ${c % n}`);
      }
    }
  });

  it('presentEndOf is 1 + the index of the last present page', () => {
    const rng = new SplitMix32(6);
    for (let trial = 0; trial < 2000; trial++) {
      const a = new Uint32Array(rng.nextUint32() % 40).fill(NOT_PRESENT);
      for (let k = rng.nextUint32() % 3; k > 0 && a.length > 0; k--) a[rng.nextUint32() % a.length] = rng.next() < 0.5 ? 0 : 0xfffffffe;
      let want = a.length;
      while (want > 0 && a[want - 1] === NOT_PRESENT) want--;
      expect(presentEndOf(a)).toBe(want);
    }
  });

  it('writePages does what a writePage per page does (COW of merged pages, pages vanishing, the present end)', () => {
    const run = (bulk: boolean) => {
      const m = new KsmModel(defaultKsmModelConfig({ pagesToScan: 100 }));
      const n = 300;
      const contents = new Uint32Array(n).fill(NOT_PRESENT);
      for (let p = 0; p < 150; p++) contents[p] = p % 50;
      const a = m.registerMm({ name: 'a', nice: 0, contents, nodes: new Uint8Array(n), active: new Uint8Array(n) });
      const out: string[] = [];
      const rng = new SplitMix32(9);
      for (let w = 0; w < 60; w++) {
        const s = m.wake();
        out.push(`${s.pagesVisited}/${s.comparisons}/${s.merges}`, JSON.stringify(m.counters()));
        if (w % 7 === 3) {
          const start = rng.nextUint32() % n;
          const values = new Uint32Array(rng.nextUint32() % Math.min(60, n - start));
          for (let i = 0; i < values.length; i++) values[i] = rng.next() < 0.2 ? NOT_PRESENT : rng.nextUint32() % 60;
          if (bulk) m.writePages(a, start, values);
          else values.forEach((v, i) => m.writePage(a, start + i, v));
        }
      }
      out.push(Array.from(contents).join(','));
      return out;
    };
    expect(run(true)).toEqual(run(false));
  });

  it('firstByteAtLeast finds the first byte >= limit at any alignment', () => {
    const rng = new SplitMix32(4);
    const buf = new Uint8Array(4096);
    for (let trial = 0; trial < 3000; trial++) {
      const limit = (rng.nextUint32() % 32) + 1;
      const offset = rng.nextUint32() % 8;
      const len = rng.nextUint32() % 200;
      const a = buf.subarray(offset, offset + len);
      for (let i = 0; i < len; i++) a[i] = rng.nextUint32() % limit;
      if (len > 0 && rng.next() < 0.7) a[rng.nextUint32() % len] = limit + (rng.nextUint32() % (256 - limit));
      let want = -1;
      for (let i = 0; i < len; i++) if (a[i] >= limit) { want = i; break; }
      expect(firstByteAtLeast(a, limit)).toBe(want);
    }
  });
});

describe('the tree maps\' layout never changes a model run', () => {
  /**
   * Three mms of runs of consecutive contents (shared and unique ranges, as the model testbed numbers them) large
   * enough for the maps to go direct, COW writes (some to scattered contents, which may turn a map back to a
   * hash) and an exit, under each placement policy; every wake's stats and every merge must agree.
   */
  function run(layout: 'auto' | 'hash' | 'direct', overrides: Partial<KsmModelConfig>): string[] {
    const m = new KsmModel(defaultKsmModelConfig({ pagesToScan: 7_000, maxPageSharing: 4, mapLayout: layout, ...overrides }));
    const out: string[] = [];
    m.onMerge = (e: MergeEvent) => out.push(JSON.stringify(e));
    const rng = new SplitMix32(11);
    const n = 40_000;
    const mms: number[] = [];
    const contents: Uint32Array[] = [];
    for (let k = 0; k < 3; k++) {
      const c = new Uint32Array(n);
      for (let p = 0; p < n; p++) {
        const r = rng.next();
        c[p] = r < 0.5 ? 0x1000_0000 + p : r < 0.55 ? 0x0100_0000 + (p % 7) : 0x8000_0000 + k * n + p;
      }
      contents.push(c);
      const nodes = new Uint8Array(n).fill(k % 2);
      const active = new Uint8Array(n);
      for (let p = 0; p < n; p++) active[p] = rng.next() < 0.5 ? 1 : 0;
      mms.push(m.registerMm({ name: `mm${k}`, nice: k - 1, contents: c, nodes, active }));
    }
    for (let w = 0; w < 200; w++) {
      const s = m.wake();
      out.push(`${s.pagesVisited}/${s.comparisons}/${s.merges}/${s.passEnded}`);
      if (w % 10 === 5) {
        for (let i = 0; i < 500; i++) {
          const k = w > 150 ? [0, 2][rng.nextUint32() % 2] : rng.nextUint32() % 3;
          const p = rng.nextUint32() % n;
          const r = rng.next();
          m.writePage(mms[k], p, r < 0.3 ? rng.nextUint32() % 0xfffffff0 : r < 0.6 ? 0x1000_0000 + p : 0x9000_0000 + w * 1000 + i);
        }
      }
      if (w === 150) m.unregisterMm(mms[1]);
    }
    out.push(JSON.stringify(m.counters()), String(m.totalComparisons));
    if (layout === 'auto') {
      // The auto layout did switch (the test would otherwise compare a hash with a hash).
      const maps = m as unknown as { stableMap: ContentMap[]; unstableMap: ContentMap[] };
      layoutChanges = [...maps.stableMap, ...maps.unstableMap].reduce((a, x) => a + x.layoutChanges, 0);
    }
    for (const k of [0, 2]) out.push(JSON.stringify(m.mergedPagesPerNode(mms[k])));
    return out;
  }

  let layoutChanges = 0;
  const configs: [string, Partial<KsmModelConfig>][] = [
    ['KSM', {}],
    ['KSM 6.11+ order, merge_across_nodes=0', { compareOrder: 'from-6.11', mergeAcrossNodes: false }],
    ['nuKSM fair + forest', { policy: 'nuksm-fair', forestPagesPerTree: 5_000 }],
    ['nuKSM priority, smart scan', { policy: 'nuksm-priority', smartScan: true }],
  ];
  for (const [name, cfg] of configs) {
    it(name, () => {
      const hash = run('hash', cfg);
      expect(hash.filter((l) => l.startsWith('{"kind"')).length).toBeGreaterThan(1000); // it merges
      layoutChanges = 0;
      expect(run('auto', cfg)).toEqual(hash);
      expect(layoutChanges).toBeGreaterThan(0);
      expect(run('direct', cfg)).toEqual(hash);
    });
  }
});

describe('checksum gate with the stored checksum kept as "that of the current content" (CHECKSUM_CURRENT)', () => {
  it('a page rewritten back to the content it had at its last gate update passes the gate; one left changed does not', () => {
    for (const compareOrder of ['upto-6.10', 'from-6.11'] as const) {
      for (const restore of [true, false]) {
        const m = new KsmModel(defaultKsmModelConfig({ pagesToScan: 1000, compareOrder }));
        const a = m.registerMm({ name: 'a', nice: 0, contents: Uint32Array.of(1), nodes: Uint8Array.of(0), active: Uint8Array.of(0) });
        const b = m.registerMm({ name: 'b', nice: 0, contents: Uint32Array.of(8), nodes: Uint8Array.of(0), active: Uint8Array.of(0) });
        const pass = () => {
          while (!m.wake().passEnded);
        };
        pass(); // first visits: gate
        pass(); // a:1 and b:8 in the unstable tree, no match
        m.writePage(a, 0, 8); // a changed: gated at its next visit
        pass(); // a gated; b:8 passes the gate (unchanged) and is inserted
        m.writePage(b, 0, 5);
        if (restore) m.writePage(b, 0, 8); // back to the content of b's last gate update
        pass(); // a:8 inserted; b: restored -> passes the gate and matches a; else gated
        expect(m.isMerged(b, 0)).toBe(restore);
        if (!restore) {
          m.writePage(b, 0, 8);
          pass(); // b changed again (5 -> 8) since its last gate update: gated
          expect(m.isMerged(b, 0)).toBe(false);
          pass();
          expect(m.isMerged(b, 0)).toBe(true);
        }
      }
    }
  });
});
