import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { tunnelId } from "@net-perf/engine"
import { Effect } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../../src/metrics/Metrics.js"
import { serveMetrics } from "../../src/metrics/MetricsServer.js"

describe("metrics HTTP server", () => {
  it.scopedLive("serves /metrics, /healthz, /status; removes a tunnel's series", () =>
    Effect.gen(function* () {
      const metrics = yield* MeasurementMetrics
      const t = tunnelId(1, 2, 4)
      const labels = tunnelLabelValues(t)
      metrics.rtt.labels({ ...labels, probe: "udp" }).observe(0.0123)
      metrics.probesSent.labels({ ...labels, probe: "udp" }).inc(3)
      metrics.up.labels(labels).set(1)
      metrics.cost.labels(labels).set(Number.POSITIVE_INFINITY)
      metrics.lossRatio.labels(tunnelLabelValues(tunnelId(1, 3, 6))).set(0.25)
      const server = yield* serveMetrics(
        { host: "127.0.0.1", port: 0 },
        metrics.registry,
        Effect.succeed({ tunnels: [{ name: "wg1.2_v4" }] }),
        Effect.succeed({ tunnels: 1 }),
      )
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const get = (path: string, method = "GET") =>
        Effect.promise(async () => {
          const r = await fetch(`${base}${path}`, { method })
          return { status: r.status, type: r.headers.get("content-type"), body: await r.text() }
        })
      const m = yield* get("/metrics")
      expect(m.status).toBe(200)
      expect(m.type).toContain("text/plain")
      expect(m.body).toContain(
        'netperf_tunnel_rtt_seconds_bucket{le="0.025",local="1",remote="2",family="4",probe="udp"} 1',
      )
      expect(m.body).toContain('netperf_probes_sent_total{local="1",remote="2",family="4",probe="udp"} 3')
      expect(m.body).toContain('netperf_tunnel_cost{local="1",remote="2",family="4"} +Inf')
      expect(JSON.parse((yield* get("/healthz")).body)).toEqual({ status: "ok", tunnels: 1 })
      expect(JSON.parse((yield* get("/status")).body)).toEqual({ tunnels: [{ name: "wg1.2_v4" }] })
      expect((yield* get("/nope")).status).toBe(404)
      expect((yield* get("/metrics", "POST")).status).toBe(405)
      metrics.removeTunnel(t)
      const after = (yield* get("/metrics")).body
      expect(after).not.toContain('remote="2"')
      expect(after).toContain('netperf_tunnel_loss_ratio{local="1",remote="3",family="6"} 0.25')
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )
})
