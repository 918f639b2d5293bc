/**
 * The crossing codec (`CrossingCodec.ts`): a window's batch must come back exactly — every field,
 * bit for bit (−0, NaN, infinities), null and absent kept apart, the message the engine's class,
 * keys in the engine's order — or the two-thread report would drift from the one-thread report.
 * Two generators: one of our own that leans on the edge values, and Effect's `Arbitrary.make`
 * of the engine's schema (its own fast-check, hence `FastCheck.assert`). Anything the layout does
 * not know must throw, not vanish.
 */
import { fc, test } from "@fast-check/vitest"
import { LinkStateMessage, type TunnelAdvert } from "@net-perf/engine"
import { Arbitrary, FastCheck } from "effect"
import { describe, expect, it } from "vitest"
import { type Crossing, decodeCrossings, encodeCrossings } from "../../src/model/CrossingCodec.js"

type Message = LinkStateMessage
type Fields = ConstructorParameters<typeof LinkStateMessage>[0]

const edgy = [0, -0, 1, -1, 0.1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 31)]
const num = fc.oneof(fc.double(), fc.constantFrom(...edgy), fc.integer())
const nullable = fc.option(num, { nil: null })
const site = fc.oneof(fc.nat(300), fc.maxSafeNat())
const family = fc.constantFrom(4 as const, 6 as const)

const tunnelArb = fc
  .record({
    remote: site,
    family,
    local: site,
    statsRemote: site,
    statsFamily: family,
    state: fc.constantFrom("up" as const, "dead" as const, "unknown" as const),
    rttMs: nullable,
    jitterMs: num,
    lossRatio: num,
    availability: num,
    lastSampleAtMillis: nullable,
    lastReplyAtMillis: nullable,
    costMs: nullable,
    selected: fc.boolean(),
    // "undefined" = present and undefined, which the schema's optional allows (Effect's arbitrary makes it).
    suspect: fc.constantFrom("absent", "undefined", true, false),
  })
  // Built as NodeRouter.advertise and Aggregation.linkStats build them (key order included).
  .map(
    (t) =>
      ({
        remote: t.remote,
        family: t.family,
        stats: {
          tunnel: { local: t.local, remote: t.statsRemote, family: t.statsFamily },
          state: t.state,
          rttMs: t.rttMs,
          jitterMs: t.jitterMs,
          lossRatio: t.lossRatio,
          availability: t.availability,
          lastSampleAtMillis: t.lastSampleAtMillis,
          lastReplyAtMillis: t.lastReplyAtMillis,
        },
        costMs: t.costMs,
        selected: t.selected,
        ...(t.suspect === "absent" ? {} : { suspect: t.suspect === "undefined" ? undefined : t.suspect }),
      }) as TunnelAdvert,
  )

const distanceArb = fc
  .record({ destination: site, seqno: fc.nat(), distanceMs: nullable, nextHop: fc.option(site, { nil: null }) })
  .map((d) => ({ destination: d.destination, seqno: d.seqno, distanceMs: d.distanceMs, nextHop: d.nextHop }))

const messageArb = fc
  .record({
    origin: site,
    incarnation: num,
    seq: fc.nat(),
    generatedAtMillis: num,
    tunnels: fc.array(tunnelArb, { maxLength: 10 }),
    distances: fc.array(distanceArb, { maxLength: 40 }),
    // Mapped to plain objects: fast-check's records may have a null prototype.
    requests: fc.array(
      fc.record({ destination: site, seqno: fc.nat() }).map((r) => ({ destination: r.destination, seqno: r.seqno })),
      { maxLength: 4 },
    ),
  })
  .map((m) => new LinkStateMessage(m as unknown as Fields, true))

const int32s = fc
  .array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 12 })
  .map((xs) => Int32Array.from(xs))

const crossingOf = (message: Message) =>
  fc
    .record({
      origin: fc.integer(),
      seq: fc.nat(),
      changedHop: int32s,
      changedSeqno: int32s,
      transitChanged: fc.boolean(),
      deliveries: fc.array(fc.tuple(num, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), { maxLength: 8 }),
    })
    .map(
      (c): Crossing => ({
        origin: c.origin,
        seq: c.seq,
        message,
        changedHop: c.changedHop,
        changedSeqno: c.changedSeqno,
        transitChanged: c.transitChanged,
        atMillis: Float64Array.from(c.deliveries, ([at]) => at),
        recipients: Int32Array.from(c.deliveries, ([, r]) => r),
      }),
    )

const batchArb = fc.array(messageArb.chain(crossingOf), { maxLength: 5 })

/** Every object's keys in order, by path: `toStrictEqual` ignores key order, the engine's objects have one. */
const keyOrder = (x: unknown, path = "", out: string[] = []): string[] => {
  if (x === null || typeof x !== "object" || ArrayBuffer.isView(x)) return out
  if (Array.isArray(x)) {
    x.forEach((v, i) => {
      keyOrder(v, `${path}[${i}]`, out)
    })
  } else {
    out.push(`${path}: ${Object.keys(x).join(",")}`)
    for (const [k, v] of Object.entries(x)) keyOrder(v, `${path}.${k}`, out)
  }
  return out
}

