import type * as dgram from "node:dgram"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either } from "effect"
import * as fc from "fast-check"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import {
  classify5121,
  decode5121,
  ECHO_SYM_BYTES,
  EchoSymFlag,
  echoSymToAck,
  encodeEcho,
  encodeEchoRequest,
  encodeEchoSym,
  encodeLossData,
  encodeLossEnd,
  encodeLossFinal,
  encodeLossStats,
  MAGIC,
  PacketType,
  readU32,
  readU64Number,
} from "../../src/servers/Packets.js"
import { defaultProbeServerConfig, serveProbeServer } from "../../src/servers/ProbeServer.js"
import { bindUdp } from "../../src/servers/Udp.js"

const testPort = () => 20000 + Math.floor(Math.random() * 30000)
const allowLoopback = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))

/** A valid ECHO_SYM datagram: a request (immediate or not), with or without an ack. */
const validSym = fc
  .record({
    flags: fc.constantFrom(1, 3, 5, 7),
    s: fc.nat(),
    q: fc.nat(),
    t: fc.double({ min: 0, max: 9e9, noNaN: true }),
    as: fc.nat(),
    aq: fc.nat(),
    ah: fc.nat(),
    al: fc.nat(),
    r: fc.nat(),
  })
  .map(({ flags, s, q, t, as, aq, ah, al, r }) => encodeEchoSym(flags, s, q, t, as, aq, ah, al, r))

/** A valid 5121 packet of any type. */
const validPacket = fc.oneof(
  validSym,
  fc
    .record({
      s: fc.nat(),
      q: fc.nat(),
      t: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      n: fc.integer({ min: 20, max: 200 }),
    })
    .map(({ s, q, t, n }) =>
      encodeEcho({ _tag: "EchoRequest", sessionId: s >>> 0, seq: q >>> 0, sentNs: t, lengthBytes: n }),
    ),
  fc
    .record({ s: fc.nat(), total: fc.integer({ min: 1, max: 5000 }), n: fc.integer({ min: 24, max: 600 }) })
    .map(({ s, total, n }) => encodeLossData({ sessionId: s, seq: total - 1, total, sentNs: 1n, lengthBytes: n })),
  fc.nat().map((s) => encodeLossEnd({ sessionId: s, sent: 10 })),
)

/**
 * Malformed by construction: truncated below a type's minimum, wrong magic, version or type,
 * a reply type sent to the server, seq ≥ total, oversize, or random bytes with a bad magic.
 */
const malformed = fc.oneof(
  validPacket.chain((p) => fc.integer({ min: 0, max: 7 }).map((n) => p.subarray(0, n))),
  fc
    .tuple(
      validPacket,
      fc.integer({ min: 0, max: 0xffff }).filter((m) => m !== MAGIC),
    )
    .map(([p, m]) => {
      const b = Buffer.from(p)
      b.writeUInt16BE(m, 0)
      return b
    }),
  fc
    .tuple(
      validPacket,
      fc.integer({ min: 0, max: 255 }).filter((v) => v !== 1),
    )
    .map(([p, v]) => {
      const b = Buffer.from(p)
      b[2] = v
      return b
    }),
  fc.tuple(validPacket, fc.integer({ min: 8, max: 255 })).map(([p, t]) => {
    const b = Buffer.from(p)
    b[3] = t
    return b
  }),
  fc
    .record({ s: fc.nat(), total: fc.integer({ min: 1, max: 1000 }), extra: fc.nat(1000) })
    .map(({ s, total, extra }) => {
      const b = encodeLossData({ sessionId: s, seq: 0, total, sentNs: 1n, lengthBytes: 24 })
      b.writeUInt32BE(total + extra, 8)
      return b
    }),
  fc.record({ s: fc.nat(), extra: fc.integer({ min: 1, max: 30 }) }).map(({ s, extra }) => {
    const b = Buffer.concat([encodeLossEnd({ sessionId: s, sent: 1 }), Buffer.alloc(extra)])
    return b
  }),
  fc
    .integer({ min: 1473, max: 2000 })
    .map((n) => encodeEcho({ _tag: "EchoRequest", sessionId: 1, seq: 1, sentNs: 1n, lengthBytes: n })),
  fc.uint8Array({ minLength: 0, maxLength: 1472 }).filter((b) => b.length < 2 || ((b[0]! << 8) | b[1]!) !== MAGIC),
  // ECHO_SYM: truncated below 44 B, unknown or contradictory flags (none, IMMEDIATE without
  // REQUEST, bits above 4), non-zero reserved bytes; an ACK-only datagram (a reply) counts here too.
  fc.tuple(validSym, fc.integer({ min: 8, max: ECHO_SYM_BYTES - 1 })).map(([p, n]) => p.subarray(0, n)),
  fc
    .tuple(
      validSym,
      fc.integer({ min: 0, max: 255 }).filter((f) => (f & ~7) !== 0 || (f & 5) === 0 || (f & 3) === 2),
    )
    .map(([p, f]) => {
      const b = Buffer.from(p)
      b[20] = f
      return b
    }),
  fc.tuple(validSym, fc.integer({ min: 21, max: 23 }), fc.integer({ min: 1, max: 255 })).map(([p, i, x]) => {
    const b = Buffer.from(p)
    b[i] = x
    return b
  }),
)

