// Reference model of Linux KSM (mm/ksm.c, v5.4 .. v6.12 logic) and of the nuKSM placement policies.
// Rules and the reading of the paper behind them: docs/policy.md. Per-page state lives in typed arrays
// (one set per registered mm), KSM pages ("stable nodes") in typed arrays sized to the live pages, and the stable
// and unstable trees in maps keyed by content id (content-map.ts: chunked arrays for runs of consecutive ids,
// hash maps otherwise); a tree search is *charged* the comparisons a balanced rbtree of the same size would make,
// ceil(log2(n + 1)).

import { ContentMap } from './content-map.ts';
import { mix32 } from './hash.ts';
import { fairKeepsCandidate, fairKeepsFirstOfPair, newRoundRobin, priorityKeepsCandidate, sniceOf, type RoundRobinState } from './placement.ts';
import { SplitMix32 } from './random.ts';
import {
  NOT_PRESENT,
  type KsmCounters,
  type KsmModelConfig,
  type MergeEvent,
  type MmRegistration,
  type WakeStats,
} from './types.ts';

export function defaultKsmModelConfig(overrides: Partial<KsmModelConfig> = {}): KsmModelConfig {
  return {
    nodes: 2,
    pagesToScan: 100,
    sleepMillisecs: 20,
    mergeAcrossNodes: true,
    maxPageSharing: 256,
    compareOrder: 'upto-6.10',
    policy: 'ksm',
    forestPagesPerTree: null,
    seed: 1,
    smartScan: false,
    ...overrides,
  };
}

// Per-page flag bits.
const HAS_ITEM = 1; // an rmap_item exists (the page was visited at least once)
const UNSTABLE = 2; // the rmap_item carries UNSTABLE_FLAG (counted in pages_unshared until revisited)
const MAPS_KSM = 4; // the page currently maps a KSM page (cleared by a COW write)
const IN_STABLE = 8; // the rmap_item is linked in a stable node's hlist (stableOf/itemNext are valid)
/**
 * The checksum stored at the last checksum-gate update is that of the page's current content (not written since),
 * so it is not kept in oldChecksum: writePage(s) saves it there before the first write that follows. The model
 * testbed never rewrites a page, so oldChecksum is never touched there (4 B per page of memory never written).
 */
const CHECKSUM_CURRENT = 16;

const NONE = -1;

interface MmState {
  id: number;
  name: string;
  snice: number;
  /** First global page id (gid) of this mm; gids are never reused. */
  base: number;
  pages: number;
  /**
   * Every page at or above this index is not present and has no rmap_item (flags 0), so a scan can stop
   * there: the part of an mm not populated yet (a booting VM, Fig. 8's growing memory hog) costs nothing.
   * Only grows (writePage); a page that vanishes below it is met by the scan as before.
   */
  presentEnd: number;
  alive: boolean;
  contents: Uint32Array;
  regNodes: Uint8Array;
  active: Uint8Array;
  flags: Uint8Array;
  /** Checksum stored at the last gate update, where flags lack CHECKSUM_CURRENT (0 before the first visit). */
  oldChecksum: Uint32Array;
  /**
   * Stable node this page's rmap_item is linked in (may outlive a COW until the next visit); valid where flags
   * has IN_STABLE. Allocated at the mm's first merge: an mm that never merges (Fig. 8's memory hog) has none.
   */
  stableOf: Int32Array;
  /** Next rmap_item (gid) in the same stable node's hlist, or NONE; valid where flags has IN_STABLE. */
  itemNext: Int32Array;
  mergedPages: number;
  /** Smart scan (6.7+): rmap_item age and remaining skips; empty when smart scan is off. */
  age: Uint8Array;
  skips: Uint8Array;
  /** mergedPerNode[n]: pages of this mm that map a KSM page living on node n (kept up to date incrementally). */
  mergedPerNode: Int32Array;
}

/** Non-zero page checksum: the checksum gate compares it with the value stored at the previous visit (0 initially). */
function checksumOf(content: number): number {
  return mix32(content ^ 0x5bd1e995) || 1;
}

/**
 * c % n for a uint32 c (a checksum) and an integer 1 <= n < 2^31, given inv = 1 / n: V8 computes % of a number above
 * 2^31 as a floating-point remainder, several times slower (the nuKSM forest picks a tree per page visit). c * inv
 * is within c / n * 2^-51 < 1 of c / n, so the floor is off by at most one and one correction makes it exact.
 */
export function remainderU32(c: number, n: number, inv: number): number {
  const r = c - Math.floor(c * inv) * n;
  return r < 0 ? r + n : r >= n ? r - n : r;
}

/**
 * Index of the first byte >= limit (1 <= limit <= 128), or -1; four bytes per step where the array is 4-byte
 * aligned (registration checks the node of every page: ~47 M at Fig. 8 scale). A byte b has b >= limit iff
 * b >= 128 or (b & 127) + (128 - limit) >= 128; the sums stay below 256, so no carry crosses a byte.
 */
export function firstByteAtLeast(bytes: Uint8Array, limit: number): number {
  const n = bytes.length;
  let i = 0;
  if (bytes.byteOffset % 4 === 0 && n >= 4) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);
    const add = Math.imul(128 - limit, 0x01010101);
    for (let w = 0; w < words.length; w++) {
      const x = words[w];
      if (((x | ((x & 0x7f7f7f7f) + add)) & 0x80808080) !== 0) {
        i = w * 4;
        break;
      }
      i = (w + 1) * 4;
    }
  }
  for (; i < n; i++) if (bytes[i] >= limit) return i;
  return -1;
}

/**
 * 1 + the index of the last present page (0 if none). Four pages per step where they are all NOT_PRESENT (the
 * model testbed registers its VMs and the memory hog before writing any page: ~47 M pages at Fig. 8 scale).
 */
export function presentEndOf(contents: Uint32Array): number {
  let end = contents.length;
  while (end >= 4 && (contents[end - 1] & contents[end - 2] & contents[end - 3] & contents[end - 4]) === (NOT_PRESENT | 0)) end -= 4;
  while (end > 0 && contents[end - 1] === NOT_PRESENT) end--;
  return end;
}