const roundTrips = (batch: ReadonlyArray<Crossing>): void => {
  const encoded = encodeCrossings(batch)
  const back = decodeCrossings(encoded)
  // Strict: classes, absent versus undefined keys; numbers by Object.is (−0 is not 0, NaN is NaN).
  expect(back).toStrictEqual(batch)
  back.forEach((c, i) => {
    expect(c.message).toBeInstanceOf(LinkStateMessage)
    expect(c.message).not.toBe(batch[i]!.message)
  })
  expect(keyOrder(back)).toEqual(keyOrder(batch))
}

describe("crossing codec", () => {
  test.prop([batchArb])("decode(encode(batch)) is the batch: fields, classes, key order", roundTrips)

  it("decode(encode(batch)) is the batch for Effect's arbitrary messages of the engine's schema", () => {
    const crossing = FastCheck.record({
      origin: FastCheck.nat(),
      seq: FastCheck.nat(),
      message: Arbitrary.make(LinkStateMessage),
      changedHop: FastCheck.array(FastCheck.nat()).map((xs) => Int32Array.from(xs)),
      atMillis: FastCheck.array(FastCheck.double(), { maxLength: 3 }),
    }).map(
      (c): Crossing => ({
        origin: c.origin,
        seq: c.seq,
        message: c.message,
        changedHop: c.changedHop,
        changedSeqno: new Int32Array(0),
        transitChanged: c.seq % 2 === 0,
        atMillis: Float64Array.from(c.atMillis),
        recipients: Int32Array.from(c.atMillis, (_, j) => j),
      }),
    )
    FastCheck.assert(FastCheck.property(FastCheck.array(crossing, { maxLength: 4 }), roundTrips), { numRuns: 100 })
  })

  it("an empty batch, and a message with nothing in it", () => {
    roundTrips([])
    const message = new LinkStateMessage(
      { origin: 0, incarnation: -0, seq: 0, generatedAtMillis: -0, tunnels: [], distances: [], requests: [] } as never,
      true,
    )
    const none = new Int32Array(0)
    roundTrips([
      {
        origin: 0,
        seq: 0,
        message,
        changedHop: none,
        changedSeqno: none,
        transitChanged: false,
        atMillis: new Float64Array(0),
        recipients: new Int32Array(0),
      },
    ])
  })

  it("deliveries given as plain arrays (as the worker collects them) come back as typed arrays", () => {
    const message = new LinkStateMessage(
      { origin: 3, incarnation: 1, seq: 2, generatedAtMillis: 5, tunnels: [], distances: [], requests: [] } as never,
      true,
    )
    const none = new Int32Array(0)
    const [c] = decodeCrossings(
      encodeCrossings([
        {
          origin: 3,
          seq: 1,
          message,
          changedHop: none,
          changedSeqno: none,
          transitChanged: true,
          atMillis: [7.5, -0],
          recipients: [4, 9],
        },
      ]),
    )
    expect(c!.atMillis).toStrictEqual(Float64Array.of(7.5, -0))
    expect(c!.recipients).toStrictEqual(Int32Array.of(4, 9))
  })
})

describe("crossing codec refuses what its layout does not hold", () => {
  const base = (tunnel: object, distance: object = { destination: 1, seqno: 0, distanceMs: 3, nextHop: 1 }) =>
    new LinkStateMessage(
      {
        origin: 1,
        incarnation: 0,
        seq: 1,
        generatedAtMillis: 0,
        tunnels: [tunnel],
        distances: [distance],
        requests: [],
      } as never,
      true,
    )
  const tunnel = {
    remote: 2,
    family: 4,
    stats: {
      tunnel: { local: 1, remote: 2, family: 4 },
      state: "up",
      rttMs: 10,
      jitterMs: 1,
      lossRatio: 0,
      availability: 1,
      lastSampleAtMillis: 0,
      lastReplyAtMillis: 0,
    },
    costMs: 10,
    selected: true,
  }
  const none = new Int32Array(0)
  const encodeOne = (message: unknown) =>
    encodeCrossings([
      {
        origin: 1,
        seq: 0,
        message: message as Message,
        changedHop: none,
        changedSeqno: none,
        transitChanged: false,
        atMillis: [1],
        recipients: [2],
      },
    ])

  it("the well-formed message encodes (the cases below differ from it in one thing)", () => {
    expect(decodeCrossings(encodeOne(base(tunnel)))[0]!.message).toStrictEqual(base(tunnel))
  })

  it.each([
    ["a key the layout does not know", base({ ...tunnel, weight: 3 })],
    ["a missing key", base({ ...tunnel, costMs: undefined })],
    ["another tunnel state", base({ ...tunnel, stats: { ...tunnel.stats, state: "flapping" } })],
    ["a string where a number goes", base({ ...tunnel, remote: "2" })],
    ["a boolean suspect that is not one", base({ ...tunnel, suspect: 1 })],
    ["a distance with an extra key", base(tunnel, { destination: 1, seqno: 0, distanceMs: 3, nextHop: 1, via: 2 })],
    ["a plain object, not the engine's class", { ...base(tunnel) }],
  ])("throws on %s", (_, message) => {
    expect(() => encodeOne(message)).toThrow(/crossing codec/)
  })

  it("throws on a buffer that is not a whole batch", () => {
    const good = encodeOne(base(tunnel))
    expect(() => decodeCrossings(good.subarray(0, good.length - 1))).toThrow(/crossing codec/)
    expect(() => decodeCrossings(new Float64Array([1, 0]))).toThrow(/crossing codec/)
  })
})
