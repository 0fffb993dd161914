import { describe, expect, it } from 'vitest';
import type { KsmModel, PlacementPolicy } from '../../src/policy/index.ts';
import { makeModel, mmOnNode, range, runPasses, share } from './helpers.ts';

describe('nuKSM fair: the paper\'s five-page example (Section IV-A)', () => {
  // P0 hot in VM-0 only, P1 hot in VM-1 only, P2 and P3 hot in both, P4 inactive.
  const vm0Active = [1, 0, 1, 1, 0];
  const vm1Active = [0, 1, 1, 1, 0];
  for (const vm1First of [false, true]) {
    it(`places P0 on node 0, P1 on node 1 and one of P2/P3 on each node (${vm1First ? 'VM-1' : 'VM-0'} registered first)`, () => {
      const m = makeModel({ policy: 'nuksm-fair', pagesToScan: 100 });
      const regs = [mmOnNode('vm0', 0, range(5), { active: vm0Active }), mmOnNode('vm1', 1, range(5), { active: vm1Active })];
      const ids = vm1First ? [m.registerMm(regs[1]), m.registerMm(regs[0])].reverse() : [m.registerMm(regs[0]), m.registerMm(regs[1])];
      const [vm0, vm1] = ids;
      runPasses(m, 2);
      for (const p of range(5)) expect(m.isMerged(vm0, p) && m.isMerged(vm1, p)).toBe(true);
      expect(m.pageNode(vm0, 0)).toBe(0);
      expect(m.pageNode(vm0, 1)).toBe(1);
      expect(new Set([m.pageNode(vm0, 2), m.pageNode(vm0, 3)])).toEqual(new Set([0, 1]));
      expect(m.pageNode(vm1, 2)).toBe(m.pageNode(vm0, 2));
    });
  }
  it('Linux KSM instead puts all five on the node of the later-scanned VM', () => {
    const m = makeModel({ policy: 'ksm' });
    const vm0 = m.registerMm(mmOnNode('vm0', 0, range(5), { active: vm0Active }));
    m.registerMm(mmOnNode('vm1', 1, range(5), { active: vm1Active }));
    runPasses(m, 2);
    expect(m.mergedPagesPerNode(vm0)).toEqual([0, 5]);
  });
});

describe('nuKSM fair: N-way merge over 4 nodes', () => {
  for (const active of [0, 1]) {
    it(`spreads KSM pages evenly over the 4 nodes (${active ? 'all active' : 'all inactive'})`, () => {
      const pages = 40_000;
      const m = makeModel({ policy: 'nuksm-fair', nodes: 4, pagesToScan: 10_000, seed: 7 });
      const ids = [0, 1, 2, 3].map((n) => m.registerMm(mmOnNode(`vm${n}`, n, range(pages), { active })));
      runPasses(m, 3);
      expect(m.counters()).toMatchObject({ pagesShared: pages, pagesSharing: 3 * pages });
      const perNode = m.ksmPagesPerNode();
      for (let n = 0; n < 4; n++) expect(Math.abs(perNode[n] / pages - 0.25)).toBeLessThan(0.01);
      // Every mm sees the same placement of each page.
      expect(m.mergedPagesPerNode(ids[0])).toEqual(perNode);
    });
  }
  it('Linux KSM leaves them all on the last-scanned node', () => {
    const m = makeModel({ policy: 'ksm', nodes: 4, pagesToScan: 10_000 });
    [0, 1, 2, 3].forEach((n) => m.registerMm(mmOnNode(`vm${n}`, n, range(1000))));
    runPasses(m, 3);
    // vm0 + vm1 merge in the unstable tree (vm1 kept); vm2 and vm3 then hit the stable tree.
    expect(m.ksmPagesPerNode()).toEqual([0, 1000, 0, 0]);
  });
});

/**
 * Two identical instances on nodes 0 and 1. "late start": both register before ksmd runs, so the list
 * order is registration order and in the merging pass the second instance is scanned after the first:
 * every unstable match keeps the second instance's copy. "mid-pass": the second registers while ksmd is
 * part-way through its first pass over the first, so it is inserted behind the cursor, i.e. ahead of the
 * first instance in the list; in the merging pass the first instance is scanned last and its copies win.
 */
type Kernel = { label: string; compareOrder: 'upto-6.10' | 'from-6.11'; smartScan: boolean };
const KERNELS: Kernel[] = [
  { label: '5.4 order', compareOrder: 'upto-6.10', smartScan: false },
  { label: '6.12: checksum first + smart scan', compareOrder: 'from-6.11', smartScan: true },
];

function twoInstances(policy: PlacementPolicy, secondRegistersMidPass: boolean, kernel: Kernel, pages = 25_000): { model: KsmModel; first: number; second: number } {
  const model = makeModel({ policy, pagesToScan: 1000, seed: 11, compareOrder: kernel.compareOrder, smartScan: kernel.smartScan });
  // Identical workloads: same contents, same hot set (30% of pages, the same ones in both instances).
  const active = Array.from({ length: pages }, (_, i) => (i % 10 < 3 ? 1 : 0));
  const first = model.registerMm(mmOnNode('instance-0', 0, range(pages), { active }));
  if (secondRegistersMidPass) for (let i = 0; i < 10; i++) model.wake(); // 10 000 of 25 000 pages into pass 1
  const second = model.registerMm(mmOnNode('instance-1', 1, range(pages), { active }));
  runPasses(model, 4);
  expect(model.mergedPages(first)).toBe(pages);
  return { model, first, second };
}

