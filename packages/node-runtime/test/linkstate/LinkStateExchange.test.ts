import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { LinkStateMessage, SiteId, tunnelId } from "@net-perf/engine"
import { Chunk, Effect, Queue, Schedule } from "effect"
import * as pb from "../../src/gen/netperf/linkstate/v1/linkstate.js"
import { serveGrpc } from "../../src/grpc/GrpcServer.js"
import { makeLinkStateExchange } from "../../src/linkstate/LinkStateExchange.js"
import { fromWire, toWire } from "../../src/linkstate/Wire.js"

/** The origin's tunnel to its peer (0 ↔ 1) on one family; `suspect` only when given. */
const tunnelAdvert = (origin: number, family: 4 | 6, rttMs: number, selected: boolean, suspect?: true) => {
  const remote = origin === 0 ? 1 : 0
  return {
    remote: SiteId.make(remote),
    family,
    stats: {
      tunnel: tunnelId(origin, remote, family),
      state: "up" as const,
      rttMs,
      jitterMs: 0.3,
      lossRatio: 0.01,
      availability: 1,
      lastSampleAtMillis: 999,
      lastReplyAtMillis: 990,
    },
    costMs: rttMs + 1,
    selected,
    ...(suspect === undefined ? {} : { suspect }),
  }
}

const message = (origin: number, seq: number, incarnation = 1) =>
  new LinkStateMessage({
    origin: SiteId.make(origin),
    incarnation,
    seq,
    generatedAtMillis: 1_000 + seq,
    // IPv6 flagged suspect (its latest echo lost): the flag must survive the wire, and its absence too.
    tunnels: [tunnelAdvert(origin, 4, 12.5, true), tunnelAdvert(origin, 6, 14, false, true)],
    distances: [
      { destination: SiteId.make(7), seqno: 3, distanceMs: null, nextHop: null },
      { destination: SiteId.make(8), seqno: 1, distanceMs: 20, nextHop: SiteId.make(2) },
    ],
    requests: [{ destination: SiteId.make(7), seqno: 4 }],
  })

const fastReconnect = Schedule.spaced("50 millis")

/** A node: exchange + its own gRPC server on loopback. */
const node = (self: number) =>
  Effect.gen(function* () {
    const exchange = yield* makeLinkStateExchange({ self: SiteId.make(self), reconnect: fastReconnect })
    const { port } = yield* serveGrpc({
      host: "127.0.0.1",
      port: 0,
      services: [{ definition: pb.LinkStateServiceService, implementation: exchange.handler }],
    })
    return { exchange, port, self }
  })

const takeN = <A>(q: Queue.Dequeue<A>, n: number) =>
  Effect.gen(function* () {
    const out: Array<A> = []
    while (out.length < n) out.push(...Chunk.toArray(yield* Queue.takeBetween(q, 1, n - out.length)))
    return out
  }).pipe(Effect.timeout("5 seconds"))

/** Streams `messages` to the exchange at `port` as a plain client would; the server's summary. */
const publishAll = (port: number, messages: ReadonlyArray<pb.LinkStateMessage>) =>
  Effect.acquireRelease(
    Effect.sync(() => new pb.LinkStateServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (client) => Effect.sync(() => client.close()),
  ).pipe(
    Effect.flatMap((client) =>
      Effect.async<pb.PublishSummary, grpc.ServiceError>((resume) => {
        const stream = client.publish((error, response) =>
          error === null ? resume(Effect.succeed(response)) : resume(Effect.fail(error)),
        )
        for (const m of messages) stream.write(m)
        stream.end()
      }),
    ),
  )

/** Streams raw frames (bytes the encoder would never make, too) to the exchange at `port`. */
const publishFrames = (port: number, frames: ReadonlyArray<Buffer>) =>
  Effect.acquireRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (client) => Effect.sync(() => client.close()),
  ).pipe(
    Effect.flatMap((client) =>
      Effect.async<pb.PublishSummary | undefined, grpc.ServiceError>((resume) => {
        const stream = client.makeClientStreamRequest(
          pb.LinkStateServiceService.publish.path,
          (b: Buffer) => b,
          (b: Buffer) => pb.PublishSummary.decode(b),
          (error, response) => resume(error === null ? Effect.succeed(response) : Effect.fail(error)),
        )
        for (const f of frames) stream.write(f)
        stream.end()
      }),
    ),
  )

