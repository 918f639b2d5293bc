/**
 * The 5121/udp probe server: answers fast echo probes and runs the receiving side of loss/rate
 * bursts. Binds only to the configured overlay (or loopback) addresses, never a wildcard, and
 * re-tries binds that fail because an address is not there yet (PostUp adds 10.201.X.4 later).
 *
 * Loss accounting fixes the original's defects: every distinct sequence number counts once
 * (duplicates apart), a late packet is *reordered*, never *dropped*; jitter is RFC 3550's running
 * estimate over transit-time differences (clock offsets cancel); the achieved rate is measured over
 * the real first-to-last arrival time in nanoseconds.
 *
 * Echo: a v1 request is answered at once (same datagram, type 2; from a request of >= 21 B the
 * reply carries the "speaks ECHO_SYM" mark at byte 20, which an old server leaves zero). An
 * ECHO_SYM request is handed to the local echo scheduler (`onEchoSymmetric`): its ack part is the
 * peer's answer to our prober, its request part is answered in our prober's next regular request
 * when the scheduler takes it, else here at once as an ACK-only datagram built in place.
 */
import type * as dgram from "node:dgram"
import { Deferred, Duration, Effect, Schedule, type Scope } from "effect"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import { makeRateLimiter, type RateLimitConfig } from "./Guard.js"
import {
  classify5121,
  ECHO_MIN_BYTES,
  ECHO_SYM_CAPABLE_MARK,
  EchoSymFlag,
  echoSymToAck,
  encodeLossFinal,
  encodeLossStats,
  PacketType,
  readU32,
  readU64Number,
} from "./Packets.js"
import { bindUdp } from "./Udp.js"

export interface ProbeServerConfig {
  readonly bindAddresses: ReadonlyArray<string>
  readonly port: number
  readonly allow: (address: string) => boolean
  readonly rateLimit: RateLimitConfig
  readonly rebindIntervalMillis: number
  readonly maxSessionsPerSource: number
  readonly maxLossPackets: number
  readonly sessionIdleMillis: number
  readonly statsIntervalMillis: number
  /**
   * Called for every echo request answered, with the address it reached and its source: the
   * peer's prober at work, which the local echo scheduler uses as evidence the tunnel is up.
   */
  readonly onEchoRequest?: (localAddress: string, sourceAddress: string) => void
  /**
   * Called for every valid ECHO_SYM request (`msg`, read it before returning: the buffer is reused
   * for the immediate answer), with its arrival time (performance.now ms). Returns true when the
   * local prober takes the request, to be answered in its next regular datagram; false (or no
   * handler) has the server answer at once.
   */
  readonly onEchoSymmetric?: EchoSymmetricHandler
}

/** Takes a valid ECHO_SYM request (see `onEchoSymmetric`); true = answered in our next regular datagram. */
export type EchoSymmetricHandler = (
  localAddress: string,
  sourceAddress: string,
  sourcePort: number,
  msg: Buffer,
  arrivalMs: number,
) => boolean

export const defaultProbeServerConfig = (bindAddresses: ReadonlyArray<string>, allow: (a: string) => boolean) =>
  ({
    bindAddresses,
    port: 5121,
    allow,
    rateLimit: { packetsPerSecond: 1000, burstPackets: 2000 },
    rebindIntervalMillis: 5000,
    maxSessionsPerSource: 4,
    maxLossPackets: 100_000,
    sessionIdleMillis: 3000,
    statsIntervalMillis: 1000,
  }) satisfies ProbeServerConfig

interface LossSession {
  readonly address: string
  readonly port: number
  readonly sessionId: number
  readonly total: number
  readonly seen: Uint8Array
  received: number
  maxSeq: number
  reordered: number
  duplicates: number
  jitterNs: number
  lastTransitNs: number | null
  /** Arrival times on this process's monotonic clock, in ns as numbers (no bigint per packet). */
  firstArrivalNs: number
  lastArrivalNs: number
  bytes: number
  lastActivityMs: number
  final: Buffer | null
}

