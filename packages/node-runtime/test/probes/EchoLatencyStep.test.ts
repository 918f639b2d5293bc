// A latency step above the echo's miss timeout (10 → 160 ms) must not look like a hard failure:
// late replies are reported, the timeout learns the new RTT, and the aggregation never says dead.
import { describe, expect, it } from "@effect/vitest"
import { emptyAggregate, ingest, linkStats, type RttSample, tunnelId } from "@net-perf/engine"
import { Effect, Either, Schema } from "effect"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { type EchoHealth, runEchoProber } from "../../src/probes/EchoProber.js"
import { EchoProbeConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { defaultProbeServerConfig, serveProbeServer } from "../../src/servers/ProbeServer.js"
import { startImpairmentRelay } from "./ImpairmentRelay.js"

const tunnel = tunnelId(1, 2, 4)

describe("fast UDP echo under a latency step", () => {
  it.scopedLive(
    "reports late replies and keeps the tunnel up",
    () =>
      Effect.gen(function* () {
        const port = 20000 + Math.floor(Math.random() * 30000)
        const allow = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))
        yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], allow), port })
        const relay = yield* startImpairmentRelay({
          listenAddress: "127.0.0.5",
          listenPort: port,
          targetAddress: "127.0.0.1",
          targetPort: port,
          impairment: { delayMs: 5 },
        })
        const samples: Array<RttSample> = []
        let aggregate = emptyAggregate(tunnel)
        const states = new Set<string>()
        let health: EchoHealth = "unknown"
        const healths = new Set<EchoHealth>()
        const config = Schema.decodeSync(EchoProbeConfig)({ port, intervalMillis: 200 })
        yield* runEchoProber(tunnel, { localAddress: "127.0.0.1", remoteAddress: "127.0.0.5" }, config, {
          onSample: (s) => {
            samples.push(s)
            aggregate = ingest(aggregate, s)
            states.add(linkStats(aggregate, s.atMillis).state)
          },
          onHealth: (h) => {
            health = h
            healths.add(h)
          },
        })
        yield* Effect.sleep("2 seconds")
        expect(health).toBe("up")
        states.clear()
        healths.clear()
        relay.impairment.delayMs = 80 // one way: RTT ≈ 160 ms, above the ~100 ms timeout learnt so far
        yield* Effect.sleep("4 seconds")
        expect(healths.has("dead")).toBe(false)
        expect(states.has("dead")).toBe(false)
        const recent = samples.filter((s) => s.rttMs !== null).slice(-5)
        for (const s of recent) expect(s.rttMs!).toBeGreaterThan(150)
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    20_000,
  )
})