/** Comparisons of one search in a balanced binary tree of n nodes. */
function treeSearchCost(n: number): number {
  return 32 - Math.clz32(n);
}

export class KsmModel {
  /** Called after every successful merge (set it before calling wake()). */
  onMerge: ((e: MergeEvent) => void) | null = null;

  totalComparisons = 0;
  totalMerges = 0;
  totalPagesVisited = 0;
  /**
   * Bumped whenever a page may have changed the physical page it maps (a merge, a COW or unmap of a KSM page, a
   * KSM page moving node): pageNode() answers as before while it stays the same.
   */
  placementChanges = 0;

  private readonly nodes: number;
  private readonly treeNids: number; // tree pairs per forest slot: 1 with merge_across_nodes, else one per node
  private readonly rng: SplitMix32;
  private readonly mms: MmState[] = [];
  /** Scan order (mm ids); the kernel's circular mm_slot list without the head. */
  private readonly order: number[] = [];
  /** Index into `order` of the mm being scanned; -1 = at the list head (between passes). */
  private cursorPos = -1;
  private cursorAddr = 0;
  private nextGid = 0;

  private fullScans = 0;
  /** pages_skipped (smart scan). */
  pagesSkipped = 0;
  private pagesShared = 0;
  private pagesSharing = 0;
  private pagesUnshared = 0;
  private rmapItems = 0;

  // Forest geometry: trees per node; tree index = nid * ntrees + checksum % ntrees.
  private ntrees = 1;
  private ntreesInv = 1;
  private stableTreeSize = new Int32Array(1);
  private unstableTreeSize = new Int32Array(1);
  private readonly stableMap: ContentMap[] = [];
  private readonly unstableMap: ContentMap[] = [];

  // Stable nodes (KSM pages).
  private sCap = 0;
  private sAlive = new Uint8Array(0);
  private sNode = new Uint8Array(0); // node of the physical KSM page
  private sNid = new Uint8Array(0); // tree nid it is linked in
  private sContent = new Uint32Array(0);
  // Counts bounded by max_page_sharing (mappers <= items <= max_page_sharing): 16 bits unless it is above 65535.
  private sItems: Uint16Array | Int32Array = new Int32Array(0); // rmap_hlist_len
  private sMappers: Uint16Array | Int32Array = new Int32Array(0); // pages that currently map it
  private sHead = new Int32Array(0); // first rmap_item gid
  private sOwner = new Int32Array(0); // gid whose physical copy the KSM page is
  private sNextDup = new Int32Array(0); // next dup with the same content (max_page_sharing chain)
  private sOrigNodeCount: Uint16Array | Int32Array = new Int32Array(0); // [s * nodes + n]: mappers whose own copy was on node n
  private sFree: number[] = [];
  /** Live KSM pages per node. */
  private ksmPagesOnNode: Int32Array;
  private sUsed = 0;
  /** Pages of the live mms: a bound on live KSM pages (each has a mapper), so on sUsed. */
  private livePages = 0;

  // Presence filter over stable-tree contents (one bit per hashed content, ~16 bits per key, cache-resident):
  // it only skips hash-table probes that would miss; it never changes a result or the comparisons charged.
  private stableFilter = new Uint32Array((1 << 16) / 32);
  private stableFilterMask = (1 << 16) - 1;
  private stableKeys = 0;
  private stableKeysAtFilterBuild = 0;
  /** Each stable map's layoutChanges when the filter was last built. */
  private readonly stableFilterLayouts: number[] = [];
  private stableKeyDeletions = 0;

  // nuKSM fair: round-robin pointers, one per class so that the classes are each split evenly.
  /** ksmd time in ms (wake-ups x sleepMillisecs): drives stable_node_chains_prune_millisecs. */
  private nowMs = 0;
  /** chain_prune_time per chain (content key of nid * 2^32 + content), set when the chain is created. */
  private readonly chainPruneTime = new Map<number, number>();
  private readonly rr: RoundRobinState = newRoundRobin();
  private mmStamp = new Int32Array(16);
  private stamp = 0;
  // From cfg, read once per visit or merge (a string compare per page visit is measurable at paper scale).
  private readonly gateFirst: boolean;
  private readonly fair: boolean;
  private readonly priority: boolean;

  constructor(readonly cfg: KsmModelConfig) {
    if (!(cfg.nodes >= 1 && cfg.nodes <= 32)) throw new RangeError(`KsmModel: nodes must be 1..32, got ${cfg.nodes}`);
    if (!(cfg.pagesToScan >= 1)) throw new RangeError(`KsmModel: pagesToScan must be >= 1, got ${cfg.pagesToScan}`);
    if (!(cfg.maxPageSharing >= 2)) throw new RangeError(`KsmModel: maxPageSharing must be >= 2, got ${cfg.maxPageSharing}`);
    if (cfg.forestPagesPerTree !== null && !(cfg.forestPagesPerTree >= 1)) {
      throw new RangeError(`KsmModel: forestPagesPerTree must be >= 1 or null, got ${cfg.forestPagesPerTree}`);
    }
    this.nodes = cfg.nodes;
    this.gateFirst = cfg.compareOrder === 'from-6.11';
    this.fair = cfg.policy === 'nuksm-fair';
    this.priority = cfg.policy === 'nuksm-priority';
    this.ksmPagesOnNode = new Int32Array(cfg.nodes);
    this.treeNids = cfg.mergeAcrossNodes ? 1 : cfg.nodes;
    this.rng = new SplitMix32(cfg.seed);
    for (let i = 0; i < this.treeNids; i++) {
      this.stableMap.push(new ContentMap(cfg.mapLayout));
      this.unstableMap.push(new ContentMap(cfg.mapLayout));
      this.stableFilterLayouts.push(0);
    }
    this.stableTreeSize = new Int32Array(this.treeNids);
    this.unstableTreeSize = new Int32Array(this.treeNids);
    this.growStable(1024);
  }

  // ------------------------------------------------------------------ registration

