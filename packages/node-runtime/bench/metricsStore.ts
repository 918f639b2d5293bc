/**
 * Metrics-store bench: a real Prometheus (Debian package) on loopback scraping a real metrics
 * server that exports N tunnels (6-site and 20-site dual-stack meshes: 60 and 760 tunnels) every
 * second; prints how long Prometheus takes to be ready and to have every tunnel, and the latency
 * of one refresh (the source's two instant queries in parallel + decoding into LinkStats).
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/metricsStore.ts [--json] [--refreshes N]
 */
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { tunnelId } from "@net-perf/engine"
import { Effect } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../src/metrics/Metrics.js"
import { serveMetrics } from "../src/metrics/MetricsServer.js"
import {
  linkStatsFromSeries,
  tunnelSampleTimesQuery,
  tunnelValuesQuery,
} from "../src/metricsstore/MetricsStoreSource.js"
import { makePromClient } from "../src/metricsstore/PromApi.js"
import { startPrometheus } from "../src/metricsstore/PrometheusProcess.js"
import { helpAndExit, jsonFlag } from "./lib.js"

helpAndExit(`
usage: npm run bench -- metrics-store [--json] [--refreshes 50]
Readiness, time to every tunnel and refresh latency of the metrics-store source against a real Prometheus.
`)

const refreshesArg = process.argv.indexOf("--refreshes")
const refreshes = refreshesArg > 0 ? Number(process.argv[refreshesArg + 1]) : 50

const freePort = () =>
  new Promise<number>((ok) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => ok(port))
    })
  })

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

const benchSize = (sites: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "np-prom-bench-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
      )
      const metrics = yield* MeasurementMetrics
      let tunnels = 0
      for (let a = 0; a < sites; a++)
        for (let b = 0; b < sites; b++)
          for (const family of [4, 6] as const) {
            if (a === b) continue
            const labels = tunnelLabelValues(tunnelId(a, b, family))
            metrics.up.set(labels, 1)
            metrics.rttSmoothed.set(labels, 0.01 + (a + b) / 1000)
            metrics.jitter.set(labels, 0.001)
            metrics.lossRatio.set(labels, 0)
            metrics.availability.set(labels, 1)
            tunnels++
          }
      const server = yield* serveMetrics(
        { host: "127.0.0.1", port: 0 },
        metrics.registry,
        Effect.succeed({}),
        Effect.succeed({}),
      )
      const port = yield* Effect.promise(freePort)
      const spawnedAt = Date.now()
      const prometheus = yield* startPrometheus({
        dir,
        listen: `127.0.0.1:${port}`,
        targets: [`127.0.0.1:${(server.address() as { port: number }).port}`],
      })
      const readyMs = Date.now() - spawnedAt
      const client = makePromClient({ url: prometheus.url, timeoutMillis: 5_000 })
      const refresh = Effect.gen(function* () {
        const [values, times] = yield* Effect.all(
          [client.query(tunnelValuesQuery), client.query(tunnelSampleTimesQuery)],
          {
            concurrency: 2,
          },
        )
        return linkStatsFromSeries(values, times).tunnels.length
      })
      while ((yield* refresh.pipe(Effect.orElseSucceed(() => 0))) < tunnels) yield* Effect.sleep("100 millis")
      const allDataMs = Date.now() - spawnedAt
      const latencies: number[] = []
      for (let i = 0; i < refreshes; i++) {
        const t = performance.now()
        const n = yield* refresh
        latencies.push(performance.now() - t)
        if (n !== tunnels) return yield* Effect.dieMessage(`refresh returned ${n} tunnels, expected ${tunnels}`)
        yield* Effect.sleep("50 millis")
      }
      return {
        sites,
        tunnels,
        readyMs,
        allDataMs,
        refreshMs: { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), max: Math.max(...latencies) },
      }
    }),
  ).pipe(Effect.provide(MeasurementMetrics.Default))

const results = await Effect.runPromise(Effect.forEach([6, 20], benchSize))
const load = (await import("node:os")).loadavg()[0]?.toFixed(1)
if (jsonFlag) console.log(JSON.stringify({ loadAverage: load, refreshes, results }, null, 2))
else
  for (const r of results)
    console.log(
      `${r.sites} sites, ${r.tunnels} tunnels: prometheus ready ${r.readyMs} ms, every tunnel queryable after ${r.allDataMs} ms; refresh (2 queries + decode) p50 ${r.refreshMs.p50.toFixed(1)} ms, p95 ${r.refreshMs.p95.toFixed(1)} ms, max ${r.refreshMs.max.toFixed(1)} ms over ${refreshes} (load ${load})`,
    )
