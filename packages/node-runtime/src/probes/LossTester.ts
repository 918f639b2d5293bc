/**
 * Loss/rate burst over one tunnel (5121/udp), the original's test without its defects: `packets`
 * datagrams of `packetBytes` paced at `rateBitsPerSecond` (paced by elapsed monotonic time, so the
 * average rate is exact even though timers tick at ~1 ms), then END repeated until FINAL arrives.
 * The server's FINAL carries distinct received packets, reordered ones (late, still received),
 * duplicates, RFC 3550 jitter, and the first-to-last arrival time, from which the achieved rate is
 * computed over the real elapsed time. Loss = (sent − received) / sent.
 */
import { randomInt } from "node:crypto"
import { LossTestSample, type TunnelId } from "@net-perf/engine"
import { Data, Duration, Effect, Schedule, type Scope } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import { decode5121, encodeLossEnd, type LossFinal, lossDataTemplate, stampLossData } from "../servers/Packets.js"
import { bindUdp, type UdpBindFailed } from "../servers/Udp.js"
import type { LossTestConfig } from "./ProbeConfig.js"

export class LossTestFailed extends Data.TaggedError("LossTestFailed")<{
  readonly remoteAddress: string
  readonly reason: string
}> {}

/** One burst; succeeds with the server's verdict turned into a sample. */
export const runLossTest = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: LossTestConfig,
): Effect.Effect<LossTestSample, LossTestFailed | UdpBindFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = yield* bindUdp(endpoints.localAddress, 0)
    // Connected: a burst talks to one server, and a send on a connected socket skips Node's
    // per-datagram address lookup (≈ 12 % of a datagram's send cost); only that server's answers
    // are delivered.
    yield* Effect.async<void, LossTestFailed>((resume) => {
      socket.connect(config.port, endpoints.remoteAddress, () => resume(Effect.void))
    }).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(1),
        onTimeout: () => new LossTestFailed({ remoteAddress: endpoints.remoteAddress, reason: "connect timed out" }),
      }),
    )
    const sessionId = randomInt(0, 2 ** 32)
    const atMillis = Date.now()
    const spacingMs = (config.packetBytes * 8 * 1e3) / config.rateBitsPerSecond
    const fail = (reason: string) => new LossTestFailed({ remoteAddress: endpoints.remoteAddress, reason })

    return yield* Effect.async<LossFinal, LossTestFailed>((resume) => {
      let lastHeardMs = performance.now()
      let sent = 0
      let endsSent = 0
      let finished = false
      let endTimer: NodeJS.Timeout | undefined
      // Send times are performance.now() in ns (the server only takes differences of them): no
      // bigint per packet; each datagram is a pooled copy of one template.
      const startMs = performance.now()
      const template = lossDataTemplate(sessionId, config.packets, config.packetBytes)
      const finish = (result: Effect.Effect<LossFinal, LossTestFailed>) => {
        if (finished) return
        finished = true
        clearInterval(pacer)
        clearInterval(watchdog)
        if (endTimer !== undefined) clearInterval(endTimer)
        resume(result)
      }
      socket.on("message", (msg, rinfo) => {
        if (rinfo.address !== endpoints.remoteAddress) return
        const decoded = decode5121(msg)
        if (decoded._tag === "Left" || decoded.right.sessionId !== sessionId) return
        const p = decoded.right
        if (p._tag === "LossStats") lastHeardMs = performance.now()
        else if (p._tag === "LossFinal") finish(Effect.succeed(p))
      })
      const sendEnd = () => {
        if (endsSent >= config.endRetries) return finish(Effect.fail(fail(`no FINAL after ${endsSent} END packets`)))
        endsSent++
        socket.send(encodeLossEnd({ sessionId, sent }))
      }
      const pacer = setInterval(() => {
        const due = Math.min(config.packets, Math.floor((performance.now() - startMs) / spacingMs) + 1)
        while (sent < due) {
          const seq = sent++
          socket.send(stampLossData(template, seq, Math.round(performance.now() * 1e6)))
        }
        if (sent >= config.packets && endTimer === undefined) {
          clearInterval(pacer)
          sendEnd()
          endTimer = setInterval(sendEnd, config.endRetryMillis)
        }
      }, config.pacingTickMillis)
      const watchdog = setInterval(() => {
        if (performance.now() - lastHeardMs > config.silenceTimeoutMillis) {
          finish(Effect.fail(fail(`server silent for ${config.silenceTimeoutMillis} ms`)))
        }
      }, 250)
      return Effect.sync(() => finish(Effect.fail(fail("interrupted"))))
    }).pipe(
      Effect.map((final) => {
        const elapsedSeconds = Number(final.firstToLastArrivalNs) / 1e9
        // Bits after the first arrival over the time since it: the rate over the real elapsed time.
        const bitsAfterFirst =
          final.received > 1 ? (Number(final.receivedBytes) * 8 * (final.received - 1)) / final.received : 0
        return new LossTestSample({
          tunnel,
          atMillis,
          sent: config.packets,
          received: Math.min(final.received, config.packets),
          reordered: final.reordered,
          jitterMs: final.jitterUs / 1000,
          rateBitsPerSecond: elapsedSeconds > 0 ? bitsAfterFirst / elapsedSeconds : 0,
        })
      }),
    )
  })

/** Exports one burst's figures (scheduled or triggered: both are `probe="loss"`). */
export const recordLossSample = (metrics: MeasurementMetrics, s: LossTestSample): void => {
  const labels = tunnelLabelValues(s.tunnel)
  metrics.probesSent.labels({ ...labels, probe: "loss" }).inc(s.sent)
  metrics.probesLost.labels({ ...labels, probe: "loss" }).inc(s.sent - s.received)
  metrics.lossTestLoss.labels(labels).set((s.sent - s.received) / s.sent)
  metrics.lossTestReorder.labels(labels).set(s.received > 0 ? s.reordered / s.received : 0)
  metrics.lossTestJitter.labels(labels).set(s.jitterMs / 1000)
  metrics.lossTestRate.labels(labels).set(s.rateBitsPerSecond)
}

/**
 * Runs a burst every `intervalMillis` (first one at a random offset) for the scope's lifetime.
 * `lock`, shared with the tunnel's `LossTrigger`, keeps two bursts of one tunnel from overlapping
 * (each would count the other's queueing losses).
 */
export const runLossTester = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: LossTestConfig,
  onSample: (sample: LossTestSample) => void,
  lock?: Effect.Semaphore,
): Effect.Effect<void, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const burst = Effect.scoped(runLossTest(tunnel, endpoints, config))
    const once = (lock === undefined ? burst : lock.withPermits(1)(burst)).pipe(
      Effect.tap((s) =>
        Effect.sync(() => {
          recordLossSample(metrics, s)
          onSample(s)
        }),
      ),
      Effect.catchAll((e) => Effect.logInfo(`loss test over ${endpoints.remoteAddress} abandoned`, e)),
    )
    yield* Effect.sleep(Duration.millis(Math.random() * config.intervalMillis)).pipe(
      Effect.zipRight(Effect.repeat(once, Schedule.spaced(Duration.millis(config.intervalMillis)))),
      Effect.forkScoped,
    )
  })
