/**
 * The model reads an engine decision's columns (`RoutingDecision.columns`) instead of its route
 * objects: the same run read either way gives the same report, and every decision's columns say
 * what its routes say (speed only; see the simulator README, "Speed, 27 Nov morning").
 */

import { fc, test } from "@fast-check/vitest"
import type { NodeRouter, RoutingDecision } from "@net-perf/engine"
import { describe, expect } from "vitest"
import {
  defaultEngineSettings,
  type EngineSettings,
  engineRouters,
  legacyEngineSettings,
  linkStateMessageRoutes,
} from "../../src/model/EngineRouters.js"
import { runModel, type SiteRouter } from "../../src/model/ModelRun.js"
import { toJson } from "../../src/model/Report.js"
import { randomSmallScenario } from "../../src/model/Scenarios.js"

const settingsArb = fc.constantFrom<EngineSettings>(
  defaultEngineSettings,
  { label: "least-cost-bgp", algorithm: "least-cost-bgp", stability: "default", costModel: "default" },
  { label: "measured-fastest", algorithm: "measured-fastest", stability: "default", costModel: "default" },
  legacyEngineSettings,
)

/** Columns equal to the routes, field by field. */
const checkColumns = (d: RoutingDecision): void => {
  const c = d.columns!
  expect(c.count).toBe(d.routes.length)
  d.routes.forEach((r, i) => {
    expect(c.destination[i]).toBe(r.destination)
    expect(c.nextHop[i]).toBe(r.nextHop ?? -1)
    expect(c.family[i]).toBe(r.tunnel?.family ?? 0)
    expect(c.costMs[i]).toBe(r.costMs)
    expect(c.metricMs[i]).toBe(r.metricMs)
    expect(c.seqno[i]).toBe(r.seqno)
    expect(c.starved[i]).toBe(r.starved ? 1 : 0)
    expect(r.tunnel === null).toBe(r.nextHop === null)
    expect(r.interfaceName === null).toBe(r.nextHop === null)
  })
}

describe("decision columns", () => {
  test.prop([fc.integer({ min: 1, max: 2 ** 31 - 1 }), settingsArb], { numRuns: 6 })(
    "a run reading the columns equals one reading the route objects; columns equal routes",
    (seed, base) => {
      const settings = { ...base, extra: { startupHoldDownMillis: 2_000 } }
      const scenario = randomSmallScenario(seed, 20_000, 8_000)
      const run = (make: (self: number, restarted: boolean) => SiteRouter<unknown>) =>
        JSON.stringify(
          toJson(
            runModel({
              ...scenario,
              makeRouter: make,
              describeMessage: linkStateMessageRoutes as never,
              bgpPaths: true,
            }),
          ),
        )
      const engine = engineRouters(settings)
      let checked = 0
      const withColumns = run((self, restarted) => {
        const r = engine(self, restarted) as unknown as NodeRouter
        const decide = r.decide.bind(r)
        r.decide = (now: number) => {
          const d = decide(now)
          if (checked++ % 7 === 0) checkColumns(d)
          return d
        }
        return r as unknown as SiteRouter<unknown>
      })
      // The same routers, their decisions seen only through `routes` (no columns).
      const withRoutes = run((self, restarted) => {
        const r = engine(self, restarted) as unknown as NodeRouter
        const decide = r.decide.bind(r)
        r.decide = (now: number) => ({ routes: decide(now).routes }) as RoutingDecision
        return r as unknown as SiteRouter<unknown>
      })
      expect(checked).toBeGreaterThan(0)
      expect(withColumns).toBe(withRoutes)
    },
  )
})
