// The metrics-store source against a real Prometheus (Debian package) on loopback, scraping a
// real /metrics endpoint (the measurement plane's registry and HTTP server) every second:
// decoding into LinkStats, the merge rule applied to a real router's graph, the store going
// down (metric, one log line, exchange data untouched, old samples aging out) and coming back.
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { LinkStateMessage, linkCost, NodeRouter, SiteId, tunnelId } from "@net-perf/engine"
import { Duration, Effect, Logger } from "effect"
import { execa } from "execa"
import type { Registry } from "prom-client"
import { MeasurementMetrics, tunnelLabelValues } from "../../src/metrics/Metrics.js"
import { serveMetrics } from "../../src/metrics/MetricsServer.js"
import { runMetricsStoreFallback } from "../../src/metricsstore/MetricsStore.js"
import { startPrometheus } from "../../src/metricsstore/PrometheusProcess.js"

const hasPrometheus = await execa("prometheus", ["--version"], { reject: false }).then(
  (r) => r.exitCode === 0,
  () => false,
)
if (!hasPrometheus) console.log("skipping the real-Prometheus test: `prometheus` is not installed (Debian package)")

const freePort = () =>
  Effect.async<number>((resume) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resume(Effect.succeed(port)))
    })
  })

const gaugeValue = async (registry: Registry, name: string, labels: Record<string, string> = {}) => {
  const metric = await registry.getSingleMetric(name)?.get()
  return (
    metric?.values
      .filter((v) => Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))
      .reduce((n, v) => n + v.value, 0) ?? Number.NaN
  )
}

/** Polls `check` every 100 ms until it is true; fails after `timeoutMillis`. */
const waitFor = (what: string, check: () => boolean | Promise<boolean>, timeoutMillis = 20_000) =>
  Effect.gen(function* () {
    const start = Date.now()
    while (!(yield* Effect.promise(async () => check()))) {
      if (Date.now() - start > timeoutMillis) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("100 millis")
    }
    return Date.now() - start
  })

