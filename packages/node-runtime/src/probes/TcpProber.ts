/**
 * TCP connect RTT over one tunnel, to the peer daemon's port (5122, not sshd's :22 as the original,
 * whose probes filled the sshd log). The time from SYN to SYN-ACK — or to RST when nothing listens,
 * which crosses the same path — is one RTT sample; a timeout is a loss.
 */
import * as net from "node:net"
import { RttSample, type TunnelId } from "@net-perf/engine"
import { Duration, Effect, Schedule, type Scope } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import type { TcpProbeConfig } from "./ProbeConfig.js"

/** One connect attempt: the RTT in ms, or null on timeout or a local error. */
export const tcpConnectRtt = (
  localAddress: string,
  remoteAddress: string,
  port: number,
  timeoutMillis: number,
): Effect.Effect<number | null> =>
  Effect.async<number | null>((resume) => {
    const startNs = process.hrtime.bigint()
    const socket = net.connect({ host: remoteAddress, port, localAddress })
    let done = false
    const finish = (rttMs: number | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(rttMs))
    }
    const elapsed = () => Number(process.hrtime.bigint() - startNs) / 1e6
    const timer = setTimeout(() => finish(null), timeoutMillis)
    socket.once("connect", () => finish(elapsed()))
    socket.once("error", (err: NodeJS.ErrnoException) => finish(err.code === "ECONNREFUSED" ? elapsed() : null))
    return Effect.sync(() => finish(null))
  })

export const runTcpProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: TcpProbeConfig,
  onSample: (sample: RttSample) => void,
): Effect.Effect<void, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const labels = { ...tunnelLabelValues(tunnel), probe: "tcp" }
    const sentCounter = metrics.probesSent.labels(labels)
    const lostCounter = metrics.probesLost.labels(labels)
    const rttHistogram = metrics.rtt.labels(labels)
    const probe = Effect.gen(function* () {
      const atMillis = Date.now()
      const rttMs = yield* tcpConnectRtt(
        endpoints.localAddress,
        endpoints.remoteAddress,
        config.port,
        config.timeoutMillis,
      )
      sentCounter.inc()
      if (rttMs === null) lostCounter.inc()
      else rttHistogram.observe(rttMs / 1000)
      onSample(new RttSample({ tunnel, kind: "tcp", atMillis, rttMs }, true))
    })
    yield* Effect.sleep(Duration.millis(Math.random() * config.intervalMillis)).pipe(
      Effect.zipRight(Effect.repeat(probe, Schedule.spaced(Duration.millis(config.intervalMillis)))),
      Effect.forkScoped,
    )
  })
