/**
 * Fast UDP echo over one tunnel: the failure detector and the main RTT/loss source.
 *
 * One probe per `intervalMillis`. A probe unanswered after the timeout
 * clamp(1.5·srtt + 4·rttvar, min, max) (RFC 6298-style, so a slow tunnel is not flagged by its
 * own RTT) is lost: a null sample at once, because the engine's aggregation declares a tunnel dead
 * after 3 consecutive lost echoes. The first loss switches to a burst, one probe every
 * `burstIntervalMillis`, until an answer (back to normal) or `deadAfterMisses` consecutive losses
 * (dead; back to the normal interval, so recovery shows within one interval). Burst probes are paid
 * for by stretching the normal interval by the recent burst share (≈ the loss rate, at most 10 %),
 * so normal and burst probes together average one per interval while bursts stay under 10 %.
 * A reply after its timeout is reported too (proof of life; the timeout learns the new RTT). RTT uses this process's
 * monotonic clock only.
 */
import { randomInt } from "node:crypto"
import type * as dgram from "node:dgram"
import { RttSample, type TunnelId } from "@net-perf/engine"
import { Effect, type Scope } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import { decode5121, encodeEcho } from "../servers/Packets.js"
import { bindUdp, type UdpBindFailed } from "../servers/Udp.js"
import type { EchoProbeConfig } from "./ProbeConfig.js"

/** Memory of the burst share, per normal probe (~500 probes, ~8 min at 1/s). */
const BURST_SHARE_DECAY = 0.998
/**
 * The stretch never exceeds this: more would delay detection past the 1.5 s target. So the average
 * is ≤ 1/interval while bursts are ≤ 10 % of probes (loss ≲ 8 %, or outages rarer than ~1 per
 * 20 s); beyond that detection keeps its speed and the rate rises by the excess.
 */
const MAX_STRETCH = 0.1

export type EchoHealth = "unknown" | "up" | "dead"

export interface EchoProberHandlers {
  readonly onSample: (sample: RttSample) => void
  readonly onHealth: (health: EchoHealth, atMillis: number) => void
}

export interface EchoProberStats {
  readonly health: EchoHealth
  readonly srttMs: number | null
  readonly rttVarMs: number | null
  readonly sent: number
  readonly received: number
  readonly lost: number
  readonly late: number
  readonly reordered: number
  readonly duplicates: number
}

interface Outstanding {
  readonly sentNs: bigint
  readonly sentAtMillis: number
  readonly timer: NodeJS.Timeout
}

