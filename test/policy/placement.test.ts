import { describe, expect, it } from 'vitest';
import { decideSharerNode, fairKeepsCandidate, fairKeepsFirstOfPair, newRoundRobin, nuShare, priorityKeepsCandidate, roundRobinNode, sniceOf, type PageSharer } from '../../src/policy/placement.ts';
import { SplitMix32 } from '../../src/policy/random.ts';

const sharer = (instance: number, node: number, active = false, nice = 0): PageSharer => ({ instance, node, active, snice: sniceOf(nice) });

describe('nuKSM placement decisions', () => {
  it('snice is nice + 21 and nuShare is 1 - snice / sum', () => {
    expect(sniceOf(-20)).toBe(1);
    expect(sniceOf(19)).toBe(40);
    expect(nuShare(1, 11)).toBeCloseTo(10 / 11);
  });

  it('fair pair: only one copy active keeps the active one, without touching the round robin', () => {
    const rr = newRoundRobin();
    expect(fairKeepsFirstOfPair(true, false, 0, 1, rr, 2)).toBe(true);
    expect(fairKeepsFirstOfPair(false, true, 0, 1, rr, 2)).toBe(false);
    expect(rr).toEqual({ bothActive: 0, bothInactive: 0 });
  });

  it('fair pair: both or neither active alternate nodes, each class with its own pointer', () => {
    const rr = newRoundRobin();
    const inactive = Array.from({ length: 4 }, () => roundRobinNode(rr, false, 1, 0, 2));
    expect(inactive).toEqual([0, 1, 0, 1]);
    expect(roundRobinNode(rr, true, 1, 0, 2)).toBe(0); // the active class starts at its own pointer
  });

  it('fair N-way: an inactive candidate from a node already among the sharers never wins; the 1/K rule otherwise', () => {
    const rng = new SplitMix32(5);
    expect(fairKeepsCandidate({ candidateActive: false, candidateNodeAmongSharers: true, sharerNodes: 1, ksmPageActive: () => true }, rng)).toBe(false);
    expect(fairKeepsCandidate({ candidateActive: true, candidateNodeAmongSharers: true, sharerNodes: 1, ksmPageActive: () => false }, rng)).toBe(true);
    let kept = 0;
    for (let i = 0; i < 30_000; i++) if (fairKeepsCandidate({ candidateActive: false, candidateNodeAmongSharers: false, sharerNodes: 2, ksmPageActive: () => false }, rng)) kept++;
    expect(kept / 30_000).toBeGreaterThan(0.32);
    expect(kept / 30_000).toBeLessThan(0.347); // 1/3
  });

  it('priority keeps the copy of the lower snice with probability nuShare (Table III: 10:1 → 91 %)', () => {
    const rng = new SplitMix32(9);
    let kept = 0;
    for (let i = 0; i < 20_000; i++) if (priorityKeepsCandidate(1, 11, rng)) kept++;
    expect(kept / 20_000).toBeGreaterThan(0.9);
    expect(kept / 20_000).toBeLessThan(0.918);
  });

  it('decideSharerNode: one-sided access wins for fair; three nodes split 1/3 each; priority follows nice', () => {
    const rr = newRoundRobin();
    const rng = new SplitMix32(1);
    expect(decideSharerNode('fair', [sharer(0, 0, true), sharer(1, 1, false)], rr, 2, rng)).toBe(0);
    expect(decideSharerNode('fair', [sharer(0, 0, false), sharer(1, 1, true)], rr, 2, rng)).toBe(1);
    const wins = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) wins[decideSharerNode('fair', [sharer(0, 0), sharer(1, 1), sharer(2, 2)], rr, 3, rng)]!++;
    for (const w of wins) expect(Math.abs(w / 30_000 - 1 / 3)).toBeLessThan(0.015);
    let local0 = 0;
    for (let i = 0; i < 20_000; i++) if (decideSharerNode('priority', [sharer(0, 0, false, -20), sharer(1, 1, false, -16)], rr, 2, rng) === 0) local0++;
    expect(Math.abs(local0 / 20_000 - 5 / 6)).toBeLessThan(0.012);
    // Sharers all on one node: nothing to decide, no random number used.
    const before = new SplitMix32(4);
    const after = new SplitMix32(4);
    expect(decideSharerNode('priority', [sharer(0, 1), sharer(1, 1)], rr, 2, before)).toBe(0);
    expect(before.next()).toBe(after.next());
  });
});
