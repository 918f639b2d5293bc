/**
 * Fast UDP echo over every tunnel: the failure detector and the main RTT/loss source.
 *
 * One `EchoProbes` per plane drives all tunnels: one UDP socket per local probe address (replies
 * are told apart by the prober's random session id) and one timer, armed for the next due instant
 * only (no polling grid).
 *
 * **Wall-clock grid.** Regular probes go at a fixed phase of the wall-clock interval: the lower
 * site id of a pair at phase 0, the higher at phase ½ (clocks are NTP-synced; a skew only moves
 * the phases). Every tunnel of a site with the same phase is probed in the same wake-up, so a site
 * wakes up about twice per interval for its regular probes whatever the number of tunnels.
 *
 * **Symmetric echo** (ECHO_SYM, see Packets.ts). Both ends probe a tunnel; each regular request
 * carries the reply to the peer's latest request (its seq, its sentNs, and our residence time, the
 * receive-to-send delay), so a steady tunnel costs one datagram per end per interval instead of
 * two. RTT = arrival − our send time − the peer's residence: the deliberate wait until its slot
 * and its event-loop delay are taken out. A request is deferred like this only while the peer's
 * requests arrive regularly (else IMMEDIATE: the peer's server answers at once). A peer that does
 * not speak ECHO_SYM gets v1 requests (24 B: a new server marks its v1 reply, an old one does not),
 * and its v1 requests get v1 replies, so mixed versions interoperate. Burst probes are v1 requests
 * (answered at once by any server).
 *
 * **Detection.** A probe unanswered past its deadline is lost: a null sample at once (the engine's
 * aggregation declares a tunnel dead after 3 consecutive lost echoes). For an immediate request
 * the deadline is clamp(1.5·srtt + 4·rttvar, min, max) (RFC 6298-style); a deferred one is overdue
 * at the peer's next expected request + slack (clamp(4·gap deviation + 20 ms, min, max)), the
 * instant its silence is noticed: a burst starts, and the deferred request counts as lost when the
 * first burst probe does (same verdict time; a peer merely late costs a probe, not a false loss). A peer request arriving without the ack of one of our requests that it
 * must have seen (sent more than a miss timeout before) is a loss in our direction at once. The
 * first loss (or a silence) switches to a burst, one v1 probe every `burstIntervalMillis`, until an
 * answer (back to the grid) or `deadAfterMisses` consecutive losses (dead; back to the grid, so
 * recovery shows within one interval). The peer is heard once per interval, so a failure is first
 * noticed after U(0, 1) interval + slack, and declared ≈ 2 burst intervals later.
 * A reply after its deadline is reported too (proof of life; the timeout learns the new RTT). RTT
 * uses this process's monotonic clock only.
 *
 * **Rate.** Burst probes are extra. Where regular requests are answered at once (the peer does not
 * probe, or an old peer) they are paid back by skipping a regular slot (at most one in 10); a
 * deferred request is never skipped, because the peer would take the gap for a failure.
 */
