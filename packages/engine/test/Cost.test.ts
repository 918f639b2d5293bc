import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type CostInputs, calibrationTable, cost, legacyCost, linkCost, pathCost } from "../src/Cost.js"
import { type LinkStats, tunnelId } from "../src/Domain.js"

const inputs = fc.record({
  rttMs: fc.double({ min: 0, max: 1000, noNaN: true }),
  jitterMs: fc.double({ min: 0, max: 200, noNaN: true }),
  lossRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  availability: fc.double({ min: 0, max: 1, noNaN: true }),
})
const delta = fc.double({ min: 0, max: 500, noNaN: true })
const ratioDelta = fc.double({ min: 0, max: 1, noNaN: true })
const clamp = (x: number) => Math.min(1, Math.max(0, x))

const stats = (over: Partial<LinkStats> = {}): LinkStats => ({
  tunnel: tunnelId(1, 2, 4),
  state: "up",
  rttMs: 20,
  jitterMs: 0,
  lossRatio: 0,
  availability: 1,
  lastSampleAtMillis: 1000,
  lastReplyAtMillis: 1000,
  ...over,
})

describe("Cost", () => {
  it("equals the RTT on an ideal link", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e5, noNaN: true }), (rttMs) => {
        expect(cost({ rttMs, jitterMs: 0, lossRatio: 0, availability: 1 })).toBe(rttMs)
      }),
    )
  })

  it("is monotone non-decreasing in RTT, jitter and loss, non-increasing in availability", () => {
    fc.assert(
      fc.property(inputs, delta, ratioDelta, (i: CostInputs, d, r) => {
        const c = cost(i)
        expect(c).not.toBeNaN()
        expect(c).toBeGreaterThanOrEqual(i.rttMs)
        expect(cost({ ...i, rttMs: i.rttMs + d })).toBeGreaterThanOrEqual(c)
        expect(cost({ ...i, jitterMs: i.jitterMs + d })).toBeGreaterThanOrEqual(c)
        expect(cost({ ...i, lossRatio: clamp(i.lossRatio + r) })).toBeGreaterThanOrEqual(c)
        expect(cost({ ...i, availability: clamp(i.availability - r) })).toBeGreaterThanOrEqual(c)
      }),
      { numRuns: 2000 },
    )
  })

  it("is +Infinity for total loss, zero availability and NaN input", () => {
    expect(cost({ rttMs: 10, jitterMs: 0, lossRatio: 1, availability: 1 })).toBe(Number.POSITIVE_INFINITY)
    expect(cost({ rttMs: 10, jitterMs: 0, lossRatio: 0, availability: 0 })).toBe(Number.POSITIVE_INFINITY)
    expect(cost({ rttMs: Number.NaN, jitterMs: 0, lossRatio: 0, availability: 1 })).toBe(Number.POSITIVE_INFINITY)
    expect(cost({ rttMs: 10, jitterMs: 0, lossRatio: Number.NaN, availability: 1 })).toBe(Number.POSITIVE_INFINITY)
  })

  it("prices 1 % loss at about 10 ms with default weights", () => {
    expect(cost({ rttMs: 50, jitterMs: 0, lossRatio: 0.01, availability: 1 })).toBeCloseTo(60.1, 1)
  })

  it("linkCost is +Infinity for dead, unknown, RTT-less and stale links", () => {
    expect(linkCost(stats())).toBe(20)
    expect(linkCost(stats({ state: "dead" }))).toBe(Number.POSITIVE_INFINITY)
    expect(linkCost(stats({ state: "unknown" }))).toBe(Number.POSITIVE_INFINITY)
    expect(linkCost(stats({ rttMs: null }))).toBe(Number.POSITIVE_INFINITY)
    expect(linkCost(stats(), { nowMillis: 5000, staleAfterMillis: 10_000 })).toBe(20)
    expect(linkCost(stats(), { nowMillis: 50_000, staleAfterMillis: 10_000 })).toBe(Number.POSITIVE_INFINITY)
    expect(linkCost(stats({ lossRatio: 0.01 }), { model: "legacy" })).toBe(
      legacyCost({ rttMs: 20, jitterMs: 0, lossRatio: 0.01, availability: 1 }),
    )
    expect(linkCost(stats({ state: "dead" }), { model: "legacy" })).toBe(Number.POSITIVE_INFINITY)
  })

  it("path cost is the sum of link costs and infinite with any dead link", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { maxLength: 10 }), (cs) => {
        expect(pathCost(cs)).toBeCloseTo(
          cs.reduce((a, b) => a + b, 0),
          6,
        )
        expect(pathCost([...cs, Number.POSITIVE_INFINITY])).toBe(Number.POSITIVE_INFINITY)
        expect(pathCost([...cs, Number.NaN])).toBe(Number.POSITIVE_INFINITY)
      }),
    )
  })

  it("legacy cost reproduces the original's example and counts loss at full availability", () => {
    // REFERENCE §5: 10 ms one-way, A 0.9, P 5 % → ~7081 with the original e=(1−A)·P. With the
    // fixed e = 1−A·(1−p) = 0.145 the same inputs give 10 + 10·1e4·√0.145.
    const fixed = legacyCost({ rttMs: 20, jitterMs: 0, lossRatio: 0.05, availability: 0.9 })
    expect(fixed).toBeCloseTo(10 + 1e5 * Math.sqrt(0.145), 6)
    const originalE = 0.1 * 0.05
    expect(10 + 1e5 * Math.sqrt(originalE)).toBeCloseTo(7081, 0)
    expect(legacyCost({ rttMs: 20, jitterMs: 0, lossRatio: 0.01, availability: 1 })).toBeGreaterThan(10)
    expect(legacyCost({ rttMs: 20, jitterMs: 0, lossRatio: 0, availability: 1 })).toBe(10)
    expect(legacyCost({ rttMs: 0, jitterMs: 0, lossRatio: 0, availability: 1 })).toBe(Number.POSITIVE_INFINITY)
    expect(legacyCost({ rttMs: 20, jitterMs: 0, lossRatio: 1, availability: 1 })).toBe(Number.POSITIVE_INFINITY)
  })

  it("legacy cost is monotone in loss and unavailability", () => {
    fc.assert(
      fc.property(inputs, ratioDelta, (i, r) => {
        const c = legacyCost(i)
        expect(legacyCost({ ...i, lossRatio: clamp(i.lossRatio + r) })).toBeGreaterThanOrEqual(c)
        expect(legacyCost({ ...i, availability: clamp(i.availability - r) })).toBeGreaterThanOrEqual(c)
      }),
    )
  })

  it("calibration table rows are consistent with both functions", () => {
    for (const row of calibrationTable()) {
      expect(row.cost).toBe(cost(row))
      expect(row.legacyCost).toBe(legacyCost(row))
    }
  })
})
