/**
 * A seeded uniform generator for reproducible tests, demos and benches: the same seed gives the
 * same draws on every run and machine. Not for anything that must be unpredictable.
 */

/** mulberry32: uniform draws in [0, 1) from one 32-bit word of state, seeded by `seed`'s low 32 bits. */
export const mulberry32 = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
