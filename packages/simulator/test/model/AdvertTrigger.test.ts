/**
 * The daemon's advertisement trigger in the model (`ExchangeConfig.metricTrigger`, on by default
 * since 27 Nov, `false` turns it off): metric moves
 * beyond the thresholds and starved flags go out at once, every advertisement restarts the
 * periodic interval, and a longer periodic interval with the trigger (and `requestTrigger`: new
 * seqno requests at once) keeps runs loop-free. Used
 * to measure what a longer `routing.advertiseIntervalMillis` would cost (README, "Speed, session 7").
 * A route's new seqno goes out at once only while the engine calls it urgent (`seqnoUrgent`, the
 * daemon's rule since session 11).
 */

import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { defaultEngineSettings, engineRouters, linkStateMessageRoutes } from "../../src/model/EngineRouters.js"
import { type ExchangeConfig, runModel, type SiteRouter } from "../../src/model/ModelRun.js"
import { randomScenario, randomSmallScenario } from "../../src/model/Scenarios.js"

const settings = { ...defaultEngineSettings, extra: { startupHoldDownMillis: 2_000 } }

const run = (
  seed: number,
  exchange: Partial<ExchangeConfig>,
  hardFailures = 0,
  makeRouter: (self: number, restarted: boolean) => SiteRouter<unknown> = engineRouters(settings),
) => {
  const scenario = randomScenario({
    sites: 8,
    topology: "full",
    degree: 3,
    seed,
    measuredMillis: 30_000,
    warmupMillis: 10_000,
    hardFailures,
    recoveryAfterMillis: [10_000, 20_000],
    latencySteps: 2,
    siteRestarts: 0,
    restartDownMillis: [500, 1_000],
  })
  return runModel({
    ...scenario,
    exchange: { ...scenario.exchange, ...exchange },
    makeRouter,
    describeMessage: linkStateMessageRoutes as never,
  })
}

/** The engine's routers with every route's seqno change called urgent, or none. */
const urgency =
  (urgent: boolean) =>
  (self: number, restarted: boolean): SiteRouter<unknown> => {
    const router = engineRouters(settings)(self, restarted)
    router.seqnoUrgent = () => urgent
    return router
  }

describe("advertisement trigger (metricTrigger)", () => {
  test.prop([fc.integer({ min: 1, max: 2 ** 31 - 1 })], { numRuns: 3 })(
    "with a 60 s period, every metric move goes out at once with zero thresholds and none with huge ones",
    (seed) => {
      const slow = { advertiseIntervalMillis: 60_000, requestTrigger: false }
      const every = run(seed, { ...slow, metricTrigger: { absoluteMs: 0, relative: 0 } })
      const never = run(seed, { ...slow, metricTrigger: { absoluteMs: 1e9, relative: 1e9 } })
      const modelOnly = run(seed, { ...slow, metricTrigger: false })
      // Probe noise moves some metric at almost every decision (about one per site per second).
      expect(every.overhead.messagesSentPerSitePerSecond).toBeGreaterThan(0.5)
      // Huge thresholds leave starved flags, forwarding and seqno changes: what the model alone sends,
      // minus the periodic messages the restarted interval pushed back.
      expect(never.overhead.messagesSentPerSitePerSecond).toBeLessThan(0.2)
      expect(never.overhead.messagesSentPerSitePerSecond).toBeLessThanOrEqual(
        modelOnly.overhead.messagesSentPerSitePerSecond + 0.05,
      )
    },
  )

  test.prop([fc.integer({ min: 1, max: 2 ** 31 - 1 })], { numRuns: 6 })(
    "a 4 s period with the daemon's trigger (and with requests triggering too) stays loop-free",
    (seed) => {
      const scenario = randomSmallScenario(seed, 30_000, 10_000)
      const report = runModel({
        ...scenario,
        exchange: {
          ...scenario.exchange,
          advertiseIntervalMillis: 4_000,
          metricTrigger: { absoluteMs: 1, relative: 0.05 },
          requestTrigger: seed % 2 === 0,
        },
        makeRouter: engineRouters(settings),
        describeMessage: linkStateMessageRoutes as never,
      })
      expect(report.loops.count).toBe(0)
    },
  )

  it("a route's new seqno goes out at once only while the engine calls it urgent", () => {
    // Fixed seeds (an 8-site full mesh, 4 hard failures each): failures raise seqnos (both ends of a
    // dead link raise their own), and every site adopting one re-advertises at once when every
    // change is urgent. Per seed the counts are not ordered for sure (message timing changes the
    // decisions), so the sums are compared.
    const sent = (makeRouter?: (self: number, restarted: boolean) => SiteRouter<unknown>) =>
      [11, 12, 13].reduce((sum, seed) => {
        const report = run(seed, {}, 4, makeRouter)
        expect(report.loops.count).toBe(0)
        return sum + report.overhead.messagesSentPerSitePerSecond
      }, 0)
    const always = sent(urgency(true))
    const engine = sent()
    const never = sent(urgency(false))
    expect(always).toBeGreaterThan(engine)
    expect(engine).toBeGreaterThanOrEqual(never)
  })
})