describe('two identical instances, registered one after the other', () => {
  for (const kernel of KERNELS) {
    it(`KSM (${kernel.label}), ksmd started after both registered: >= 99% on the later-registered instance's node (as Linux 6.12 did)`, () => {
      const { model, first } = twoInstances('ksm', false, kernel);
      expect(share(model.mergedPagesPerNode(first), 1)).toBeGreaterThanOrEqual(0.99);
    });
    it(`KSM (${kernel.label}), second registered mid-pass (paper Fig. 2): >= 99% on the first instance's node`, () => {
      const { model, first } = twoInstances('ksm', true, kernel);
      expect(share(model.mergedPagesPerNode(first), 0)).toBeGreaterThanOrEqual(0.99);
    });
    for (const mid of [false, true]) {
      it(`nuKSM fair (${kernel.label}): 50% +- 2 pp on each node (${mid ? 'mid-pass' : 'late start'})`, () => {
        const { model, first, second } = twoInstances('nuksm-fair', mid, kernel);
        const s0 = share(model.mergedPagesPerNode(first), 0);
        expect(Math.abs(s0 - 0.5)).toBeLessThanOrEqual(0.02);
        expect(model.mergedPagesPerNode(second)).toEqual(model.mergedPagesPerNode(first));
      });
    }
  }
});

describe('nuKSM priority (Table III)', () => {
  // Two instances of 200 000 identical pages: binomial noise sd <= 0.11 pp.
  const cases: Array<[number, number, number]> = [
    [-20, -11, 0.91],
    [-20, -16, 0.83],
    [-20, -20, 0.5],
    [-16, -20, 0.17],
    [-11, -20, 0.09],
  ];
  for (const [nice0, nice1, paperLocalToVm0] of cases) {
    it(`nice (${nice0}, ${nice1}) puts ${paperLocalToVm0 * 100}% +- 2 pp of merged pages on VM-0's node`, () => {
      const pages = 200_000;
      const m = makeModel({ policy: 'nuksm-priority', pagesToScan: 50_000, seed: 3 });
      const vm0 = m.registerMm(mmOnNode('vm0', 0, range(pages), { nice: nice0 }));
      m.registerMm(mmOnNode('vm1', 1, range(pages), { nice: nice1 }));
      runPasses(m, 2);
      expect(m.mergedPages(vm0)).toBe(pages);
      const local = share(m.mergedPagesPerNode(vm0), 0);
      // Exact expectation of the formula for a two-way merge: P(keep VM-0's copy) = snice1 / (snice0 + snice1).
      const formula = (nice1 + 21) / (nice0 + 21 + nice1 + 21);
      expect(Math.abs(local - formula)).toBeLessThan(0.005);
      expect(Math.abs(local - paperLocalToVm0)).toBeLessThanOrEqual(0.02);
    });
  }
});

describe('nuKSM forest', () => {
  function comparisonsPerMerge(forestPagesPerTree: number | null): { perMerge: number; merges: number; trees: number } {
    // Two 2-GiB instances: half of each instance identical across them, half unique.
    const pages = 524_288;
    const shared = range(pages / 2);
    const m = makeModel({ policy: 'nuksm-fair', pagesToScan: 100_000, forestPagesPerTree, seed: 5 });
    m.registerMm(mmOnNode('vm0', 0, [...shared, ...range(pages / 2, 10_000_000)]));
    m.registerMm(mmOnNode('vm1', 1, [...shared, ...range(pages / 2, 20_000_000)]));
    runPasses(m, 3);
    return { perMerge: m.totalComparisons / m.totalMerges, merges: m.totalMerges, trees: m.treesPerNode };
  }
  it('makes fewer comparisons per merged page than a single tree pair at large memory, with the same merges', () => {
    const single = comparisonsPerMerge(null);
    const forest = comparisonsPerMerge(25_600);
    expect(forest.trees).toBe(41); // 1 048 576 pages / 25 600 per tree
    expect(forest.merges).toBe(single.merges);
    expect(single.merges).toBe(262_144);
    expect(forest.perMerge).toBeLessThan(single.perMerge * 0.8);
  });
});

describe('determinism', () => {
  function run(seed: number): string {
    const m = makeModel({ policy: 'nuksm-fair', nodes: 3, pagesToScan: 777, seed });
    const n = 5000;
    for (let v = 0; v < 3; v++) m.registerMm(mmOnNode(`vm${v}`, v, range(n).map((i) => i % 1500), { active: range(n).map((i) => (i + v) % 3 === 0 ? 1 : 0) }));
    const log: string[] = [];
    m.onMerge = (e) => log.push(`${e.kind}${e.keptMm}.${e.keptPage}@${e.keptNode}`);
    runPasses(m, 4);
    return JSON.stringify({ log, c: m.counters(), k: m.ksmPagesPerNode() });
  }
  it('gives identical results for the same seed and different random choices for another seed', () => {
    expect(run(42)).toBe(run(42));
    expect(run(42)).not.toBe(run(43));
  });
});