  /** Registers an mm (madvise MERGEABLE): inserted just behind the scan cursor, as __ksm_enter does. */
  registerMm(reg: MmRegistration): number {
    const n = reg.contents.length;
    if (reg.nodes.length !== n || reg.active.length !== n) {
      throw new RangeError(`KsmModel.registerMm(${reg.name}): contents/nodes/active lengths differ`);
    }
    if (!(reg.nice >= -20 && reg.nice <= 20)) throw new RangeError(`KsmModel.registerMm(${reg.name}): nice ${reg.nice} out of -20..20`);
    const badNode = firstByteAtLeast(reg.nodes, this.nodes);
    if (badNode >= 0) throw new RangeError(`KsmModel.registerMm(${reg.name}): page ${badNode} on node ${reg.nodes[badNode]} >= nodes`);
    const presentEnd = presentEndOf(reg.contents);
    const id = this.mms.length;
    this.mms.push({
      id,
      name: reg.name,
      snice: sniceOf(reg.nice),
      base: this.nextGid,
      pages: n,
      presentEnd,
      alive: true,
      contents: reg.contents,
      regNodes: reg.nodes,
      active: reg.active,
      // Written through at once: the scan reads a page's flags before its first write, and a read of never-touched
      // memory maps the zero page, so every 4 KiB would fault twice.
      flags: new Uint8Array(n).fill(0),
      oldChecksum: new Uint32Array(n),
      stableOf: new Int32Array(0),
      itemNext: new Int32Array(0),
      mergedPages: 0,
      mergedPerNode: new Int32Array(this.nodes),
      age: new Uint8Array(this.cfg.smartScan ? n : 0),
      skips: new Uint8Array(this.cfg.smartScan ? n : 0),
    });
    this.nextGid += n;
    this.livePages += n;
    this.reserveStable();
    if (this.nextGid > 0x7fffffff) throw new RangeError('KsmModel: more than 2^31 pages registered in total');
    if (id >= this.mmStamp.length) {
      const grown = new Int32Array(this.mmStamp.length * 2);
      grown.set(this.mmStamp);
      this.mmStamp = grown;
    }
    if (this.cursorPos < 0 || this.cfg.mutation === 'tail-insertion') {
      this.order.push(id); // cursor at the head: list_add_tail before the head = the tail
    } else {
      this.order.splice(this.cursorPos, 0, id); // just behind the cursor: not visited in this pass
      this.cursorPos++;
    }
    return id;
  }

  /** Process exit: every rmap_item of the mm is dropped and its KSM mappings released. */
  unregisterMm(mmId: number): void {
    const mm = this.liveMm(mmId);
    const flags = mm.flags;
    for (let p = 0; p < mm.pages; p++) {
      const f = flags[p];
      if (f === 0) continue;
      if (f & MAPS_KSM) this.unmapKsm(mm, p);
      if (flags[p] & IN_STABLE) this.removeItemFromStable(mm, p); // re-read: unmapKsm may have freed the KSM page
      if (f & UNSTABLE) this.pagesUnshared--;
      if (f & HAS_ITEM) this.rmapItems--;
      flags[p] = 0;
    }
    const pos = this.order.indexOf(mmId);
    this.order.splice(pos, 1);
    if (pos < this.cursorPos) this.cursorPos--;
    else if (pos === this.cursorPos) this.cursorAddr = 0; // the next mm now sits at cursorPos
    mm.alive = false;
    this.livePages -= mm.pages;
    // Drop per-page arrays; stale unstable-tree entries pointing here fail validation (alive = false).
    mm.flags = new Uint8Array(0);
    mm.oldChecksum = new Uint32Array(0);
    mm.stableOf = new Int32Array(0);
    mm.itemNext = new Int32Array(0);
    mm.age = new Uint8Array(0);
    mm.skips = new Uint8Array(0);
  }

  /**
   * A write by the mm to one of its pages. A merged page is COW-broken: the writer gets a private copy on
   * its own node (nodes[page] of its registration). The rmap_item stays in the KSM page's hlist until ksmd
   * revisits the address, as in the kernel. NOT_PRESENT as new content unmaps the page.
   */
  writePage(mmId: number, page: number, newContent: number): void {
    const mm = this.liveMm(mmId);
    if (!(page >= 0 && page < mm.pages)) throw new RangeError(`KsmModel.writePage: page ${page} out of range for ${mm.name}`);
    if (mm.flags[page] & MAPS_KSM) this.unmapKsm(mm, page);
    if (mm.flags[page] & CHECKSUM_CURRENT) this.saveChecksum(mm, page);
    mm.contents[page] = newContent >>> 0;
    if (page >= mm.presentEnd && newContent >>> 0 !== NOT_PRESENT) mm.presentEnd = page + 1;
  }

  /**
   * writePage(mmId, start + i, values[i]) for every i, in one call (the model testbed reveals millions of pages
   * at a time: a call per page costs more than the write).
   */
  writePages(mmId: number, start: number, values: Uint32Array): void {
    const mm = this.liveMm(mmId);
    const end = start + values.length;
    if (!(start >= 0 && end <= mm.pages)) throw new RangeError(`KsmModel.writePages: pages ${start}..${end - 1} out of range for ${mm.name}`);
    const flags = mm.flags;
    const contents = mm.contents;
    // Pages at or above presentEnd have no rmap_item (flags 0), so no KSM mapping to break.
    const mapped = Math.min(end, mm.presentEnd);
    let last = -1;
    let p = start;
    for (; p < mapped; p++) {
      if (flags[p] & MAPS_KSM) this.unmapKsm(mm, p);
      if (flags[p] & CHECKSUM_CURRENT) this.saveChecksum(mm, p);
      contents[p] = values[p - start];
    }
    if (p < end) {
      contents.set(p === start ? values : values.subarray(p - start), p); // a copy, nothing else to do there
      for (let q = end - 1; q >= p; q--) {
        if (values[q - start] !== NOT_PRESENT) {
          last = q;
          break;
        }
      }
    }
    if (last >= mm.presentEnd) mm.presentEnd = last + 1;
  }

