// Compact open-addressing hash map uint32 key -> int32 value (values >= -1) on one interleaved typed array
// ([generation, key, value] per slot, so a probe touches one cache line).
//
// At paper scale the tables are far larger than the caches, so memory latency limits the model's speed.
// Two choices follow from that:
// - The home slot keeps the low LOCAL_BITS of the key and mixes the rest: runs of consecutive content ids
//   (the natural way to label pages) fill consecutive slots, so scanning an address range touches a few
//   cache lines and TLB entries per 64 pages instead of one random line per page.
// - On a collision the probe jumps to another randomly chosen block with the same low bits (rather than
//   stepping linearly, which would make colliding runs of 64 walk through each other). Deletion therefore
//   leaves a tombstone; tombstones are dropped when the table is rebuilt.
// clear() is O(1) via the generation stamp, which makes the per-pass unstable-tree reset free.

/** murmur3 fmix32. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

const STRIDE = 3;
const LOCAL_BITS = 6;
const LOCAL_MASK = (1 << LOCAL_BITS) - 1;
const TOMBSTONE = 0xfffffffe; // stored value of a deleted entry

const BLOCK_ATTEMPTS = 8;

/**
 * Slot of the attempt-th probe for key. The first BLOCK_ATTEMPTS probes pick a random block from the key's
 * high bits and a position inside it from the low bits XOR that hash (keys of one run of 64 stay in one
 * block; keys sharing their low bits still spread over all positions). Later probes step linearly from the
 * last block probe, so a probe always reaches a free slot (the table is at most half full).
 */
function probeSlot(key: number, attempt: number, mask: number): number {
  const a = attempt < BLOCK_ATTEMPTS ? attempt : BLOCK_ATTEMPTS - 1;
  const h = mix32(((key >>> LOCAL_BITS) + Math.imul(a, 0x9e3779b9)) | 0);
  const slot = (h & ~LOCAL_MASK) | ((key ^ h) & LOCAL_MASK);
  return (slot + (attempt - a)) & mask;
}

export class U32IntMap {
  private slots: Uint32Array;
  private mask: number;
  private gen = 1;
  private tombstones = 0;
  size = 0;

  constructor(initialCapacity = 1024) {
    let cap = 128;
    while (cap < initialCapacity * 2) cap *= 2;
    this.slots = new Uint32Array(cap * STRIDE);
    this.mask = cap - 1;
  }

  /** Value for key, or -1. */
  get(key: number): number {
    const slots = this.slots;
    const mask = this.mask;
    const gen = this.gen;
    for (let attempt = 0; ; attempt++) {
      const at = probeSlot(key, attempt, mask) * STRIDE;
      if (slots[at] !== gen) return -1;
      if (slots[at + 1] === key && slots[at + 2] !== TOMBSTONE) return slots[at + 2] | 0;
    }
  }

  /** Value for key if present; otherwise inserts (key, value) and returns -1. */
  getOrInsert(key: number, value: number): number {
    if ((this.size + this.tombstones + 1) * 2 > this.mask + 1) this.rebuild();
    const slots = this.slots;
    const mask = this.mask;
    const gen = this.gen;
    for (let attempt = 0; ; attempt++) {
      const at = probeSlot(key, attempt, mask) * STRIDE;
      if (slots[at] !== gen) {
        slots[at] = gen;
        slots[at + 1] = key;
        slots[at + 2] = value;
        this.size++;
        return -1;
      }
      if (slots[at + 1] === key && slots[at + 2] !== TOMBSTONE) return slots[at + 2] | 0;
    }
  }

  set(key: number, value: number): void {
    if ((this.size + this.tombstones + 1) * 2 > this.mask + 1) this.rebuild();
    const slots = this.slots;
    const mask = this.mask;
    const gen = this.gen;
    for (let attempt = 0; ; attempt++) {
      const at = probeSlot(key, attempt, mask) * STRIDE;
      if (slots[at] !== gen) {
        slots[at] = gen;
        slots[at + 1] = key;
        slots[at + 2] = value;
        this.size++;
        return;
      }
      if (slots[at + 1] === key && slots[at + 2] !== TOMBSTONE) {
        slots[at + 2] = value;
        return;
      }
    }
  }

  delete(key: number): boolean {
    const slots = this.slots;
    const mask = this.mask;
    const gen = this.gen;
    for (let attempt = 0; ; attempt++) {
      const at = probeSlot(key, attempt, mask) * STRIDE;
      if (slots[at] !== gen) return false;
      if (slots[at + 1] === key && slots[at + 2] !== TOMBSTONE) {
        slots[at + 2] = TOMBSTONE;
        this.size--;
        this.tombstones++;
        return true;
      }
    }
  }

  clear(): void {
    this.gen = (this.gen + 1) >>> 0;
    if (this.gen === 0) {
      for (let at = 0; at < this.slots.length; at += STRIDE) this.slots[at] = 0;
      this.gen = 1;
    }
    this.size = 0;
    this.tombstones = 0;
  }

  forEach(fn: (key: number, value: number) => void): void {
    const { slots, gen } = this;
    for (let at = 0; at < slots.length; at += STRIDE) {
      if (slots[at] === gen && slots[at + 2] !== TOMBSTONE) fn(slots[at + 1], slots[at + 2] | 0);
    }
  }

  /**
   * Makes room for `entries` entries without growing step by step (each doubling allocates and first-touches
   * a fresh table, which dominates the cost of the first merging pass at paper scale).
   */
  reserve(entries: number): void {
    if ((entries + this.tombstones) * 2 > this.mask + 1) this.rebuild(entries);
  }

  /** Re-inserts the live entries into a table for at least minEntries, doubling if needed; drops tombstones. */
  private rebuild(minEntries = 0): void {
    const old = this.slots;
    const oldGen = this.gen;
    let cap = this.mask + 1;
    if ((this.size + 1) * 4 > cap) cap *= 2;
    while (minEntries * 2 > cap) cap *= 2;
    this.slots = new Uint32Array(cap * STRIDE);
    this.mask = cap - 1;
    this.gen = 1;
    this.size = 0;
    this.tombstones = 0;
    for (let at = 0; at < old.length; at += STRIDE) {
      if (old[at] === oldGen && old[at + 2] !== TOMBSTONE) this.set(old[at + 1], old[at + 2] | 0);
    }
  }
}