describe.skipIf(!hasPrometheus)("metrics store against a real Prometheus", () => {
  it.scopedLive(
    "decodes peers' tunnels, fills only links the exchange lacks, survives the store going down and back",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.promise(() => mkdtemp(join(tmpdir(), "np-prom-"))),
          (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
        )
        const logs: string[] = []
        const collect = Logger.make(({ message }) => {
          logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
        })

        // Peers' exported tunnels, served by the real metrics server (as a daemon serves them).
        const exported = yield* MeasurementMetrics
        const set = (local: number, remote: number, up: number, rttMs?: number, lossRatio = 0) => {
          const labels = tunnelLabelValues(tunnelId(local, remote, 4))
          exported.up.set(labels, up)
          if (rttMs !== undefined) exported.rttSmoothed.set(labels, rttMs / 1000)
          exported.jitter.set(labels, 0.001)
          exported.lossRatio.set(labels, lossRatio)
          exported.availability.set(labels, 1)
        }
        set(1, 2, 1, 12) // origin 1: the exchange has fresh data from it
        set(2, 1, 1, 15, 0.02) // origin 2: silent on the exchange; the store fills its links
        set(2, 3, 0) // down at its origin: must stay unknown
        const metricsServer = yield* serveMetrics(
          { host: "127.0.0.1", port: 0 },
          exported.registry,
          Effect.succeed({}),
          Effect.succeed({}),
        )
        const target = `127.0.0.1:${(metricsServer.address() as { port: number }).port}`

        const promPort = yield* freePort()
        const t0 = Date.now()
        const prometheus = yield* startPrometheus({
          dir: join(dir, "prometheus"),
          listen: `127.0.0.1:${promPort}`,
          targets: [target],
          scrapeIntervalMillis: 1000,
        })
        const startedMs = Date.now() - t0

        // A real router at site 0 with a fresh exchange message from origin 1 (link 1→2 at 30 ms).
        const router = NodeRouter.make({ self: 0, linkStateMaxAgeMillis: 10_000 })
        const heard = new Map<number, number>()
        const exchangeStats = {
          tunnel: tunnelId(1, 2, 4),
          state: "up" as const,
          rttMs: 30,
          jitterMs: 0,
          lossRatio: 0,
          availability: 1,
          lastSampleAtMillis: Date.now(),
          lastReplyAtMillis: Date.now(),
        }
        router.receiveLinkState(
          new LinkStateMessage({
            origin: SiteId.make(1),
            incarnation: 1,
            seq: 1,
            generatedAtMillis: Date.now(),
            tunnels: [{ remote: SiteId.make(2), family: 4, stats: exchangeStats, costMs: 30, selected: true }],
            // Origin 1 forwards (a route to 2): the graph leaves out the links of an origin that
            // offers no route.
            distances: [
              { destination: SiteId.make(1), seqno: 0, distanceMs: 0, nextHop: null },
              { destination: SiteId.make(2), seqno: 0, distanceMs: 30, nextHop: SiteId.make(2) },
            ],
            requests: [],
          }),
          Date.now(),
        )
        heard.set(1, Date.now())
        const exchangeCost = router.graph.linkCost(SiteId.make(1), SiteId.make(2))
        expect(exchangeCost).toBe(30)

        const registry = (yield* MeasurementMetrics).registry
        let changes = 0
        const source = yield* runMetricsStoreFallback({
          settings: { url: prometheus.url, intervalMillis: 300, timeoutMillis: 1_000, maxSampleAgeMillis: 4_000 },
          self: SiteId.make(0),
          registry,
          graph: router.graph,
          // The test's exchange stays fresh for origin 1 throughout (it is never allowed to age).
          exchangeFresh: (origin) => heard.has(origin),
          costModel: "default",
          onChange: Effect.sync(() => {
            changes++
          }),
        }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))

        // Prometheus needs a scrape or two before the query has data.
        const firstDataMs = yield* waitFor("the store's first tunnels", () => source.latest().tunnels.length === 3)
        const byKey = new Map(source.latest().tunnels.map((t) => [`${t.tunnel.local}-${t.tunnel.remote}`, t]))
        const s21 = byKey.get("2-1")!
        expect(s21.state).toBe("up")
        expect(s21.rttMs).toBeCloseTo(15, 6)
        expect(s21.jitterMs).toBeCloseTo(1, 6)
        expect(s21.lossRatio).toBeCloseTo(0.02, 6)
        expect(s21.availability).toBe(1)
        expect(Math.abs(Date.now() - (s21.lastSampleAtMillis ?? 0))).toBeLessThan(5_000)
        expect(byKey.get("1-2")?.rttMs).toBeCloseTo(12, 6)
        expect(byKey.get("2-3")?.state).toBe("unknown")

        // The merge rule on the real graph: 2→1 from the store, 2→3 unknown, 1→2 still the exchange's.
        yield* waitFor("the fallback row of origin 2", () =>
          Number.isFinite(router.graph.linkCost(SiteId.make(2), SiteId.make(1))),
        )
        expect(router.graph.linkCost(SiteId.make(2), SiteId.make(1))).toBeCloseTo(linkCost(s21), 6)
        expect(router.graph.linkCost(SiteId.make(2), SiteId.make(3))).toBe(Number.POSITIVE_INFINITY)
        expect(router.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBe(exchangeCost)
        expect(changes).toBeGreaterThan(0)
        expect(yield* Effect.promise(() => gaugeValue(registry, "netperf_metrics_store_up"))).toBe(1)
        expect(yield* Effect.promise(() => gaugeValue(registry, "netperf_metrics_store_fallback_links"))).toBe(1)
        expect(logs.filter((l) => l.includes("reachable"))).toHaveLength(1)
        expect(logs.some((l) => l.includes("links of site(s) 2 come from the store"))).toBe(true)

        // The store goes down.
        const stoppedAt = Date.now()
        yield* prometheus.stop()
        const downMs = yield* waitFor("netperf_metrics_store_up = 0", async () => {
          return (await gaugeValue(registry, "netperf_metrics_store_up")) === 0
        })
        const downAfterStopMs = Date.now() - stoppedAt
        expect(yield* Effect.promise(() => gaugeValue(registry, "netperf_metrics_store_errors_total"))).toBeGreaterThan(
          0,
        )
        // The exchange's link is untouched; the store's last sample still counts while it is recent...
        expect(router.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBe(exchangeCost)
        // ...and becomes unknown once older than maxSampleAgeMillis (never better than unknown).
        const agedOutMs = yield* waitFor(
          "the store's old sample to age out",
          () => router.graph.linkCost(SiteId.make(2), SiteId.make(1)) === Number.POSITIVE_INFINITY,
          10_000,
        )
        expect(router.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBe(exchangeCost)
        yield* Effect.sleep("1 second") // several more failed refreshes
        expect(logs.filter((l) => l.includes("metrics store unavailable"))).toHaveLength(1)
        expect(logs.find((l) => l.includes("metrics store unavailable"))).toContain("unreachable")

        // Back again: one "answers again" line, the gauge at 1, origin 2's link filled again from new samples.
        yield* prometheus.start
        yield* waitFor("netperf_metrics_store_up = 1", async () => {
          return (await gaugeValue(registry, "netperf_metrics_store_up")) === 1
        })
        yield* waitFor("origin 2's link from new samples", () =>
          Number.isFinite(router.graph.linkCost(SiteId.make(2), SiteId.make(1))),
        )
        expect(logs.filter((l) => l.includes("answers again"))).toHaveLength(1)
        expect(router.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBe(exchangeCost)

        const histogram = yield* Effect.promise(
          async () =>
            ((await registry.getSingleMetric("netperf_metrics_store_query_seconds")?.get())?.values ??
              []) as ReadonlyArray<{
              readonly metricName?: string
              readonly value: number
            }>,
        )
        const sum = histogram.find((v) => v.metricName === "netperf_metrics_store_query_seconds_sum")?.value ?? 0
        const count = histogram.find((v) => v.metricName === "netperf_metrics_store_query_seconds_count")?.value ?? 0
        console.log(
          `prometheus ready in ${startedMs} ms; first tunnel data after ${firstDataMs} ms; mean refresh (2 queries) ${((1000 * sum) / count).toFixed(1)} ms over ${count}; store down → metric 0 in ${downAfterStopMs} ms (${downMs} ms after stop returned); old sample aged out after ${agedOutMs} ms more`,
        )
        yield* Effect.sleep(Duration.millis(10))
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    90_000,
  )
})
