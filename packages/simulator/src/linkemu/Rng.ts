/**
 * Seeded pseudo-random numbers for loss and jitter decisions. Each directed link draws from its
 * own stream (derived from the emulator seed, the pair id and the direction), so decisions on
 * one link never depend on traffic on another and a test replays identically for a seed.
 * sfc32 (PractRand-clean, 128-bit state) seeded through splitmix32.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  readonly next: () => number
  /** Standard normal (mean 0, deviation 1), Box-Muller. */
  readonly normal: () => number
}

const splitmix32 = (state: number): [number, number] => {
  const s = (state + 0x9e3779b9) | 0
  let z = s
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return [s, (z ^ (z >>> 16)) >>> 0]
}

/** FNV-1a of a label, so streams can be named ("pair-id a->b"). */
export const hashLabel = (label: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export const makeRng = (seed: number, label = ""): Rng => {
  let s = (seed ^ hashLabel(label)) | 0
  const words: number[] = []
  for (let i = 0; i < 4; i++) {
    const [next, out] = splitmix32(s)
    s = next
    words.push(out)
  }
  let [a, b, c, d] = words as [number, number, number, number]
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  let spare: number | undefined
  const normal = (): number => {
    if (spare !== undefined) {
      const v = spare
      spare = undefined
      return v
    }
    const u1 = 1 - next() // (0, 1], so log is finite
    const u2 = next()
    const r = Math.sqrt(-2 * Math.log(u1))
    spare = r * Math.sin(2 * Math.PI * u2)
    return r * Math.cos(2 * Math.PI * u2)
  }
  return { next, normal }
}
