import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as fc from "fast-check"
import { parseTunnelName, RttSample, SiteId, tunnelId, tunnelKey } from "../src/Domain.js"

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
