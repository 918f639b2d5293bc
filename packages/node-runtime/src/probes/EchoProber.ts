/**
 * Fast UDP echo over every tunnel: the failure detector and the main RTT/loss source.
 *
 * One `EchoProbes` per plane drives all tunnels: one UDP socket per local probe address (replies
 * are told apart by the prober's random session id) and one timer for everything, re-armed at the
 * earliest due event on a 10 ms grid, instead of a socket and two timers per tunnel (a 100-tunnel
 * node wakes up at most 100 times a second, whatever the number of tunnels).
 *
 * Per tunnel: one probe per `intervalMillis`. A probe unanswered after the timeout
 * clamp(1.5·srtt + 4·rttvar, min, max) (RFC 6298-style, so a slow tunnel is not flagged by its
 * own RTT) is lost: a null sample at once, because the engine's aggregation declares a tunnel dead
 * after 3 consecutive lost echoes. The first loss switches to a burst, one probe every
 * `burstIntervalMillis`, until an answer (back to normal) or `deadAfterMisses` consecutive losses
 * (dead; back to the normal interval, so recovery shows within one interval). Burst probes are paid
 * for by stretching the normal interval by the recent burst share (≈ the loss rate, at most 10 %),
 * so normal and burst probes together average one per interval while bursts stay under 10 %.
 * A reply after its timeout is reported too (proof of life; the timeout learns the new RTT). RTT uses
 * this process's monotonic clock only.
 *
 * The peer probes the same tunnel from its end, and its requests reach our 5121 server (which calls
 * `peerRequest`): they are evidence too, at no probe cost. Once the peer's requests arrive
 * regularly, a request missing past its expected time + slack (clamp(4·gap deviation + 20 ms,
 * min, max miss timeout)) pulls our next probe in to now: no extra probe, only an earlier one. And
 * the end with the lower site id sends half-way between the peer's requests, at the peer's period
 * (the peer's own stretch included, which pays for our bursts too: both ends' probes cross the
 * same tunnel); what that leaves unpaid it pays by skipping a regular probe (rarely, phase kept,
 * within the same 10 % budget), and a pull-in's lead is repaid by re-alignment.
 * Together: a piece of evidence every half interval, so the wait from a failure to the first miss
 * halves (detection p95 1.43 s → see the README's detection bench).
 */
import { randomInt } from "node:crypto"
import type * as dgram from "node:dgram"
import { RttSample, type TunnelId } from "@net-perf/engine"
import { Effect, Exit, Scope } from "effect"
import { MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import { classify5121, encodeEchoRequest, PacketType, readU32 } from "../servers/Packets.js"
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
/** Timer grid: events fire up to this late, never early; bounds wake-ups to 1000/GRID per second. */
export const ECHO_TIMER_GRID_MILLIS = 10
/** Regular peer requests seen before their absence counts as evidence. */
const PEER_REGULAR_AFTER = 3
/** Phase alignment: share of the phase error corrected per probe, and its cap (share of the interval). */
const ALIGN_GAIN = 0.5
const ALIGN_MAX_STEP = 0.1
/**
 * Align only while the peer's period is within [1 − this, 1 + MAX_STRETCH + this] intervals: the
 * peer at our interval, stretched by its own burst share or not.
 */
const ALIGN_PERIOD_TOLERANCE = 0.03
/**
 * While aligned, our period is the peer's, so our own burst probes are paid for by skipping a
 * regular probe (the phase is kept) instead of stretching: at most one skip per this many regular
 * probes (≤ 10 %, like MAX_STRETCH), and at most this much debt remembered.
 */
const SKIP_EVERY_AT_MOST = 10
const MAX_BURST_DEBT = 20

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
  /** Echo requests from the peer's prober that reached our server. */
  readonly peerRequests: number
  /** Times an expected peer request did not come (each pulled our next probe in). */
  readonly peerSilences: number
  /** Our sends are being kept half-way between the peer's requests. */
  readonly phaseAligned: boolean
}

interface Outstanding {
  readonly sentMs: number
  readonly sentAtMillis: number
  readonly deadlineMs: number
}

interface SharedSocket {
  readonly socket: dgram.Socket
  readonly scope: Scope.CloseableScope
  /** Probers on this socket by session id. */
  readonly probers: Map<number, Prober>
  users: number
}