/** Sends in batches, each once the server has counted the previous one: no datagram is lost to a full buffer. */
/** Well-formed replies, which are never valid as requests to the server. */
const replies = fc.oneof(
  fc.tuple(fc.nat(), fc.nat()).map(([s, r]) => encodeLossStats({ sessionId: s, received: r })),
  fc.nat().map((s) =>
    encodeLossFinal({
      sessionId: s,
      received: 1,
      reordered: 0,
      duplicates: 0,
      jitterUs: 0,
      firstToLastArrivalNs: 0n,
      receivedBytes: 0n,
    }),
  ),
  fc.nat().map((s) => encodeEcho({ _tag: "EchoReply", sessionId: s, seq: 1, sentNs: 1n })),
  fc.tuple(fc.nat(), fc.nat()).map(([s, q]) => encodeEchoSym(EchoSymFlag.Ack, 0, 0, 0, s, q, 0, 1, 5)),
)
const notARequest = fc.oneof({ arbitrary: malformed, weight: 9 }, { arbitrary: replies, weight: 1 })

const sendAll = (
  socket: dgram.Socket,
  port: number,
  packets: ReadonlyArray<Uint8Array>,
  counted: () => Promise<number>,
) =>
  Effect.promise(async () => {
    const base = await counted()
    for (let i = 0; i < packets.length; i += 100) {
      const batch = packets.slice(i, i + 100)
      for (const p of batch) socket.send(p, port, "127.0.0.1")
      const start = Date.now()
      while ((await counted()) - base < i + batch.length && Date.now() - start < 2000) {
        await new Promise((r) => setTimeout(r, 1))
      }
    }
  })

const waitFor = <A>(read: () => Promise<A> | A, done: (a: A) => boolean, timeoutMillis = 10_000) =>
  Effect.promise(async () => {
    const start = Date.now()
    for (;;) {
      const a = await read()
      if (done(a) || Date.now() - start > timeoutMillis) return a
      await new Promise((r) => setTimeout(r, 20))
    }
  })

const counterValue = async (metrics: MeasurementMetrics, name: string, labels: Record<string, string>) => {
  const m = (await metrics.registry.getSingleMetric(name)?.get()) ?? { values: [] }
  return m.values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0)
}

const echoOnce = (client: dgram.Socket, port: number, seq: number) =>
  Effect.async<boolean>((resume) => {
    const onMsg = (msg: Buffer) => {
      const d = decode5121(msg)
      if (Either.isRight(d) && d.right._tag === "EchoReply" && d.right.seq === seq) {
        client.off("message", onMsg)
        clearTimeout(t)
        resume(Effect.succeed(true))
      }
    }
    client.on("message", onMsg)
    const t = setTimeout(() => {
      client.off("message", onMsg)
      resume(Effect.succeed(false))
    }, 300)
    client.send(encodeEcho({ _tag: "EchoRequest", sessionId: 7, seq, sentNs: 1n }), port, "127.0.0.1")
  })

const waitUntilServing = (client: dgram.Socket, port: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < 50; i++) if (yield* echoOnce(client, port, 1_000_000 + i)) return
    throw new Error("probe server never answered")
  })

