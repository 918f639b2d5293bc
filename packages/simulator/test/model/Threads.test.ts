/**
 * Two-thread model runs (`ModelThreads.ts`) against one-thread runs of the same model: the report
 * must be the same, figure for figure (deep-equal JSON, stretch histogram included), over random
 * small scenarios (failures, restarts, delayed, lossy and reordered link state) and a larger
 * partial mesh. The workers run the built `dist/` (`npm test` builds first). A dropped or
 * misplaced cross-thread message changes the report (checked by planting one: see the README).
 */
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { defaultEngineSettings, type EngineSettings, legacyEngineSettings } from "../../src/model/EngineRouters.js"
import { lookaheadMillis } from "../../src/model/ModelRun.js"
import { runScenarioOnThreads, splitByTick } from "../../src/model/ModelThreads.js"
import {
  randomScenario,
  randomSmallScenario,
  runScenario,
  type Scenario,
  threadsPossible,
} from "../../src/model/Scenarios.js"

const seed = fc.integer({ min: 1, max: 2 ** 31 - 1 })

const configurations: ReadonlyArray<EngineSettings> = [defaultEngineSettings, legacyEngineSettings].map((c) => ({
  ...c,
  extra: { startupHoldDownMillis: 2_000 },
}))

const sameReport = (scenario: Scenario, settings: EngineSettings): void => {
  expect(threadsPossible(scenario, settings), "the scenario must really run on two threads").toBe(true)
  const one = runScenario(scenario, settings, true, 1)
  const two = runScenario(scenario, settings, true, 2)
  expect(JSON.parse(JSON.stringify(two))).toEqual(JSON.parse(JSON.stringify(one)))
}

describe("model on two threads", () => {
  test.prop([seed, fc.constantFrom(...configurations), fc.boolean()], { numRuns: 6 })(
    "the report equals the one-thread run's (random small scenarios)",
    (s, settings, direct) => {
      const base = randomSmallScenario(s, 20_000, 8_000)
      // Small scenarios draw their link-state delay; below 1 ms a run cannot be split: take 20.
      const exchange = lookaheadMillis(base.exchange) >= 1 ? base.exchange : { ...base.exchange, delayMillis: 20 }
      sameReport({ ...base, exchange: { ...exchange, ...(direct ? { relay: "direct" as const } : {}) } }, settings)
    },
    60_000,
  )

  it("the report equals the one-thread run's (N = 40 partial, restarts and failures)", () => {
    const scenario = randomScenario({
      sites: 40,
      topology: "partial",
      degree: 6,
      seed: 77,
      warmupMillis: 20_000,
      measuredMillis: 20_000,
      hardFailures: 3,
      latencySteps: 2,
      siteRestarts: 2,
      restartDownMillis: [1_000, 4_000],
      stretchSampleMillis: 5_000,
    })
    sameReport(scenario, { ...defaultEngineSettings, extra: { startupHoldDownMillis: 5_000 } })
  }, 60_000)

  it("measured-fastest (path probes over other sites' routes) runs on one thread", () => {
    const scenario = randomSmallScenario(5, 20_000, 8_000)
    expect(threadsPossible(scenario, { ...defaultEngineSettings, algorithm: "measured-fastest" })).toBe(false)
  })
})

describe("splitting the sites by tick", () => {
  test.prop([fc.array(fc.integer({ min: 0, max: 999 }), { maxLength: 60 })])(
    "every stretch of the decide interval holds as many ticks of one thread as of the other, ± 1",
    (ticks) => {
      const threadOf = splitByTick(Float64Array.from(ticks))
      // Any window [a, b] of tick times: the two threads' counts differ by at most 1.
      for (const a of ticks)
        for (const b of ticks) {
          const inside = ticks.flatMap((t, s) => (t >= a && t <= b ? [threadOf[s]!] : []))
          const ones = inside.filter((x) => x === 1).length
          expect(Math.abs(inside.length - 2 * ones)).toBeLessThanOrEqual(1)
        }
    },
  )
})

describe("model threads on error", () => {
  it("a worker's failure reaches the caller as an exception, promptly (no hang, workers terminated)", () => {
    // Below 1 ms of link-state delay the halves cannot run apart: runScenario would use one
    // thread; asked directly, each worker refuses and says why.
    const scenario = { ...randomSmallScenario(11, 10_000, 5_000), exchange: { delayMillis: 0 } }
    const t0 = Date.now()
    expect(() => runScenarioOnThreads(scenario, defaultEngineSettings)).toThrow(/link-state delay below 1 ms/)
    expect(Date.now() - t0).toBeLessThan(30_000)
  }, 60_000)
})