import { randomInt } from "node:crypto"
import type * as dgram from "node:dgram"
import { type RttSample, rttSample, type TunnelId, tunnelKey } from "@net-perf/engine"
import { Effect, Exit, Scope } from "effect"
import { counterChild, histogramChild, MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import {
  classify5121,
  ECHO_MIN_BYTES,
  ECHO_SYM_CAPABLE_MARK,
  ECHO_V1_PROBE_BYTES,
  EchoSymFlag,
  encodeEchoRequest,
  encodeEchoSym,
  PacketType,
  readU32,
} from "../servers/Packets.js"
import type { EchoSymmetricHandler } from "../servers/ProbeServer.js"
import { bindUdp, type UdpBindFailed } from "../servers/Udp.js"
import type { EchoProbeConfig } from "./ProbeConfig.js"

/** Regular peer requests seen before their rhythm is trusted (deferral, silence watch). */
const PEER_REGULAR_AFTER = 3
/** The peer counts as speaking ECHO_SYM for this many intervals after its last ECHO_SYM datagram or marked reply. */
const SYM_FRESH_INTERVALS = 3
/** The timer may fire this much before an instant (libuv's cached loop time): such events are due. */
const TIMER_SLOP_MILLIS = 2
/** A wall-clock step bigger than this moves the grid (smaller differences are Date.now's ms resolution). */
const WALL_STEP_MILLIS = 20
/** Burst probes paid back by skipping a regular slot: at most one skip per this many regular probes. */
const SKIP_EVERY_AT_MOST = 10
const MAX_BURST_DEBT = 20

export type EchoHealth = "unknown" | "up" | "dead"

/** What started the burst that ended in a dead verdict. */
export type EchoBurstCause = "lost-probe" | "peer-silence" | "overdue-ack" | "suspicion"

/**
 * How a dead verdict came about, for the log line an operator reads (and the detection benches):
 * the silence before it and the timeouts that shaped it at that moment.
 */
export interface EchoVerdictDetail {
  readonly cause: EchoBurstCause
  /** From the last datagram of the peer's prober or server (a reply or a request) to the verdict. */
  readonly silentMs: number
  /** From the burst's start to the verdict. */
  readonly burstMs: number
  /** The wait past a peer request's expected arrival (4 × gap deviation + 20 ms, clamped). */
  readonly peerSlackMs: number
  /** An immediate probe's miss timeout (1.5 × srtt + 4 × rttvar, clamped). */
  readonly missTimeoutMs: number
  readonly peerGapDevMs: number
}

/** One line for the log: `silent 1.21 s, burst on peer-silence 0.32 s, slack 140 ms, miss timeout 110 ms`. */
export const describeEchoVerdict = (d: EchoVerdictDetail): string =>
  `silent ${Number.isNaN(d.silentMs) ? "since start" : `${(d.silentMs / 1000).toFixed(2)} s`}, burst on ${d.cause} ${(d.burstMs / 1000).toFixed(2)} s, slack ${Math.round(d.peerSlackMs)} ms, miss timeout ${Math.round(d.missTimeoutMs)} ms`

export interface EchoProberHandlers {
  readonly onSample: (sample: RttSample) => void
  /** `detail` comes with every dead verdict. */
  readonly onHealth: (health: EchoHealth, atMillis: number, detail?: EchoVerdictDetail) => void
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
  /** Times an expected peer request did not come (each started a burst unless one was running). */
  readonly peerSilences: number
  /** Missed peer requests that came after all, late (the peer or the path stalled; nothing lost). */
  readonly peerLateRequests: number
  /** Regular probes go on the pair's wall-clock slot (lower site id phase 0, higher ½). */
  readonly phaseAligned: boolean
  /** The peer speaks ECHO_SYM (our regular requests carry our acks of its requests). */
  readonly symmetric: boolean
  /** Peer requests we answered inside our own regular request (no datagram of their own). */
  readonly acksPiggybacked: number
  /** Our requests the peer's next request showed it never got: losses in our → peer direction. */
  readonly lostToPeer: number
  /** Bursts started on outside evidence (`EchoProbes.suspect`: the other family died, the peer reported the tunnel dead). */
  readonly suspicions: number
}

/**
 * The snapshot reader `add` returns, with cheap single-field reads for per-sample callers (the
 * loss trigger asks for `peerSilences` on every echo sample; a full snapshot is 16 fields).
 */
export type EchoStatsReader = (() => EchoProberStats) & {
  readonly health: () => EchoHealth
  readonly peerSilences: () => number
  readonly peerLateRequests: () => number
}

interface Outstanding {
  readonly sentMs: number
  readonly sentAtMillis: number
  deadlineMs: number
  /** Answered in the peer's next regular request, not at once. */
  readonly deferred: boolean
  /**
   * A deferred request whose answer is overdue (the peer's request is late): lost only if the burst
   * probe sent then is lost too; a peer merely stalled past the slack costs a probe, not a loss.
   */
  suspected: boolean
}

interface SharedSocket {
  readonly socket: dgram.Socket
  readonly scope: Scope.CloseableScope
  /** Probers on this socket by session id. */
  readonly probers: Map<number, Prober>
  users: number
}

/** The scheduler's wall-clock grid, shared so that every prober of a phase lands on the same instant. */
interface Grid {
  /** The first instant (performance.now ms) after `afterMs` at `phaseMs` of the wall-clock interval. */
  readonly slotAfter: (afterMs: number, phaseMs: number) => number
}

/** Per-tunnel echo state; driven by the plane-wide scheduler. */
interface Prober {
  readonly localAddress: string
  readonly remoteAddress: string
  readonly sessionId: number
  /** Earliest instant (performance.now ms) at which `due` has something to do. */
  nextDueMs: number
  readonly due: (nowMs: number, horizonMs: number) => void
  /** A reply to one of our requests: v1 (`residenceMs` 0) or an ECHO_SYM ack. */
  readonly onReply: (seq: number, nowMs: number, residenceMs: number, symCapable: boolean) => void
  /** A v1 request of the peer reached our server (answered there). */
  readonly onPeerRequest: (nowMs: number) => void
  /** An ECHO_SYM request of the peer reached our server; true = we answer it in our next regular request. */
  readonly onSymmetric: (msg: Buffer, port: number, nowMs: number) => boolean
  readonly stats: EchoStatsReader
  /** Outside evidence the tunnel may be down: probe now (a burst), unless one runs, it is dead, or one started < 1 interval ago. */
  readonly suspect: (nowMs: number) => void
  /** Stops; a held peer request is answered first (`sent` is called once that datagram left, or at once). */
  readonly close: (sent?: () => void) => void
}

export interface EchoProbes {
  /** Probes one tunnel for the scope's lifetime; returns a snapshot reader. */
  readonly add: (
    tunnel: TunnelId,
    endpoints: { readonly localAddress: string; readonly remoteAddress: string },
    handlers: EchoProberHandlers,
  ) => Effect.Effect<EchoStatsReader, UdpBindFailed, Scope.Scope>
  /**
   * Outside evidence that this tunnel may be down — the other family's tunnel to the same peer was
   * just declared dead, or the peer's link state reports it dead: probe it now instead of at its
   * next slot, so the verdict follows within ≈ 2 burst intervals. Costs one probe when the tunnel
   * is fine. Unknown tunnels are ignored.
   */
  readonly suspect: (tunnel: TunnelId) => void
  /** A v1 echo request from `sourceAddress` reached our server on `localAddress` (the 5121 server's `onEchoRequest`). */
  readonly peerRequest: (localAddress: string, sourceAddress: string) => void
  /**
   * An ECHO_SYM request reached our server (the 5121 server's `onEchoSymmetric`): its ack goes to
   * our prober; true when our prober will answer the request in its next regular request.
   */
  readonly peerSymmetric: EchoSymmetricHandler
}

/** The plane-wide echo scheduler (one socket per local address, one timer). */
export const makeEchoProbes = (
  config: EchoProbeConfig,
): Effect.Effect<EchoProbes, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const sockets = new Map<string, SharedSocket>()
    const probers = new Set<Prober>()
    /**
     * Probers by local then remote address, for peer requests: two lookups of strings the packet
     * already has, instead of a key string built per datagram.
     */
    const byPath = new Map<string, Map<string, Prober>>()
    const proberAt = (localAddress: string, remoteAddress: string) => byPath.get(localAddress)?.get(remoteAddress)
    /** Probers by tunnel key, for outside suspicion. */
    const byTunnel = new Map<string, Prober>()
    const lock = yield* Effect.makeSemaphore(1)
    let timer: NodeJS.Timeout | undefined
    let armedForMs = Number.POSITIVE_INFINITY
    let closed = false

    // Wall clock = performance.now() + offset, re-read at each wake-up but moved only by a real
    // step: probers scheduled in different wake-ups must compute bit-identical slot instants.
    let wallOffsetMs = Date.now() - performance.now()
    const interval = config.intervalMillis
    const grid: Grid = {
      slotAfter: (afterMs, phaseMs) => {
        let slot = (Math.floor((afterMs + wallOffsetMs - phaseMs) / interval) + 1) * interval + phaseMs - wallOffsetMs
        if (slot <= afterMs) slot += interval
        return slot
      },
    }

    const arm = (atMs: number) => {
      if (closed || atMs >= armedForMs) return
      if (timer !== undefined) clearTimeout(timer)
      armedForMs = atMs
      timer = setTimeout(tick, Math.max(0, Math.ceil(atMs - performance.now())))
    }
    const tick = () => {
      timer = undefined
      armedForMs = Number.POSITIVE_INFINITY
      // setImmediate: after an event-loop stall the timer phase runs before pending datagrams are
      // read; deciding here would turn a reply already in the socket buffer into a false loss.
      setImmediate(() => {
        if (closed) return
        const nowMs = performance.now()
        const offset = Date.now() - nowMs
        if (Math.abs(offset - wallOffsetMs) > WALL_STEP_MILLIS) wallOffsetMs = offset
        const horizonMs = nowMs + TIMER_SLOP_MILLIS
        let earliest = Number.POSITIVE_INFINITY
        for (const p of probers) {
          if (p.nextDueMs <= horizonMs) p.due(nowMs, horizonMs)
          if (p.nextDueMs < earliest) earliest = p.nextDueMs
        }
        if (earliest < Number.POSITIVE_INFINITY) arm(earliest)
      })
    }
    /** After a prober's state changed outside a tick: make sure the timer fires by its next due instant. */
    const wake = (p: Prober) => {
      if (p.nextDueMs < armedForMs) arm(p.nextDueMs)
    }

    const onMessage = (shared: SharedSocket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      const nowMs = performance.now()
      const type = classify5121(msg)
      if (type === PacketType.EchoReply) {
        const p = shared.probers.get(readU32(msg, 4))
        if (p === undefined || rinfo.address !== p.remoteAddress) return
        const marked = msg.length > ECHO_MIN_BYTES && msg[ECHO_MIN_BYTES] === ECHO_SYM_CAPABLE_MARK
        p.onReply(readU32(msg, 8), nowMs, 0, marked)
        wake(p)
      } else if (type === PacketType.EchoSym && msg[20] === EchoSymFlag.Ack) {
        const p = shared.probers.get(readU32(msg, 24))
        if (p === undefined || rinfo.address !== p.remoteAddress) return
        p.onReply(readU32(msg, 28), nowMs, readU32(msg, 40) / 1000, true)
        wake(p)
      }
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
        const prober = makeProber(tunnel, endpoints, config, handlers, shared.socket, sessionId, grid, {
          sent: counterChild(metrics.probesSent, labels),
          lost: counterChild(metrics.probesLost, labels),
          rtt: histogramChild(metrics.rtt, labels),
        })
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            shared.probers.set(sessionId, prober)
            probers.add(prober)
            let remotes = byPath.get(endpoints.localAddress)
            if (remotes === undefined) {
              remotes = new Map()
              byPath.set(endpoints.localAddress, remotes)
            }
            remotes.set(endpoints.remoteAddress, prober)
            byTunnel.set(tunnelKey(tunnel), prober)
            wake(prober)
          }),
          () =>
            Effect.async<void>((resume) => {
              // The socket may close right after this: wait (briefly) until a held ack has left.
              const t = setTimeout(() => resume(Effect.void), 200)
              prober.close(() => {
                clearTimeout(t)
                resume(Effect.void)
              })
            }).pipe(
              Effect.zipRight(
                Effect.sync(() => {
                  shared.probers.delete(sessionId)
                  probers.delete(prober)
                  const remotes = byPath.get(endpoints.localAddress)
                  if (remotes?.get(endpoints.remoteAddress) === prober) {
                    remotes.delete(endpoints.remoteAddress)
                    if (remotes.size === 0) byPath.delete(endpoints.localAddress)
                  }
                  if (byTunnel.get(tunnelKey(tunnel)) === prober) byTunnel.delete(tunnelKey(tunnel))
                }),
              ),
            ),
        )
        return prober.stats
      })

    return {
      add,
      suspect: (tunnel) => {
        const p = byTunnel.get(tunnelKey(tunnel))
        if (p === undefined) return
        p.suspect(performance.now())
        wake(p)
      },
      peerRequest: (localAddress, sourceAddress) => {
        const p = proberAt(localAddress, sourceAddress)
        if (p === undefined) return
        p.onPeerRequest(performance.now())
        wake(p)
      },
      peerSymmetric: (localAddress, sourceAddress, sourcePort, msg, arrivalMs) => {
        const p = proberAt(localAddress, sourceAddress)
        if (p === undefined) return false
        const taken = p.onSymmetric(msg, sourcePort, arrivalMs)
        wake(p)
        return taken
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
  grid: Grid,
  counters: {
    readonly sent: { inc: () => void }
    readonly lost: { inc: () => void }
    readonly rtt: { observe: (v: number) => void }
  },
): Prober => {
  const interval = config.intervalMillis
  const outstanding = new Map<number, Outstanding>()
  /** Probes reported lost whose reply may still come (kept for up to two intervals + the max timeout). */
  const lateProbes = new Map<number, { readonly sentMs: number; readonly sentAtMillis: number }>()
  const counts = {
    sent: 0,
    received: 0,
    lost: 0,
    late: 0,
    reordered: 0,
    duplicates: 0,
    acksPiggybacked: 0,
    lostToPeer: 0,
    suspicions: 0,
  }
  let lastSuspicionMs = Number.NEGATIVE_INFINITY
  /** The peer's latest datagram to this prober or about it (reply or request), performance.now ms. */
  let lastHeardMs = Number.NaN
  let burstCause: EchoBurstCause = "lost-probe"
  let burstStartMs = 0
  let seq = 0
  let health: EchoHealth = "unknown"
  let srttMs: number | null = null
  let rttVarMs: number | null = null
  let consecutiveMisses = 0
  let bursting = false
  let burstDebt = 0
  let regularSinceSkip = 0
  let highestAnswered = -1
  let closed = false
  const aligned = config.alignToPeer
  // The pair's slot: lower site id at phase 0, higher at ½ (random without alignment).
  const phaseMs = aligned ? (tunnel.local < tunnel.remote ? 0 : interval / 2) : Math.random() * interval
  let nextSendMs = grid.slotAfter(performance.now(), phaseMs)
  let nextBurstMs = Number.POSITIVE_INFINITY
  let earliestDeadlineMs = Number.POSITIVE_INFINITY
  /** Last ECHO_SYM datagram or marked v1 reply from the peer (performance.now ms). */
  let symSeenMs = Number.NEGATIVE_INFINITY
  // The peer's requests: last arrival, smoothed regular gap and its mean deviation.
  const peer = {
    lastMs: Number.NaN,
    gapMs: interval,
    gapDevMs: 0,
    regular: 0,
    deadlineMs: Number.POSITIVE_INFINITY,
    requests: 0,
    silences: 0,
    /** A silence was declared and no request has come since. */
    silenceOpen: false,
    lateRequests: 0,
  }
  // The peer's latest ECHO_SYM request, to be answered in our next regular request.
  const pending = { has: false, sessionId: 0, seq: 0, sentHigh: 0, sentLow: 0, arrivalMs: 0, port: 0 }

  const self: Prober = {
    localAddress: endpoints.localAddress,
    remoteAddress: endpoints.remoteAddress,
    sessionId,
    nextDueMs: nextSendMs,
    due: (nowMs, horizonMs) => due(nowMs, horizonMs),
    onReply: (s, nowMs, residenceMs, symCapable) => onReply(s, nowMs, residenceMs, symCapable),
    onPeerRequest: (nowMs) => {
      if (closed) return
      notePeerRequest(nowMs, false)
      refreshDue()
    },
    onSymmetric: (msg, port, nowMs) => onSymmetric(msg, port, nowMs),
    stats: Object.assign(
      (): EchoProberStats => ({
        health,
        srttMs,
        rttVarMs,
        sent: counts.sent,
        received: counts.received,
        lost: counts.lost,
        late: counts.late,
        reordered: counts.reordered,
        duplicates: counts.duplicates,
        peerRequests: peer.requests,
        peerSilences: peer.silences,
        peerLateRequests: peer.lateRequests,
        phaseAligned: aligned,
        symmetric: symFresh(performance.now()),
        acksPiggybacked: counts.acksPiggybacked,
        lostToPeer: counts.lostToPeer,
        suspicions: counts.suspicions,
      }),
      { health: () => health, peerSilences: () => peer.silences, peerLateRequests: () => peer.lateRequests },
    ),
    suspect: (nowMs) => {
      if (closed || bursting || health === "dead" || nowMs - lastSuspicionMs < interval) return
      lastSuspicionMs = nowMs
      counts.suspicions++
      startBurst(nowMs, "suspicion")
      refreshDue()
    },
    close: (sent) => {
      if (closed) return sent?.()
      if (!flushPending(performance.now(), sent)) sent?.()
      closed = true
      outstanding.clear()
      self.nextDueMs = Number.POSITIVE_INFINITY
    },
  }

  const refreshDue = () => {
    if (closed) return
    self.nextDueMs = Math.min(bursting ? nextBurstMs : nextSendMs, earliestDeadlineMs, peer.deadlineMs)
  }

  const symFresh = (nowMs: number) => nowMs - symSeenMs < SYM_FRESH_INTERVALS * interval
  /** The peer's requests come on a rhythm we can wait for (it probes this tunnel, and recently). */
  const peerProbing = (nowMs: number) =>
    config.watchPeerRequests && peer.regular >= PEER_REGULAR_AFTER && nowMs - peer.lastMs < 1.5 * peer.gapMs

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
  const peerSlackMillis = () =>
    Math.min(config.maxMissTimeoutMillis, Math.max(config.minMissTimeoutMillis, 4 * peer.gapDevMs + 20))

  const setHealth = (next: EchoHealth, nowMs: number) => {
    if (next === health) return
    health = next
    if (next !== "dead") return handlers.onHealth(next, Date.now())
    // Without a burst (deadAfterMisses 1: a regular probe's loss decides) the last burst's fields are stale.
    handlers.onHealth(next, Date.now(), {
      cause: bursting ? burstCause : "lost-probe",
      silentMs: Number.isNaN(lastHeardMs) ? Number.NaN : nowMs - lastHeardMs,
      burstMs: bursting ? nowMs - burstStartMs : 0,
      peerSlackMs: peerSlackMillis(),
      missTimeoutMs: missTimeoutMillis(),
      peerGapDevMs: peer.gapDevMs,
    })
  }

  const scheduleRegular = (afterMs: number) => {
    nextSendMs = grid.slotAfter(afterMs, phaseMs)
  }

  const track = (probeSeq: number, nowMs: number, deadlineMs: number, deferred: boolean) => {
    outstanding.set(probeSeq, { sentMs: nowMs, sentAtMillis: Date.now(), deadlineMs, deferred, suspected: false })
    if (deadlineMs < earliestDeadlineMs) earliestDeadlineMs = deadlineMs
    counts.sent++
    counters.sent.inc()
  }

  /** A v1 request (burst probes; regular ones to a peer not known to speak ECHO_SYM): answered at once by any server. */
  const sendV1 = (nowMs: number) => {
    const probeSeq = seq
    seq = (seq + 1) >>> 0
    track(probeSeq, nowMs, nowMs + missTimeoutMillis(), false)
    socket.send(
      encodeEchoRequest(sessionId, probeSeq, nowMs, Math.max(ECHO_V1_PROBE_BYTES, config.payloadBytes)),
      config.port,
      endpoints.remoteAddress,
    )
  }

  /**
   * A regular request. To an ECHO_SYM peer it carries our ack of the peer's latest request and, while
   * the peer probes on its rhythm, asks to be answered in the peer's next request (deferred).
   */
  const sendRegular = (nowMs: number) => {
    if (!symFresh(nowMs)) {
      pending.has = false
      sendV1(nowMs)
      return
    }
    const deferred = peerProbing(nowMs)
    let flags = EchoSymFlag.Request | (deferred ? 0 : EchoSymFlag.Immediate)
    // An ack older than two intervals is of no use to the peer any more (it has counted the loss).
    if (pending.has && nowMs - pending.arrivalMs < 2 * interval) flags |= EchoSymFlag.Ack
    const probeSeq = seq
    seq = (seq + 1) >>> 0
    let deadlineMs = nowMs + missTimeoutMillis()
    if (deferred) {
      // Answered by the first peer request sent after ours arrived there: expected at the peer's
      // next arrival at least a miss timeout from now (ours cannot have reached it before that).
      let expectedMs = peer.lastMs + peer.gapMs
      const earliestMs = nowMs + missTimeoutMillis()
      for (let i = 0; expectedMs < earliestMs && i < 10; i++) expectedMs += peer.gapMs
      deadlineMs = Math.max(deadlineMs, expectedMs + peerSlackMillis())
    }
    track(probeSeq, nowMs, deadlineMs, deferred)
    const ack = (flags & EchoSymFlag.Ack) !== 0
    if (ack) counts.acksPiggybacked++
    pending.has = false
    socket.send(
      encodeEchoSym(
        flags,
        sessionId,
        probeSeq,
        nowMs,
        pending.sessionId,
        pending.seq,
        pending.sentHigh,
        pending.sentLow,
        ack ? (performance.now() - pending.arrivalMs) * 1000 : 0,
      ),
      config.port,
      endpoints.remoteAddress,
    )
  }

  /** Answers the held peer request at once, from our socket to the peer's prober (burst start, close). */
  const flushPending = (nowMs: number, sent?: () => void): boolean => {
    if (!pending.has) return false
    pending.has = false
    if (nowMs - pending.arrivalMs >= 2 * interval) return false
    // On close the socket may be going too: a lost ack then costs the peer one sample, no more.
    try {
      socket.send(
        encodeEchoSym(
          EchoSymFlag.Ack,
          0,
          0,
          0,
          pending.sessionId,
          pending.seq,
          pending.sentHigh,
          pending.sentLow,
          (performance.now() - pending.arrivalMs) * 1000,
        ),
        pending.port,
        endpoints.remoteAddress,
        () => sent?.(),
      )
      return true
    } catch {
      return false
    }
  }

  const startBurst = (nowMs: number, cause: EchoBurstCause) => {
    bursting = true
    burstCause = cause
    burstStartMs = nowMs
    flushPending(nowMs)
    burstDebt = Math.min(MAX_BURST_DEBT, burstDebt + 1)
    sendV1(nowMs)
    nextBurstMs = nowMs + config.burstIntervalMillis
  }

  const endBurst = (nowMs: number) => {
    bursting = false
    nextBurstMs = Number.POSITIVE_INFINITY
    scheduleRegular(nowMs)
  }

  const onMiss = (probeSeq: number, o: Outstanding, nowMs: number) => {
    if (!o.deferred)
      // A burst probe lost: the overdue deferred requests were lost too (counted first: sent first).
      for (const [s, d] of outstanding) if (d.suspected) countMiss(s, d, nowMs)
    countMiss(probeSeq, o, nowMs)
  }

  const countMiss = (probeSeq: number, o: Outstanding, nowMs: number) => {
    outstanding.delete(probeSeq)
    lateProbes.set(probeSeq, { sentMs: o.sentMs, sentAtMillis: o.sentAtMillis })
    // Forget probes whose reply can no longer be told from a genuinely late duplicate.
    for (const [k, v] of lateProbes)
      if (nowMs - v.sentMs > 2 * (interval + config.maxMissTimeoutMillis)) lateProbes.delete(k)
      else break
    counts.lost++
    counters.lost.inc()
    handlers.onSample(rttSample(tunnel, "udp-echo", o.sentAtMillis, null))
    consecutiveMisses++
    if (consecutiveMisses >= config.deadAfterMisses) {
      setHealth("dead", nowMs)
      if (bursting) endBurst(nowMs)
    } else if (!bursting && health !== "dead") {
      startBurst(nowMs, "lost-probe")
    }
  }

  const due = (nowMs: number, horizonMs: number) => {
    if (closed) return
    if (earliestDeadlineMs <= horizonMs) {
      earliestDeadlineMs = Number.POSITIVE_INFINITY
      let suspect = false
      for (const [s, o] of outstanding) {
        if (o.deadlineMs <= horizonMs) {
          if (o.deferred && !o.suspected && health !== "dead") {
            // Overdue: probe at once (below); the verdict on this request waits for that probe.
            o.suspected = true
            o.deadlineMs = nowMs + config.maxMissTimeoutMillis
            suspect = true
          } else if (outstanding.has(s)) onMiss(s, o, nowMs)
        }
        if (outstanding.has(s) && o.deadlineMs < earliestDeadlineMs) earliestDeadlineMs = o.deadlineMs
      }
      if (suspect && !bursting) startBurst(nowMs, "overdue-ack")
    }
    if (peer.deadlineMs <= horizonMs) {
      // The peer's request did not come: evidence the tunnel may be down (usually our deferred
      // request missed at the same instant, and the burst is on already).
      peer.deadlineMs = Number.POSITIVE_INFINITY
      peer.silences++
      peer.silenceOpen = true
      if (!bursting && health !== "dead") startBurst(nowMs, "peer-silence")
    }
    if (bursting) {
      if (nextBurstMs <= horizonMs) {
        burstDebt = Math.min(MAX_BURST_DEBT, burstDebt + 1)
        sendV1(nowMs)
        nextBurstMs = nowMs + config.burstIntervalMillis
      }
    } else if (nextSendMs <= horizonMs) {
      regularSinceSkip++
      if (burstDebt >= 1 && regularSinceSkip >= SKIP_EVERY_AT_MOST && !peerProbing(nowMs) && !pending.has) {
        // Pay one burst probe back. Only where our requests are answered at once: a deferred
        // request skipped would look like a failure to the peer.
        burstDebt -= 1
        regularSinceSkip = 0
      } else {
        sendRegular(nowMs)
      }
      scheduleRegular(horizonMs)
    }
    refreshDue()
  }

  const onReply = (probeSeq: number, nowMs: number, residenceMs: number, symCapable: boolean) => {
    if (closed) return
    lastHeardMs = nowMs
    if (symCapable) symSeenMs = nowMs
    const o = outstanding.get(probeSeq)
    const late = o === undefined ? lateProbes.get(probeSeq) : undefined
    if (late !== undefined) {
      // A reply after its deadline: the probe was already reported lost, but the tunnel is alive
      // and slower than the timeout assumed (a latency step, e.g. 10 → 120 ms, or a peer stalled
      // past its slot). Report the reply (the aggregation resets its miss streak, so a slow tunnel
      // is not declared dead) and let the timeout learn the new RTT; otherwise every following
      // probe would miss too.
      lateProbes.delete(probeSeq)
      counts.late++
      const rttMs = Math.max(0, nowMs - late.sentMs - residenceMs)
      learnRtt(rttMs)
      handlers.onSample(rttSample(tunnel, "udp-echo", late.sentAtMillis, rttMs))
    } else if (o === undefined) {
      counts.duplicates++
      return
    } else {
      outstanding.delete(probeSeq)
      const rttMs = Math.max(0, nowMs - o.sentMs - residenceMs)
      counts.received++
      if (probeSeq < highestAnswered) counts.reordered++
      else highestAnswered = probeSeq
      learnRtt(rttMs)
      counters.rtt.observe(rttMs / 1000)
      handlers.onSample(rttSample(tunnel, "udp-echo", o.sentAtMillis, rttMs))
    }
    consecutiveMisses = 0
    setHealth("up", nowMs)
    if (bursting) endBurst(nowMs)
    refreshDue()
  }

  /** `regular`: an ECHO_SYM request (only regular probes are; bursts are v1 and say nothing about the missing one). */
  const notePeerRequest = (nowMs: number, regular: boolean) => {
    peer.requests++
    lastHeardMs = nowMs
    if (regular && peer.silenceOpen) {
      peer.silenceOpen = false
      // The missing request itself, late (the one after it would come ≈ 2 gaps after the last).
      if (!Number.isNaN(peer.lastMs) && nowMs - peer.lastMs < 1.5 * peer.gapMs + peerSlackMillis()) peer.lateRequests++
    }
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
    if (config.watchPeerRequests && peer.regular >= PEER_REGULAR_AFTER)
      peer.deadlineMs = nowMs + peer.gapMs + peerSlackMillis()
  }

  const onSymmetric = (msg: Buffer, port: number, nowMs: number): boolean => {
    if (closed) return false
    symSeenMs = nowMs
    notePeerRequest(nowMs, true)
    const flags = msg[20]!
    if ((flags & EchoSymFlag.Ack) !== 0 && readU32(msg, 24) === sessionId) {
      onReply(readU32(msg, 28), nowMs, readU32(msg, 40) / 1000, true)
    }
    // The peer sent this after our deferred requests older than a miss timeout had reached it (or
    // they were lost on the way): its ack would have been in here.
    if (earliestDeadlineMs < Number.POSITIVE_INFINITY) {
      const seenBeforeMs = nowMs - missTimeoutMillis()
      for (const [s, o] of outstanding) {
        if (o.deferred && o.sentMs < seenBeforeMs) {
          counts.lostToPeer++
          onMiss(s, o, nowMs)
        }
      }
    }
    refreshDue()
    // Ours to answer in our next regular request, unless it asks for an answer now, we are in a
    // burst (no regular request soon), or we already hold one (the peer is out of rhythm).
    if ((flags & EchoSymFlag.Immediate) !== 0 || bursting || pending.has) return false
    pending.has = true
    pending.sessionId = readU32(msg, 4)
    pending.seq = readU32(msg, 8)
    pending.sentHigh = readU32(msg, 12)
    pending.sentLow = readU32(msg, 16)
    pending.arrivalMs = nowMs
    pending.port = port
    return true
  }

  return self
}

/** One tunnel's echo with a scheduler of its own (tests, tools); the plane shares one `EchoProbes`. */
export const runEchoProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: EchoProbeConfig,
  handlers: EchoProberHandlers,
): Effect.Effect<EchoStatsReader, UdpBindFailed, Scope.Scope | MeasurementMetrics> =>
  Effect.flatMap(makeEchoProbes(config), (probes) => probes.add(tunnel, endpoints, handlers))
