// rttSample against its reference, the RttSample class constructor: the same value for Equal, the
// schema guard and encoding, the same prototype and own fields in the same order, for any fields.
import { describe, expect, it } from "@effect/vitest"
import { Equal, Hash, Schema } from "effect"
import * as fc from "fast-check"
import { RttSample, Sample, type TunnelId } from "../src/Domain.js"
import { rttSample } from "../src/Samples.js"

const tunnel = fc
  .tuple(fc.nat(255), fc.nat(255), fc.constantFrom(4 as const, 6 as const))
  .filter(([a, b]) => a !== b)
  .map(([local, remote, family]) => ({ local, remote, family }) as TunnelId)
const fields = fc.record({
  tunnel,
  kind: fc.constantFrom("udp-echo" as const, "icmp" as const, "tcp" as const),
  atMillis: fc.double({ min: 0, max: 4e12, noNaN: true }),
  rttMs: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true }), { nil: null }),
})
const encode = Schema.encodeSync(Sample)

describe("rttSample", () => {
  it("builds what the RttSample constructor builds", () => {
    fc.assert(
      fc.property(fields, (f) => {
        const fast = rttSample(f.tunnel, f.kind, f.atMillis, f.rttMs)
        // The probes' previous form: fields known good, validation off (the tunnel object kept as is).
        const reference = new RttSample(f, true)
        expect(fast).toBeInstanceOf(RttSample)
        expect(Object.getPrototypeOf(fast)).toBe(Object.getPrototypeOf(reference))
        expect(Object.keys(fast)).toEqual(Object.keys(reference))
        expect(Equal.equals(fast, reference)).toBe(true)
        expect(Hash.hash(fast)).toBe(Hash.hash(reference))
        expect(Schema.is(RttSample)(fast)).toBe(true)
        expect(encode(fast)).toEqual(encode(reference))
        expect(fast).toEqual(reference)
        expect(Schema.decodeUnknownSync(Sample)(encode(fast))).toEqual(new RttSample(f))
      }),
      { numRuns: 2000 },
    )
  })

  it("differs where the fields differ", () => {
    fc.assert(
      fc.property(fields, fields, (a, b) => {
        const same = Equal.equals(new RttSample(a, true), new RttSample(b, true))
        expect(Equal.equals(rttSample(a.tunnel, a.kind, a.atMillis, a.rttMs), new RttSample(b, true))).toBe(same)
      }),
      { numRuns: 500 },
    )
  })
})