describe("5121 packets", () => {
  it("decoder never throws and round-trips every valid packet", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1600 }), (bytes) => {
        decode5121(bytes)
      }),
      { numRuns: 20_000 },
    )
    fc.assert(fc.property(validPacket, (p) => Either.isRight(decode5121(p))))
  })

  it("classify5121 (the allocation-free hot path) agrees with decode5121 on any bytes", () => {
    const typeOf = (b: Uint8Array) => {
      const d = decode5121(b)
      return Either.isLeft(d) ? 0 : PacketType[d.right._tag]
    }
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 1600 }),
      validPacket,
      malformed,
      replies,
      // Valid header, random body: the type-specific length and seq/total checks decide.
      fc
        .tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ minLength: 0, maxLength: 60 }))
        .map(([t, body]) => Buffer.concat([Buffer.from([0x4e, 0x50, 1, t]), Buffer.from(body)])),
    )
    fc.assert(
      fc.property(anyBytes, (b) => classify5121(b) === typeOf(b)),
      { numRuns: 20_000 },
    )
  })

  it("encodeEchoRequest writes what decode5121 reads, with the ms timestamp as ns", () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.nat(),
        fc.double({ min: 0, max: 9e9, noNaN: true }),
        fc.integer({ min: 0, max: 1472 }),
        (sessionId, seq, sentMs, length) => {
          const b = encodeEchoRequest(sessionId, seq, sentMs, length)
          const d = Either.getOrThrow(decode5121(b))
          const sentNs = Math.round(sentMs * 1e6)
          return (
            d._tag === "EchoRequest" &&
            d.sessionId === sessionId >>> 0 &&
            d.seq === seq >>> 0 &&
            d.sentNs === BigInt(sentNs) &&
            readU64Number(b, 12) === sentNs &&
            b.length === Math.max(20, length) &&
            b.subarray(20).every((x) => x === 0)
          )
        },
      ),
    )
  })

  it("encodeEchoSym writes what decode5121 reads; the in-place ack echoes the request", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 3, 4, 5, 7),
        fc.tuple(fc.nat(), fc.nat(), fc.double({ min: 0, max: 9e9, noNaN: true })),
        fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat({ max: 0xffffffff })),
        (flags, [s, q, t], [as, aq, ah, al, r]) => {
          const b = encodeEchoSym(flags, s, q, t, as, aq, ah, al, r)
          const d = Either.getOrThrow(decode5121(b))
          if (d._tag !== "EchoSym" || d.flags !== flags || b.length !== ECHO_SYM_BYTES) return false
          const request = (flags & EchoSymFlag.Request) !== 0
          const ack = (flags & EchoSymFlag.Ack) !== 0
          const okRequest =
            !request || (d.sessionId === s >>> 0 && d.seq === q >>> 0 && readU64Number(b, 12) === Math.round(t * 1e6))
          const okAck =
            !ack ||
            (d.ackSessionId === as >>> 0 &&
              d.ackSeq === aq >>> 0 &&
              d.ackSentNs === (BigInt(ah >>> 0) << 32n) + BigInt(al >>> 0) &&
              d.residenceUs === r)
          if (!request) return okRequest && okAck
          const reply = Either.getOrThrow(decode5121(echoSymToAck(Buffer.from(b), 42)))
          return (
            okRequest &&
            okAck &&
            reply._tag === "EchoSym" &&
            reply.flags === EchoSymFlag.Ack &&
            reply.ackSessionId === d.sessionId &&
            reply.ackSeq === d.seq &&
            reply.ackSentNs === d.sentNs &&
            reply.residenceUs === 42
          )
        },
      ),
      { numRuns: 5000 },
    )
  })

  it("rejects every constructed malformed packet", () => {
    fc.assert(
      fc.property(malformed, (p) => Either.isLeft(decode5121(p))),
      { numRuns: 5000 },
    )
  })
})