  /** Before a page's content changes: the checksum stored at its last gate update goes to oldChecksum. */
  private saveChecksum(mm: MmState, p: number): void {
    mm.oldChecksum[p] = checksumOf(mm.contents[p]);
    mm.flags[p] &= ~CHECKSUM_CURRENT;
  }

  // ------------------------------------------------------------------ scanning

  /** One ksmd wake-up: up to pagesToScan present pages; the end of a full pass drops the rest of the budget. */
  wake(): WakeStats {
    const comparisons0 = this.totalComparisons;
    const merges0 = this.totalMerges;
    let budget = this.cfg.pagesToScan;
    this.nowMs += this.cfg.sleepMillisecs;
    let visited = 0;
    let passEnded = false;
    while (budget > 0) {
      if (this.cursorPos < 0) {
        if (this.order.length === 0) break; // ksmd_should_run() is false with no mm registered
        this.startPass();
      }
      if (this.cursorPos >= this.order.length) {
        this.endPass();
        passEnded = true;
        break;
      }
      const mm = this.mms[this.order[this.cursorPos]];
      let addr = this.cursorAddr;
      if (addr >= mm.presentEnd) {
        this.cursorPos++;
        this.cursorAddr = 0;
        continue;
      }
      const contents = mm.contents;
      const flags = mm.flags;
      const smartScan = mm.age.length !== 0;
      const end = mm.presentEnd;
      while (addr < end && budget > 0) {
        if (contents[addr] === NOT_PRESENT) {
          if (flags[addr] !== 0) this.dropItem(mm, addr); // the kernel frees rmap_items of vanished pages
          addr++;
          continue;
        }
        if (flags[addr] & MAPS_KSM) {
          // Already a KSM page linked in its stable node: cmp_and_merge_page returns at once.
        } else if (smartScan && this.smartScanSkips(mm, addr)) {
          addr++; // skipped pages use no budget
          continue;
        } else {
          this.visit(mm, addr);
        }
        addr++;
        budget--;
        visited++;
      }
      this.cursorAddr = addr;
    }
    this.totalPagesVisited += visited;
    return {
      pagesVisited: visited,
      comparisons: this.totalComparisons - comparisons0,
      merges: this.totalMerges - merges0,
      passEnded,
    };
  }

  /** should_skip_rmap_item() (6.7+), for a page that is not a KSM page; the rmap_item exists from here on. */
  private smartScanSkips(mm: MmState, p: number): boolean {
    let f = mm.flags[p];
    if (!(f & HAS_ITEM)) {
      f |= HAS_ITEM;
      mm.flags[p] = f;
      this.rmapItems++;
    }
    const age = mm.age[p];
    if (age !== 255) mm.age[p] = age + 1;
    if (age < 3) return false;
    if (mm.skips[p] === 0) {
      mm.skips[p] = age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
      return false;
    }
    mm.skips[p]--;
    this.pagesSkipped++;
    // remove_rmap_item_from_tree()
    if (f & UNSTABLE) {
      mm.flags[p] = f & ~UNSTABLE;
      this.pagesUnshared--;
    }
    if (f & IN_STABLE) this.removeItemFromStable(mm, p);
    return true;
  }

  private startPass(): void {
    this.recomputeForest();
    if (this.stableKeyDeletions > this.stableKeysAtFilterBuild) this.rebuildStableFilter(); // drop stale bits
    // root_unstable_tree[nid] = RB_ROOT. Size the maps once for the pages that may be inserted this pass.
    const candidates = Math.max(0, this.rmapItems - this.pagesShared - this.pagesSharing);
    for (const m of this.unstableMap) {
      m.clearFor(Math.ceil(candidates / this.treeNids));
    }
    this.unstableTreeSize.fill(0);
    this.cursorPos = 0;
    this.cursorAddr = 0;
  }

  private endPass(): void {
    this.fullScans++; // ksm_scan.seqnr++
    this.cursorPos = -1;
    this.cursorAddr = 0;
  }

  /** cmp_and_merge_page() for a page that is not (or no longer) a KSM page. */
  private visit(mm: MmState, p: number): void {
    const flags = mm.flags;
    let f = flags[p];
    const content = mm.contents[p];
    const checksum = checksumOf(content);
    // The checksum stored at the previous gate update: 0 without an rmap_item (dropItem zeroes oldChecksum).
    const oldChecksum = f & CHECKSUM_CURRENT ? checksum : f & HAS_ITEM ? mm.oldChecksum[p] : 0;
    if (!(f & HAS_ITEM)) {
      f |= HAS_ITEM;
      this.rmapItems++;
    }
    if (f & UNSTABLE) {
      f &= ~UNSTABLE;
      this.pagesUnshared--;
    }
    flags[p] = f;
    const gateFirst = this.gateFirst;
    // COW-broken since the last visit: 6.11+ removes the rmap_item from its stable node before anything
    // else; up to 6.10 stable_tree_search() runs first, so the dup it picks still counts this item.
    let removeAfterSearch = false;
    if (f & IN_STABLE) {
      if (gateFirst) this.removeItemFromStable(mm, p);
      else removeAfterSearch = true;
    }

    // The content as an int32 (same bits) for the calls below: a uint32 above 2^31 passed to a call that is not
    // inlined is boxed in a heap number, an allocation per page visit (unique contents are >= 2^31 in the testbed).
    const key = content | 0;
    const nid = this.treeNids === 1 ? 0 : mm.regNodes[p];
    const tree = nid * this.ntrees + (this.ntrees === 1 ? 0 : remainderU32(checksum, this.ntrees, this.ntreesInv));

    if (gateFirst && checksum !== oldChecksum) {
      flags[p] |= CHECKSUM_CURRENT; // volatile: changed since the previous visit; the stored checksum is now this one
      return;
    }
    this.totalComparisons += treeSearchCost(this.stableTreeSize[tree]);
    const s = this.stableMayHave(nid, key) ? this.stableSearch(nid, key) : NONE;
    if (removeAfterSearch) this.removeItemFromStable(mm, p);
    if (s !== NONE) {
      this.mergeIntoStable(mm, p, s);
      return;
    }
    if (!gateFirst && checksum !== oldChecksum) {
      flags[p] |= CHECKSUM_CURRENT;
      return;
    }
    this.totalComparisons += treeSearchCost(this.unstableTreeSize[tree]);
    const map = this.unstableMap[nid];
    const gid = mm.base + p;
    const tGid = map.getOrInsert(key, gid);
    if (tGid !== NONE) {
      const tMm = this.mmOfGid(tGid);
      const tp = tGid - tMm.base;
      if (tGid !== gid && tMm.alive && tMm.flags[tp] & UNSTABLE && tMm.contents[tp] === content) {
        // The tree page leaves the unstable tree; its map entry goes stale (UNSTABLE cleared) and is
        // overwritten if the content is ever inserted again this pass.
        this.unstableTreeSize[tree]--;
        this.mergeTwo(mm, p, tMm, tp, nid);
        return;
      }
      if (!tMm.alive || tMm.contents[tp] === NOT_PRESENT) {
        // unstable_tree_search_insert(): get_mergeable_page() of a vanished tree page fails and the search
        // returns NULL without inserting the scanned page (it stays out of the tree until the next pass).
        return;
      }
      map.set(key, gid); // the entry was stale (page changed or merged): replace it in place
    }
    // No match: the scanned page is now in the unstable tree.
    this.unstableTreeSize[tree]++;
    flags[p] |= UNSTABLE;
    this.pagesUnshared++;
  }

