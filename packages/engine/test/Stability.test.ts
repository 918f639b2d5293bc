import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Candidate, type Choice, decide, defaultStabilityConfig, switchThresholdMs } from "../src/Stability.js"

const cfg = defaultStabilityConfig
const finiteCost = fc.double({ min: 0, max: 2000, noNaN: true })

describe("Stability", () => {
  it("takes the best candidate initially, ties to the earlier one", () => {
    const d = decide(
      undefined,
      [
        { key: "a", cost: 10 },
        { key: "b", cost: 5 },
        { key: "c", cost: 5 },
      ],
      0,
    )
    // The initial choice is not a switch: no dwell starts.
    expect(d.choice).toEqual({ key: "b", sinceMillis: Number.NEGATIVE_INFINITY })
    expect(d.reason).toBe("initial")
    expect(d.switched).toBe(false)
  })

  it("starts no dwell with the initial choice: a clear gain right after it switches at once", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 500, noNaN: true }), fc.nat(cfg.dwellMillis), (baseCost, afterMs) => {
        const first = decide(undefined, [{ key: "a", cost: baseCost }], 0)
        // "a" becomes worse by just over the threshold (not urgent): still no dwell to wait.
        const worse = baseCost + switchThresholdMs(baseCost + 100, 0) + 100
        const d = decide(
          first.choice,
          [
            { key: "a", cost: worse },
            { key: "b", cost: baseCost },
          ],
          afterMs,
        )
        expect(d.reason).toBe("better")
        expect(d.choice).toEqual({ key: "b", sinceMillis: afterMs })
      }),
    )
  })

  it("an urgent gain (> 3 thresholds) waits only the urgent dwell; a plain one the whole dwell", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 500, noNaN: true }),
        fc.double({ min: 0, max: 10, noNaN: true }),
        fc.double({ min: 1.01, max: 10, noNaN: true }),
        (challengerCost, noiseMs, thresholds) => {
          // Find the incumbent cost whose threshold the gain exceeds `thresholds` times.
          let incumbentCost = challengerCost + 5 * thresholds
          for (let i = 0; i < 50; i++)
            incumbentCost = challengerCost + thresholds * switchThresholdMs(incumbentCost, noiseMs * Math.SQRT2)
          const threshold = switchThresholdMs(incumbentCost, noiseMs * Math.SQRT2)
          const gainInThresholds = (incumbentCost - challengerCost) / threshold
          fc.pre(Math.abs(gainInThresholds - 3) > 1e-6)
          const prev: Choice<string> = { key: "inc", sinceMillis: 1_000_000 }
          const cands: ReadonlyArray<Candidate<string>> = [
            { key: "inc", cost: incumbentCost, noiseMs },
            { key: "ch", cost: challengerCost, noiseMs },
          ]
          const tooSoon = decide(prev, cands, prev.sinceMillis + cfg.urgentDwellMillis - 1)
          expect(tooSoon.reason).toBe("dwell")
          const afterUrgentDwell = decide(prev, cands, prev.sinceMillis + cfg.urgentDwellMillis)
          if (gainInThresholds > cfg.urgentGainFactor) {
            expect(afterUrgentDwell.reason).toBe("urgent")
            expect(afterUrgentDwell.choice).toEqual({
              key: "ch",
              sinceMillis: prev.sinceMillis + cfg.urgentDwellMillis,
            })
          } else {
            expect(afterUrgentDwell.reason).toBe("dwell")
            expect(decide(prev, cands, prev.sinceMillis + cfg.dwellMillis).reason).toBe("better")
          }
        },
      ),
      { numRuns: 1000 },
    )
  })

  it("urgentGainFactor +Infinity restores the plain dwell", () => {
    const prev: Choice<string> = { key: "inc", sinceMillis: 0 }
    const cands = [
      { key: "inc", cost: 1000 },
      { key: "ch", cost: 10 },
    ]
    expect(decide(prev, cands, cfg.urgentDwellMillis).reason).toBe("urgent")
    expect(
      decide(prev, cands, cfg.dwellMillis - 1, { ...cfg, urgentGainFactor: Number.POSITIVE_INFINITY }).reason,
    ).toBe("dwell")
  })

  it("never switches when the gain is within the margins", () => {
    fc.assert(
      fc.property(
        finiteCost,
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.nat(10_000_000),
        (incumbentCost, share, noiseMs, elapsed) => {
          const threshold = switchThresholdMs(incumbentCost, noiseMs * Math.SQRT2)
          const challengerCost = Math.max(0, incumbentCost - share * threshold)
          const prev: Choice<string> = { key: "inc", sinceMillis: 0 }
          const d = decide(
            prev,
            [
              { key: "ch", cost: challengerCost, noiseMs },
              { key: "inc", cost: incumbentCost, noiseMs },
            ],
            elapsed,
          )
          expect(d.choice).toEqual(prev)
          expect(d.switched).toBe(false)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it("switches when the gain beats every margin and the dwell has passed", () => {
    fc.assert(
      fc.property(finiteCost, fc.double({ min: 0, max: 20, noNaN: true }), (incumbentCost, noiseMs) => {
        const threshold = switchThresholdMs(incumbentCost, noiseMs * Math.SQRT2)
        fc.pre(incumbentCost > threshold + 1e-6)
        const challengerCost = Math.max(0, incumbentCost - threshold * 1.01 - 1e-6)
        const prev: Choice<string> = { key: "inc", sinceMillis: 0 }
        const cands: ReadonlyArray<Candidate<string>> = [
          { key: "inc", cost: incumbentCost, noiseMs },
          { key: "ch", cost: challengerCost, noiseMs },
        ]
        const early = decide(prev, cands, cfg.dwellMillis - 1)
        expect(early.choice).toEqual(prev)
        expect(early.reason).toBe("dwell")
        const late = decide(prev, cands, cfg.dwellMillis)
        expect(late.choice).toEqual({ key: "ch", sinceMillis: cfg.dwellMillis })
        expect(late.switched).toBe(true)
        expect(late.reason).toBe("better")
      }),
    )
  })

  it("leaves a dead or missing incumbent at once, dwell or not", () => {
    fc.assert(
      fc.property(finiteCost, fc.nat(cfg.dwellMillis), fc.boolean(), (challengerCost, now, missing) => {
        const prev: Choice<string> = { key: "inc", sinceMillis: now }
        const cands: Array<Candidate<string>> = [{ key: "ch", cost: challengerCost }]
        if (!missing) cands.push({ key: "inc", cost: Number.POSITIVE_INFINITY })
        const d = decide(prev, cands, now)
        expect(d.choice?.key).toBe("ch")
        expect(d.reason).toBe("left-dead")
      }),
    )
  })

  it("stays on a dead incumbent when everything is dead", () => {
    const prev: Choice<number> = { key: 4, sinceMillis: 0 }
    const d = decide(
      prev,
      [
        { key: 6, cost: Number.POSITIVE_INFINITY },
        { key: 4, cost: Number.NaN },
      ],
      1,
    )
    expect(d.choice).toEqual(prev)
    expect(d.reason).toBe("all-dead")
    expect(d.cost).toBe(Number.POSITIVE_INFINITY)
  })

  it("prefers the incumbent on a tie and reports no candidates", () => {
    const prev: Choice<string> = { key: "b", sinceMillis: 0 }
    const d = decide(
      prev,
      [
        { key: "a", cost: 7 },
        { key: "b", cost: 7 },
      ],
      1e9,
    )
    expect(d.choice).toEqual(prev)
    expect(d.reason).toBe("incumbent-best")
    expect(decide(prev, [], 5).reason).toBe("no-candidates")
    expect(decide(undefined, [], 5).choice).toBeUndefined()
  })

  it("the noise term dominates the threshold when the noise is large", () => {
    expect(switchThresholdMs(10, 0)).toBe(2)
    expect(switchThresholdMs(100, 0)).toBe(10)
    expect(switchThresholdMs(100, 10)).toBe(15)
    expect(switchThresholdMs(100, 20)).toBe(30)
  })

  it("over random timelines: dwell (or urgent dwell for urgent gains) respected between switches, dead choices left at once", () => {
    const step = fc.record({
      dt: fc.integer({ min: 0, max: 20_000 }),
      costs: fc.array(fc.oneof(finiteCost, fc.constant(Number.POSITIVE_INFINITY)), { minLength: 3, maxLength: 3 }),
    })
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let now = 0
        let prev: Choice<number> | undefined
        let lastSwitch = Number.NEGATIVE_INFINITY
        for (const { dt, costs } of steps) {
          now += dt
          const d = decide(
            prev,
            costs.map((cost, key) => ({ key, cost })),
            now,
          )
          const incumbentCost = prev === undefined ? undefined : costs[prev.key]!
          if (d.switched) {
            if (d.reason === "better") expect(now - lastSwitch).toBeGreaterThanOrEqual(cfg.dwellMillis)
            else if (d.reason === "urgent") {
              expect(now - lastSwitch).toBeGreaterThanOrEqual(cfg.urgentDwellMillis)
              expect(incumbentCost! - d.cost).toBeGreaterThan(cfg.urgentGainFactor * d.thresholdMs)
            } else expect(d.reason).toBe("left-dead")
            expect(d.cost).toBeLessThan(incumbentCost!)
            lastSwitch = now
          }
          if (incumbentCost === Number.POSITIVE_INFINITY && costs.some(Number.isFinite)) expect(d.switched).toBe(true)
          prev = d.choice
        }
      }),
      { numRuns: 1000 },
    )
  })
})
