/**
 * Seeded pseudo-random numbers for the model simulator. Every random choice in a run (mesh,
 * timelines, probe noise, message delays) comes from a Prng forked from the scenario seed by a
 * label, so one seed reproduces a run bit for bit and adding a new consumer does not shift the
 * numbers the others draw.
 */

/** 32-bit mixing (splitmix32 finaliser): spreads seeds and labels over the whole state space. */
const mix32 = (x: number): number => {
  x = (x + 0x9e3779b9) | 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b)
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35)
  return (x ^ (x >>> 16)) >>> 0
}

const hashLabel = (seed: number, label: string | number): number => {
  let h = mix32(seed)
  const s = String(label)
  for (let i = 0; i < s.length; i++) h = mix32(h ^ s.charCodeAt(i))
  return h
}

/** mulberry32: one 32-bit word of state, fast, good enough for simulation (not for crypto). */
export class Prng {
  private state: number

  constructor(seed: number) {
    this.state = mix32(seed >>> 0)
  }

  /** An independent stream derived from this one's seed and a label (does not advance this one). */
  static derive(seed: number, ...labels: ReadonlyArray<string | number>): Prng {
    let h = seed >>> 0
    for (const l of labels) h = hashLabel(h, l)
    return new Prng(h)
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p
  }

  /** Standard normal (Box-Muller, one value per call: simplicity over speed). */
  normal(): number {
    const u = 1 - this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** An independent child stream (advances this one by one draw). */
  fork(label: string | number): Prng {
    return Prng.derive(Math.floor(this.next() * 4294967296), label)
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<A>(items: A[]): A[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = items[i] as A
      items[i] = items[j] as A
      items[j] = t
    }
    return items
  }
}
