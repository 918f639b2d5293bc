import type * as dgram from "node:dgram"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as fc from "fast-check"
import { templateAddressing } from "../../src/discovery/Addressing.js"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { measurePath } from "../../src/probes/PathPinger.js"
import { PathPingConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { decodePath, encodePath, MAGIC } from "../../src/servers/Packets.js"
import { makePathRelay } from "../../src/servers/PathRelay.js"
import { bindUdp } from "../../src/servers/Udp.js"

const allowLoopback = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))
const family = fc.constantFrom<0 | 4 | 6>(0, 4, 6)

/** A valid packet addressed to site 2 (the relay under test) at some hop. */
const validPath = fc
  .record({
    middle: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 13 }),
    origin: fc.integer({ min: 0, max: 0xffff }),
    hop: fc.nat(),
    testId: fc.nat(),
    seq: fc.integer({ min: 0, max: 0xffff }),
    fams: fc.array(family, { minLength: 16, maxLength: 16 }),
  })
  .map(({ middle, origin, hop, testId, seq, fams }) => {
    const path = [origin, ...middle, origin]
    return {
      testId,
      seq,
      hop: 1 + (hop % (path.length - 1)),
      sentNs: 1n,
      residenceUs: 0,
      path,
      families: fams.slice(0, path.length),
    }
  })

const mutate = (f: (b: Buffer) => void) => (p: Parameters<typeof encodePath>[0]) => {
  const b = Buffer.from(encodePath(p))
  f(b)
  return b
}

/** Malformed by construction, or well-formed but not addressed to this relay (also invalid here). */
const malformedPath = fc
  .oneof(
    validPath.chain((p) => fc.integer({ min: 0, max: 23 }).map((n) => encodePath(p).subarray(0, n))),
    validPath.chain((p) =>
      fc.integer({ min: 1, max: 5 }).map((n) => encodePath(p).subarray(0, encodePath(p).length - n)),
    ),
    fc
      .tuple(
        validPath,
        fc.integer({ min: 0, max: 0xffff }).filter((m) => m !== MAGIC),
      )
      .map(([p, m]) => mutate((b) => b.writeUInt16BE(m, 0))(p)),
    fc.tuple(validPath, fc.integer({ min: 2, max: 255 })).map(([p, v]) => mutate((b) => (b[2] = v))(p)),
    fc
      .tuple(
        validPath,
        fc.integer({ min: 0, max: 255 }).filter((t) => t !== 0x10),
      )
      .map(([p, t]) => mutate((b) => (b[3] = t))(p)),
    fc
      .tuple(validPath, fc.integer({ min: 0, max: 255 }))
      .map(([p, extra]) => mutate((b) => (b[10] = p.path.length + (extra % 200)))(p)),
    fc.tuple(validPath, fc.constantFrom(0, 1, 17, 200)).map(([p, len]) => mutate((b) => (b[11] = len))(p)),
    fc
      .tuple(
        validPath,
        fc.integer({ min: 0, max: 255 }).filter((f) => f !== 0 && f !== 4 && f !== 6),
      )
      .map(([p, f]) => mutate((b) => (b[24 + 2 * p.path.length] = f))(p)),
    validPath.map((p) => encodePath({ ...p, path: [...p.path.slice(0, -1), (p.path[0]! + 1) % 0xffff] })),
    // Well-formed, but the hop it points at is not site 2.
    validPath.filter((p) => p.path[p.hop] !== 2),
    fc.uint8Array({ maxLength: 200 }).filter((b) => b.length < 2 || ((b[0]! << 8) | b[1]!) !== MAGIC),
  )
  .map((p) => (p instanceof Uint8Array ? p : encodePath(p)))

const count = (m: MeasurementMetrics) => async () =>
  ((await m.registry.getSingleMetric("netperf_server_invalid_packets_total")?.get())?.values ?? [])
    .filter((v) => v.labels.server === "pathping")
    .reduce((a, v) => a + v.value, 0)

const flood = (
  socket: dgram.Socket,
  port: number,
  address: string,
  packets: ReadonlyArray<Uint8Array>,
  counted: () => Promise<number>,
) =>
  Effect.promise(async () => {
    const base = await counted()
    for (let i = 0; i < packets.length; i += 100) {
      const batch = packets.slice(i, i + 100)
      for (const p of batch) socket.send(p, port, address)
      const start = Date.now()
      while ((await counted()) - base < i + batch.length && Date.now() - start < 2000)
        await new Promise((r) => setTimeout(r, 1))
    }
  })

describe("pathping packets", () => {
  it("decoder never throws, accepts valid packets and rejects malformed ones", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1600 }),
        (b) => Either.isLeft(decodePath(b)) || Either.isRight(decodePath(b)),
      ),
      { numRuns: 20_000 },
    )
    fc.assert(fc.property(validPath, (p) => Either.isRight(decodePath(encodePath(p)))))
    fc.assert(
      fc.property(validPath, (p) => {
        const d = Either.getOrThrow(decodePath(encodePath(p)))
        return (
          d.path.join() === p.path.join() &&
          d.families.join() === p.families.join() &&
          d.hop === p.hop &&
          d.seq === p.seq
        )
      }),
    )
  })
})

describe("pathping relay", () => {
  it.scopedLive("counts ≥ 10 000 malformed or misaddressed datagrams as invalid and keeps relaying", () =>
    Effect.gen(function* () {
      const port = 20000 + Math.floor(Math.random() * 30000)
      const addressing = templateAddressing("127.0.{site}.{role}")
      const relay = (site: number) =>
        makePathRelay({
          localSite: site,
          bindAddresses: [addressing.address(site, 4)],
          port,
          addressing,
          allow: allowLoopback,
          rateLimit: { packetsPerSecond: 1e6, burstPackets: 1e6 },
          rebindIntervalMillis: 1000,
        })
      const origin = yield* relay(1)
      yield* relay(2)
      const metrics = yield* MeasurementMetrics
      const config = Schema.decodeSync(PathPingConfig)({ port, count: 3, intervalMillis: 20, timeoutMillis: 300 })
      expect((yield* measurePath(origin, 1, [1, 2, 1], [0, 4, 4], config)).sample.received).toBe(3)
      const client = yield* bindUdp("127.0.0.1", 0)
      const packets = fc.sample(malformedPath, 10_000)
      const counted = count(metrics)
      yield* flood(client, port, "127.0.2.4", packets, counted)
      expect(yield* Effect.promise(counted)).toBe(10_000)
      expect((yield* measurePath(origin, 1, [1, 2, 1], [0, 4, 4], config)).sample.received).toBe(3)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )
})
