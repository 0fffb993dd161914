/**
 * The KSM scenarios validated against real kernels (test/system/emulated-trace-suite.test.ts runs them
 * in the emulated machine; test/policy/scenario-fixtures.test.ts replays the recorded runs kept under
 * test/fixtures/ksm-scenarios). Families follow issue 13. Content ids: equal ids = identical pages.
 */
import type { KsmScenario } from '../../src/policy/scenario.ts';

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const knobs = (o: Partial<KsmScenario['knobs']> = {}): KsmScenario['knobs'] => ({ pages_to_scan: 8, merge_across_nodes: 1, max_page_sharing: 256, smart_scan: 0, ...o });

export const KSM_SCENARIOS: KsmScenario[] = [
  // 1: ksmd starts after every instance registered.
  { name: 'f1-two-identical', family: 1, knobs: knobs(), procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }], initial: [0, 1], events: [], endPass: 3 },
  {
    name: 'f1-later-node0',
    family: 1,
    knobs: knobs({ pages_to_scan: 5 }),
    procs: [{ node: 1, contents: range(1, 24) }, { node: 0, contents: range(1, 24) }, { node: 0, contents: [...range(1, 12), ...range(101, 112)] }],
    initial: [0, 1, 2],
    events: [],
    endPass: 3,
  },
  // 2: a registration in the middle of a pass, at a pinned cursor (after ksmd's k-th batch).
  {
    name: 'f2-mid-pass-in-second-mm',
    family: 2,
    knobs: knobs(),
    procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }, { node: 0, contents: range(1, 32) }],
    initial: [0, 1],
    events: [{ at: { batch: 5 }, action: { kind: 'register', proc: 2 } }],
    endPass: 4,
  },
  {
    name: 'f2-mid-pass-in-first-mm-pass1',
    family: 2,
    knobs: knobs(),
    procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }, { node: 1, contents: [...range(1, 16), ...range(201, 216)] }],
    initial: [0, 1],
    events: [{ at: { batch: 11 }, action: { kind: 'register', proc: 2 } }],
    endPass: 4,
  },
  // 3: three and more instances with partly overlapping contents, duplicates inside one instance.
  {
    name: 'f3-four-overlapping',
    family: 3,
    knobs: knobs(),
    procs: [
      { node: 0, contents: [...range(1, 20), 500, 500, 500, 500] },
      { node: 1, contents: [...range(13, 36), 500] },
      { node: 0, contents: [...range(1, 8), ...range(30, 45)] },
      { node: 1, contents: [...range(1, 4), ...range(300, 311), ...range(20, 27)] },
    ],
    initial: [0, 1, 2, 3],
    events: [],
    endPass: 4,
  },
  // 4: writes at known points: COW of a merged page, a volatile page, re-merge, both sharers written.
  {
    name: 'f4-writes',
    family: 4,
    knobs: knobs(),
    procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }],
    initial: [0, 1],
    events: [
      { at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 3, content: 7777 } },
      { at: { pass: 2 }, action: { kind: 'write', proc: 1, page: 5, content: 6 } },
      { at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 20, content: 20020 } },
      { at: { pass: 2 }, action: { kind: 'write', proc: 1, page: 20, content: 20021 } },
      { at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 10, content: 10002 } },
      { at: { pass: 3 }, action: { kind: 'write', proc: 0, page: 10, content: 10003 } },
      { at: { pass: 4 }, action: { kind: 'write', proc: 0, page: 10, content: 10 } },
      { at: { pass: 4 }, action: { kind: 'write', proc: 1, page: 30, content: 40 } },
    ],
    endPass: 7,
  },
  // 5: more sharers than max_page_sharing: chains of dups (never pruned / pruned at every search).
  {
    name: 'f5-chains-no-prune',
    family: 5,
    knobs: knobs({ max_page_sharing: 2, stable_node_chains_prune_millisecs: 3_600_000 }),
    procs: [0, 1, 0, 1, 0].map((node) => ({ node, contents: range(1, 8) })),
    initial: [0, 1, 2, 3, 4],
    events: [{ at: { pass: 3 }, action: { kind: 'write', proc: 1, page: 2, content: 9999 } }],
    endPass: 5,
  },
  {
    name: 'f5-chains-prune',
    family: 5,
    knobs: knobs({ max_page_sharing: 3, stable_node_chains_prune_millisecs: 0 }),
    procs: [0, 1, 0, 1, 0, 1].map((node) => ({ node, contents: range(1, 8) })),
    initial: [0, 1, 2, 3, 4, 5],
    events: [{ at: { pass: 3 }, action: { kind: 'write', proc: 2, page: 1, content: 9999 } }],
    endPass: 5,
  },
  // A COW-broken page rewritten with its old content while its KSM page is full: up to 6.10 the stable
  // search still counts the broken item (no candidate: the page waits a pass); 6.11+ removes it first.
  {
    name: 'f5-cow-rejoin-full',
    family: 5,
    knobs: knobs({ max_page_sharing: 2, stable_node_chains_prune_millisecs: 3_600_000 }),
    procs: [{ node: 0, contents: range(1, 8) }, { node: 1, contents: range(1, 8) }],
    initial: [0, 1],
    events: [{ at: { pass: 2 }, action: { kind: 'write', proc: 0, page: 3, content: 4 } }],
    endPass: 6,
  },
  // Two dups that can take a sharer (the older fuller): without pruning the first in chain order (the newest) takes it.
  {
    name: 'f5-chains-first-candidate',
    family: 5,
    knobs: knobs({ max_page_sharing: 4, stable_node_chains_prune_millisecs: 3_600_000 }),
    procs: [0, 1, 0, 1, 0, 1, 0].map((node) => ({ node, contents: range(1, 4) })),
    initial: [0, 1, 2, 3, 4, 5],
    events: [
      { at: { pass: 2 }, action: { kind: 'write', proc: 1, page: 0, content: 9001 } },
      { at: { pass: 2 }, action: { kind: 'write', proc: 1, page: 1, content: 9002 } },
      { at: { pass: 3 }, action: { kind: 'register', proc: 6 } },
    ],
    endPass: 6,
  },
  // 6: merge_across_nodes=0: only same-node pages merge, one tree pair per node.
  {
    name: 'f6-per-node-trees',
    family: 6,
    knobs: knobs({ merge_across_nodes: 0 }),
    procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }, { node: 0, contents: [...range(1, 16), ...range(2001, 2016)] }, { node: 1, contents: range(9, 24) }],
    initial: [0, 1, 2, 3],
    events: [],
    endPass: 3,
  },
  // 7: smart scan (6.7+): unmerged pages skipped for 1, 2, 4, 8 passes after 3 visits.
  {
    name: 'f7-smart-scan',
    family: 7,
    knobs: knobs({ smart_scan: 1 }),
    procs: [{ node: 0, contents: [...range(1, 16), ...range(3001, 3016)] }, { node: 1, contents: [...range(1, 16), ...range(4001, 4016)] }],
    initial: [0, 1],
    events: [{ at: { pass: 6 }, action: { kind: 'write', proc: 1, page: 20, content: 3005 } }],
    endPass: 12,
  },
  // 8: an instance exits in the middle of a pass (and one at a pass end).
  {
    name: 'f8-exit-mid-pass',
    family: 8,
    knobs: knobs(),
    procs: [{ node: 0, contents: range(1, 24) }, { node: 1, contents: range(1, 24) }, { node: 0, contents: range(1, 24) }, { node: 1, contents: range(13, 36) }],
    initial: [0, 1, 2, 3],
    events: [
      { at: { batch: 16 }, action: { kind: 'exit', proc: 1 } },
      { at: { pass: 3 }, action: { kind: 'exit', proc: 0 } },
    ],
    endPass: 5,
  },
  // The exiting mm was already scanned in this pass: its unstable-tree entries are met by the next mm's
  // identical pages before ksmd drops them, so those searches end without inserting (unstable_tree_search_insert).
  {
    name: 'f8-exit-behind-cursor',
    family: 8,
    knobs: knobs(),
    procs: [{ node: 0, contents: range(1, 32) }, { node: 1, contents: range(1, 32) }],
    initial: [0, 1],
    events: [{ at: { batch: 14 }, action: { kind: 'exit', proc: 0 } }],
    endPass: 4,
  },
];

/** Families whose smart-scan knob needs Linux 6.7+ (not run on 6.1). */
export function scenarioRunsOn(s: KsmScenario, release: string): boolean {
  const [maj, min] = release.split('.').map(Number);
  return s.knobs.smart_scan !== 1 || maj > 6 || (maj === 6 && min >= 7);
}
