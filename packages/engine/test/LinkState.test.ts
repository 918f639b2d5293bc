import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fc from "fast-check"
import { SiteId, tunnelId } from "../src/Domain.js"
import {
  betterMetric,
  eligibility,
  FeasibilityTable,
  isFeasible,
  isStrictlyBetter,
  ownSeqnoAfterRequests,
  type RouteMetric,
} from "../src/Feasibility.js"
import {
  decodeLinkStateMessage,
  encodeLinkStateMessage,
  LinkStateDecodeError,
  LinkStateMessage,
  LinkStateStore,
  offersRoute,
  SiteTable,
} from "../src/LinkState.js"

const s = (n: number) => SiteId.make(n)

const message = (origin: number, seq: number, incarnation = 1, distanceTo2: number | null = 20) =>
  new LinkStateMessage({
    origin: s(origin),
    incarnation,
    seq,
    generatedAtMillis: 1000,
    tunnels: [
      {
        remote: s(2),
        family: 6,
        stats: {
          tunnel: tunnelId(origin, 2, 6),
          state: "up",
          rttMs: 12.5,
          jitterMs: 0.3,
          lossRatio: 0.01,
          availability: 1,
          lastSampleAtMillis: 990,
          lastReplyAtMillis: 990,
        },
        costMs: 22.6,
        selected: true,
      },
    ],
    distances: [
      { destination: s(origin), seqno: 3, distanceMs: 0, nextHop: null },
      { destination: s(2), seqno: 7, distanceMs: distanceTo2, nextHop: distanceTo2 === null ? null : s(2) },
    ],
    requests: [{ destination: s(5), seqno: 4 }],
  })

const metricArb = fc.record({
  seqno: fc.nat(5),
  distanceMs: fc.oneof(fc.nat(100), fc.constant(Number.POSITIVE_INFINITY)),
})

describe("LinkState", () => {
  it.effect("round-trips through JSON and rejects bad input with a typed error", () =>
    Effect.gen(function* () {
      const m = message(1, 4)
      const wire = JSON.parse(JSON.stringify(encodeLinkStateMessage(m)))
      const back = yield* decodeLinkStateMessage(wire)
      expect(back).toEqual(m)
      const bad = yield* Effect.exit(decodeLinkStateMessage({ ...wire, seq: -1 }))
      expect(Exit.isFailure(bad)).toBe(true)
      const error = yield* Effect.flip(decodeLinkStateMessage({ ...wire, distances: [{ destination: 2 }] }))
      expect(error).toBeInstanceOf(LinkStateDecodeError)
      expect(error.message).toContain("seqno")
    }),
  )

  it("the store ignores duplicates and older messages, accepts a restart, and ages peers out", () => {
    const store = new LinkStateStore(10_000)
    expect(store.accept(message(1, 4), 0)).toBe("accepted")
    expect(store.accept(message(1, 4), 1)).toBe("duplicate")
    expect(store.accept(message(1, 3), 2)).toBe("older")
    expect(store.accept(message(1, 5, 1, null), 3)).toBe("accepted")
    expect(store.advertised(s(1), s(2))).toEqual({ seqno: 7, distanceMs: Number.POSITIVE_INFINITY })
    // A restarted peer (new incarnation) starts its seq again.
    expect(store.accept(message(1, 0, 2), 4)).toBe("accepted")
    expect(store.advertised(s(1), s(2))).toEqual({ seqno: 7, distanceMs: 20 })
    expect(store.expire(10_004)).toEqual([])
    expect(store.expire(10_005)).toEqual([1])
    expect(store.get(s(1))).toBeUndefined()
    // A late copy of an old message does not resurrect the peer.
    expect(store.accept(message(1, 0, 2), 10_006)).toBe("duplicate")
    expect(store.accept(message(1, 9, 1), 10_006)).toBe("older")
  })

  it("arbitrary arrival orders keep the newest message per origin", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(20)), { maxLength: 60 }), (arrivals) => {
        const store = new LinkStateStore(1e9)
        const newest = new Map<number, number>()
        arrivals.forEach(([origin, seq], i) => {
          store.accept(message(origin, seq), i)
          newest.set(origin, Math.max(newest.get(origin) ?? -1, seq))
        })
        for (const [origin, seq] of newest) expect(store.get(s(origin))?.seq).toBe(seq)
      }),
    )
  })
})