  /**
   * The KSM page to merge into (stable_node_dup() via chain_prune()): a content with one KSM page takes a
   * sharer while it is below max_page_sharing. A chain (several dups of one content, 4.13+) is walked in
   * its hlist order (newest dup first): normally the first dup that can take a sharer; once per
   * stable_node_chains_prune_millisecs the fullest one (first of equals). A found dup that is not first and
   * can take two more sharers moves to the front.
   */
  /** content: as an int32 or a uint32 (the same bits). */
  private stableSearch(nid: number, content: number): number {
    const head = this.stableMap[nid].get(content);
    if (head === NONE) return NONE;
    if (this.sNextDup[head] === NONE) return this.sItems[head] < this.cfg.maxPageSharing ? head : NONE;
    return this.chainSearch(nid, content, head);
  }

  /** stableSearch for a content with several dups (kept apart so that the common cases above stay small). */
  private chainSearch(nid: number, content: number, head: number): number {
    const map = this.stableMap[nid];
    const max = this.cfg.maxPageSharing;
    const key = nid * 0x100000000 + (content >>> 0);
    const interval = this.cfg.chainPruneMillisecs ?? 2000;
    let prune = false;
    if (this.nowMs - (this.chainPruneTime.get(key) ?? 0) >= interval) {
      prune = true;
      this.chainPruneTime.set(key, this.nowMs);
    }
    let found = NONE;
    let prev = NONE;
    let foundPrev = NONE;
    for (let d = head; d !== NONE; prev = d, d = this.sNextDup[d]) {
      const items = this.sItems[d];
      if (items > 0 && items < max && (found === NONE || items > this.sItems[found])) {
        found = d;
        foundPrev = prev;
        if (!prune) break;
      }
    }
    if (found !== NONE && found !== head && this.sItems[found] + 1 < max) {
      this.sNextDup[foundPrev] = this.sNextDup[found];
      this.sNextDup[found] = head;
      map.set(content, found);
    }
    return found;
  }

  /** Unlinks dup s from its content's chain; returns false if the chain became empty (key removed). */
  private unlinkDup(s: number): boolean {
    const map = this.stableMap[this.sNid[s]];
    const content = this.sContent[s];
    const head = map.get(content | 0);
    const next = this.sNextDup[s];
    if (head === s) {
      if (next === NONE) {
        map.delete(content | 0);
        this.chainPruneTime.delete(this.sNid[s] * 0x100000000 + content);
        return false;
      }
      map.set(content | 0, next);
    } else {
      for (let d = head; d !== NONE; d = this.sNextDup[d]) {
        if (this.sNextDup[d] === s) {
          this.sNextDup[d] = next;
          break;
        }
      }
    }
    this.sNextDup[s] = NONE;
    return true;
  }

  // ------------------------------------------------------------------ merges and placement policy

  /** Stable-tree hit: the scanned page joins KSM page s. Linux keeps s; nuKSM may keep the scanned copy instead. */
  private mergeIntoStable(mm: MmState, p: number, s: number): void {
    const candNode = mm.regNodes[p];
    const ksmNode = this.sNode[s];
    const previousOwner = this.sOwner[s];
    let keepCandidate = false;
    if (candNode !== ksmNode) {
      if (this.fair) keepCandidate = this.fairKeepsCandidateOverStable(mm, p, s);
      else if (this.priority) keepCandidate = this.priorityKeepsCandidateOverStable(mm, s);
    }
    if (keepCandidate) {
      // nuKSM keeps the scanned page's physical copy: the KSM page now lives on the candidate's node.
      this.moveKsmPage(s, candNode);
      this.sOwner[s] = mm.base + p;
    }
    this.appendItem(mm, p, s);
    this.totalMerges++;
    if (this.onMerge) {
      const other = keepCandidate ? previousOwner : mm.base + p;
      const kept = keepCandidate ? mm.base + p : previousOwner;
      const keptMm = this.mmOfGid(kept);
      const otherMm = this.mmOfGid(other);
      this.onMerge({
        kind: 'stable',
        scannedMm: mm.id,
        scannedPage: p,
        keptMm: keptMm.id,
        keptPage: kept - keptMm.base,
        keptNode: this.sNode[s],
        otherMm: otherMm.id,
        otherPage: other - otherMm.base,
        otherNode: keepCandidate ? ksmNode : candNode,
        ksmPage: s,
        fullScans: this.fullScans,
      });
    }
  }

