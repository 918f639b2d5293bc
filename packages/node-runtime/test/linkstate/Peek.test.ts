/**
 * `peekOrdering` reads a link-state message's ordering fields from its protobuf bytes without
 * decoding it; the exchange drops stale copies on that reading alone. Checked against the
 * generated decoder: on valid encodings (with unknown fields of every wire type and repeated
 * ordering fields, where the last one wins) it reads exactly what `decode` reads; on mutated and
 * random bytes, whenever `decode` accepts them and they are well-formed (`wellFormed`), the same.
 */
import { BinaryWriter } from "@bufbuild/protobuf/wire"
import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import * as pb from "../../src/gen/netperf/linkstate/v1/linkstate.js"
import { type Ordering, peekOrdering } from "../../src/linkstate/Wire.js"

const u32 = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff), fc.nat({ max: 0xffffffff }))
const anyDouble = fc.oneof(fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, 1.7e12), fc.double())

const messageArb: fc.Arbitrary<pb.LinkStateMessage> = fc
  .record({
    origin: u32,
    incarnation: anyDouble,
    seq: u32,
    generatedAtMillis: anyDouble,
    tunnels: fc.array(
      fc.record({ remote: u32, family: u32, rttMs: fc.option(anyDouble, { nil: undefined }), selected: fc.boolean() }),
      { maxLength: 6 },
    ),
    distances: fc.array(
      fc.record({ destination: u32, seqno: u32, distanceMs: fc.option(anyDouble, { nil: undefined }) }),
      { maxLength: 8 },
    ),
    requests: fc.array(fc.record({ destination: u32, seqno: u32 }), { maxLength: 3 }),
  })
  .map((m) =>
    pb.LinkStateMessage.fromPartial({
      ...m,
      tunnels: m.tunnels.map((t) => ({
        remote: t.remote,
        family: t.family,
        selected: t.selected,
        stats: {
          state: "up",
          jitterMs: 0.5,
          lossRatio: 0,
          availability: 1,
          ...(t.rttMs === undefined ? {} : { rttMs: t.rttMs }),
        },
      })),
    }),
  )

/** A top-level field the message does not define (or an ordering field again), of any wire type. */
const extraFieldArb = fc.oneof(
  fc.record({ field: fc.integer({ min: 1, max: 40 }), kind: fc.constant("varint" as const), value: u32 }),
  fc.record({ field: fc.integer({ min: 1, max: 40 }), kind: fc.constant("fixed64" as const), value: anyDouble }),
  fc.record({ field: fc.integer({ min: 1, max: 40 }), kind: fc.constant("fixed32" as const), value: u32 }),
  fc.record({
    // not 5–7: those hold nested messages, which random bytes would not be
    field: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 8, max: 40 })),
    kind: fc.constant("bytes" as const),
    value: fc.uint8Array({ maxLength: 40 }),
  }),
)
type ExtraField = typeof extraFieldArb extends fc.Arbitrary<infer A> ? A : never

/** The message, with extra fields before and after it (protobuf merges concatenated encodings). */
const encode = (m: pb.LinkStateMessage, before: ReadonlyArray<ExtraField>, after: ReadonlyArray<ExtraField>) => {
  const w = new BinaryWriter()
  const put = (f: ExtraField) => {
    if (f.kind === "varint") w.uint32((f.field << 3) | 0).uint32(f.value)
    else if (f.kind === "fixed64") w.uint32((f.field << 3) | 1).double(f.value)
    else if (f.kind === "fixed32") w.uint32((f.field << 3) | 5).fixed32(f.value)
    else w.uint32((f.field << 3) | 2).bytes(f.value)
  }
  for (const f of before) put(f)
  pb.LinkStateMessage.encode(m, w)
  for (const f of after) put(f)
  return w.finish()
}

const orderingOf = (m: pb.LinkStateMessage): Ordering => ({ origin: m.origin, incarnation: m.incarnation, seq: m.seq })
/** Equal with NaN equal to NaN and 0 apart from −0 (what a reader returns, bit for bit). */
const same = (a: Ordering, b: Ordering) =>
  Object.is(a.origin, b.origin) && Object.is(a.incarnation, b.incarnation) && Object.is(a.seq, b.seq)

