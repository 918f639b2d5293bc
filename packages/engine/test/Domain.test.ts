import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import * as fc from "fast-check"
import { LinkStats, parseTunnelName, RttSample, Sample, SiteId, tunnelId, tunnelKey } from "../src/Domain.js"

describe("Domain", () => {
  it("tunnel names round-trip", () => {
    fc.assert(
      fc.property(fc.nat(5000), fc.nat(5000), fc.constantFrom(4 as const, 6 as const), (a, b, f) => {
        fc.pre(a !== b)
        const t = tunnelId(a, b, f)
        expect(parseTunnelName(tunnelKey(t))).toEqual(t)
      }),
    )
  })

  it("rejects malformed interface names", () => {
    for (const bad of ["wg1.1_v4", "wg1.2_v5", "eth0", "wg1.2_v4x", "wg-1.2_v4"]) {
      expect(parseTunnelName(bad)).toBeUndefined()
    }
  })

  it("rejects negative site ids and RTTs with a typed error", () => {
    expect(Either.isLeft(Schema.decodeUnknownEither(SiteId)(-1))).toBe(true)
    const decode = Schema.decodeUnknownEither(RttSample)
    const bad = decode({
      _tag: "RttSample",
      tunnel: { local: 1, remote: 2, family: 4 },
      kind: "icmp",
      atMillis: 0,
      rttMs: -3,
    })
    expect(Either.isLeft(bad)).toBe(true)
  })
})

describe("Domain schemas", () => {
  const tunnel = fc.record({
    local: fc.nat(300),
    remote: fc.nat(300),
    family: fc.constantFrom(4 as const, 6 as const),
  })
  const sample = fc.oneof(
    fc.record({
      _tag: fc.constant("RttSample" as const),
      tunnel,
      kind: fc.constantFrom("udp-echo" as const, "icmp" as const, "tcp" as const),
      atMillis: fc.nat(),
      rttMs: fc.option(fc.double({ min: 0, max: 1e4, noNaN: true }), { nil: null }),
    }),
    fc.record({
      _tag: fc.constant("LossTestSample" as const),
      tunnel,
      atMillis: fc.nat(),
      sent: fc.integer({ min: 1, max: 10_000 }),
      received: fc.nat(10_000),
      reordered: fc.nat(100),
      jitterMs: fc.double({ min: 0, max: 100, noNaN: true }),
      rateBitsPerSecond: fc.double({ min: 0, max: 1e10, noNaN: true }),
    }),
    fc.record({
      _tag: fc.constant("PathSample" as const),
      path: fc.array(fc.nat(300), { minLength: 2, maxLength: 16 }),
      families: fc.array(fc.constantFrom(0 as const, 4 as const, 6 as const), { maxLength: 15 }),
      atMillis: fc.nat(),
      rttMs: fc.option(fc.double({ min: 0, max: 1e4, noNaN: true }), { nil: null }),
      sent: fc.integer({ min: 1, max: 100 }),
      received: fc.nat(100),
    }),
  )

  it("samples round-trip through JSON", () => {
    fc.assert(
      fc.property(sample, (raw) => {
        const decoded = Schema.decodeUnknownSync(Sample)(raw)
        const wire = JSON.parse(JSON.stringify(Schema.encodeSync(Sample)(decoded)))
        expect(Schema.decodeUnknownSync(Sample)(wire)).toEqual(decoded)
      }),
    )
  })

  it("rejects bad samples and link stats with a ParseError", () => {
    const bad = [
      { _tag: "RttSample", tunnel: { local: 1, remote: 2, family: 5 }, kind: "icmp", atMillis: 0, rttMs: 1 },
      { _tag: "RttSample", tunnel: { local: 1, remote: 2, family: 4 }, kind: "ping", atMillis: 0, rttMs: 1 },
      {
        _tag: "LossTestSample",
        tunnel: { local: 1, remote: 2, family: 4 },
        atMillis: 0,
        sent: 0,
        received: 0,
        reordered: 0,
        jitterMs: 0,
        rateBitsPerSecond: 0,
      },
      { _tag: "Nope" },
    ]
    for (const b of bad) {
      const r = Schema.decodeUnknownEither(Sample)(b)
      expect(Either.isLeft(r) && ParseResult.isParseError(r.left)).toBe(true)
    }
    const stats = {
      tunnel: { local: 1, remote: 2, family: 4 },
      state: "up",
      rttMs: 1,
      jitterMs: 0,
      lossRatio: 1.5,
      availability: 1,
      lastSampleAtMillis: null,
      lastReplyAtMillis: null,
    }
    expect(Either.isLeft(Schema.decodeUnknownEither(LinkStats)(stats))).toBe(true)
    expect(Either.isRight(Schema.decodeUnknownEither(LinkStats)({ ...stats, lossRatio: 0.5 }))).toBe(true)
  })
})
