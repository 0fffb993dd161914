// Map uint32 content id -> int32 value (values >= 0) for the model's stable and unstable trees, with two layouts:
// - hash: U32IntMap (hash.ts), for content ids that are scattered over the 32-bit space (random ids, tests);
// - direct: the id space cut into chunks of CHUNK consecutive ids; a directory (one Int32 per chunk of the whole
//   2^32 space, 4 MiB) names the chunk array holding a chunk's values (value + 1, 0 = absent), allocated when the
//   first id of the chunk is inserted and dropped when its last entry is deleted.
// Callers that number pages' contents in runs of consecutive ids (the model testbed: OS pages, each workload's
// shared range, each instance's unique range) fill chunks densely; a scan in address order then walks the chunks
// sequentially, where the hash layout costs a cache miss per ~4 operations at paper scale (docs/policy.md §6).
//
// The layout is chosen by measurement, never by the caller: a map starts as a hash and, each time its size doubles
// past DIRECT_FROM entries, counts the chunks its keys fall in; if they would be filled to at least TO_DIRECT it
// switches to direct. A direct map whose chunks fall below MIN_DIRECT fill (a new chunk would take more than
// 16 KiB / MIN_DIRECT... i.e. more than 4 B / MIN_DIRECT per entry) goes back to a hash. Both layouts answer every
// operation identically (only forEach's order differs: key order when direct, slot order when hashed), so the
// choice never changes a result.

import { U32IntMap } from './hash.ts';

const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;
const DIR_SIZE = 2 ** (32 - CHUNK_BITS);
const MAX_VALUE = 0x7fffffff;

/** Entries at which a hash map first counts its chunks (and again at each doubling). */
const DIRECT_FROM = 1 << 14;
/** Fill of the chunks the keys fall in at which a hash map switches to direct (16 B per entry at most). */
const TO_DIRECT = 1 / 4;
/** A direct map whose chunks would be filled below this goes back to a hash (32 B per entry at most)... */
const MIN_DIRECT = 1 / 8;
/** ...once it holds more than this many chunks (1 MiB): a few sparse chunks at the ends of runs are fine. */
const SLACK_CHUNKS = 64;

const NO_CHUNK = new Uint32Array(0);

function badValue(value: number): never {
  throw new RangeError(`ContentMap: value ${value} out of 0..2^31-1`);
}

export type ContentMapLayout = 'auto' | 'hash' | 'direct';

/** Keys may be passed as uint32 or as int32 with the same bits (key | 0, which avoids boxing ids above 2^31). */
export class ContentMap {
  size = 0;
  /** Layout switches so far (hash -> direct or back). */
  layoutChanges = 0;
  private hash: U32IntMap | null;
  /** Direct layout: chunk index + 1 per chunk of ids, 0 = no chunk; null while hashed. */
  private dir: Int32Array | null = null;
  private chunks: Uint32Array[] = [];
  /** Entries per chunk, and the chunk of ids (key >>> CHUNK_BITS) each chunk array holds (direct layout). */
  private counts = new Int32Array(0);
  private chunkIds = new Int32Array(0);
  private freeChunks: number[] = [];
  /** Chunks allocated / chunks holding an entry (a cleared map keeps its chunks, empty, until the next clear). */
  private liveChunks = 0;
  private usedChunks = 0;
  private readonly fixed: boolean;
  /** Hash layout: size at which the chunks are counted next. */
  private nextEvaluation = DIRECT_FROM;

  /** layout: 'auto' as above; 'hash' or 'direct' to keep one layout throughout (for tests). */
  constructor(layout: ContentMapLayout = 'auto') {
    this.hash = layout === 'direct' ? null : new U32IntMap();
    if (layout === 'direct') this.dir = new Int32Array(DIR_SIZE);
    this.fixed = layout !== 'auto';
    if (this.fixed) this.nextEvaluation = Infinity;
  }

  /** True while the direct layout is in use (for tests and the model's choice of presence filter). */
  get direct(): boolean {
    return this.dir !== null;
  }

  /** False only if key is certainly absent: direct layout, no chunk for its run of ids (one array read, no probe). */
  mayHave(key: number): boolean {
    return this.dir === null || this.dir[key >>> CHUNK_BITS] !== 0;
  }

