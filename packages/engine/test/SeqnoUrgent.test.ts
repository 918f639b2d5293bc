/**
 * `NodeRouter.seqnoUrgent`: a route's new seqno is worth a message at once only while a starved
 * site waits for it. A starved site retracts the destination and requests a seqno for it in the
 * same message; every other site only relays the request. Tests: the rule by example, against a
 * plain model of it over random message sequences (fast-check), and our own starvation.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { SiteId } from "../src/Domain.js"
import { LinkStateMessage } from "../src/LinkState.js"
import { NodeRouter } from "../src/NodeRouter.js"
import { World } from "./routingWorld.js"

const s = (n: number) => SiteId.make(n)

/** What the origin says of one destination: a route, a retraction (null) or nothing (absent). */
type Entry = "route" | "retracted" | "absent"

const message = (
  origin: number,
  seq: number,
  entries: ReadonlyMap<number, Entry>,
  requests: ReadonlyArray<number>,
  incarnation = 1,
) =>
  new LinkStateMessage({
    origin: s(origin),
    incarnation,
    seq,
    generatedAtMillis: 0,
    tunnels: [],
    distances: [
      { destination: s(origin), seqno: 0, distanceMs: 0, nextHop: null },
      ...[...entries]
        .filter(([, e]) => e !== "absent")
        .map(([d, e]) => ({
          destination: s(d),
          seqno: 3,
          distanceMs: e === "route" ? 12 : null,
          nextHop: e === "route" ? s(origin) : null,
        })),
    ],
    requests: requests.map((d) => ({ destination: s(d), seqno: 4 })),
  })

const lifetime = 10_000

describe("NodeRouter.seqnoUrgent", () => {
  it("a request from a site that retracts the destination is urgent; a relayed one is not", () => {
    const router = NodeRouter.make({ self: 0 })
    // Site 2 relays a request for 5 while it has a route to 5 itself.
    router.receiveLinkState(message(2, 1, new Map([[5, "route"]]), [5]), 1_000)
    expect(router.seqnoUrgent(s(5), 1_000)).toBe(false)
    // Site 3 is starved for 5: it retracts 5 and asks.
    router.receiveLinkState(message(3, 1, new Map([[5, "retracted"]]), [5]), 1_100)
    expect(router.seqnoUrgent(s(5), 1_100)).toBe(true)
    expect(router.seqnoUrgent(s(6), 1_100)).toBe(false)
  })

  it("a destination missing from the message counts as retracted", () => {
    const router = NodeRouter.make({ self: 0 })
    router.receiveLinkState(message(3, 1, new Map(), [5]), 1_000)
    expect(router.seqnoUrgent(s(5), 1_000)).toBe(true)
  })

  it("lasts the request's lifetime from the latest such message", () => {
    const router = NodeRouter.make({ self: 0, seqnoRequestLifetimeMillis: lifetime })
    router.receiveLinkState(message(3, 1, new Map([[5, "retracted"]]), [5]), 1_000)
    expect(router.seqnoUrgent(s(5), 1_000 + lifetime - 1)).toBe(true)
    expect(router.seqnoUrgent(s(5), 1_000 + lifetime)).toBe(false)
    // The same plea again (same request list, same retraction) renews it.
    router.receiveLinkState(message(3, 2, new Map([[5, "retracted"]]), [5]), 5_000)
    expect(router.seqnoUrgent(s(5), 5_000 + lifetime - 1)).toBe(true)
    expect(router.seqnoUrgent(s(5), 5_000 + lifetime)).toBe(false)
  })

  it("ends when the origin's next message has a route, though it still relays the same request list", () => {
    const router = NodeRouter.make({ self: 0 })
    router.receiveLinkState(message(3, 1, new Map([[5, "retracted"]]), [5]), 1_000)
    expect(router.seqnoUrgent(s(5), 1_100)).toBe(true)
    router.receiveLinkState(message(3, 2, new Map([[5, "route"]]), [5]), 1_200)
    expect(router.seqnoUrgent(s(5), 1_200)).toBe(false)
    // And starts again when it retracts again under the same list.
    router.receiveLinkState(message(3, 3, new Map([[5, "retracted"]]), [5]), 1_300)
    expect(router.seqnoUrgent(s(5), 1_300)).toBe(true)
  })

  it("ignores stale and duplicate messages", () => {
    const router = NodeRouter.make({ self: 0 })
    router.receiveLinkState(message(3, 2, new Map([[5, "route"]]), [5]), 1_000)
    router.receiveLinkState(message(3, 1, new Map([[5, "retracted"]]), [5]), 1_100)
    expect(router.seqnoUrgent(s(5), 1_100)).toBe(false)
  })

  it("our own starvation counts while our request is pending", () => {
    // Triangle 0–1 10 ms, 1–2 10 ms, 0–2 5 ms: 0's feasible distance to 2 is the direct link's,
    // below what 1 offers, so when 0–2 dies 0 is starved for 2 and asks.
    const w = new World(
      3,
      [
        { a: 0, b: 1, family: 4, rttMs: 10 },
        { a: 1, b: 2, family: 4, rttMs: 10 },
        { a: 0, b: 2, family: 4, rttMs: 5 },
      ],
      () => ({ startupHoldDownMillis: 0, stability: { dwellMillis: 1000 }, seqnoRequestLifetimeMillis: lifetime }),
    )
    w.settle(4, 1000)
    const router = w.routers[0]!
    expect(router.seqnoUrgent(s(2), w.nowMillis)).toBe(false)
    w.setTunnelRtt(0, 2, 4, null)
    w.tick(100)
    const at = w.nowMillis
    expect(router.decide(at).byDestination.get(s(2))!.starved).toBe(true)
    expect(router.seqnoUrgent(s(2), at)).toBe(true)
    expect(router.seqnoUrgent(s(1), at)).toBe(false)
    expect(router.seqnoUrgent(s(2), at + lifetime)).toBe(false)
  })
})