/** Per-socket loss sessions and the datagram handler. */
const serveOn = (socket: dgram.Socket, localAddress: string, config: ProbeServerConfig) =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const invalid = metrics.invalid.labels({ server: "echo" })
    const notAllowed = metrics.denied.labels({ server: "echo", reason: "not_allowed" })
    const rateLimited = metrics.denied.labels({ server: "echo", reason: "rate_limited" })
    const admit = makeRateLimiter(config.rateLimit)
    const sessions = new Map<string, LossSession>()
    const perSource = new Map<string, number>()

    const finalOf = (s: LossSession) =>
      encodeLossFinal({
        sessionId: s.sessionId,
        received: s.received,
        reordered: s.reordered,
        duplicates: s.duplicates,
        jitterUs: s.jitterNs / 1000,
        firstToLastArrivalNs: s.received > 0 ? BigInt(Math.round(s.lastArrivalNs - s.firstArrivalNs)) : 0n,
        receivedBytes: BigInt(s.bytes),
      })

    const open = (address: string, port: number, sessionId: number, total: number): LossSession | undefined => {
      if ((perSource.get(address) ?? 0) >= config.maxSessionsPerSource) return undefined
      perSource.set(address, (perSource.get(address) ?? 0) + 1)
      const s: LossSession = {
        address,
        port,
        sessionId,
        total,
        seen: new Uint8Array(Math.ceil(total / 8)),
        received: 0,
        maxSeq: -1,
        reordered: 0,
        duplicates: 0,
        jitterNs: 0,
        lastTransitNs: null,
        firstArrivalNs: 0,
        lastArrivalNs: 0,
        bytes: 0,
        lastActivityMs: performance.now(),
        final: null,
      }
      sessions.set(`${address}|${port}|${sessionId}`, s)
      return s
    }
    const close = (key: string, s: LossSession) => {
      sessions.delete(key)
      if (last === s) last = undefined
      const n = (perSource.get(s.address) ?? 1) - 1
      if (n <= 0) perSource.delete(s.address)
      else perSource.set(s.address, n)
    }

    const onData = (s: LossSession, msg: Buffer, seq: number, arrivalNs: number) => {
      const byte = seq >>> 3
      const bit = 1 << (seq & 7)
      if (((s.seen[byte] ?? 0) & bit) !== 0) {
        s.duplicates++
        return
      }
      s.seen[byte] = (s.seen[byte] ?? 0) | bit
      if (s.received === 0) s.firstArrivalNs = arrivalNs
      s.received++
      s.lastArrivalNs = arrivalNs
      s.bytes += msg.length
      if (seq < s.maxSeq) s.reordered++
      else s.maxSeq = seq
      const transitNs = arrivalNs - readU64Number(msg, 16)
      if (s.lastTransitNs !== null) s.jitterNs += (Math.abs(transitNs - s.lastTransitNs) - s.jitterNs) / 16
      s.lastTransitNs = transitNs
    }

    // Heartbeat to live bursts, and forget sessions idle for longer than sessionIdleMillis. A plain
    // timer that runs only while sessions exist: a node serves ~100 addresses and bursts are rare.
    let heartbeat: NodeJS.Timeout | undefined
    const beat = () => {
      const now = performance.now()
      for (const [key, s] of sessions) {
        if (now - s.lastActivityMs > config.sessionIdleMillis) close(key, s)
        else if (s.final === null) {
          socket.send(encodeLossStats({ sessionId: s.sessionId, received: s.received }), s.port, s.address)
        }
      }
      if (sessions.size === 0) {
        clearInterval(heartbeat)
        heartbeat = undefined
      }
    }
    const ensureHeartbeat = () => {
      heartbeat ??= setInterval(beat, config.statsIntervalMillis)
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(heartbeat)))

    /** The session of the previous datagram: a burst's packets arrive back to back. */
    let last: LossSession | undefined
    const sessionOf = (address: string, port: number, sessionId: number) => {
      if (last !== undefined && last.sessionId === sessionId && last.port === port && last.address === address)
        return last
      const s = sessions.get(`${address}|${port}|${sessionId}`)
      if (s !== undefined) last = s
      return s
    }

    socket.on("message", (msg, rinfo) => {
      const source = rinfo.address
      if (!config.allow(source)) return notAllowed.inc()
      if (!admit(source)) return rateLimited.inc()
      switch (classify5121(msg)) {
        case PacketType.EchoRequest:
          // Same length as the request: the server never amplifies.
          msg[3] = PacketType.EchoReply
          if (msg.length > ECHO_MIN_BYTES) msg[ECHO_MIN_BYTES] = ECHO_SYM_CAPABLE_MARK
          socket.send(msg, rinfo.port, source)
          config.onEchoRequest?.(localAddress, source)
          return
        case PacketType.EchoSym: {
          // An ACK-only datagram is a reply; it never comes to a server.
          if ((msg[20]! & EchoSymFlag.Request) === 0) return invalid.inc()
          const arrivalMs = performance.now()
          if (config.onEchoSymmetric?.(localAddress, source, rinfo.port, msg, arrivalMs) === true) return
          socket.send(echoSymToAck(msg, (performance.now() - arrivalMs) * 1000), rinfo.port, source)
          return
        }
        case PacketType.LossData: {
          const sessionId = readU32(msg, 4)
          const total = readU32(msg, 12)
          let s = sessionOf(source, rinfo.port, sessionId)
          if (s === undefined) {
            if (total > config.maxLossPackets) return invalid.inc()
            s = open(source, rinfo.port, sessionId, total)
            if (s === undefined) return rateLimited.inc()
            last = s
            ensureHeartbeat()
          }
          if (s.total !== total) return invalid.inc()
          const nowMs = performance.now()
          s.lastActivityMs = nowMs
          if (s.final === null) onData(s, msg, readU32(msg, 8), nowMs * 1e6)
          return
        }
        case PacketType.LossEnd: {
          const sessionId = readU32(msg, 4)
          // An END for an unknown session means every data packet was lost: answer received = 0.
          const s = sessionOf(source, rinfo.port, sessionId) ?? open(source, rinfo.port, sessionId, 1)
          if (s === undefined) return rateLimited.inc()
          ensureHeartbeat()
          s.lastActivityMs = performance.now()
          s.final ??= finalOf(s)
          socket.send(s.final, rinfo.port, source)
          return
        }
        default:
          // Malformed, or a reply (ECHO_REPLY, STATS, FINAL), which is never a valid request.
          return invalid.inc()
      }
    })

    return yield* Effect.never
  })

/**
 * Serves 5121 on every bind address until the scope closes; a failed bind is retried. Returns once
 * every address had its first bind attempt.
 */
export const serveProbeServer = (
  config: ProbeServerConfig,
): Effect.Effect<void, never, Scope.Scope | MeasurementMetrics> =>
  Effect.forEach(config.bindAddresses, (address) =>
    Effect.gen(function* () {
      const attempted = yield* Deferred.make<void>()
      yield* Effect.scoped(
        Effect.flatMap(
          bindUdp(address, config.port).pipe(Effect.ensuring(Deferred.succeed(attempted, undefined))),
          (socket) => serveOn(socket, address, config),
        ),
      ).pipe(
        Effect.tapError((e) => Effect.logWarning(`probe server: cannot bind ${address}:${config.port}`, e.cause)),
        Effect.retry(Schedule.spaced(Duration.millis(config.rebindIntervalMillis))),
        Effect.forkScoped,
      )
      return attempted
    }),
  ).pipe(Effect.flatMap((attempts) => Effect.forEach(attempts, Deferred.await, { discard: true })))