  /** Value for key, or -1. */
  get(key: number): number {
    const dir = this.dir;
    if (dir === null) return this.hash!.get(key >>> 0);
    const c = dir[key >>> CHUNK_BITS];
    return c === 0 ? -1 : this.chunks[c - 1][key & CHUNK_MASK] - 1;
  }

  /** Value for key if present; otherwise inserts (key, value) and returns -1. */
  getOrInsert(key: number, value: number): number {
    if (!(value >= 0 && value <= MAX_VALUE)) badValue(value);
    const dir = this.dir;
    const c = dir === null ? 0 : dir[key >>> CHUNK_BITS];
    if (c === 0) return this.getOrInsertSlow(key, value);
    // Direct layout, chunk present: the common case, kept small so that V8 inlines it into the model's visit.
    const chunk = this.chunks[c - 1];
    const at = key & CHUNK_MASK;
    const stored = chunk[at];
    if (stored !== 0) return stored - 1;
    chunk[at] = value + 1;
    if (this.counts[c - 1]++ === 0) this.usedChunks++;
    this.size++;
    return -1;
  }

  /** getOrInsert when hashed, or when the key's chunk does not exist yet. */
  private getOrInsertSlow(key: number, value: number): number {
    if (this.dir === null) {
      const had = this.hash!.getOrInsert(key >>> 0, value);
      if (had < 0 && ++this.size >= this.nextEvaluation) this.evaluate();
      return had;
    }
    if (!this.mayAddChunk()) return this.getOrInsert(key, value); // now hashed
    this.addChunk(key >>> CHUNK_BITS);
    return this.getOrInsert(key, value);
  }

  /** Sets key to value; returns the value it had, or -1. */
  swap(key: number, value: number): number {
    if (!(value >= 0 && value <= MAX_VALUE)) badValue(value);
    const dir = this.dir;
    const c = dir === null ? 0 : dir[key >>> CHUNK_BITS];
    if (c === 0) return this.swapSlow(key, value);
    const chunk = this.chunks[c - 1];
    const at = key & CHUNK_MASK;
    const stored = chunk[at];
    chunk[at] = value + 1;
    if (stored !== 0) return stored - 1;
    if (this.counts[c - 1]++ === 0) this.usedChunks++;
    this.size++;
    return -1;
  }

  /** swap when hashed, or when the key's chunk does not exist yet. */
  private swapSlow(key: number, value: number): number {
    if (this.dir === null) {
      const had = this.hash!.swap(key >>> 0, value);
      if (had < 0 && ++this.size >= this.nextEvaluation) this.evaluate();
      return had;
    }
    if (!this.mayAddChunk()) return this.swap(key, value); // now hashed
    this.addChunk(key >>> CHUNK_BITS);
    return this.swap(key, value);
  }

  set(key: number, value: number): void {
    this.swap(key, value);
  }

  delete(key: number): boolean {
    const dir = this.dir;
    if (dir === null) {
      const had = this.hash!.delete(key >>> 0);
      if (had) this.size--;
      return had;
    }
    const ci = key >>> CHUNK_BITS;
    const c = dir[ci];
    if (c === 0) return false;
    const chunk = this.chunks[c - 1];
    const at = key & CHUNK_MASK;
    if (chunk[at] === 0) return false;
    chunk[at] = 0;
    this.size--;
    if (--this.counts[c - 1] === 0) {
      this.usedChunks--;
      this.dropChunk(ci);
    }
    return true;
  }

  /** Calls fn for every entry (key order when direct, table order when hashed). */
  forEach(fn: (key: number, value: number) => void): void {
    const dir = this.dir;
    if (dir === null) {
      this.hash!.forEach(fn);
      return;
    }
    for (let ci = 0; ci < DIR_SIZE; ci++) {
      const c = dir[ci];
      if (c === 0) continue;
      const chunk = this.chunks[c - 1];
      const base = ci * CHUNK; // exact as a double; ci << 12 would overflow int32
      for (let j = 0; j < CHUNK; j++) if (chunk[j] !== 0) fn(base + j, chunk[j] - 1);
    }
  }