describe("NodeRouter.seqnoUrgent against its definition", () => {
  // Self 0; origins 1–3; destinations 4–6. Request lists come from a small pool so the same list
  // often comes again from an origin with other retractions (the router skips repeated lists).
  const destinations = [4, 5, 6]
  const entry = fc.constantFrom<Entry>("route", "retracted", "absent")
  const step = fc.record({
    origin: fc.integer({ min: 1, max: 3 }),
    /** Added to the origin's last seq: 0 = duplicate, negative = older, positive = newer. */
    seqStep: fc.integer({ min: -2, max: 3 }),
    /** A new incarnation (the origin restarted; its seq starts again at 1): one step in ten. */
    restart: fc.integer({ min: 0, max: 9 }).map((r) => r === 0),
    entries: fc.tuple(entry, entry, entry),
    requests: fc.constantFrom<ReadonlyArray<number>>([], [4], [5], [4, 5], [4, 5, 6], [6]),
    dtMillis: fc.integer({ min: 0, max: 6_000 }),
    peek: fc.boolean(),
  })
  const scenario = fc.record({
    steps: fc.array(step, { minLength: 1, maxLength: 40 }),
    lifetimeMillis: fc.integer({ min: 1_000, max: 15_000 }),
    peerVerdicts: fc.boolean(),
    queryAfterMillis: fc.integer({ min: 0, max: 16_000 }),
  })

  it("urgent exactly when some origin's latest accepted message retracts d and requests it, within the lifetime", () => {
    fc.assert(
      fc.property(scenario, ({ steps, lifetimeMillis, peerVerdicts, queryAfterMillis }) => {
        const router = NodeRouter.make({ self: 0, seqnoRequestLifetimeMillis: lifetimeMillis, peerVerdicts })
        // The plain model: per origin its highest (incarnation, seq) and the latest accepted message's pleas.
        const order = new Map<number, { incarnation: number; seq: number }>()
        const latest = new Map<number, { atMillis: number; pleads: ReadonlySet<number> }>()
        const expected = (d: number, now: number) =>
          [...latest.values()].some((l) => l.pleads.has(d) && l.atMillis + lifetimeMillis > now)
        let now = 1_000
        for (const st of steps) {
          now += st.dtMillis
          const seen = order.get(st.origin)
          const incarnation = (seen?.incarnation ?? 1) + (st.restart ? 1 : 0)
          const seq = st.restart || seen === undefined ? 1 : Math.max(0, seen.seq + st.seqStep)
          const entries = new Map(destinations.map((d, i) => [d, st.entries[i]!] as const))
          router.receiveLinkState(message(st.origin, seq, entries, st.requests, incarnation), now)
          const accepted =
            seen === undefined || incarnation > seen.incarnation || (incarnation === seen.incarnation && seq > seen.seq)
          if (accepted) {
            order.set(st.origin, { incarnation, seq })
            latest.set(st.origin, {
              atMillis: now,
              pleads: new Set(st.requests.filter((d) => entries.get(d) !== "route")),
            })
          }
          // Queries in between must not change what later messages do.
          if (st.peek) for (const d of destinations) expect(router.seqnoUrgent(s(d), now)).toBe(expected(d, now))
        }
        const at = now + queryAfterMillis
        for (const d of [...destinations, 7]) expect(router.seqnoUrgent(s(d), at)).toBe(expected(d, at))
      }),
      { numRuns: 500 },
    )
  })
})