describe("5121 probe server", () => {
  it.scopedLive("tells the echo scheduler which address each answered request reached, and from whom", () =>
    Effect.gen(function* () {
      const port = testPort()
      const seen: Array<string> = []
      yield* serveProbeServer({
        ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback),
        port,
        onEchoRequest: (local, source) => seen.push(`${local}<-${source}`),
      })
      const client = yield* bindUdp("127.0.0.3", 0)
      yield* waitUntilServing(client, port)
      const before = seen.length
      expect(yield* echoOnce(client, port, 5)).toBe(true)
      expect(seen.length).toBe(before + 1)
      expect(seen.at(-1)).toBe("127.0.0.1<-127.0.0.3")
      // Garbage is not a peer's request.
      client.send(Buffer.from([0x4e, 0x50, 1, 1, 0, 0]), port, "127.0.0.1")
      yield* Effect.sleep(Duration.millis(100))
      expect(seen.length).toBe(before + 1)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )

  it.scopedLive(
    "answers ECHO_SYM at once when no local prober takes it, and marks v1 replies it could answer in ECHO_SYM",
    () =>
      Effect.gen(function* () {
        const port = testPort()
        const held: Array<string> = []
        yield* serveProbeServer({
          ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback),
          port,
          // Takes (holds) requests from 127.0.0.4 only, as a local prober of that tunnel would.
          onEchoSymmetric: (_local, source, _port, msg) => {
            held.push(`${source}:${readU32(msg, 8)}`)
            return source === "127.0.0.4"
          },
        })
        const client = yield* bindUdp("127.0.0.3", 0)
        yield* waitUntilServing(client, port)
        const got: Array<Buffer> = []
        client.on("message", (m) => got.push(Buffer.from(m)))
        client.send(encodeEchoSym(EchoSymFlag.Request, 11, 77, 1234.5, 0, 0, 0, 0, 0), port, "127.0.0.1")
        client.send(encodeEchoRequest(11, 78, 1, 24), port, "127.0.0.1")
        const holder = yield* bindUdp("127.0.0.4", 0)
        const heldReplies: Array<Buffer> = []
        holder.on("message", (m) => heldReplies.push(Buffer.from(m)))
        holder.send(encodeEchoSym(EchoSymFlag.Request, 12, 5, 1, 0, 0, 0, 0, 0), port, "127.0.0.1")
        yield* waitFor(
          () => got.length,
          (n) => n >= 2,
        )
        const ack = got.find((m) => m[3] === PacketType.EchoSym)!
        const d = Either.getOrThrow(decode5121(ack))
        expect(d._tag).toBe("EchoSym")
        if (d._tag !== "EchoSym") return
        expect(ack.length).toBe(ECHO_SYM_BYTES)
        expect(d.flags).toBe(EchoSymFlag.Ack)
        expect([d.ackSessionId, d.ackSeq, d.ackSentNs]).toEqual([11, 77, 1234500000n])
        expect(d.residenceUs).toBeLessThan(100_000)
        const v1 = got.find((m) => m[3] === PacketType.EchoReply)!
        expect([v1.length, v1[20]]).toEqual([24, 2])
        yield* Effect.sleep(Duration.millis(100))
        expect(heldReplies).toEqual([])
        expect(held).toEqual(["127.0.0.3:77", "127.0.0.4:5"])
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )

  it.scopedLive("counts ≥ 10 000 malformed datagrams as invalid and keeps answering", () =>
    Effect.gen(function* () {
      const port = testPort()
      const config = {
        ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback),
        port,
        rateLimit: { packetsPerSecond: 1e6, burstPackets: 1e6 },
      }
      yield* serveProbeServer(config)
      const metrics = yield* MeasurementMetrics
      const client = yield* bindUdp("127.0.0.1", 0)
      yield* waitUntilServing(client, port)
      const packets = fc.sample(notARequest, 10_000)
      const counted = () => counterValue(metrics, "netperf_server_invalid_packets_total", { server: "echo" })
      yield* sendAll(client, port, packets, counted)
      const invalid = yield* waitFor(counted, (n) => n >= packets.length)
      expect(invalid).toBe(packets.length)
      expect(yield* echoOnce(client, port, 42)).toBe(true)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )

  it.scopedLive("answers only allowed sources and rate-limits each source", () =>
    Effect.gen(function* () {
      const port = testPort()
      const onlyOther = Either.getOrThrow(makeAllowList(["127.0.0.2/32"]))
      const denyPort = testPort()
      yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], onlyOther), port: denyPort })
      yield* serveProbeServer({
        ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback),
        port,
        rateLimit: { packetsPerSecond: 1, burstPackets: 5 },
      })
      const metrics = yield* MeasurementMetrics
      const client = yield* bindUdp("127.0.0.1", 0)
      yield* Effect.sleep(Duration.millis(100))
      expect(yield* echoOnce(client, denyPort, 1)).toBe(false)
      expect(
        yield* Effect.promise(() =>
          counterValue(metrics, "netperf_server_denied_packets_total", { reason: "not_allowed" }),
        ),
      ).toBeGreaterThan(0)
      let answered = 0
      for (let i = 0; i < 10; i++) if (yield* echoOnce(client, port, i)) answered++
      expect(answered).toBeLessThanOrEqual(6)
      expect(answered).toBeGreaterThanOrEqual(4)
      expect(
        yield* Effect.promise(() =>
          counterValue(metrics, "netperf_server_denied_packets_total", { reason: "rate_limited" }),
        ),
      ).toBeGreaterThan(0)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )
})