/**
 * Strict protobuf well-formedness by the .proto's shapes: every field complete within its
 * enclosing message, nested messages exactly filling their length, no zero tag, no group. The
 * generated decoder is laxer: a nested message ending early on a zero tag leaves the outer loop
 * reading the nested bytes as top-level fields. `peekOrdering` skips nested messages by length
 * instead, so on such bytes the two may read different ordering fields; the exchange then drops as
 * stale what would have decoded to garbage. The guarantee is for well-formed bytes.
 */
type Shape = "message" | "tunnel" | "stats" | "distance" | "request"
const nestedOf: Record<Shape, Record<number, Shape>> = {
  message: { 5: "tunnel", 6: "distance", 7: "request" },
  tunnel: { 3: "stats" },
  stats: {},
  distance: {},
  request: {},
}
const wellFormed = (bytes: Uint8Array, shape: Shape = "message", start = 0, end = bytes.length): boolean => {
  let pos = start
  const varint = (): number | undefined => {
    let value = 0
    for (let i = 0; i < 10; i++) {
      if (pos >= end) return undefined
      const b = bytes[pos++]!
      if (i < 4) value |= (b & 0x7f) << (7 * i)
      else if (i === 4) value |= (b & 0x0f) << 28
      if (b < 0x80) return value >>> 0
    }
    return undefined
  }
  while (pos < end) {
    const tag = varint()
    if (tag === undefined || tag === 0) return false
    const wireType = tag & 7
    if (wireType === 0) {
      if (varint() === undefined) return false
    } else if (wireType === 1) pos += 8
    else if (wireType === 5) pos += 4
    else if (wireType === 2) {
      const n = varint()
      if (n === undefined || pos + n > end) return false
      const nested = nestedOf[shape][tag >>> 3]
      if (nested !== undefined && !wellFormed(bytes, nested, pos, pos + n)) return false
      pos += n
    } else return false
    if (pos > end) return false
  }
  return true
}

const decodeOrUndefined = (bytes: Uint8Array): pb.LinkStateMessage | undefined => {
  try {
    return pb.LinkStateMessage.decode(bytes)
  } catch {
    return undefined
  }
}

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
)
const mutate = (bytes: Uint8Array, ms: ReadonlyArray<typeof mutationArb extends fc.Arbitrary<infer A> ? A : never>) => {
  let b = Array.from(bytes)
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1)
    if (m.kind === "set" && at < b.length) b[at] = m.byte
    else if (m.kind === "insert") b.splice(at, 0, m.byte)
    else if (m.kind === "cut") b = b.slice(0, at)
  }
  return Uint8Array.from(b)
}

describe("peekOrdering", () => {
  test.prop([messageArb, fc.array(extraFieldArb, { maxLength: 4 }), fc.array(extraFieldArb, { maxLength: 4 })], {
    numRuns: 5_000,
  })("reads what the generated decoder reads from any valid encoding", (m, before, after) => {
    const bytes = encode(m, before, after)
    expect(wellFormed(bytes)).toBe(true)
    const peeked = peekOrdering(bytes)
    expect(peeked).toBeDefined()
    expect(same(peeked!, orderingOf(pb.LinkStateMessage.decode(bytes)))).toBe(true)
  })

  test.prop([messageArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 })], { numRuns: 10_000 })(
    "on mutated bytes: whenever the decoder accepts them, the same reading or none",
    (m, mutations) => {
      const bytes = mutate(encode(m, [], []), mutations)
      const decoded = decodeOrUndefined(bytes)
      const peeked = peekOrdering(bytes)
      if (decoded !== undefined && wellFormed(bytes)) {
        expect(peeked).toBeDefined()
        expect(same(peeked!, orderingOf(decoded))).toBe(true)
      }
    },
  )

  test.prop([fc.uint8Array({ maxLength: 64 })], { numRuns: 10_000 })(
    "on random bytes: never throws; whenever the decoder accepts them, the same reading or none",
    (bytes) => {
      const decoded = decodeOrUndefined(bytes)
      const peeked = peekOrdering(bytes)
      if (decoded !== undefined && wellFormed(bytes)) {
        expect(peeked).toBeDefined()
        expect(same(peeked!, orderingOf(decoded))).toBe(true)
      }
    },
  )
})
