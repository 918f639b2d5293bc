/**
 * Properties of the engine measured by the model simulator (every routing decision here comes
 * from the engine's NodeRouter): no forwarding loop in random scenarios with stale, lossy,
 * reordered link state; every hard failure that leaves an alternative is routed around; no route
 * switch among near-equal paths (inside the stability margins); and a run is a pure function of
 * its seed. The bench (`npm run bench:model`) runs the same checks at scale (10 000 scenarios).
 */
import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import { defaultEngineSettings, type EngineSettings, legacyEngineSettings } from "../../src/model/EngineRouters.js"
import { toJson } from "../../src/model/Report.js"
import { nearEqualPathsScenario, randomScenario, randomSmallScenario, runScenario } from "../../src/model/Scenarios.js"

const seed = fc.integer({ min: 1, max: 2 ** 31 - 1 })

/** Every configuration, with a short start-up hold-down so a scenario needs little warm-up. */
const configurations: ReadonlyArray<EngineSettings> = (
  [
    defaultEngineSettings,
    { label: "no hysteresis", algorithm: "graph-least-cost", stability: "none", costModel: "default" },
    { label: "least-cost-bgp", algorithm: "least-cost-bgp", stability: "default", costModel: "default" },
    { label: "shortest-bgp", algorithm: "shortest-bgp", stability: "default", costModel: "default" },
    { label: "measured-fastest", algorithm: "measured-fastest", stability: "default", costModel: "default" },
    legacyEngineSettings,
  ] satisfies ReadonlyArray<EngineSettings>
).map((c) => ({ ...c, extra: { startupHoldDownMillis: 2_000 } }))

describe("model simulator × engine", () => {
  test.prop([seed, fc.constantFrom(...configurations)], { numRuns: 8 })(
    "no forwarding loop in random scenarios, under every configuration",
    (s, settings) => {
      const report = runScenario(randomSmallScenario(s, 20_000, 8_000), settings)
      expect(report.loops.count, `${settings.label}: ${JSON.stringify(report.loopSamples)}`).toBe(0)
      expect(report.loops.pairSeconds).toBe(0)
    },
  )

  test.prop([seed], { numRuns: 4 })("every hard failure in a full mesh is routed around within 10 s", (s) => {
    // A full mesh keeps an alternative for every single tunnel failure.
    const scenario = randomScenario({
      sites: 5,
      topology: "full",
      seed: s,
      measuredMillis: 60_000,
      warmupMillis: 40_000,
      hardFailures: 3,
    })
    const report = runScenario(scenario, { ...defaultEngineSettings, extra: { startupHoldDownMillis: 5_000 } }, true)
    expect(report.hardFailures.unresolved).toBe(0)
    for (const e of report.events ?? []) if (e.hard) expect(e.reactionMillis).toBeLessThan(10_000)
  })

  test.prop([seed], { numRuns: 2 })("no route switch among near-equal paths under jitter", (s) => {
    const report = runScenario(nearEqualPathsScenario(s, 6, 60_000), defaultEngineSettings)
    expect(report.switches.total).toBe(0)
  })

  test.prop([seed], { numRuns: 2 })(
    "a restarted site gets a fresh engine: it withdraws its routes for its hold-down, then routes again, loop-free",
    (s) => {
      const base = randomScenario({ sites: 5, topology: "full", seed: s, measuredMillis: 40_000, warmupMillis: 10_000 })
      const settings: EngineSettings = {
        ...defaultEngineSettings,
        extra: { startupHoldDownMillis: 2_000 },
        restartHoldDownMillis: 5_000,
      }
      const quiet = runScenario(base, settings)
      const restarted = runScenario({ ...base, restarts: [{ site: 2, atMillis: 15_000, downMillis: 3_000 }] }, settings)
      expect(restarted.loops.count).toBe(0)
      // Its 4 destinations have no route during the 5 s hold-down (the model has no BIRD to fall
      // back on), and while its echo responder is down the others withdraw their routes to it;
      // both end within seconds (bounded well below 8 pairs × the 40 s measured).
      const extra = restarted.blackholes.pairSeconds - quiet.blackholes.pairSeconds
      expect(extra).toBeGreaterThan(4 * 4)
      expect(extra).toBeLessThan(8 * 15)
    },
  )

  test.prop([seed], { numRuns: 2 })("the same seed gives the same report", (s) => {
    const a = runScenario(randomSmallScenario(s, 20_000), defaultEngineSettings, true)
    const b = runScenario(randomSmallScenario(s, 20_000), defaultEngineSettings, true)
    expect(JSON.stringify(toJson(b))).toBe(JSON.stringify(toJson(a)))
    expect(a.overhead.probesPerSitePerSecond).toBeGreaterThan(0)
  })
})
