// ingest and ingestInto against the aggregation as it was before ingestInto existed
// (fixtures/AggregationReference.ts): for any sequence of samples — every probe kind, losses,
// loss-test bursts of any loss, late and out-of-order timestamps, long silences — and any of a few
// configurations, every field of the aggregate and its LinkStats at every step are identical (===
// on numbers: the same arithmetic in the same order), and ingest never changes its input.
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import {
  type AggregationConfig,
  defaultAggregationConfig,
  emptyAggregate,
  ingest,
  ingestInto,
  linkStats,
  type TunnelAggregate,
} from "../src/Aggregation.js"
import { LossTestSample, type RttSample, type TunnelId } from "../src/Domain.js"
import { rttSample } from "../src/Samples.js"
import * as Reference from "./fixtures/AggregationReference.js"

const tunnel = { local: 0, remote: 1, family: 4 } as TunnelId
const kind = fc.constantFrom("udp-echo" as const, "icmp" as const, "tcp" as const)
/** A step: time advance (mostly ~1 s, sometimes back in time, sometimes a long silence) and a sample. */
const step = fc.tuple(
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: -15_000, max: 0 }) },
    { weight: 1, arbitrary: fc.integer({ min: 20_000, max: 120_000 }) },
  ),
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        t: fc.constant("rtt" as const),
        kind,
        rttMs: fc.option(fc.oneof(fc.double({ min: 0, max: 300, noNaN: true }), fc.constantFrom(10, 10.5, 60, 200)), {
          nil: null,
          freq: 4,
        }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 1_500 }), fc.double({ min: 0, max: 1, noNaN: true }))
        .map(([sent, share]) => ({ t: "loss" as const, sent, received: Math.round(sent * share) })),
    },
  ),
)
const config = fc.constantFrom<AggregationConfig>(
  defaultAggregationConfig,
  { ...defaultAggregationConfig, fastAvailabilityHalfLifeMillis: 0, levelShiftSamples: 0, lossShiftAlpha: 0 },
  {
    ...defaultAggregationConfig,
    rttProbeKinds: ["icmp"],
    lossProbeKinds: ["udp-echo"],
    fastProbeKinds: ["udp-echo", "tcp"],
  },
  { ...defaultAggregationConfig, staleAfterMillis: 5_000, deadAfterMisses: 1, reviveAfterReplies: 1 },
  {
    ...defaultAggregationConfig,
    rttProbeKinds: ["icmp"],
    lossProbeKinds: ["icmp"],
    levelShiftWitnessKinds: ["udp-echo", "tcp"],
    levelShiftWitnessMillis: 4_000,
  },
)

const fieldsOf = (a: object) => Object.fromEntries(Object.entries(a).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))

describe("ingestInto / ingest", () => {
  it("compute exactly what the reference aggregation computed", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), config, (steps, c) => {
        let at = 1_700_000_000_000
        let reference: Reference.TunnelAggregate = Reference.emptyAggregate(tunnel)
        let immutable: TunnelAggregate = emptyAggregate(tunnel)
        const inPlace: TunnelAggregate = emptyAggregate(tunnel)
        for (const [dt, s] of steps) {
          at += dt
          const sample: RttSample | LossTestSample =
            s.t === "rtt"
              ? rttSample(tunnel, s.kind, at, s.rttMs)
              : new LossTestSample(
                  {
                    tunnel,
                    atMillis: at,
                    sent: s.sent,
                    received: s.received,
                    reordered: 0,
                    jitterMs: 0,
                    rateBitsPerSecond: 0,
                  },
                  true,
                )
          const before = fieldsOf(immutable)
          const previous = immutable
          reference = Reference.ingest(reference, sample, c)
          immutable = ingest(immutable, sample, c)
          ingestInto(inPlace, sample, c)
          expect(fieldsOf(previous)).toEqual(before)
          expect(fieldsOf(immutable)).toStrictEqual(fieldsOf(reference))
          expect(fieldsOf(inPlace)).toStrictEqual(fieldsOf(reference))
          for (const later of [0, 1_000, 40_000]) {
            const want = Reference.linkStats(reference, at + later, c)
            expect(linkStats(immutable, at + later, c)).toStrictEqual(want)
            expect(linkStats(inPlace, at + later, c)).toStrictEqual(want)
          }
        }
      }),
      { numRuns: 400 },
    )
  })
})
