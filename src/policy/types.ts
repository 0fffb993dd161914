// Public vocabulary of the reference KSM / nuKSM model. Nothing here depends on the rest of the project.

export type PlacementPolicy = 'ksm' | 'nuksm-fair' | 'nuksm-priority';
/** 'upto-6.10': stable-tree search before the checksum gate (v5.4, the nuKSM base); 'from-6.11': checksum gate first. */
export type CompareOrder = 'upto-6.10' | 'from-6.11';

export interface KsmModelConfig {
  nodes: number;
  pagesToScan: number;
  sleepMillisecs: number;
  mergeAcrossNodes: boolean;
  maxPageSharing: number;
  compareOrder: CompareOrder;
  policy: PlacementPolicy;
  /** nuKSM forest: one stable+unstable tree per this many pages of registered memory; null = one tree (per node). */
  forestPagesPerTree: number | null;
  seed: number;
  /**
   * Linux 6.7+ smart scan (sysfs smart_scan, on by default in those kernels): a page that stayed unmerged
   * for 3+ visits is skipped for 1, 2, 4 then 8 passes between visits. Optional; default false (v5.4).
   */
  smartScan?: boolean;
  /**
   * stable_node_chains_prune_millisecs (default 2000): a chain's dups are walked for the fullest one (and
   * stale dups pruned) at most once per this interval of ksmd time (wake-ups x sleepMillisecs); in between,
   * a sharer joins the first dup of the chain that can take one (stable_node_dup()).
   */
  chainPruneMillisecs?: number;
  /**
   * Counterfactual rules for mutation tests only (test/policy/scenario-fixtures.test.ts): each breaks one
   * rule of mm/ksm.c so the validation against recorded kernel runs can be shown to catch it. Never set
   * outside those tests.
   */
  mutation?: 'tail-insertion' | 'keep-tree-page';
  /**
   * Layout of the stable/unstable tree maps (content-map.ts): 'auto' (the default) picks it from the contents
   * seen; 'hash' / 'direct' fix it, for tests that check both layouts give the same run. Never changes a result.
   */
  mapLayout?: 'auto' | 'hash' | 'direct';
}

export interface MmRegistration {
  name: string;
  nice: number;
  /**
   * Content id per page in address order; equal ids = identical pages; NOT_PRESENT = no page mapped there.
   * The model keeps this array: after registration, change it only through KsmModel.writePage.
   */
  contents: Uint32Array;
  /** Physical node of each page before any merge (also where a COW copy is allocated). */
  nodes: Uint8Array;
  /** 1 = page on the active LRU list; the caller may mutate it at any time. */
  active: Uint8Array;
}

export interface WakeStats {
  pagesVisited: number;
  comparisons: number;
  merges: number;
  passEnded: boolean;
}

export interface KsmCounters {
  pagesShared: number;
  pagesSharing: number;
  pagesUnshared: number;
  pagesVolatile: number;
  fullScans: number;
}

/** One successful merge, in the order the model performs them (for merge-by-merge comparison with kernel traces). */
export interface MergeEvent {
  /** 'unstable' = two private pages became one new KSM page; 'stable' = a private page joined an existing KSM page. */
  kind: 'stable' | 'unstable';
  /** The mm whose page ksmd was scanning when the merge happened. */
  scannedMm: number;
  scannedPage: number;
  /** Owner (mm, page) of the physical copy that survives, and its node. */
  keptMm: number;
  keptPage: number;
  keptNode: number;
  /** The other side: the unstable-tree page, or for a stable hit the KSM page's previous physical owner. */
  otherMm: number;
  otherPage: number;
  otherNode: number;
  /** Id of the KSM page (stable node) after the merge; ids may be reused after a KSM page is freed. */
  ksmPage: number;
  fullScans: number;
}

/** Content id marking an address with no present page (not visited, costs no scan budget). */
export const NOT_PRESENT = 0xffffffff;
