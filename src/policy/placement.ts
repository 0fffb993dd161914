// nuKSM's placement decisions (PACT 2021, §IV), as pure functions of what the caller knows about the
// copies being merged. One implementation, used by the reference model (src/policy/model.ts, at merge
// time) and by the user-space placement engine (src/host/placement, for pages KSM has already merged).
// Random choices come from the caller's seeded generator, in the order the calls are made.

/** A source of uniform numbers in [0, 1) (SplitMix32 in src/policy/random.ts). */
export interface Uniform {
  next(): number;
}

/** Round-robin pointers of fair, one per class (both copies active / both inactive), so each class is split evenly. */
export interface RoundRobinState {
  bothActive: number;
  bothInactive: number;
}

export function newRoundRobin(): RoundRobinState {
  return { bothActive: 0, bothInactive: 0 };
}

/** snice as the paper defines it: nice + 21, so nice -20 (highest priority) is 1 and nice 19 is 40. */
export function sniceOf(nice: number): number {
  return nice + 21;
}

/** Round-robin over nodes within one class: the first of the two nodes at or after that class's pointer. */
export function roundRobinNode(rr: RoundRobinState, bothActive: boolean, a: number, b: number, nodes: number): number {
  const pointer = bothActive ? rr.bothActive : rr.bothInactive;
  const da = (a - pointer + nodes) % nodes;
  const db = (b - pointer + nodes) % nodes;
  const chosen = da <= db ? a : b;
  const next = (chosen + 1) % nodes;
  if (bothActive) rr.bothActive = next;
  else rr.bothInactive = next;
  return chosen;
}

/**
 * fair, two private copies on different nodes (an unstable-tree merge): only one copy active -> keep the
 * active one; both or neither -> round robin over nodes within that class. Returns true to keep copy S.
 */
export function fairKeepsFirstOfPair(activeS: boolean, activeT: boolean, nodeS: number, nodeT: number, rr: RoundRobinState, nodes: number): boolean {
  if (activeS !== activeT) return activeS;
  return roundRobinNode(rr, activeS, nodeS, nodeT, nodes) === nodeS;
}

/** What fair needs to know when a candidate copy meets a KSM page that already exists (N-way sharing). */
export interface FairCandidate {
  candidateActive: boolean;
  /** Some sharer of the KSM page had its own copy on the candidate's node. */
  candidateNodeAmongSharers: boolean;
  /** Distinct nodes the sharers' own copies were on (K - 1 in the paper's 1/K rule). */
  sharerNodes: number;
  /** Whether any current sharer is active; asked only when the decision depends on it. */
  ksmPageActive: () => boolean;
}

/**
 * fair, N-way: the KSM page holds copies from K-1 nodes and the candidate is on node K. Only one of them
 * active -> keep the active one. Both or neither -> keep the candidate with p = 1/K, which leaves the KSM
 * page on each of the K nodes with probability 1/K (reservoir sampling over nodes). A candidate from a node
 * already among the sharers' nodes does not change K, so the page stays where it is.
 */
export function fairKeepsCandidate(c: FairCandidate, rng: Uniform): boolean {
  if (!c.candidateActive && c.candidateNodeAmongSharers) return false;
  const ksmActive = c.ksmPageActive();
  if (c.candidateActive !== ksmActive) return c.candidateActive;
  if (c.candidateNodeAmongSharers) return false;
  return rng.next() < 1 / (c.sharerNodes + 1);
}

/** nuShare = 1 - snice(current) / (sum of snice over the tasks using the page, current included). */
export function nuShare(snice: number, sniceSum: number): number {
  return 1 - snice / sniceSum;
}

/** priority: the candidate (or scanned) copy is kept when its nuShare beats a uniform random number. */
export function priorityKeepsCandidate(snice: number, sniceSum: number, rng: Uniform): boolean {
  return nuShare(snice, sniceSum) > rng.next();
}

/** One sharer of a merged page as the user-space engine sees it: its instance, home node and access signal. */
export interface PageSharer {
  /** Instance index (distinct sharers of one page have distinct instances). */
  instance: number;
  node: number;
  active: boolean;
  snice: number;
}

export type UserPlacementPolicy = 'fair' | 'priority';

/**
 * Where a page KSM has merged should live, deciding as nuKSM would have when these sharers merged in this
 * order: the first two as an unstable-tree merge (S = the first), each further one as a candidate meeting the
 * existing KSM page (a sharer on the page's current node needs no decision). Returns the index (into `sharers`) of the sharer whose node wins.
 * Sharers on the winning node all get the page local; with one node among the sharers there is nothing to decide.
 */
export function decideSharerNode(policy: UserPlacementPolicy, sharers: readonly PageSharer[], rr: RoundRobinState, nodes: number, rng: Uniform): number {
  if (sharers.length === 0) throw new RangeError('decideSharerNode: no sharers');
  let holder = 0;
  const nodeSeen = new Set<number>([sharers[0]!.node]);
  let sniceSum = sharers[0]!.snice;
  let anyActive = sharers[0]!.active;
  for (let i = 1; i < sharers.length; i++) {
    const c = sharers[i]!;
    const h = sharers[holder]!;
    if (c.node !== h.node) {
      if (i === 1) {
        const keepFirst = policy === 'fair' ? fairKeepsFirstOfPair(h.active, c.active, h.node, c.node, rr, nodes) : priorityKeepsCandidate(h.snice, h.snice + c.snice, rng);
        if (!keepFirst) holder = i;
      } else {
        const keep =
          policy === 'fair'
            ? fairKeepsCandidate({ candidateActive: c.active, candidateNodeAmongSharers: nodeSeen.has(c.node), sharerNodes: nodeSeen.size, ksmPageActive: () => anyActive }, rng)
            : priorityKeepsCandidate(c.snice, sniceSum + c.snice, rng);
        if (keep) holder = i;
      }
    }
    nodeSeen.add(c.node);
    sniceSum += c.snice;
    anyActive ||= c.active;
  }
  return holder;
}