  /**
   * Empties the map for a new scan pass of about `entries` insertions. Hashed: U32IntMap.clearFor. Direct: the
   * chunks used since the previous clear are zeroed and kept (the next pass fills the same runs again); chunks
   * that stayed empty since then are dropped.
   */
  clearFor(entries: number): void {
    this.size = 0;
    if (this.dir === null) {
      this.hash!.clearFor(entries);
      return;
    }
    for (let i = 0; i < this.chunks.length; i++) {
      if (this.chunks[i] === NO_CHUNK) continue;
      if (this.counts[i] === 0) this.dropChunk(this.chunkIds[i]);
      else {
        this.chunks[i].fill(0);
        this.counts[i] = 0;
      }
    }
    this.usedChunks = 0;
  }

  /** Bytes held (for memory accounting in tests and benchmarks). */
  get bytes(): number {
    return this.dir === null ? this.hash!.bytes : this.dir.byteLength + this.liveChunks * CHUNK * 4 + this.counts.byteLength;
  }

  // ---------------------------------------------------------------- layout changes

  /** Direct layout: whether one more chunk keeps the chunks at least MIN_DIRECT full; else switches to hash. */
  private mayAddChunk(): boolean {
    if (this.fixed || this.usedChunks < SLACK_CHUNKS || (this.usedChunks + 1) * CHUNK * MIN_DIRECT <= this.size + 1) return true;
    this.toHash();
    return false;
  }

  private addChunk(ci: number): number {
    let i = this.freeChunks.pop();
    if (i === undefined) {
      i = this.chunks.length;
      this.chunks.push(NO_CHUNK);
      if (i >= this.counts.length) {
        const grow = (a: Int32Array) => {
          const b = new Int32Array(Math.max(64, a.length * 2));
          b.set(a);
          return b;
        };
        this.counts = grow(this.counts);
        this.chunkIds = grow(this.chunkIds);
      }
    }
    // Written through once: the first access of a fresh chunk is a read (getOrInsert), which would map the zero page
    // and take a second fault at the first write.
    this.chunks[i] = new Uint32Array(CHUNK).fill(0);
    this.counts[i] = 0;
    this.chunkIds[i] = ci;
    this.liveChunks++;
    this.dir![ci] = i + 1;
    return i + 1;
  }

  private dropChunk(ci: number): void {
    const i = this.dir![ci] - 1;
    this.dir![ci] = 0;
    this.chunks[i] = NO_CHUNK;
    this.counts[i] = 0;
    this.freeChunks.push(i);
    this.liveChunks--;
  }

  /** Hash layout, size reached nextEvaluation: counts the chunks the keys fall in; direct if they would be dense. */
  private evaluate(): void {
    this.nextEvaluation = this.size * 2;
    const seen = new Uint32Array(DIR_SIZE / 32);
    let chunks = 0;
    this.hash!.forEach((key) => {
      const ci = key >>> CHUNK_BITS;
      const bit = 1 << (ci & 31);
      if ((seen[ci >>> 5] & bit) === 0) {
        seen[ci >>> 5] |= bit;
        chunks++;
      }
    });
    if (chunks * CHUNK * TO_DIRECT > this.size) return;
    this.layoutChanges++;
    const hash = this.hash!;
    this.hash = null;
    this.dir = new Int32Array(DIR_SIZE);
    this.chunks = [];
    this.counts = new Int32Array(chunks);
    this.chunkIds = new Int32Array(chunks);
    this.freeChunks = [];
    this.liveChunks = 0;
    this.usedChunks = 0;
    this.size = 0;
    hash.forEach((key, value) => this.swap(key, value));
  }

  private toHash(): void {
    this.layoutChanges++;
    const hash = new U32IntMap(Math.max(1024, this.size * 2));
    this.forEach((key, value) => hash.set(key, value));
    this.hash = hash;
    this.dir = null;
    this.chunks = [];
    this.counts = new Int32Array(0);
    this.chunkIds = new Int32Array(0);
    this.freeChunks = [];
    this.liveChunks = 0;
    this.usedChunks = 0;
    this.nextEvaluation = Math.max(DIRECT_FROM, this.size * 2);
  }
}
