/**
 * Link-state exchange between daemons over gRPC: the embedded default, no database needed.
 *
 * Every daemon keeps one client stream open to each peer (`LinkStateService.Publish`) and
 * writes its own messages and every newer message it hears from others into them (flooding,
 * de-duplicated by origin and (incarnation, seq)), so a site still hears an origin whose
 * direct tunnel is down. A (re)connected stream first gets the latest message of every known
 * origin, so a restarted peer catches up at once instead of waiting for the next period.
 *
 * Decision a reader must know: this module only moves messages. Staleness and age-out are the
 * engine's job (`LinkStateStore`): a peer that stops talking simply stops producing messages.
 */
import * as grpc from "@grpc/grpc-js"
import type { LinkStateMessage, SiteId } from "@net-perf/engine"
import { Data, Effect, Either, FiberMap, Queue, Schedule, type Scope } from "effect"
import * as pb from "../gen/netperf/linkstate/v1/linkstate.js"
import { hostPort, keepaliveOptions } from "../grpc/GrpcServer.js"
import { fromWireEither, type Ordering, peekOrdering, toWire } from "./Wire.js"

export class PeerStreamError extends Data.TaggedError("PeerStreamError")<{
  readonly peer: SiteId
  readonly address: string
  readonly cause: unknown
}> {}

export interface PeerEndpoint {
  readonly site: SiteId
  /** Overlay address of the peer's daemon (default 10.201.Y.1). */
  readonly host: string
  readonly port: number
}

export interface PeerLinkStatus {
  readonly site: SiteId
  readonly address: string
  readonly connected: boolean
  readonly connectedAtMillis: number | null
  readonly failures: number
  readonly sent: number
}

export interface ExchangeCounters {
  accepted: number
  duplicates: number
  invalid: number
  relayed: number
  dropped: number
}

export interface LinkStateExchangeOptions {
  readonly self: SiteId
  readonly credentials?: grpc.ChannelCredentials
  /** Backoff between reconnect attempts to one peer. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown>
  readonly now?: () => number
  readonly onInvalid?: (peer: string, error: unknown) => void
  /** A received frame that is not a protobuf LinkStateMessage at all (the call is then ended with INTERNAL). */
  readonly onUndecodable?: (peer: string, error: unknown) => void
  /**
   * Our stream to a peer opened (the peer's server answered) or was lost after having been open:
   * once per change, not per reconnect attempt.
   */
  readonly onPeerStream?: (peer: SiteId, state: "open" | "lost", cause?: unknown) => void
}

export interface LinkStateExchange {
  /** gRPC handler to register on the daemon's server. */
  readonly handler: pb.LinkStateServiceServer
  /** The service definition to register it with (counts frames that do not decode; see onUndecodable). */
  readonly definition: grpc.ServiceDefinition
  /** Newer messages from other origins, in arrival order. */
  readonly received: Queue.Dequeue<LinkStateMessage>
  /** Sends our own message to every peer. */
  readonly publish: (message: LinkStateMessage) => Effect.Effect<void>
  /** Replaces the set of peers we stream to (connections are opened/closed accordingly). */
  readonly setPeers: (peers: ReadonlyArray<PeerEndpoint>) => Effect.Effect<void>
  readonly peers: () => ReadonlyArray<PeerLinkStatus>
  readonly counters: Readonly<ExchangeCounters>
}

interface PeerConnection {
  endpoint: PeerEndpoint
  stream: grpc.ClientWritableStream<Uint8Array> | undefined
  connectedAtMillis: number | null
  /** The peer's server answered (sent its headers) on the current stream. */
  open: boolean
  failures: number
  sent: number
}

const senderKey = "x-netperf-site"

const defaultReconnect = Schedule.exponential("200 millis", 2).pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered,
)

/**
 * What the server's deserializer hands the handler for a frame whose ordering fields already show
 * it stale (staleness only grows: `order` moves forward, so it is still stale when handled).
 */
const staleFrame: pb.LinkStateMessage = Object.freeze(pb.LinkStateMessage.fromPartial({}))

const publishMethod = pb.LinkStateServiceService.publish
const passBytes = (frame: Uint8Array): Buffer => Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)

const newer = (a: { incarnation: number; seq: number }, b: { incarnation: number; seq: number } | undefined) =>
  b === undefined || a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.seq > b.seq)

