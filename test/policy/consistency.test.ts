import { describe, expect, it } from 'vitest';
import type { PlacementPolicy } from '../../src/policy/index.ts';
import { SplitMix32 } from '../../src/policy/random.ts';
import { makeModel, mmOnNode, runPasses } from './helpers.ts';

// Random workload (few distinct contents so stable hits, chains and KSM-page moves are frequent, plus
// writes and an exit); the incrementally kept tallies must match a recount from the per-page queries.
describe('bookkeeping consistency under a random workload', () => {
  for (const policy of ['ksm', 'nuksm-fair', 'nuksm-priority'] as PlacementPolicy[]) {
    it(`${policy}: per-node tallies and counters match a recount`, () => {
      const rng = new SplitMix32(1234);
      const m = makeModel({ policy, nodes: 3, pagesToScan: 500, maxPageSharing: 5, seed: 9 });
      const pages = 3000;
      const ids: number[] = [];
      for (let v = 0; v < 4; v++) {
        const contents = Array.from({ length: pages }, () => rng.nextUint32() % 400);
        const active = Array.from({ length: pages }, () => (rng.next() < 0.4 ? 1 : 0));
        ids.push(m.registerMm(mmOnNode(`vm${v}`, v % 3, contents, { nice: -20 + v * 5, active })));
      }
      for (let round = 0; round < 40; round++) {
        for (let w = 0; w < 50; w++) {
          const mm = ids[rng.nextUint32() % ids.length];
          m.writePage(mm, rng.nextUint32() % pages, rng.nextUint32() % 400);
        }
        for (let k = 0; k < 10; k++) m.wake();
        if (round === 20) {
          m.unregisterMm(ids[3]);
          ids.pop();
        }
      }
      runPasses(m, 2); // no writes since: every COW-broken item has been revisited
      let merged = 0;
      const mappersOnNode = [0, 0, 0];
      for (const id of ids) {
        const recount = [0, 0, 0];
        for (let p = 0; p < pages; p++) if (m.isMerged(id, p)) recount[m.pageNode(id, p)]++;
        expect(m.mergedPagesPerNode(id)).toEqual(recount);
        merged += recount.reduce((a, b) => a + b, 0);
        recount.forEach((n, node) => (mappersOnNode[node] += n));
      }
      // Each live KSM page on a node has at least two mappers there (one after COWs), none without mappers.
      const ksmOnNode = m.ksmPagesPerNode();
      for (let n = 0; n < 3; n++) {
        expect(ksmOnNode[n]).toBeLessThanOrEqual(mappersOnNode[n]);
        expect(ksmOnNode[n] > 0).toBe(mappersOnNode[n] > 0);
      }
      const c = m.counters();
      expect(merged).toBeGreaterThan(1000);
      expect(c.pagesShared).toBe(m.ksmPagesPerNode().reduce((a, b) => a + b, 0));
      expect(c.pagesShared + c.pagesSharing).toBe(merged);
    });
  }
});