  /** Unstable-tree match: two private pages become one KSM page. Linux keeps the scanned page (S). */
  private mergeTwo(sMm: MmState, sp: number, tMm: MmState, tp: number, nid: number): void {
    const nodeS = sMm.regNodes[sp];
    const nodeT = tMm.regNodes[tp];
    let keepScanned = this.cfg.mutation !== 'keep-tree-page';
    if (nodeS !== nodeT) {
      if (this.fair) {
        keepScanned = fairKeepsFirstOfPair(sMm.active[sp] !== 0, tMm.active[tp] !== 0, nodeS, nodeT, this.rr, this.nodes);
      } else if (this.priority) {
        keepScanned = priorityKeepsCandidate(sMm.snice, sMm.id === tMm.id ? sMm.snice : sMm.snice + tMm.snice, this.rng);
      }
    }
    const sGid = sMm.base + sp;
    const tGid = tMm.base + tp;
    const keptGid = keepScanned ? sGid : tGid;
    const content = sMm.contents[sp] | 0; // int32 bits: see visit()
    const s = this.allocStable(content, nid, keepScanned ? nodeS : nodeT, keptGid);
    tMm.flags[tp] &= ~UNSTABLE;
    this.pagesUnshared--;
    // stable_tree_append: the tree page's item first (pages_shared), then the scanned one (pages_sharing).
    this.appendItem(tMm, tp, s);
    this.appendItem(sMm, sp, s);
    this.totalMerges++;
    if (this.onMerge) {
      this.onMerge({
        kind: 'unstable',
        scannedMm: sMm.id,
        scannedPage: sp,
        keptMm: keepScanned ? sMm.id : tMm.id,
        keptPage: keepScanned ? sp : tp,
        keptNode: keepScanned ? nodeS : nodeT,
        otherMm: keepScanned ? tMm.id : sMm.id,
        otherPage: keepScanned ? tp : sp,
        otherNode: keepScanned ? nodeT : nodeS,
        ksmPage: s,
        fullScans: this.fullScans,
      });
    }
  }

  /** nuKSM fair, N-way case (the rule: fairKeepsCandidate in placement.ts), from this KSM page's sharers. */
  private fairKeepsCandidateOverStable(mm: MmState, p: number, s: number): boolean {
    const base = s * this.nodes;
    let sharerNodes = 0;
    for (let n = 0; n < this.nodes; n++) if (this.sOrigNodeCount[base + n] > 0) sharerNodes++;
    return fairKeepsCandidate(
      {
        candidateActive: mm.active[p] !== 0,
        candidateNodeAmongSharers: this.sOrigNodeCount[base + mm.regNodes[p]] > 0,
        sharerNodes,
        ksmPageActive: () => this.anyMapperActive(s),
      },
      this.rng,
    );
  }

  /** nuKSM priority (priorityKeepsCandidate in placement.ts): the sum of snice over the tasks using the page, current included. */
  private priorityKeepsCandidateOverStable(mm: MmState, s: number): boolean {
    const stamp = ++this.stamp;
    this.mmStamp[mm.id] = stamp;
    let sum = mm.snice;
    for (let g = this.sHead[s]; g !== NONE; ) {
      const m = this.mmOfGid(g);
      const p = g - m.base;
      if (m.flags[p] & MAPS_KSM && this.mmStamp[m.id] !== stamp) {
        this.mmStamp[m.id] = stamp;
        sum += m.snice;
      }
      g = m.itemNext[p];
    }
    return priorityKeepsCandidate(mm.snice, sum, this.rng);
  }

  /** The KSM page's physical copy changes node: every mapper's per-node tally follows. */
  private moveKsmPage(s: number, node: number): void {
    const from = this.sNode[s];
    for (let g = this.sHead[s]; g !== NONE; ) {
      const m = this.mmOfGid(g);
      const p = g - m.base;
      if (m.flags[p] & MAPS_KSM) {
        m.mergedPerNode[from]--;
        m.mergedPerNode[node]++;
      }
      g = m.itemNext[p];
    }
    this.ksmPagesOnNode[from]--;
    this.ksmPagesOnNode[node]++;
    this.sNode[s] = node;
    this.placementChanges++;
  }

  /** A KSM page is on the active list if any of its mappers' accesses keep it there. */
  private anyMapperActive(s: number): boolean {
    for (let g = this.sHead[s]; g !== NONE; ) {
      const m = this.mmOfGid(g);
      const p = g - m.base;
      if (m.flags[p] & MAPS_KSM && m.active[p] !== 0) return true;
      g = m.itemNext[p];
    }
    return false;
  }

  // ------------------------------------------------------------------ stable nodes

  /** content: as an int32 or a uint32 (the same bits). */
  private allocStable(content: number, nid: number, node: number, ownerGid: number): number {
    let s = this.sFree.pop();
    if (s === undefined) {
      if (this.sUsed === this.sCap) this.growStable(Math.ceil(this.sCap * 1.5)); // 1.5x: less slack at 10 M KSM pages
      s = this.sUsed++;
    }
    this.sAlive[s] = 1;
    this.sNode[s] = node;
    this.ksmPagesOnNode[node]++;
    this.sNid[s] = nid;
    this.sContent[s] = content;
    this.sItems[s] = 0;
    this.sMappers[s] = 0;
    this.sHead[s] = NONE;
    this.sOwner[s] = ownerGid;
    for (let n = s * this.nodes, end = n + this.nodes; n < end; n++) this.sOrigNodeCount[n] = 0;
    // Link into the stable tree; an existing content key means every dup is full: chain a new dup (4.13+).
    const head = this.stableMap[nid].swap(content, s);
    this.sNextDup[s] = head;
    if (head !== NONE && this.sNextDup[head] === NONE) {
      const key = nid * 0x100000000 + (content >>> 0);
      if (!this.chainPruneTime.has(key)) this.chainPruneTime.set(key, this.nowMs); // alloc_stable_node_chain()
    }
    if (head === NONE) {
      this.stableTreeSize[this.treeOf(nid, content)]++;
      this.stableKeys++;
      if (!this.stableMap[nid].direct) {
        // (a direct-layout map is not filtered: stableMayHave)
        if (this.stableKeys * 16 > this.stableFilter.length * 32) this.rebuildStableFilter();
        else this.stableFilterAdd(content);
      }
    }
    return s;
  }

