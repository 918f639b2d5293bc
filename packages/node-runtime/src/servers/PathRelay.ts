/**
 * The 5124/udp pathping relay. A PATH packet carries its whole route (site ids and, per hop, the
 * family of the tunnel to take: 4/6 = that tunnel's probe endpoint, 0 = the site's router address,
 * i.e. follow kernel routing). Each relay checks it is the node the packet is addressed to, adds its
 * own receive-to-send residence time, and forwards to the next node; the origin (first = last node)
 * hands returning packets to the waiting measurement. One datagram in, at most one of the same size
 * out, sources on the allow list only: the relay cannot amplify or reach outside the mesh.
 */
import type * as dgram from "node:dgram"
import { Deferred, Duration, Effect, Either, Option, Schedule, type Scope, SynchronizedRef } from "effect"
import type { Addressing } from "../discovery/Addressing.js"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import { makeRateLimiter, type RateLimitConfig } from "./Guard.js"
import { decodePath, encodePath, type PathPacket } from "./Packets.js"
import { bindUdp } from "./Udp.js"

export interface PathRelayConfig {
  readonly localSite: number
  readonly bindAddresses: ReadonlyArray<string>
  readonly port: number
  readonly addressing: Addressing
  readonly allow: (address: string) => boolean
  readonly rateLimit: RateLimitConfig
  readonly rebindIntervalMillis: number
}

export interface PathRelay {
  /** Sends a packet to its `hop`-th node from a bound relay socket; false if none is bound yet. */
  readonly send: (packet: Omit<PathPacket, "_tag">) => Effect.Effect<boolean>
  /** Registers the receiver of packets of `testId` that come back to this site, for the scope's life. */
  readonly receive: (
    testId: number,
    onPacket: (p: PathPacket, arrivalNs: bigint) => void,
  ) => Effect.Effect<void, never, Scope.Scope>
}

export const makePathRelay = (
  config: PathRelayConfig,
): Effect.Effect<PathRelay, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const invalid = metrics.invalid.labels({ server: "pathping" })
    const notAllowed = metrics.denied.labels({ server: "pathping", reason: "not_allowed" })
    const rateLimited = metrics.denied.labels({ server: "pathping", reason: "rate_limited" })
    const admit = makeRateLimiter(config.rateLimit)
    const receivers = new Map<number, (p: PathPacket, arrivalNs: bigint) => void>()
    const sockets = yield* SynchronizedRef.make<ReadonlyArray<dgram.Socket>>([])

    const forward = (socket: dgram.Socket, p: Omit<PathPacket, "_tag">) => {
      const site = p.path[p.hop]
      const family = p.families[p.hop]
      if (site === undefined || family === undefined) return
      socket.send(encodePath(p), config.port, config.addressing.address(site, family))
    }

    const onMessage = (socket: dgram.Socket) => (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      const arrivalNs = process.hrtime.bigint()
      if (!config.allow(rinfo.address)) return notAllowed.inc()
      if (!admit(rinfo.address)) return rateLimited.inc()
      const decoded = decodePath(msg)
      if (Either.isLeft(decoded)) return invalid.inc()
      const p = decoded.right
      if (p.path[p.hop] !== config.localSite || p.hop === 0) return invalid.inc()
      if (p.hop === p.path.length - 1) {
        receivers.get(p.testId)?.(p, arrivalNs)
        return
      }
      const residenceUs = Number(process.hrtime.bigint() - arrivalNs) / 1000
      forward(socket, { ...p, hop: p.hop + 1, residenceUs: p.residenceUs + residenceUs })
    }

    // Returns once every address had its first bind attempt, so a caller can use the relay at once.
    const firstAttempts = yield* Effect.forEach(config.bindAddresses, (address) =>
      Effect.gen(function* () {
        const attempted = yield* Deferred.make<void>()
        yield* Effect.scoped(
          Effect.gen(function* () {
            const socket = yield* bindUdp(address, config.port).pipe(
              Effect.ensuring(Deferred.succeed(attempted, undefined)),
            )
            socket.on("message", onMessage(socket))
            yield* Effect.acquireRelease(
              SynchronizedRef.update(sockets, (all) => [...all, socket]),
              () => SynchronizedRef.update(sockets, (all) => all.filter((s) => s !== socket)),
            )
            return yield* Effect.never
          }),
        ).pipe(
          Effect.tapError((e) => Effect.logWarning(`pathping relay: cannot bind ${address}:${config.port}`, e.cause)),
          Effect.retry(Schedule.spaced(Duration.millis(config.rebindIntervalMillis))),
          Effect.forkScoped,
        )
        return attempted
      }),
    )
    yield* Effect.forEach(firstAttempts, Deferred.await, { discard: true })

    return {
      send: (packet) =>
        Effect.map(SynchronizedRef.get(sockets), (all) =>
          Option.match(Option.fromNullable(all[0]), {
            onNone: () => false,
            onSome: (socket) => {
              forward(socket, packet)
              return true
            },
          }),
        ),
      receive: (testId, onPacket) =>
        Effect.acquireRelease(
          Effect.sync(() => receivers.set(testId, onPacket)),
          () => Effect.sync(() => receivers.delete(testId)),
        ).pipe(Effect.asVoid),
    }
  })
