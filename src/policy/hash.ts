// Compact open-addressing hash map uint32 key -> int32 value, on typed arrays (no object per entry).
// clear() is O(1) via a generation stamp, which makes the per-pass unstable-tree reset free;
// delete() uses backward-shift deletion so no tombstones accumulate in the never-cleared stable map.

/** murmur3 fmix32: spreads sequential content ids over the table. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export class U32IntMap {
  private keys: Uint32Array;
  private vals: Int32Array;
  private gens: Uint32Array;
  private mask: number;
  private gen = 1;
  size = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.keys = new Uint32Array(cap);
    this.vals = new Int32Array(cap);
    this.gens = new Uint32Array(cap);
    this.mask = cap - 1;
  }

  /** Value for key, or -1. */
  get(key: number): number {
    const { keys, gens, mask, gen } = this;
    let i = mix32(key) & mask;
    while (gens[i] === gen) {
      if (keys[i] === key) return this.vals[i];
      i = (i + 1) & mask;
    }
    return -1;
  }

  set(key: number, value: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.grow();
    const { keys, gens, mask, gen } = this;
    let i = mix32(key) & mask;
    while (gens[i] === gen) {
      if (keys[i] === key) {
        this.vals[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    gens[i] = gen;
    keys[i] = key;
    this.vals[i] = value;
    this.size++;
  }

  delete(key: number): boolean {
    const { keys, gens, vals, mask, gen } = this;
    let i = mix32(key) & mask;
    while (gens[i] === gen) {
      if (keys[i] === key) break;
      i = (i + 1) & mask;
    }
    if (gens[i] !== gen) return false;
    // Backward-shift: pull later entries of the probe run into the hole.
    let hole = i;
    let j = (i + 1) & mask;
    while (gens[j] === gen) {
      const home = mix32(keys[j]) & mask;
      // Move j into hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        keys[hole] = keys[j];
        vals[hole] = vals[j];
        hole = j;
      }
      j = (j + 1) & mask;
    }
    gens[hole] = 0;
    this.size--;
    return true;
  }

  clear(): void {
    this.gen = (this.gen + 1) >>> 0;
    if (this.gen === 0) {
      this.gens.fill(0);
      this.gen = 1;
    }
    this.size = 0;
  }

  forEach(fn: (key: number, value: number) => void): void {
    const { keys, vals, gens, gen } = this;
    for (let i = 0; i < keys.length; i++) if (gens[i] === gen) fn(keys[i], vals[i]);
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const oldGens = this.gens;
    const oldGen = this.gen;
    const cap = oldKeys.length * 2;
    this.keys = new Uint32Array(cap);
    this.vals = new Int32Array(cap);
    this.gens = new Uint32Array(cap);
    this.mask = cap - 1;
    this.gen = 1;
    this.size = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldGens[i] === oldGen) this.set(oldKeys[i], oldVals[i]);
  }
}