  private appendItem(mm: MmState, p: number, s: number): void {
    const gid = mm.base + p;
    if (mm.stableOf.length === 0) {
      mm.stableOf = new Int32Array(mm.pages);
      mm.itemNext = new Int32Array(mm.pages);
    }
    mm.stableOf[p] = s;
    mm.itemNext[p] = this.sHead[s];
    this.sHead[s] = gid;
    if (this.sItems[s] > 0) this.pagesSharing++;
    else this.pagesShared++;
    this.sItems[s]++;
    this.sMappers[s]++;
    this.sOrigNodeCount[s * this.nodes + mm.regNodes[p]]++;
    mm.flags[p] |= MAPS_KSM | IN_STABLE;
    this.placementChanges++;
    mm.mergedPages++;
    mm.mergedPerNode[this.sNode[s]]++;
  }

  /** The page stops mapping KSM page s (COW or exit). The last mapper gone frees the KSM page. */
  private unmapKsm(mm: MmState, p: number): void {
    const s = mm.stableOf[p];
    mm.flags[p] &= ~MAPS_KSM;
    this.placementChanges++;
    mm.mergedPages--;
    mm.mergedPerNode[this.sNode[s]]--;
    this.sMappers[s]--;
    this.sOrigNodeCount[s * this.nodes + mm.regNodes[p]]--;
    if (this.sMappers[s] === 0) this.freeStable(s);
  }

  /** remove_rmap_item_from_tree() for a stable item: hlist_del, then pages_sharing-- or pages_shared--. */
  private removeItemFromStable(mm: MmState, p: number): void {
    const s = mm.stableOf[p];
    const gid = mm.base + p;
    let prev = NONE;
    for (let g = this.sHead[s]; g !== NONE; ) {
      const m = this.mmOfGid(g);
      const next = m.itemNext[g - m.base];
      if (g === gid) {
        if (prev === NONE) this.sHead[s] = next;
        else {
          const pm = this.mmOfGid(prev);
          pm.itemNext[prev - pm.base] = next;
        }
        break;
      }
      prev = g;
      g = next;
    }
    mm.stableOf[p] = NONE;
    mm.itemNext[p] = NONE;
    mm.flags[p] &= ~IN_STABLE;
    this.sItems[s]--;
    if (this.sItems[s] > 0) this.pagesSharing--;
    else this.pagesShared--;
  }

  /**
   * The KSM page lost its last mapper and is freed: remove_node_from_stable_tree() (the kernel does this
   * lazily when it next meets the stale node; the model does it at once). Remaining items are unlinked.
   */
  private freeStable(s: number): void {
    if (!this.unlinkDup(s)) {
      this.stableTreeSize[this.treeOf(this.sNid[s], this.sContent[s])]--;
      this.stableKeys--;
      this.stableKeyDeletions++;
    }
    if (this.sItems[s] > 0) {
      this.pagesShared--;
      this.pagesSharing -= this.sItems[s] - 1;
    }
    for (let g = this.sHead[s]; g !== NONE; ) {
      const m = this.mmOfGid(g);
      const p = g - m.base;
      const next = m.itemNext[p];
      m.stableOf[p] = NONE;
      m.itemNext[p] = NONE;
      m.flags[p] &= ~IN_STABLE;
      g = next;
    }
    this.sItems[s] = 0;
    this.sHead[s] = NONE;
    this.sAlive[s] = 0;
    this.ksmPagesOnNode[this.sNode[s]]--;
    this.sFree.push(s);
  }

  /** A vanished (not present) page: its rmap_item is freed. */
  private dropItem(mm: MmState, p: number): void {
    const f = mm.flags[p];
    if (f & MAPS_KSM) this.unmapKsm(mm, p);
    if (mm.flags[p] & IN_STABLE) this.removeItemFromStable(mm, p);
    if (f & UNSTABLE) this.pagesUnshared--;
    if (f & HAS_ITEM) this.rmapItems--;
    mm.flags[p] = 0;
    mm.oldChecksum[p] = 0;
    if (mm.age.length !== 0) {
      mm.age[p] = 0; // a new rmap_item starts at age 0
      mm.skips[p] = 0;
    }
  }

  /**
   * Sizes the KSM-page arrays for as many KSM pages as there are live pages (bounded at ~2 GiB of arrays; beyond,
   * they grow 1.5x at a time). Only the used prefix is ever written: a fresh zero-filled typed array is mapped
   * lazily by the OS, so the unused rest costs address space, not memory, and the arrays are never copied while
   * merges fill them (copying and first-touching 1.5x-grown arrays cost ~7 % of Fig. 8's CPU time).
   */
  private reserveStable(): void {
    const bytesPerKsmPage = 3 * 1 + 4 * 4 + (this.cfg.maxPageSharing <= 0xffff ? 2 : 4) * (2 + this.nodes);
    const cap = Math.min(this.livePages, Math.floor(2 ** 31 / bytesPerKsmPage));
    if (cap > this.sCap) this.growStable(cap);
  }

