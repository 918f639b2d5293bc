// Properties of the pure per-direction decision (Link.ts), the seeded PRNG and the schemas.

import { describe, expect, it } from "@effect/vitest"
import { fc, it as fcit } from "@fast-check/vitest"
import { Schema } from "effect"
import { defaultImpairment, type Impairment, ImpairmentPatch, PairSpec } from "../../src/linkemu/Impairment.js"
import { admit, makeLinkState } from "../../src/linkemu/Link.js"
import { makeRng } from "../../src/linkemu/Rng.js"

const impairmentArb: fc.Arbitrary<Impairment> = fc.record({
  delayMs: fc.double({ min: 0, max: 200, noNaN: true }),
  jitterMs: fc.double({ min: 0, max: 50, noNaN: true }),
  jitterDistribution: fc.constantFrom("uniform" as const, "normal" as const),
  reorder: fc.boolean(),
  lossRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  rateBitsPerSecond: fc.oneof(fc.constant(0), fc.double({ min: 1e4, max: 1e9, noNaN: true })),
  queueLimitPackets: fc.integer({ min: 1, max: 2000 }),
  down: fc.boolean(),
})

/** Arrival times (ms, non-decreasing) and sizes of a datagram stream. */
const streamArb = fc.array(fc.tuple(fc.double({ min: 0, max: 5, noNaN: true }), fc.integer({ min: 28, max: 1500 })), {
  minLength: 1,
  maxLength: 200,
})

const run = (imp: Impairment, seed: number, stream: ReadonlyArray<readonly [number, number]>) => {
  const state = makeLinkState(imp, makeRng(seed, "x"))
  let t = 1000
  return stream.map(([gap, size]) => {
    t += gap
    return { arrivedMs: t, size, result: admit(state, size, t, 0) }
  })
}

describe("linkemu Link.admit", () => {
  fcit.prop([impairmentArb, fc.integer(), streamArb])("is deterministic for a seed", (imp, seed, stream) => {
    expect(run(imp, seed, stream)).toEqual(run(imp, seed, stream))
  })

  fcit.prop([impairmentArb, fc.integer(), streamArb])(
    "never releases before arrival, and down drops all",
    (imp, seed, stream) => {
      for (const { arrivedMs, result } of run(imp, seed, stream)) {
        if (imp.down) expect(result).toEqual({ _tag: "Drop", reason: "down" })
        if (result._tag === "Send") expect(result.dueMs).toBeGreaterThanOrEqual(arrivedMs)
      }
    },
  )

  fcit.prop([impairmentArb, fc.integer(), streamArb])(
    "loss 0 never drops, loss 1 drops everything",
    (imp, seed, stream) => {
      const up = { ...imp, down: false }
      expect(run({ ...up, lossRatio: 0 }, seed, stream).every((x) => x.result._tag === "Send")).toBe(true)
      expect(run({ ...up, lossRatio: 1 }, seed, stream).every((x) => x.result._tag === "Drop")).toBe(true)
    },
  )

  fcit.prop([impairmentArb, fc.integer(), streamArb])(
    "without reorder, due times never decrease",
    (imp, seed, stream) => {
      const dues = run({ ...imp, down: false, reorder: false }, seed, stream).flatMap((x) =>
        x.result._tag === "Send" ? [x.result.dueMs] : [],
      )
      for (let i = 1; i < dues.length; i++) expect(dues[i]!).toBeGreaterThanOrEqual(dues[i - 1]!)
    },
  )

  fcit.prop([fc.double({ min: 1e4, max: 1e9, noNaN: true }), streamArb])(
    "a rate-limited link never sends faster than its rate",
    (rate, stream) => {
      const imp = { ...defaultImpairment, rateBitsPerSecond: rate }
      const sent = run(imp, 1, stream)
      // with a fixed delay, serialisation ends are due times: consecutive ones are at least one packet time apart
      for (let i = 1; i < sent.length; i++) {
        const prev = sent[i - 1]!.result
        const cur = sent[i]!.result
        if (prev._tag === "Send" && cur._tag === "Send") {
          const packetMs = (sent[i]!.size * 8 * 1000) / rate
          expect(cur.dueMs - prev.dueMs).toBeGreaterThanOrEqual(packetMs - 1e-6)
        }
      }
    },
  )

  it("drops beyond the queue limit", () => {
    const state = makeLinkState({ ...defaultImpairment, queueLimitPackets: 3 }, makeRng(1))
    expect(admit(state, 100, 0, 2)._tag).toBe("Send")
    expect(admit(state, 100, 0, 3)).toEqual({ _tag: "Drop", reason: "queue" })
  })

  it("uniform jitter stays within delay ± jitter", () => {
    const state = makeLinkState({ ...defaultImpairment, delayMs: 20, jitterMs: 5 }, makeRng(9))
    for (let i = 0; i < 2000; i++) {
      const r = admit(state, 100, 0, 0)
      if (r._tag !== "Send") throw new Error("unexpected drop")
      expect(r.dueMs).toBeGreaterThanOrEqual(15)
      expect(r.dueMs).toBeLessThanOrEqual(25)
    }
  })
})

describe("linkemu Rng", () => {
  fcit.prop([fc.integer(), fc.string()])("is in [0, 1) and replays for a seed and label", (seed, label) => {
    const a = makeRng(seed, label)
    const b = makeRng(seed, label)
    for (let i = 0; i < 50; i++) {
      const x = a.next()
      expect(x).toBeGreaterThanOrEqual(0)
      expect(x).toBeLessThan(1)
      expect(b.next()).toBe(x)
    }
  })

  it("has the moments of uniform and normal draws", () => {
    const rng = makeRng(5, "moments")
    const n = 50_000
    let sum = 0
    let sumN = 0
    let sumN2 = 0
    for (let i = 0; i < n; i++) {
      sum += rng.next()
      const z = rng.normal()
      sumN += z
      sumN2 += z * z
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01)
    expect(Math.abs(sumN / n)).toBeLessThan(0.02)
    expect(Math.abs(sumN2 / n - 1)).toBeLessThan(0.03)
  })
})

describe("linkemu schemas", () => {
  fcit.prop([fc.double({ noNaN: true, noDefaultInfinity: true })])("clamp lossRatio to 0..1", (lossRatio) => {
    const patch = Schema.decodeUnknownSync(ImpairmentPatch)({ lossRatio })
    expect(patch.lossRatio).toBe(Math.min(1, Math.max(0, lossRatio)))
  })

  it("rejects ends of the wrong family and zero end ports", () => {
    const base = { id: "p", family: 4, listen: { address: "127.0.0.1", port: 0 } }
    const decode = Schema.decodeUnknownEither(PairSpec)
    expect(decode({ ...base, a: { address: "::1", port: 1 }, b: { address: "127.0.0.1", port: 2 } })._tag).toBe("Left")
    expect(decode({ ...base, a: { address: "127.0.0.1", port: 0 }, b: { address: "127.0.0.1", port: 2 } })._tag).toBe(
      "Left",
    )
    expect(decode({ ...base, a: { address: "127.0.0.1", port: 1 }, b: { address: "127.0.0.1", port: 2 } })._tag).toBe(
      "Right",
    )
  })
})