describe("link-state wire format", () => {
  it.effect("round-trips through protobuf bytes, Infinity/no-route as absent fields", () =>
    Effect.gen(function* () {
      const original = message(0, 5)
      const bytes = pb.LinkStateMessage.encode(toWire(original)).finish()
      const back = yield* fromWire(pb.LinkStateMessage.decode(bytes))
      expect(back).toEqual(original)
    }),
  )

  it.effect("rejects a malformed message with a typed error", () =>
    Effect.gen(function* () {
      const wire = toWire(message(0, 1))
      const bad = { ...wire, tunnels: [{ ...wire.tunnels[0]!, family: 5 }] }
      const result = yield* Effect.either(fromWire(bad))
      expect(result._tag).toBe("Left")
      if (result._tag === "Left") expect(result.left._tag).toBe("LinkStateDecodeError")
    }),
  )
})

describe("LinkStateExchange over real gRPC on loopback", () => {
  it.scopedLive(
    "floods messages to every node, relaying around a missing direct stream, and drops duplicates",
    () =>
      Effect.gen(function* () {
        const [a, b, c] = yield* Effect.all([node(0), node(1), node(2)])
        const at = (n: { self: number; port: number }) => ({
          site: SiteId.make(n.self),
          host: "127.0.0.1",
          port: n.port,
        })
        // a streams only to b; b streams to c: c must still hear a (relayed by b).
        yield* a.exchange.setPeers([at(b)])
        yield* b.exchange.setPeers([at(a), at(c)])
        yield* c.exchange.setPeers([at(b)])
        yield* Effect.sleep("200 millis")
        yield* a.exchange.publish(message(0, 1))
        yield* a.exchange.publish(message(0, 1)) // duplicate: delivered once
        yield* a.exchange.publish(message(0, 2))
        const atC = yield* takeN(c.exchange.received, 2)
        expect(atC.map((m) => [m.origin, m.seq])).toEqual([
          [0, 1],
          [0, 2],
        ])
        const atB = yield* takeN(b.exchange.received, 2)
        expect(atB.map((m) => m.seq)).toEqual([1, 2])
        // an older message arriving late is not delivered again
        yield* a.exchange.publish(message(0, 1))
        yield* Effect.sleep("200 millis")
        expect(yield* Queue.size(c.exchange.received)).toBe(0)
        // b saw the repeated and the late copy and relayed neither
        expect(b.exchange.counters.duplicates).toBe(2)
      }),
    20_000,
  )

  it.scopedLive(
    "a peer that connects later catches up with the latest messages at once",
    () =>
      Effect.gen(function* () {
        const a = yield* node(0)
        yield* a.exchange.publish(message(0, 9))
        // b appears after a has published: the new stream starts with a catch-up
        const b = yield* node(1)
        yield* a.exchange.setPeers([{ site: SiteId.make(1), host: "127.0.0.1", port: b.port }])
        const got = yield* takeN(b.exchange.received, 1)
        expect(got[0]?.seq).toBe(9)
        // "connected" once b's server has answered with its headers, which may trail b's receipt
        yield* Effect.sync(() => a.exchange.peers()[0]?.connected === true).pipe(
          Effect.repeat({ until: (c) => c, schedule: Schedule.spaced("20 millis") }),
          Effect.timeout("5 seconds"),
        )
        expect(a.exchange.peers()[0]?.connected).toBe(true)
      }),
    20_000,
  )

  it.scopedLive(
    "counts and rejects a malformed message from a raw client, keeps serving",
    () =>
      Effect.gen(function* () {
        const a = yield* node(0)
        const good = toWire(message(3, 1))
        const summary = yield* publishAll(a.port, [
          { ...good, distances: [{ destination: 1, seqno: 1, distanceMs: -4 }] },
          good,
        ])
        expect(summary).toEqual({ accepted: 1, rejected: 1 })
        expect(a.exchange.counters.invalid).toBe(1)
        const got = yield* takeN(a.exchange.received, 1)
        expect(got[0]?.origin).toBe(3)
      }),
    20_000,
  )

  it.scopedLive(
    "the daemon's service definition drops stale frames from their bytes, before any protobuf decode",
    () =>
      Effect.gen(function* () {
        const exchange = yield* makeLinkStateExchange({ self: SiteId.make(0), reconnect: fastReconnect })
        const { port } = yield* serveGrpc({
          host: "127.0.0.1",
          port: 0,
          services: [{ definition: exchange.definition, implementation: exchange.handler }],
        })
        const bytesOf = (origin: number, seq: number) =>
          Buffer.from(pb.LinkStateMessage.encode(toWire(message(origin, seq))).finish())
        // Field 5 (a tunnel) whose body is not a message: the full decode throws on it.
        const corrupt = (b: Buffer) => Buffer.concat([b, Buffer.from([42, 3, 0xff, 0xff, 0xff])])
        expect(() => pb.LinkStateMessage.decode(corrupt(bytesOf(3, 5)))).toThrow()
        const summary = yield* publishFrames(port, [
          bytesOf(3, 5), // news
          corrupt(bytesOf(3, 5)), // stale by its first fields: dropped, not undecodable
          corrupt(bytesOf(0, 9)), // our own origin
          bytesOf(3, 6), // news
        ])
        expect(summary).toEqual({ accepted: 4, rejected: 0 })
        const got = yield* takeN(exchange.received, 2)
        expect(got.map((m) => m.seq)).toEqual([5, 6])
        expect(exchange.counters).toMatchObject({ duplicates: 2, invalid: 0 })
      }),
    20_000,
  )

  it.scopedLive(
    "relays a frame as the bytes it came in: once per peer, with fields this version does not know",
    () =>
      Effect.gen(function* () {
        const b = yield* makeLinkStateExchange({ self: SiteId.make(1), reconnect: fastReconnect })
        const { port: bPort } = yield* serveGrpc({
          host: "127.0.0.1",
          port: 0,
          services: [{ definition: b.definition, implementation: b.handler }],
        })
        // c: a raw server that keeps the frames b sends it.
        const atC: Array<Buffer> = []
        const { port: cPort } = yield* serveGrpc({
          host: "127.0.0.1",
          port: 0,
          services: [
            {
              definition: {
                publish: {
                  ...pb.LinkStateServiceService.publish,
                  requestDeserialize: (bytes: Buffer) => bytes,
                },
              },
              implementation: {
                publish: (call: grpc.ServerReadableStream<Buffer, pb.PublishSummary>) => {
                  call.sendMetadata(new grpc.Metadata())
                  call.on("data", (frame: Buffer) => atC.push(frame))
                },
              },
            },
          ],
        })
        yield* b.setPeers([{ site: SiteId.make(2), host: "127.0.0.1", port: cPort }])
        // Site 3's message with a field 15 (varint 7) after it: unknown to this version.
        const frame = Buffer.concat([
          Buffer.from(pb.LinkStateMessage.encode(toWire(message(3, 5))).finish()),
          Buffer.from([15 << 3, 7]),
        ])
        yield* publishFrames(bPort, [frame])
        yield* Effect.sync(() => atC.length).pipe(
          Effect.repeat({ until: (n) => n >= 1, schedule: Schedule.spaced("20 millis") }),
          Effect.timeout("5 seconds"),
        )
        expect(atC.map((f) => f.equals(frame))).toEqual([true])
        expect((yield* takeN(b.received, 1))[0]?.seq).toBe(5)
      }),
    20_000,
  )

  it.scopedLive(
    "judges staleness from the ordering fields before decoding: stale copies are duplicates, news is validated",
    () =>
      Effect.gen(function* () {
        const a = yield* node(0)
        const good = toWire(message(3, 5))
        const badBody = { distances: [{ destination: 1, seqno: 1, distanceMs: -4 }] }
        const summary = yield* publishAll(a.port, [
          good, // news: accepted
          { ...good, ...badBody }, // same seq with a bad body: stale, dropped undecoded
          { ...good, seq: 4, ...badBody }, // older: stale
          toWire(message(0, 1)), // our own origin, flooded back
          { ...good, seq: 6, ...badBody }, // newer with a bad body: decoded, invalid
          { ...good, seq: 7, incarnation: Number.NaN }, // ordering fields unusable: full decode
          { ...good, seq: 7 }, // news again
        ])
        const got = yield* takeN(a.exchange.received, 2)
        expect(got.map((m) => [m.origin, m.seq])).toEqual([
          [3, 5],
          [3, 7],
        ])
        expect(a.exchange.counters.duplicates).toBe(4)
        // NaN passes the engine's Schema.Number: that copy decodes, then is not newer (a duplicate)
        expect(a.exchange.counters.invalid).toBe(1)
        expect(summary).toEqual({ accepted: 6, rejected: 1 })
      }),
    20_000,
  )
})
