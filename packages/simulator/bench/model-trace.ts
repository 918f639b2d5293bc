/**
 * Lockstep by trace, the check for speed-only engine and model changes: hashes every decision
 * (every route's fields), every advertisement (tunnels, distances, requests) and every own seqno of
 * every router, and the report, in fixed model runs. Built once against the old tree (a git
 * worktree) and once against the new one; equal hashes = the same decisions in the same order.
 *
 *   npx esbuild packages/simulator/bench/model-trace.ts --bundle --platform=node --format=esm \
 *     --conditions=source --outfile=/tmp/trace-new.mjs && node /tmp/trace-new.mjs [all|small|verdicts|60|200]
 *
 * (the same in the worktree of the old commit; `verdicts` needs an engine with `peerVerdicts`).
 * A second argument `legacy-exchange` runs every scenario with the model's exchange before 27 Nov
 * (1 s adverts, no metric or request trigger: `legacyExchange`), whose hashes the README lists up
 * to session 8.
 */
import type { NodeRouter } from "@net-perf/engine"
import {
  defaultEngineSettings,
  delayedLinkStateScenario,
  type EngineSettings,
  engineRouters,
  legacyEngineSettings,
  legacyExchange,
  linkStateMessageRoutes,
  needsBgpPaths,
  randomScenario,
  randomSmallScenario,
  runModel,
  type Scenario,
} from "../src/model/index.js"

const buf = new Float64Array(1)
const u32 = new Uint32Array(buf.buffer)
let h1 = 0x811c9dc5 | 0
let h2 = 0x1234567 | 0
let count = 0
const mix = (x: number) => {
  buf[0] = x
  for (let i = 0; i < 2; i++) {
    h1 = Math.imul(h1 ^ u32[i]!, 0x01000193)
    h2 = Math.imul(h2 ^ u32[i]!, 0x5bd1e995) ^ (h2 >>> 15)
  }
}
const mixS = (s: string) => {
  for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i))
}
const num = (x: number | null | undefined) => mix(x === null ? -1e308 : x === undefined ? -1.5e308 : x)

const traced = (settings: EngineSettings) => {
  const make = engineRouters(settings)
  return (self: number, restarted: boolean) => {
    // The engine's NodeRouter (engineRouters makes one), wrapped in place.
    const r = make(self, restarted) as unknown as NodeRouter
    const decide = r.decide.bind(r)
    const advertise = r.advertise.bind(r)
    r.decide = (now: number) => {
      const d = decide(now)
      count++
      num(self)
      num(now)
      num(r.seqno)
      for (const x of d.routes) {
        num(x.destination)
        num(x.nextHop)
        num(x.tunnel?.family)
        num(x.costMs)
        num(x.metricMs)
        num(x.seqno)
        num(x.starved ? 1 : 0)
        mixS(x.stability)
        mixS(x.algorithm ?? "-")
        num(x.path.length)
        for (const p of x.path) num(p)
        num(x.feasibleDistance?.seqno)
        num(x.feasibleDistance?.distanceMs)
        num(x.fallbacks.length)
      }
      return d
    }
    r.advertise = (now: number) => {
      const m = advertise(now)
      num(m.origin)
      num(m.incarnation)
      num(m.seq)
      num(m.generatedAtMillis)
      for (const t of m.tunnels) {
        num(t.remote)
        num(t.family)
        num(t.costMs)
        num(t.selected ? 1 : 0)
        num(t.stats.rttMs)
        num(t.stats.lossRatio)
      }
      for (const x of m.distances) {
        num(x.destination)
        num(x.seqno)
        num(x.distanceMs)
        num(x.nextHop)
      }
      for (const q of m.requests) {
        num(q.destination)
        num(q.seqno)
      }
      return m
    }
    return r
  }
}

const oldExchange = process.argv[3] === "legacy-exchange"
const run = (s: Scenario, settings: EngineSettings) => {
  h1 = 0x811c9dc5 | 0
  h2 = 0x1234567 | 0
  count = 0
  const t0 = performance.now()
  const report = runModel({
    ...s,
    ...(oldExchange ? { exchange: { ...s.exchange, ...legacyExchange } } : {}),
    name: s.name,
    makeRouter: traced(settings),
    describeMessage: linkStateMessageRoutes,
    bgpPaths: needsBgpPaths(settings) || s.mesh.sites <= 60,
  })
  mixS(JSON.stringify(report, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)))
  console.log(
    `${s.name} | ${settings.label}: ${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)} (${count} decides, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  )
}

const which = process.argv[2] ?? "all"
const digestScenario = (n: number) =>
  randomScenario({
    sites: n,
    topology: n <= 60 ? "full" : "partial",
    degree: 8,
    seed: 1000,
    warmupMillis: 50_000,
    measuredMillis: 20_000,
    hardFailures: 3,
    latencySteps: 2,
    stretchSampleMillis: 5_000,
    siteRestarts: 2,
  })
const rows: EngineSettings[] = [
  defaultEngineSettings,
  { label: "least-cost-bgp", algorithm: "least-cost-bgp", stability: "default", costModel: "default" },
  { label: "shortest-bgp", algorithm: "shortest-bgp", stability: "default", costModel: "default" },
  { label: "measured-fastest", algorithm: "measured-fastest", stability: "default", costModel: "default" },
  legacyEngineSettings,
]
if (which === "all" || which === "small") {
  run(delayedLinkStateScenario(2000, 20, 60_000), defaultEngineSettings)
  run(delayedLinkStateScenario(2001, 20, 60_000), legacyEngineSettings)
  for (let i = 0; i < 30; i++) {
    const settings = rows[i % rows.length]!
    run(randomSmallScenario(100_000 + i, 20_000, 8_000), { ...settings, extra: { startupHoldDownMillis: 2_000 } })
  }
}
if (which === "all" || which === "verdicts") {
  const pv = (x: EngineSettings): EngineSettings => ({
    ...x,
    label: `${x.label} +peerVerdicts`,
    extra: { ...x.extra, peerVerdicts: true } as never,
  })
  run(delayedLinkStateScenario(2000, 20, 60_000), pv(defaultEngineSettings))
  for (let i = 0; i < 10; i++)
    run(
      randomSmallScenario(100_000 + i, 20_000, 8_000),
      pv({ ...rows[i % rows.length]!, extra: { startupHoldDownMillis: 2_000 } }),
    )
  run(digestScenario(60), pv(defaultEngineSettings))
}
if (which === "all" || which === "60")
  for (const s of [defaultEngineSettings, legacyEngineSettings]) run(digestScenario(60), s)
if (which === "all" || which === "200")
  for (const s of [defaultEngineSettings, legacyEngineSettings]) run(digestScenario(200), s)
