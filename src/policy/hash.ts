// Compact open-addressing hash map uint32 key -> int32 value (values >= 0) on one interleaved typed array
// ([key, value + 1] per slot, 8 bytes; value word 0 = empty slot, so a fresh array is an empty table).
//
// At paper scale the tables are far larger than the caches (the unstable tree holds every unmerged page of
// a pass: tens of millions at Fig. 8 scale), so both memory latency and memory size matter:
// - The home slot keeps the low LOCAL_BITS of the key and mixes the rest: runs of consecutive content ids
//   (the natural way to label pages) fill consecutive slots, so scanning an address range touches a few
//   cache lines and TLB entries per 64 pages instead of one random line per page.
// - On a collision the probe first tries the other slots of the same 64-byte cache line (free, as the line is
//   already loaded), then jumps to another randomly chosen block with the same low bits (rather than stepping
//   linearly, which would make colliding runs of 64 walk through each other). Deletion therefore leaves a
//   tombstone; tombstones are dropped when the table is rebuilt.
// - The table fills up to MAX_LOAD = 80 % (the line probing keeps probes short there), so with 8-byte slots
//   an entry costs 10-20 bytes (the former [generation, key, value] slots at <= 50 % load cost 24-48).
//   The number of blocks stays a power of two: a non-power-of-two size (for 1.5x growth) needs a
//   multiply-and-floor per probe, measured ~10 % slower per page visit at paper scale.
// clear() zero-fills the table (O(capacity), once per scan pass; a few ms next to a pass of seconds).

/** murmur3 fmix32. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

const STRIDE = 2;
const LOCAL_BITS = 6;
const BLOCK = 1 << LOCAL_BITS;
const LOCAL_MASK = BLOCK - 1;
const EMPTY = 0; // stored value word of a free slot
const TOMBSTONE = 0xffffffff; // stored value word of a deleted entry (value + 1 never reaches it)
const MAX_VALUE = 0x7fffffff;

const BLOCK_ATTEMPTS = 8;
/** Rebuild when live entries + tombstones would exceed this share of the slots. */
const MAX_LOAD = 0.8;

const SLOTS_PER_LINE = 8; // 8 slots x 8 bytes: one 64-byte cache line
const LINES_PER_BLOCK = BLOCK / SLOTS_PER_LINE;

function badValue(value: number): never {
  throw new RangeError(`U32IntMap: value ${value} out of 0..2^31-1`);
}

/** Blocks (a power of two) for `entries` entries at load at most `load`. */
function blocksFor(entries: number, load: number): number {
  let blocks = 2;
  while (blocks * BLOCK * load < entries) blocks *= 2;
  return blocks;
}

export class U32IntMap {
  private slots: Uint32Array;
  private blocks: number;
  /** size + tombstones may grow to this before a rebuild. */
  private limit: number;
  private tombstones = 0;
  size = 0;

  constructor(initialCapacity = 1024) {
    this.blocks = blocksFor(initialCapacity, MAX_LOAD);
    this.slots = new Uint32Array(this.blocks * BLOCK * STRIDE);
    this.limit = Math.floor(this.blocks * BLOCK * MAX_LOAD);
  }

  /** Value for key, or -1. */
  get(key: number): number {
    const at = this.find(key);
    const stored = this.slots[at + 1];
    return stored === EMPTY ? -1 : stored - 1;
  }

  /** Value for key if present; otherwise inserts (key, value) and returns -1. */
  getOrInsert(key: number, value: number): number {
    if (!(value >= 0 && value <= MAX_VALUE)) badValue(value);
    if (this.size + this.tombstones >= this.limit) this.rebuild(this.size + 1);
    const at = this.find(key);
    const slots = this.slots;
    const stored = slots[at + 1];
    if (stored !== EMPTY) return stored - 1;
    slots[at] = key;
    slots[at + 1] = value + 1;
    this.size++;
    return -1;
  }

  /** Sets key to value; returns the value it had, or -1 (get + set in one probe). */
  swap(key: number, value: number): number {
    if (!(value >= 0 && value <= MAX_VALUE)) badValue(value);
    if (this.size + this.tombstones >= this.limit) this.rebuild(this.size + 1);
    const at = this.find(key);
    const slots = this.slots;
    const stored = slots[at + 1];
    if (stored === EMPTY) {
      slots[at] = key;
      this.size++;
    }
    slots[at + 1] = value + 1;
    return stored === EMPTY ? -1 : stored - 1;
  }

