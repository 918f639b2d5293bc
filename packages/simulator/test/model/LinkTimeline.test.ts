/**
 * A link's truth answers by time alone: the two ends of a tunnel query it in different orders
 * (a probe's return leg is read at its arrival, the far end's own probe earlier), and a run split
 * over threads has one copy per thread, so any query order must give the answers of a fresh
 * timeline asked at that time only.
 */
import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import { type LinkEffect, type LinkTimelineSpec, LinkTruth } from "../../src/model/LinkTimeline.js"

const effect: fc.Arbitrary<LinkEffect> = fc.oneof(
  fc.record({
    kind: fc.constant("step" as const),
    atMillis: fc.integer({ min: 0, max: 600_000 }),
    latencyMs: fc.double({ min: 1, max: 80, noNaN: true }),
  }),
  fc.record({ kind: fc.constant("failure" as const), atMillis: fc.integer({ min: 0, max: 600_000 }) }),
  fc.record({ kind: fc.constant("recovery" as const), atMillis: fc.integer({ min: 0, max: 600_000 }) }),
  fc.record({
    kind: fc.constant("random-walk" as const),
    stepMillis: fc.constantFrom(100, 1000),
    sigmaMs: fc.double({ min: 0.01, max: 2, noNaN: true }),
    maxDeviationMs: fc.double({ min: 0.1, max: 5, noNaN: true }),
  }),
)

const spec: fc.Arbitrary<LinkTimelineSpec> = fc.record({
  base: fc.record({
    latencyMs: fc.double({ min: 1, max: 50, noNaN: true }),
    jitterMs: fc.double({ min: 0, max: 3, noNaN: true }),
    lossRatio: fc.double({ min: 0, max: 0.1, noNaN: true }),
  }),
  effects: fc.array(effect, { maxLength: 4 }),
})

const answer = (truth: LinkTruth, t: number) => [
  truth.latencyMs(t),
  truth.isUp(t),
  truth.lossRatio(t),
  truth.jitterMs(t),
]

describe("LinkTruth", () => {
  test.prop([
    spec,
    fc.integer({ min: 1, max: 2 ** 30 }),
    fc.array(fc.integer({ min: 0, max: 700_000 }), { minLength: 1, maxLength: 40 }),
  ])("answers depend on the queried time only, not on earlier queries (back in time included)", (s, seed, times) => {
    const shared = new LinkTruth(s, seed)
    for (const t of times) expect(answer(shared, t)).toEqual(answer(new LinkTruth(s, seed), t))
  })
})