export const makeLinkStateExchange = (
  options: LinkStateExchangeOptions,
): Effect.Effect<LinkStateExchange, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = options.now ?? Date.now
    const received = yield* Queue.sliding<LinkStateMessage>(10_000)
    yield* Effect.addFinalizer(() => Queue.shutdown(received))
    const counters: ExchangeCounters = { accepted: 0, duplicates: 0, invalid: 0, relayed: 0, dropped: 0 }
    /**
     * Latest frame per origin (ours included), for catch-up and relaying, as bytes: a message goes
     * to every peer but its sender, and grpc-js would encode it once per write (≈ 40 µs for a
     * 50-site message, ≈ 200 µs for a 200-site one); a relayed frame is sent as it came
     * (`frameBytes`), ours encoded once.
     */
    const latest = new Map<number, Uint8Array>()
    /** The bytes each decoded frame came in, kept by the server's deserializer for relaying. */
    const frameBytes = new WeakMap<pb.LinkStateMessage, Uint8Array>()
    const encode = (wire: pb.LinkStateMessage): Uint8Array => pb.LinkStateMessage.encode(wire).finish()
    const order = new Map<number, { incarnation: number; seq: number }>()
    const connections = new Map<number, PeerConnection>()
    const fibers = yield* FiberMap.make<number>()
    const credentials = options.credentials ?? grpc.credentials.createInsecure()

    const write = (conn: PeerConnection, frame: Uint8Array): void => {
      const stream = conn.stream
      if (stream === undefined) {
        counters.dropped++
        return
      }
      // grpc-js buffers when the channel is not ready; link state is periodic, so a full
      // buffer means the peer is unreachable and the message may be dropped.
      if (stream.writableLength > 256 * 1024) {
        counters.dropped++
        return
      }
      stream.write(frame)
      conn.sent++
    }

    const flood = (frame: Uint8Array, except: ReadonlySet<number>): void => {
      for (const [site, conn] of connections) if (!except.has(site)) write(conn, frame)
    }

    /**
     * A message that cannot be news, judged from its three ordering fields alone: flooding brings
     * every origin's message once per neighbour, so all copies but the first are stale, and
     * validating their whole body (the Schema walk is most of a message's receive cost) bought
     * nothing. Only well-formed ordering fields qualify; anything else takes the full decode, so a
     * malformed message is still counted invalid — except a stale one with a bad body, dropped
     * here as a duplicate (it would have been dropped either way).
     */
    const staleOnArrival = (wire: Ordering): boolean => {
      if (!Number.isFinite(wire.incarnation) || !Number.isSafeInteger(wire.seq) || wire.seq < 0) return false
      if (wire.origin === options.self) return true
      const known = order.get(wire.origin)
      return known !== undefined && !newer(wire, known)
    }

    /** Decodes (synchronously) and relays one message; false when it was invalid. */
    const onIncoming = (wire: pb.LinkStateMessage, sender: number | undefined, peerLabel: string): boolean => {
      if (wire === staleFrame || staleOnArrival(wire)) {
        counters.duplicates++
        return true
      }
      return Either.match(fromWireEither(wire), {
        onLeft: (error) => {
          counters.invalid++
          options.onInvalid?.(peerLabel, error)
          return false
        },
        onRight: (message) => {
          if (message.origin === options.self || !newer(message, order.get(message.origin))) {
            counters.duplicates++
            return true
          }
          order.set(message.origin, { incarnation: message.incarnation, seq: message.seq })
          const frame = frameBytes.get(wire) ?? encode(wire)
          latest.set(message.origin, frame)
          counters.accepted++
          Queue.unsafeOffer(received, message)
          const except = new Set<number>([message.origin])
          if (sender !== undefined) except.add(sender)
          counters.relayed++
          flood(frame, except)
          return true
        },
      })
    }

    const handler: pb.LinkStateServiceServer = {
      publish: (call, callback) => {
        const raw = call.metadata.get(senderKey)[0]
        const sender = raw === undefined ? undefined : Number(raw)
        const label = `${call.getPeer()}${sender === undefined ? "" : ` (site ${sender})`}`
        let accepted = 0
        let rejected = 0
        // Headers at once: the client learns the stream is really open (not just queued).
        call.sendMetadata(new grpc.Metadata())
        call.on("data", (wire: pb.LinkStateMessage) => {
          if (onIncoming(wire, Number.isInteger(sender) ? sender : undefined, label)) accepted++
          else rejected++
        })
        call.on("end", () => callback(null, { accepted, rejected }))
        call.on("error", () => undefined)
      },
    }

    const runPeer = (conn: PeerConnection): Effect.Effect<void> => {
      const address = hostPort(conn.endpoint.host, conn.endpoint.port)
      const client = new grpc.Client(address, credentials, keepaliveOptions)
      const once = Effect.async<never, PeerStreamError>((resume) => {
        const metadata = new grpc.Metadata()
        metadata.set(senderKey, String(options.self))
        // Frames are written as bytes (see `latest`); the summary is decoded as the generated client does.
        const stream = client.makeClientStreamRequest(
          publishMethod.path,
          passBytes,
          publishMethod.responseDeserialize,
          metadata,
          (error) => {
            conn.stream = undefined
            conn.connectedAtMillis = null
            conn.failures++
            if (conn.open) {
              conn.open = false
              options.onPeerStream?.(conn.endpoint.site, "lost", error ?? "stream ended")
            }
            resume(
              Effect.fail(new PeerStreamError({ peer: conn.endpoint.site, address, cause: error ?? "stream ended" })),
            )
          },
        )
        stream.on("error", () => undefined)
        stream.on("metadata", () => {
          if (conn.open || conn.stream !== stream) return
          conn.open = true
          conn.connectedAtMillis = now()
          options.onPeerStream?.(conn.endpoint.site, "open")
        })
        conn.stream = stream
        for (const frame of latest.values()) write(conn, frame)
        return Effect.sync(() => {
          conn.stream = undefined
          conn.connectedAtMillis = null
          conn.open = false
          stream.end()
        })
      })
      return once.pipe(
        Effect.retry(options.reconnect ?? defaultReconnect),
        Effect.catchAll(() => Effect.void),
        Effect.ensuring(Effect.sync(() => client.close())),
      )
    }

    const setPeers = (peers: ReadonlyArray<PeerEndpoint>) =>
      Effect.gen(function* () {
        const wanted = new Map(peers.filter((p) => p.site !== options.self).map((p) => [p.site as number, p]))
        for (const [site, conn] of connections) {
          const want = wanted.get(site)
          if (want === undefined || want.host !== conn.endpoint.host || want.port !== conn.endpoint.port) {
            connections.delete(site)
            yield* FiberMap.remove(fibers, site)
          }
        }
        for (const [site, endpoint] of wanted) {
          if (connections.has(site)) continue
          const conn: PeerConnection = {
            endpoint,
            stream: undefined,
            connectedAtMillis: null,
            open: false,
            failures: 0,
            sent: 0,
          }
          connections.set(site, conn)
          yield* FiberMap.run(fibers, site, runPeer(conn))
        }
      })

    const publish = (message: LinkStateMessage) =>
      Effect.sync(() => {
        const frame = encode(toWire(message))
        order.set(message.origin, { incarnation: message.incarnation, seq: message.seq })
        latest.set(message.origin, frame)
        flood(frame, new Set())
      })

    const peers = (): ReadonlyArray<PeerLinkStatus> =>
      [...connections.values()]
        .map((c) => ({
          site: c.endpoint.site,
          address: hostPort(c.endpoint.host, c.endpoint.port),
          connected: c.stream !== undefined && c.open,
          connectedAtMillis: c.connectedAtMillis,
          failures: c.failures,
          sent: c.sent,
        }))
        .sort((a, b) => a.site - b.site)

    // A frame that is not protobuf never reaches the handler: grpc-js ends the call with INTERNAL.
    // Wrapping the deserializer is the one place it can be counted and named.
    const definition: grpc.ServiceDefinition = {
      ...pb.LinkStateServiceService,
      publish: {
        ...publishMethod,
        requestDeserialize: (bytes: Buffer) => {
          // Stale copies are known from their first fields: no protobuf decode of the body.
          const ordering = peekOrdering(bytes)
          if (ordering !== undefined && staleOnArrival(ordering)) return staleFrame
          try {
            const wire = publishMethod.requestDeserialize(bytes)
            frameBytes.set(wire, bytes)
            return wire
          } catch (error) {
            counters.invalid++
            options.onUndecodable?.(`${bytes.length}-byte frame`, error)
            throw error
          }
        },
      },
    }

    return { handler, definition, received, publish, setPeers, peers, counters } satisfies LinkStateExchange
  })