  set(key: number, value: number): void {
    this.swap(key, value);
  }

  delete(key: number): boolean {
    const at = this.find(key);
    if (this.slots[at + 1] === EMPTY) return false;
    this.slots[at + 1] = TOMBSTONE;
    this.size--;
    this.tombstones++;
    return true;
  }

  /**
   * Array index of key's slot, or of the free slot where it would go. The first BLOCK_ATTEMPTS probes pick a
   * random block from the key's high bits and a position inside it from the low bits XOR that hash (keys of one
   * run of 64 stay in one block; keys sharing their low bits still spread over all positions), then try the
   * other slots of that position's cache line. Then lines are stepped through linearly, so a free slot is
   * always reached (the table is never full). Tombstones count as taken.
   */
  private find(key: number): number {
    const slots = this.slots;
    let line = 0;
    let first = 0;
    for (let a = 0; ; a++) {
      if (a < BLOCK_ATTEMPTS) {
        const h = mix32(((key >>> LOCAL_BITS) + Math.imul(a, 0x9e3779b9)) | 0);
        const pos = (key ^ h) & LOCAL_MASK;
        line = ((h >>> LOCAL_BITS) & (this.blocks - 1)) * LINES_PER_BLOCK + (pos >>> 3);
        first = pos & (SLOTS_PER_LINE - 1);
      } else {
        line = (line + 1) & (this.blocks * LINES_PER_BLOCK - 1);
        first = 0;
      }
      for (let j = 0; j < SLOTS_PER_LINE; j++) {
        const at = (line * SLOTS_PER_LINE + (first ^ j)) * STRIDE;
        const stored = slots[at + 1];
        if (stored === EMPTY || (slots[at] === key && stored !== TOMBSTONE)) return at;
      }
    }
  }

  clear(): void {
    if (this.size + this.tombstones > 0) this.slots.fill(0);
    this.size = 0;
    this.tombstones = 0;
  }

  forEach(fn: (key: number, value: number) => void): void {
    const slots = this.slots;
    for (let at = 0; at < slots.length; at += STRIDE) {
      const stored = slots[at + 1];
      if (stored !== EMPTY && stored !== TOMBSTONE) fn(slots[at], stored - 1);
    }
  }

  /**
   * Empties the map and sizes it for `entries` entries (up to MAX_LOAD), growing or shrinking it. Called at the
   * start of each scan pass, so the unstable tree neither grows step by step during the pass (each growth
   * allocates a fresh table while the old one is still alive) nor keeps a previous, larger pass's table.
   */
  clearFor(entries: number): void {
    const blocks = blocksFor(entries, MAX_LOAD);
    // Keep the current table if it fits and is at most 2x too large (a fresh one costs a first touch of every page).
    if (blocks <= this.blocks && blocks * 2 >= this.blocks) {
      this.clear();
      return;
    }
    this.slots = new Uint32Array(0); // drop the old table before allocating the new one
    this.allocate(blocks);
  }

  /** Bytes held by the table (for memory accounting in tests and benchmarks). */
  get bytes(): number {
    return this.slots.byteLength;
  }

  private allocate(blocks: number): void {
    this.blocks = blocks;
    this.slots = new Uint32Array(blocks * BLOCK * STRIDE);
    this.limit = Math.floor(blocks * BLOCK * MAX_LOAD);
    this.size = 0;
    this.tombstones = 0;
  }

  /**
   * Re-inserts the live entries into a table where they fill at most half of MAX_LOAD: the same size if
   * tombstones filled it, else twice the size; drops tombstones.
   */
  private rebuild(minEntries: number): void {
    const old = this.slots;
    const blocks = Math.max(this.blocks, blocksFor(minEntries, MAX_LOAD / 2));
    this.allocate(blocks);
    for (let at = 0; at < old.length; at += STRIDE) {
      const stored = old[at + 1];
      if (stored !== EMPTY && stored !== TOMBSTONE) this.set(old[at], stored - 1);
    }
  }
}
