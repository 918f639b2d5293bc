/**
 * TCP connect RTT over one tunnel, to the peer daemon's port (5122, not sshd's :22 as the original,
 * whose probes filled the sshd log). The time from SYN to SYN-ACK — or to RST when nothing listens,
 * which crosses the same path — is one RTT sample; a timeout is a loss.
 */
import * as net from "node:net"
import { type RttSample, rttSample, type TunnelId } from "@net-perf/engine"
import { Effect, type Scope } from "effect"
import { counterChild, histogramChild, MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import type { TcpProbeConfig } from "./ProbeConfig.js"

/** One connect attempt, callback style; returns a canceller (which reports nothing). */
const connectRtt = (
  localAddress: string,
  remoteAddress: string,
  port: number,
  timeoutMillis: number,
  done: (rttMs: number | null) => void,
): (() => void) => {
  const startMs = performance.now()
  const socket = net.connect({ host: remoteAddress, port, localAddress })
  let finished = false
  const finish = (rttMs: number | null) => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    socket.destroy()
    done(rttMs)
  }
  const timer = setTimeout(() => finish(null), timeoutMillis)
  socket.once("connect", () => finish(performance.now() - startMs))
  socket.once("error", (err: NodeJS.ErrnoException) =>
    finish(err.code === "ECONNREFUSED" ? performance.now() - startMs : null),
  )
  return () => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    socket.destroy()
  }
}

/** One connect attempt: the RTT in ms, or null on timeout or a local error. */
export const tcpConnectRtt = (
  localAddress: string,
  remoteAddress: string,
  port: number,
  timeoutMillis: number,
): Effect.Effect<number | null> =>
  Effect.async<number | null>((resume) => {
    const cancel = connectRtt(localAddress, remoteAddress, port, timeoutMillis, (rttMs) =>
      resume(Effect.succeed(rttMs)),
    )
    return Effect.sync(cancel)
  })

/**
 * Connects every `intervalMillis` (first at a random offset, on whole wall-clock seconds) for the scope's lifetime. Plain timers
 * and callbacks, not a fiber with a Schedule per tunnel: at 100 tunnels the fiber machinery cost
 * more than the connects.
 */
export const runTcpProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: TcpProbeConfig,
  onSample: (sample: RttSample) => void,
): Effect.Effect<void, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const labels = { ...tunnelLabelValues(tunnel), probe: "tcp" }
    const sentCounter = counterChild(metrics.probesSent, labels)
    const lostCounter = counterChild(metrics.probesLost, labels)
    const rttHistogram = histogramChild(metrics.rtt, labels)
    let closed = false
    let timer: NodeJS.Timeout | undefined
    let cancel: (() => void) | undefined
    // Starts fall on whole wall-clock seconds (planned start + interval, not completion + interval):
    // the connects of all tunnels due in a second share one wake-up, the echo's phase-0 one.
    let plannedMillis = Math.ceil((Date.now() + Math.random() * config.intervalMillis) / 1000) * 1000
    const arm = () => {
      timer = setTimeout(probe, Math.max(0, plannedMillis - Date.now()))
    }
    const probe = () => {
      timer = undefined
      if (closed) return
      const atMillis = Date.now()
      plannedMillis = Math.ceil(Math.max(plannedMillis + config.intervalMillis, atMillis + 1) / 1000) * 1000
      cancel = connectRtt(
        endpoints.localAddress,
        endpoints.remoteAddress,
        config.port,
        config.timeoutMillis,
        (rttMs) => {
          cancel = undefined
          if (closed) return
          sentCounter.inc()
          if (rttMs === null) lostCounter.inc()
          else rttHistogram.observe(rttMs / 1000)
          onSample(rttSample(tunnel, "tcp", atMillis, rttMs))
          arm()
        },
      )
    }
    yield* Effect.acquireRelease(Effect.sync(arm), () =>
      Effect.sync(() => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        cancel?.()
      }),
    )
  })