describe("Feasibility", () => {
  it("a newer seqno wins, then a shorter distance; feasibility is strict", () => {
    const fd: RouteMetric = { seqno: 3, distanceMs: 20 }
    expect(isFeasible({ seqno: 3, distanceMs: 19.9 }, fd)).toBe(true)
    expect(isFeasible({ seqno: 3, distanceMs: 20 }, fd)).toBe(false)
    expect(isFeasible({ seqno: 4, distanceMs: 500 }, fd)).toBe(true)
    expect(isFeasible({ seqno: 2, distanceMs: 1 }, fd)).toBe(false)
    expect(isFeasible({ seqno: 9, distanceMs: Number.POSITIVE_INFINITY }, fd)).toBe(false)
    expect(isFeasible({ seqno: 0, distanceMs: 5 }, undefined)).toBe(true)
  })

  it("the order is a strict total order on finite metrics", () => {
    fc.assert(
      fc.property(metricArb, metricArb, metricArb, (a, b, c) => {
        expect(isStrictlyBetter(a, a)).toBe(false)
        if (isStrictlyBetter(a, b)) expect(isStrictlyBetter(b, a)).toBe(false)
        if (isStrictlyBetter(a, b) && isStrictlyBetter(b, c)) expect(isStrictlyBetter(a, c)).toBe(true)
        expect(betterMetric(a, b)).toEqual(isStrictlyBetter(a, b) ? a : b)
      }),
    )
  })

  it("a feasible distance only ever improves, whatever is advertised", () => {
    fc.assert(
      fc.property(fc.array(metricArb, { maxLength: 30 }), (advertised) => {
        const table = new FeasibilityTable()
        let previous: RouteMetric | undefined
        for (const m of advertised) {
          table.noteAdvertised(s(1), m)
          const now = table.get(s(1))
          if (previous !== undefined) expect(isStrictlyBetter(previous, now!)).toBe(false)
          if (now !== undefined && Number.isFinite(m.distanceMs)) expect(isStrictlyBetter(m, now)).toBe(false)
          previous = now
        }
      }),
    )
  })

  it("the gate: link down, no advertisement, retraction, infeasible; the destination and the current next hop", () => {
    const fd: RouteMetric = { seqno: 1, distanceMs: 10 }
    const inf = Number.POSITIVE_INFINITY
    expect(eligibility(s(2), s(3), inf, { seqno: 1, distanceMs: 1 }, fd)).toMatchObject({
      eligible: false,
      reason: "link-down",
    })
    expect(eligibility(s(2), s(3), 5, undefined, fd)).toMatchObject({ eligible: false, reason: "no-advertisement" })
    expect(eligibility(s(2), s(3), 5, { seqno: 9, distanceMs: inf }, fd)).toMatchObject({
      eligible: false,
      reason: "unreachable",
    })
    expect(eligibility(s(2), s(3), 5, { seqno: 1, distanceMs: 12 }, fd)).toMatchObject({
      eligible: false,
      reason: "not-feasible",
    })
    expect(eligibility(s(2), s(3), 5, { seqno: 1, distanceMs: 12 }, fd, true)).toMatchObject({ eligible: true })
    expect(eligibility(s(3), s(3), 5, undefined, fd)).toMatchObject({ eligible: true })
  })

  it("starvation: a request asks for one more than our FD's seqno, and the destination jumps to it", () => {
    const table = new FeasibilityTable()
    table.noteAdvertised(s(4), { seqno: 6, distanceMs: 30 })
    const request = table.requestFor(s(4))
    expect(request).toEqual({ destination: 4, seqno: 7 })
    expect(ownSeqnoAfterRequests(s(4), 2, [request])).toBe(7)
    expect(ownSeqnoAfterRequests(s(4), 9, [request])).toBe(9)
    expect(ownSeqnoAfterRequests(s(5), 2, [request])).toBe(2)
  })
})

describe("offersRoute", () => {
  // Destinations dense (small ids) or sparse (a table): the same answer as the plain rule, the
  // last entry per destination counting, the origin's own entry never.
  it("is true exactly when the last entry of some other destination has a finite distance", () => {
    const entry = fc.record({
      destination: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(100_000)),
      distanceMs: fc.option(fc.integer({ min: 0, max: 50 }), { nil: null }),
    })
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.array(entry, { maxLength: 6 }), (origin, entries) => {
        const message = new LinkStateMessage({
          origin: SiteId.make(origin),
          incarnation: 1,
          seq: 1,
          generatedAtMillis: 0,
          tunnels: [],
          distances: entries.map((e) => ({
            destination: SiteId.make(e.destination),
            seqno: 0,
            distanceMs: e.distanceMs,
            nextHop: e.distanceMs === null ? null : SiteId.make(origin),
          })),
          requests: [],
        })
        const last = new Map<number, number | null>()
        for (const e of entries) last.set(e.destination, e.distanceMs)
        const expected = [...last].some(([d, distance]) => d !== origin && distance !== null)
        expect(offersRoute(message)).toBe(expected)
      }),
      { numRuns: 500 },
    )
  })
})

describe("SiteTable", () => {
  it("behaves as a Map keyed by site id, iterated in ascending order (small and large ids)", () => {
    const key = fc.oneof(fc.nat(300), fc.integer({ min: 65_530, max: 70_000 }))
    const op = fc.oneof(fc.record({ set: key, value: fc.integer() }), fc.record({ del: key }))
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const table = new SiteTable<number>()
        const model = new Map<number, number>()
        for (const o of ops) {
          if ("set" in o) {
            table.set(o.set, o.value)
            model.set(o.set, o.value)
          } else {
            table.delete(o.del)
            model.delete(o.del)
          }
        }
        expect(table.size).toBe(model.size)
        for (const k of model.keys()) expect(table.get(k)).toBe(model.get(k))
        expect(table.get(12_345)).toBe(model.get(12_345))
        const sorted = [...model].sort((a, b) => a[0] - b[0])
        expect(table.entries()).toEqual(sorted)
        const seen: Array<[number, number]> = []
        table.forEach((v, k) => {
          seen.push([k, v])
        })
        expect(seen).toEqual(sorted)
      }),
      { numRuns: 300 },
    )
  })
})