  private growStable(cap: number): void {
    const grow = <T extends Uint8Array | Uint16Array | Int32Array | Uint32Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(cap * per);
      b.set(a.subarray(0, this.sUsed * per)); // only the used prefix: the rest is zero in both
      return b;
    };
    this.sAlive = grow(this.sAlive, (n) => new Uint8Array(n));
    this.sNode = grow(this.sNode, (n) => new Uint8Array(n));
    this.sNid = grow(this.sNid, (n) => new Uint8Array(n));
    this.sContent = grow(this.sContent, (n) => new Uint32Array(n));
    const counts = (n: number): Uint16Array | Int32Array => (this.cfg.maxPageSharing <= 0xffff ? new Uint16Array(n) : new Int32Array(n));
    this.sItems = grow(this.sItems, counts);
    this.sMappers = grow(this.sMappers, counts);
    this.sHead = grow(this.sHead, (n) => new Int32Array(n));
    this.sOwner = grow(this.sOwner, (n) => new Int32Array(n));
    this.sNextDup = grow(this.sNextDup, (n) => new Int32Array(n));
    this.sOrigNodeCount = grow(this.sOrigNodeCount, counts, this.nodes);
    this.sCap = cap;
  }

  /** Bit of a content in the filter: low 6 bits kept (consecutive contents share words), the rest mixed. */
  private stableFilterBit(content: number): number {
    return ((mix32(content >>> 6) << 6) | (content & 63)) & this.stableFilterMask;
  }

  /**
   * False only if content is certainly not in nid's stable tree. A direct-layout map answers most misses as cheaply
   * as the filter would (no chunk for the content's run of ids), so it is not filtered and the filter does not get
   * its keys; a map that has changed layout since the filter was built (it may have been direct) gets the filter
   * rebuilt first.
   */
  private stableMayHave(nid: number, content: number): boolean {
    const map = this.stableMap[nid];
    if (map.direct) return map.mayHave(content);
    if (map.size === 0) return false;
    if (map.layoutChanges !== this.stableFilterLayouts[nid]) this.rebuildStableFilter();
    return this.stableFilterMayHave(content);
  }

  private stableFilterMayHave(content: number): boolean {
    const bit = this.stableFilterBit(content);
    return (this.stableFilter[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  private stableFilterAdd(content: number): void {
    const bit = this.stableFilterBit(content);
    this.stableFilter[bit >>> 5] |= 1 << (bit & 31);
  }

  private rebuildStableFilter(): void {
    let bits = 1 << 16;
    while (bits < this.stableKeys * 16 && bits < 2 ** 31) bits *= 2;
    this.stableFilterMask = bits - 1;
    if (this.stableFilter.length * 32 === bits) this.stableFilter.fill(0);
    else this.stableFilter = new Uint32Array(bits / 32);
    for (let nid = 0; nid < this.treeNids; nid++) {
      const map = this.stableMap[nid];
      this.stableFilterLayouts[nid] = map.layoutChanges;
      if (!map.direct) map.forEach((content) => this.stableFilterAdd(content));
    }
    this.stableKeysAtFilterBuild = this.stableKeys;
    this.stableKeyDeletions = 0;
  }

  // ------------------------------------------------------------------ forest

  private treeOf(nid: number, content: number): number {
    return nid * this.ntrees + (this.ntrees === 1 ? 0 : remainderU32(checksumOf(content), this.ntrees, this.ntreesInv));
  }

  /** nuKSM forest size follows registered memory; it is re-evaluated at pass start, when the unstable trees are empty. */
  private recomputeForest(): void {
    const perTree = this.cfg.forestPagesPerTree;
    let ntrees = 1;
    if (perTree !== null) {
      let registered = 0;
      for (const id of this.order) registered += this.mms[id].pages;
      ntrees = Math.max(1, Math.ceil(registered / perTree));
    }
    if (ntrees === this.ntrees) return;
    this.ntrees = ntrees;
    this.ntreesInv = 1 / ntrees;
    this.unstableTreeSize = new Int32Array(this.treeNids * ntrees);
    this.stableTreeSize = new Int32Array(this.treeNids * ntrees);
    for (let nid = 0; nid < this.treeNids; nid++) {
      this.stableMap[nid].forEach((content) => {
        this.stableTreeSize[this.treeOf(nid, content)]++;
      });
    }
  }

  // ------------------------------------------------------------------ queries

  counters(): KsmCounters {
    const volatile = this.rmapItems - this.pagesShared - this.pagesSharing - this.pagesUnshared;
    return {
      pagesShared: this.pagesShared,
      pagesSharing: this.pagesSharing,
      pagesUnshared: this.pagesUnshared,
      pagesVolatile: volatile > 0 ? volatile : 0,
      fullScans: this.fullScans,
    };
  }

  /** Number of trees per node in the forest (1 without the forest). */
  get treesPerNode(): number {
    return this.ntrees;
  }

  pageNode(mmId: number, page: number): number {
    const mm = this.liveMm(mmId);
    return mm.flags[page] & MAPS_KSM ? this.sNode[mm.stableOf[page]] : mm.regNodes[page];
  }

  /** Owner (mm, page) of the physical page this page maps: the KSM page's surviving copy, or itself; null if not present. */
  pageOwner(mmId: number, page: number): { mm: number; page: number } | null {
    const mm = this.liveMm(mmId);
    if (mm.contents[page] === NOT_PRESENT) return null;
    if (!(mm.flags[page] & MAPS_KSM)) return { mm: mmId, page };
    const g = this.sOwner[mm.stableOf[page]];
    const o = this.mmOfGid(g);
    return { mm: o.id, page: g - o.base };
  }

  isMerged(mmId: number, page: number): boolean {
    return (this.liveMm(mmId).flags[page] & MAPS_KSM) !== 0;
  }

  /** Pages of this mm that map a KSM page (/proc/PID/ksm_merging_pages, without COW-broken items). */
  mergedPages(mmId: number): number {
    return this.liveMm(mmId).mergedPages;
  }

  mergedPagesPerNode(mmId: number): number[] {
    return Array.from(this.liveMm(mmId).mergedPerNode);
  }

  /** Live KSM pages per node (physical pages that replaced the merged copies); O(nodes). */
  ksmPagesPerNode(): number[] {
    return Array.from(this.ksmPagesOnNode);
  }

  /** mm ids in scan order (the kernel's mm_slot list). */
  scanOrder(): number[] {
    return [...this.order];
  }

  private liveMm(mmId: number): MmState {
    const mm = this.mms[mmId];
    if (!mm || !mm.alive) throw new RangeError(`KsmModel: no registered mm with id ${mmId}`);
    return mm;
  }

  private mmOfGid(gid: number): MmState {
    const mms = this.mms;
    let lo = 0;
    let hi = mms.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (mms[mid].base <= gid) lo = mid;
      else hi = mid - 1;
    }
    return mms[lo];
  }
}