/** Per-tunnel echo state; driven by the plane-wide scheduler. */
interface Prober {
  readonly localAddress: string
  readonly remoteAddress: string
  readonly sessionId: number
  /** Earliest instant (performance.now ms) at which `due` has something to do. */
  nextDueMs: number
  readonly due: (nowMs: number) => void
  readonly onReply: (seq: number, nowMs: number) => void
  readonly onPeerRequest: (nowMs: number) => void
  readonly stats: () => EchoProberStats
  readonly close: () => void
}

export interface EchoProbes {
  /** Probes one tunnel for the scope's lifetime; returns a snapshot reader. */
  readonly add: (
    tunnel: TunnelId,
    endpoints: { readonly localAddress: string; readonly remoteAddress: string },
    handlers: EchoProberHandlers,
  ) => Effect.Effect<() => EchoProberStats, UdpBindFailed, Scope.Scope>
  /** An echo request from `sourceAddress` reached our server on `localAddress` (called by the 5121 server). */
  readonly peerRequest: (localAddress: string, sourceAddress: string) => void
}

/** The plane-wide echo scheduler (one socket per local address, one timer). */
export const makeEchoProbes = (
  config: EchoProbeConfig,
): Effect.Effect<EchoProbes, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const sockets = new Map<string, SharedSocket>()
    const probers = new Set<Prober>()
    /** Probers by `${localAddress}|${remoteAddress}`, for peer requests. */
    const byPath = new Map<string, Prober>()
    const lock = yield* Effect.makeSemaphore(1)
    let timer: NodeJS.Timeout | undefined
    let armedForMs = Number.POSITIVE_INFINITY
    let closed = false

    const tick = () => {
      timer = undefined
      armedForMs = Number.POSITIVE_INFINITY
      // setImmediate: after an event-loop stall the timer phase runs before pending datagrams are
      // read; deciding here would turn a reply already in the socket buffer into a false loss.
      setImmediate(() => {
        if (closed) return
        const nowMs = performance.now()
        for (const p of probers) if (p.nextDueMs <= nowMs) p.due(nowMs)
        rearm()
      })
    }
    const rearm = () => {
      if (closed) return
      let earliest = Number.POSITIVE_INFINITY
      for (const p of probers) if (p.nextDueMs < earliest) earliest = p.nextDueMs
      if (earliest === Number.POSITIVE_INFINITY) return
      const atMs = Math.ceil(earliest / ECHO_TIMER_GRID_MILLIS) * ECHO_TIMER_GRID_MILLIS
      if (timer !== undefined && armedForMs <= atMs) return
      if (timer !== undefined) clearTimeout(timer)
      armedForMs = atMs
      timer = setTimeout(tick, Math.max(0, atMs - performance.now()))
    }

    const onMessage = (shared: SharedSocket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      const nowMs = performance.now()
      if (classify5121(msg) !== PacketType.EchoReply) return
      const p = shared.probers.get(readU32(msg, 4))
      if (p === undefined || rinfo.address !== p.remoteAddress) return
      p.onReply(readU32(msg, 8), nowMs)
      rearm()
    }

    const acquireSocket = (address: string) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const existing = sockets.get(address)
          if (existing !== undefined) {
            existing.users++
            return existing
          }
          const scope = yield* Scope.make()
          const socket = yield* bindUdp(address, 0).pipe(
            Scope.extend(scope),
            Effect.tapError(() => Scope.close(scope, Exit.void)),
          )
          const shared: SharedSocket = { socket, scope, probers: new Map(), users: 1 }
          socket.on("message", onMessage(shared))
          sockets.set(address, shared)
          return shared
        }),
      )
    const releaseSocket = (address: string, shared: SharedSocket) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          shared.users--
          if (shared.users > 0 || sockets.get(address) !== shared) return Effect.void
          sockets.delete(address)
          return Scope.close(shared.scope, Exit.void)
        }),
      )

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
        for (const p of probers) p.close()
        probers.clear()
        const all = [...sockets.values()]
        sockets.clear()
        return Effect.forEach(all, (s) => Scope.close(s.scope, Exit.void), { discard: true })
      }),
    )

    const add: EchoProbes["add"] = (tunnel, endpoints, handlers) =>
      Effect.gen(function* () {
        const shared = yield* Effect.acquireRelease(acquireSocket(endpoints.localAddress), (s) =>
          releaseSocket(endpoints.localAddress, s),
        )
        const labels = { ...tunnelLabelValues(tunnel), probe: "udp" }
        let sessionId = randomInt(0, 2 ** 32)
        while (shared.probers.has(sessionId)) sessionId = randomInt(0, 2 ** 32)
        const prober = makeProber(tunnel, endpoints, config, handlers, shared.socket, sessionId, {
          sent: metrics.probesSent.labels(labels),
          lost: metrics.probesLost.labels(labels),
          rtt: metrics.rtt.labels(labels),
        })
        const path = `${endpoints.localAddress}|${endpoints.remoteAddress}`
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            shared.probers.set(sessionId, prober)
            probers.add(prober)
            byPath.set(path, prober)
            rearm()
          }),
          () =>
            Effect.sync(() => {
              prober.close()
              shared.probers.delete(sessionId)
              probers.delete(prober)
              if (byPath.get(path) === prober) byPath.delete(path)
            }),
        )
        return prober.stats
      })

    return {
      add,
      peerRequest: (localAddress, sourceAddress) => {
        const p = byPath.get(`${localAddress}|${sourceAddress}`)
        if (p === undefined) return
        p.onPeerRequest(performance.now())
        rearm()
      },
    }
  })

const makeProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: EchoProbeConfig,
  handlers: EchoProberHandlers,
  socket: dgram.Socket,
  sessionId: number,
  counters: {
    readonly sent: { inc: () => void }
    readonly lost: { inc: () => void }
    readonly rtt: { observe: (v: number) => void }
  },
): Prober => {
  const interval = config.intervalMillis
  const outstanding = new Map<number, Outstanding>()
  /** Probes reported lost whose reply may still come (kept for up to twice the max timeout). */
  const lateProbes = new Map<number, { readonly sentMs: number; readonly sentAtMillis: number }>()
  const counts = { sent: 0, received: 0, lost: 0, late: 0, reordered: 0, duplicates: 0 }
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
  // Aligned mode pays for burst probes by skipping regular ones instead (see SKIP_EVERY_AT_MOST).
  let burstDebt = 0
  let regularSinceSkip = 0
  let highestAnswered = -1
  let closed = false
  // Spread tunnels over the interval so 100 probers do not fire together.
  let nextSendMs = performance.now() + Math.random() * interval
  let nextBurstMs = Number.POSITIVE_INFINITY
  let earliestDeadlineMs = Number.POSITIVE_INFINITY
  // The peer's requests: last arrival, smoothed regular gap and its mean deviation.
  const peer = {
    lastMs: Number.NaN,
    gapMs: interval,
    gapDevMs: 0,
    regular: 0,
    deadlineMs: Number.POSITIVE_INFINITY,
    requests: 0,
    silences: 0,
  }
  const aligns = config.alignToPeer && tunnel.local < tunnel.remote
  let phaseAligned = false
  let alignDirection = 0

  const self: Prober = {
    localAddress: endpoints.localAddress,
    remoteAddress: endpoints.remoteAddress,
    sessionId,
    nextDueMs: nextSendMs,
    due: (nowMs) => due(nowMs),
    onReply: (s, nowMs) => onReply(s, nowMs),
    onPeerRequest: (nowMs) => onPeerRequest(nowMs),
    stats: () => ({
      health,
      srttMs,
      rttVarMs,
      ...counts,
      peerRequests: peer.requests,
      peerSilences: peer.silences,
      phaseAligned,
    }),
    close: () => {
      closed = true
      outstanding.clear()
      self.nextDueMs = Number.POSITIVE_INFINITY
    },
  }

  const refreshDue = () => {
    if (closed) return
    self.nextDueMs = Math.min(bursting ? nextBurstMs : nextSendMs, earliestDeadlineMs, peer.deadlineMs)
  }

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

  const scheduleRegular = (nowMs: number) => {
    phaseAligned =
      aligns &&
      peer.regular >= PEER_REGULAR_AFTER &&
      nowMs - peer.lastMs < 2 * peer.gapMs &&
      peer.gapMs >= (1 - ALIGN_PERIOD_TOLERANCE) * interval &&
      peer.gapMs <= (1 + MAX_STRETCH + ALIGN_PERIOD_TOLERANCE) * interval
    if (!phaseAligned) {
      // A uniform stretch of 1 + burst share, not a payback after each burst: a payback (1.5× the
      // interval until repaid) delayed the next failure's detection (p95 1.59 s in the bench).
      const stretch = normalWeight > 0 ? 1 + Math.min(MAX_STRETCH, burstWeight / normalWeight) : 1
      nextSendMs = nowMs + interval * stretch
      return
    }
    // Our period is the peer's (≥ our interval: its own stretch included), and the target is
    // half-way between its requests. The phase error is taken on the circle of one period and
    // corrected gradually, so corrections average out and the long-run rate is the peer's.
    const period = peer.gapMs
    let at = nowMs + period
    const raw = (peer.lastMs + period / 2 - at) % period
    let error = raw > period / 2 ? raw - period : raw < -period / 2 ? raw + period : raw
    // Near phase 0 (our send right at the peer's) the error is ±½ period depending on whether the
    // peer's request was read just before or just after our send: keep the previous direction there,
    // or the correction flip-flops and we hover at the worst phase.
    if (Math.abs(error) > 0.4 * period && alignDirection !== 0) error = alignDirection * Math.abs(error)
    alignDirection = Math.sign(error)
    const step = ALIGN_MAX_STEP * interval
    at += Math.max(-step, Math.min(step, ALIGN_GAIN * error))
    regularSinceSkip++
    // Both ends' probes cross the same tunnel, so their burst shares match: the peer's stretch
    // (its period beyond our interval) already pays ours. Skip only for what it leaves unpaid, and
    // only within the MAX_STRETCH budget (beyond it the rate rises, as on a stretched prober): a
    // skip doubles one gap between our probes, so skips must stay rare.
    const paidByPeer = Math.max(0, period / interval - 1)
    burstDebt = Math.max(0, burstDebt - paidByPeer)
    const skipBudget = MAX_STRETCH - paidByPeer
    if (
      burstDebt >= 1 &&
      skipBudget > 0.01 &&
      regularSinceSkip >= Math.max(SKIP_EVERY_AT_MOST, Math.ceil(1 / skipBudget))
    ) {
      // Pay one burst probe back: skip a regular one, same phase.
      burstDebt -= 1
      regularSinceSkip = 0
      at += period
    }
    nextSendMs = at
  }

  const send = (nowMs: number) => {
    if (closed) return
    const probeSeq = seq
    seq = (seq + 1) >>> 0
    const deadlineMs = nowMs + missTimeoutMillis()
    outstanding.set(probeSeq, { sentMs: nowMs, sentAtMillis: Date.now(), deadlineMs })
    if (deadlineMs < earliestDeadlineMs) earliestDeadlineMs = deadlineMs
    counts.sent++
    counters.sent.inc()
    socket.send(
      encodeEchoRequest(sessionId, probeSeq, nowMs, config.payloadBytes),
      config.port,
      endpoints.remoteAddress,
    )
  }

  const startBurst = (nowMs: number) => {
    bursting = true
    burstWeight++
    burstDebt = Math.min(MAX_BURST_DEBT, burstDebt + 1)
    send(nowMs)
    nextBurstMs = nowMs + config.burstIntervalMillis
  }

  const onMiss = (probeSeq: number, o: Outstanding, nowMs: number) => {
    outstanding.delete(probeSeq)
    lateProbes.set(probeSeq, { sentMs: o.sentMs, sentAtMillis: o.sentAtMillis })
    // Forget probes whose reply can no longer be told from a genuinely late duplicate.
    for (const [k, v] of lateProbes)
      if (nowMs - v.sentMs > 2 * config.maxMissTimeoutMillis) lateProbes.delete(k)
      else break
    counts.lost++
    counters.lost.inc()
    handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: o.sentAtMillis, rttMs: null }, true))
    consecutiveMisses++
    if (consecutiveMisses >= config.deadAfterMisses) {
      setHealth("dead")
      if (bursting) {
        bursting = false
        nextBurstMs = Number.POSITIVE_INFINITY
        scheduleRegular(nowMs)
      }
    } else if (!bursting && health !== "dead") {
      startBurst(nowMs)
    }
  }

  const due = (nowMs: number) => {
    if (closed) return
    if (earliestDeadlineMs <= nowMs) {
      earliestDeadlineMs = Number.POSITIVE_INFINITY
      for (const [s, o] of outstanding) {
        if (o.deadlineMs <= nowMs) onMiss(s, o, nowMs)
        else if (o.deadlineMs < earliestDeadlineMs) earliestDeadlineMs = o.deadlineMs
      }
    }
    if (peer.deadlineMs <= nowMs) {
      // The peer's request did not come: evidence the tunnel may be down. Pull our next probe in
      // to now (its lead counts as burst share, so the average rate is unchanged).
      peer.deadlineMs = Number.POSITIVE_INFINITY
      peer.silences++
      if (!bursting && health !== "dead" && nextSendMs > nowMs) {
        // Aligned, the lead is paid back by re-alignment (it moved us earlier: the corrections
        // that follow lengthen the period); otherwise by the stretch.
        if (!phaseAligned) burstWeight += (nextSendMs - nowMs) / interval
        nextSendMs = nowMs
      }
    }
    if (bursting) {
      if (nextBurstMs <= nowMs) {
        burstWeight++
        burstDebt = Math.min(MAX_BURST_DEBT, burstDebt + 1)
        send(nowMs)
        nextBurstMs = nowMs + config.burstIntervalMillis
      }
    } else if (nextSendMs <= nowMs) {
      normalWeight = normalWeight * BURST_SHARE_DECAY + 1
      burstWeight *= BURST_SHARE_DECAY
      send(nowMs)
      scheduleRegular(nowMs)
    }
    refreshDue()
  }

  const onReply = (probeSeq: number, nowMs: number) => {
    if (closed) return
    const o = outstanding.get(probeSeq)
    const late = o === undefined ? lateProbes.get(probeSeq) : undefined
    if (late !== undefined) {
      // A reply after its timeout: the probe was already reported lost, but the tunnel is alive
      // and slower than the timeout assumed (a latency step, e.g. 10 → 120 ms). Report the reply
      // (the aggregation resets its miss streak, so a slow tunnel is not declared dead) and let
      // the timeout learn the new RTT; otherwise every following probe would miss too.
      lateProbes.delete(probeSeq)
      counts.late++
      const rttMs = nowMs - late.sentMs
      learnRtt(rttMs)
      handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: late.sentAtMillis, rttMs }, true))
    } else if (o === undefined) {
      counts.duplicates++
    } else {
      outstanding.delete(probeSeq)
      const rttMs = nowMs - o.sentMs
      counts.received++
      if (probeSeq < highestAnswered) counts.reordered++
      else highestAnswered = probeSeq
      learnRtt(rttMs)
      counters.rtt.observe(rttMs / 1000)
      handlers.onSample(new RttSample({ tunnel, kind: "udp-echo", atMillis: o.sentAtMillis, rttMs }, true))
    }
    consecutiveMisses = 0
    setHealth("up")
    if (bursting) {
      bursting = false
      nextBurstMs = Number.POSITIVE_INFINITY
      scheduleRegular(nowMs)
    }
    refreshDue()
  }

  const onPeerRequest = (nowMs: number) => {
    if (closed) return
    peer.requests++
    if (!Number.isNaN(peer.lastMs)) {
      const gap = nowMs - peer.lastMs
      // Regular gaps only: the peer's burst probes (100 ms apart) say nothing about its period.
      if (gap >= 0.5 * interval && gap <= 1.5 * interval) {
        if (peer.regular === 0) {
          peer.gapMs = gap
          peer.gapDevMs = 0
        } else {
          peer.gapDevMs = 0.75 * peer.gapDevMs + 0.25 * Math.abs(gap - peer.gapMs)
          peer.gapMs = 0.875 * peer.gapMs + 0.125 * gap
        }
        peer.regular++
      }
    }
    peer.lastMs = nowMs
    if (config.watchPeerRequests && peer.regular >= PEER_REGULAR_AFTER) {
      const slackMs = Math.min(
        config.maxMissTimeoutMillis,
        Math.max(config.minMissTimeoutMillis, 4 * peer.gapDevMs + 2 * ECHO_TIMER_GRID_MILLIS),
      )
      peer.deadlineMs = nowMs + peer.gapMs + slackMs
    }
    refreshDue()
  }

  return self
}

/** One tunnel's echo with a scheduler of its own (tests, tools); the plane shares one `EchoProbes`. */
export const runEchoProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: EchoProbeConfig,
  handlers: EchoProberHandlers,
): Effect.Effect<() => EchoProberStats, UdpBindFailed, Scope.Scope | MeasurementMetrics> =>
  Effect.flatMap(makeEchoProbes(config), (probes) => probes.add(tunnel, endpoints, handlers))