/** Starts the echo prober for the scope's lifetime; returns a snapshot reader. */
export const runEchoProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: EchoProbeConfig,
  handlers: EchoProberHandlers,
): Effect.Effect<() => EchoProberStats, UdpBindFailed, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const labels = { ...tunnelLabelValues(tunnel), probe: "udp" }
    const sentCounter = metrics.probesSent.labels(labels)
    const lostCounter = metrics.probesLost.labels(labels)
    const rttHistogram = metrics.rtt.labels(labels)
    const socket: dgram.Socket = yield* bindUdp(endpoints.localAddress, 0)
    const sessionId = randomInt(0, 2 ** 32)

    const outstanding = new Map<number, Outstanding>()
    let seq = 0
    let health: EchoHealth = "unknown"
    let srttMs: number | null = null
    let rttVarMs: number | null = null
    let consecutiveMisses = 0
    let bursting = false
    // Decayed counts of normal and burst probes: the normal interval is stretched by the burst
    // share, so normal + burst probes average exactly one per interval.
    let normalWeight = 0
    let burstWeight = 0
    let highestAnswered = -1
    let closed = false
    let timer: NodeJS.Timeout | undefined
    const counts = { sent: 0, received: 0, lost: 0, late: 0, reordered: 0, duplicates: 0 }

    /** Probes reported lost whose reply may still come (kept for up to the max timeout). */
    const lateProbes = new Map<number, { readonly sentNs: bigint; readonly sentAtMillis: number }>()
    // RFC 6298 smoothing, used only for the miss timeout.
    const learnRtt = (rttMs: number) => {
      if (srttMs === null || rttVarMs === null) {
        srttMs = rttMs
        rttVarMs = rttMs / 2
      } else {
        rttVarMs = 0.75 * rttVarMs + 0.25 * Math.abs(srttMs - rttMs)
        srttMs = 0.875 * srttMs + 0.125 * rttMs
      }
    }

    const missTimeoutMillis = () =>
      srttMs === null || rttVarMs === null
        ? config.maxMissTimeoutMillis
        : Math.min(config.maxMissTimeoutMillis, Math.max(config.minMissTimeoutMillis, 1.5 * srttMs + 4 * rttVarMs))

    const setHealth = (next: EchoHealth) => {
      if (next === health) return
      health = next
      handlers.onHealth(next, Date.now())
    }

    const schedule = (delayMillis: number, action: () => void) => {
      if (timer !== undefined) clearTimeout(timer)
      timer = closed ? undefined : setTimeout(action, delayMillis)
    }

    const scheduleRegular = () => {
      // A uniform stretch of 1 + burst share, not a payback after each burst: a payback (1.5× the
      // interval until repaid) delayed the next failure's detection (p95 1.59 s in the bench).
      const stretch = normalWeight > 0 ? 1 + Math.min(MAX_STRETCH, burstWeight / normalWeight) : 1
      schedule(config.intervalMillis * stretch, () => {
        normalWeight = normalWeight * BURST_SHARE_DECAY + 1
        burstWeight *= BURST_SHARE_DECAY
        send()
        scheduleRegular()
      })
    }

    const scheduleBurst = () =>
      schedule(config.burstIntervalMillis, () => {
        burstWeight++
        send()
        scheduleBurst()
      })

    const onMiss = (probeSeq: number) => {
      const o = outstanding.get(probeSeq)
      if (o === undefined || closed) return
      outstanding.delete(probeSeq)
      lateProbes.set(probeSeq, { sentNs: o.sentNs, sentAtMillis: o.sentAtMillis })
      // Forget probes whose reply can no longer be told from a genuinely late duplicate.
      for (const [k, v] of lateProbes)
        if (Date.now() - v.sentAtMillis > 2 * config.maxMissTimeoutMillis) lateProbes.delete(k)
        else break
      counts.lost++
      lostCounter.inc()
      handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: o.sentAtMillis, rttMs: null }, true))
      consecutiveMisses++
      if (consecutiveMisses >= config.deadAfterMisses) {
        setHealth("dead")
        if (bursting) {
          bursting = false
          scheduleRegular()
        }
      } else if (!bursting && health !== "dead") {
        bursting = true
        burstWeight++
        send()
        scheduleBurst()
      }
    }

    const send = () => {
      if (closed) return
      const probeSeq = seq
      seq = (seq + 1) >>> 0
      const sentNs = process.hrtime.bigint()
      const entry: Outstanding = {
        sentNs,
        sentAtMillis: Date.now(),
        // setImmediate defers the verdict past the I/O poll phase: after an event-loop stall the
        // timer phase runs before pending datagrams are read, which would turn a reply already
        // in the socket buffer into a false loss.
        timer: setTimeout(() => setImmediate(() => onMiss(probeSeq)), missTimeoutMillis()),
      }
      outstanding.set(probeSeq, entry)
      counts.sent++
      sentCounter.inc()
      socket.send(
        encodeEcho({ _tag: "EchoRequest", sessionId, seq: probeSeq, sentNs, lengthBytes: config.payloadBytes }),
        config.port,
        endpoints.remoteAddress,
      )
    }

    socket.on("message", (msg, rinfo) => {
      const arrivalNs = process.hrtime.bigint()
      if (rinfo.address !== endpoints.remoteAddress) return
      const decoded = decode5121(msg)
      if (decoded._tag === "Left") return
      const p = decoded.right
      if (p._tag !== "EchoReply" || p.sessionId !== sessionId) return
      const o = outstanding.get(p.seq)
      const late = lateProbes.get(p.seq)
      if (o === undefined && late !== undefined) {
        // A reply after its timeout: the probe was already reported lost, but the tunnel is alive
        // and slower than the timeout assumed (a latency step, e.g. 10 → 120 ms). Report the reply
        // (the aggregation resets its miss streak, so a slow tunnel is not declared dead) and let
        // the timeout learn the new RTT; otherwise every following probe would miss too.
        lateProbes.delete(p.seq)
        counts.late++
        const rttMs = Number(arrivalNs - late.sentNs) / 1e6
        learnRtt(rttMs)
        handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: late.sentAtMillis, rttMs }, true))
      } else if (o === undefined) {
        counts.duplicates++
      } else {
        outstanding.delete(p.seq)
        clearTimeout(o.timer)
        const rttMs = Number(arrivalNs - o.sentNs) / 1e6
        counts.received++
        if (p.seq < highestAnswered) counts.reordered++
        else highestAnswered = p.seq
        learnRtt(rttMs)
        rttHistogram.observe(rttMs / 1000)
        handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: o.sentAtMillis, rttMs }, true))
      }
      consecutiveMisses = 0
      setHealth("up")
      if (bursting) {
        bursting = false
        scheduleRegular()
      }
    })

    yield* Effect.acquireRelease(
      Effect.sync(() => {
        // Spread tunnels over the interval so 100 probers do not fire together.
        schedule(Math.random() * config.intervalMillis, () => {
          send()
          scheduleRegular()
        })
      }),
      () =>
        Effect.sync(() => {
          closed = true
          if (timer !== undefined) clearTimeout(timer)
          for (const o of outstanding.values()) clearTimeout(o.timer)
          outstanding.clear()
        }),
    )

    return () => ({ health, srttMs, rttVarMs, ...counts })
  })
