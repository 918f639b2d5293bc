import { fc, test } from "@fast-check/vitest"
import { type RouteChoice, type RoutingDecision, SiteId } from "@net-perf/engine"
import { describe, expect } from "vitest"
import {
  type AdvertisedRoute,
  type AdvertisedView,
  advertDue,
  advertisedViewOf,
  defaultAdvertTriggerThresholds,
  needsTriggeredAdvert,
} from "../../src/daemon/AdvertTrigger.js"

const route = fc.record({
  nextHop: fc.option(
    fc.integer({ min: 0, max: 50 }).map((n) => SiteId.make(n)),
    { nil: null },
  ),
  seqno: fc.nat({ max: 1000 }),
  metricMs: fc.oneof(fc.double({ min: 0, max: 500, noNaN: true }), fc.constant(Number.POSITIVE_INFINITY)),
  starved: fc.boolean(),
})
const view = fc
  .uniqueArray(fc.tuple(fc.integer({ min: 0, max: 50 }), route), { selector: ([d]) => d, minLength: 1, maxLength: 12 })
  .map((entries): AdvertisedView => new Map(entries.map(([d, r]) => [SiteId.make(d), r])))
const withRoute = (v: AdvertisedView, index: number, change: (r: AdvertisedRoute) => AdvertisedRoute) => {
  const entries = [...v]
  const i = index % entries.length
  const [d, r] = entries[i]!
  entries[i] = [d, change(r)]
  return new Map(entries)
}
const { absoluteMs, relative } = defaultAdvertTriggerThresholds
const allowedMs = (metricMs: number) => Math.max(absoluteMs, relative * metricMs)

describe("triggered link-state adverts", () => {
  test.prop([view])("the first decision and an unchanged view", (v) => {
    expect(needsTriggeredAdvert(undefined, v)).toBe(true)
    expect(needsTriggeredAdvert(v, new Map(v))).toBe(false)
  })

  test.prop([view, fc.nat(), fc.constantFrom("nextHop", "seqno", "starved", "reachability")])(
    "a structural change to any destination goes out at once",
    (v, index, field) => {
      const changed = withRoute(v, index, (r) =>
        field === "nextHop"
          ? { ...r, nextHop: r.nextHop === null ? SiteId.make(99) : null }
          : field === "seqno"
            ? { ...r, seqno: r.seqno + 1 }
            : field === "starved"
              ? { ...r, starved: !r.starved }
              : { ...r, metricMs: Number.isFinite(r.metricMs) ? Number.POSITIVE_INFINITY : 10 },
      )
      expect(needsTriggeredAdvert(v, changed)).toBe(true)
    },
  )

  test.prop([view, fc.nat(), fc.integer({ min: 1, max: 5 })])(
    "a route's new seqno waits for the periodic message unless a starved site asked for it",
    (v, index, raise) => {
      const entries = [...v]
      const [d] = entries[index % entries.length]!
      const changed = new Map(v).set(d, { ...v.get(d)!, seqno: v.get(d)!.seqno + raise })
      // Our own entry is another destination here (ids above the view's).
      const self = SiteId.make(1000)
      expect(needsTriggeredAdvert(v, changed, defaultAdvertTriggerThresholds, { self, urgent: () => false })).toBe(
        false,
      )
      expect(needsTriggeredAdvert(v, changed, defaultAdvertTriggerThresholds, { self, urgent: (x) => x === d })).toBe(
        true,
      )
      // Urgency of another destination does not matter.
      expect(needsTriggeredAdvert(v, changed, defaultAdvertTriggerThresholds, { self, urgent: (x) => x !== d })).toBe(
        false,
      )
      // Our own seqno always goes out at once.
      expect(needsTriggeredAdvert(v, changed, defaultAdvertTriggerThresholds, { self: d, urgent: () => false })).toBe(
        true,
      )
    },
  )

  test.prop([view, fc.nat({ max: 100 })])("a destination gained or lost goes out at once", (v, d) => {
    const more = new Map(v)
    more.set(SiteId.make(100 + d), { nextHop: null, seqno: 0, metricMs: 1, starved: false })
    expect(needsTriggeredAdvert(v, more)).toBe(true)
    expect(needsTriggeredAdvert(more, v)).toBe(true)
  })

  test.prop([view, fc.double({ min: -0.99, max: 0.99, noNaN: true })])(
    "metric noise within max(1 ms, 5 %) waits for the periodic message",
    (v, share) => {
      const noisy = new Map(
        [...v].map(([d, r]) => [
          d,
          Number.isFinite(r.metricMs) ? { ...r, metricMs: Math.max(0, r.metricMs + share * allowedMs(r.metricMs)) } : r,
        ]),
      )
      expect(needsTriggeredAdvert(v, noisy)).toBe(false)
    },
  )

  test.prop([view, fc.nat(), fc.double({ min: 1.01, max: 20, noNaN: true }), fc.boolean()])(
    "a metric that moved beyond max(1 ms, 5 %) goes out at once",
    (v, index, factor, up) => {
      const entries = [...v].filter(([, r]) => Number.isFinite(r.metricMs))
      fc.pre(entries.length > 0)
      const [d] = entries[index % entries.length]!
      const r = v.get(d)!
      const metricMs = r.metricMs + (up ? 1 : -1) * factor * allowedMs(r.metricMs)
      fc.pre(metricMs >= 0)
      expect(needsTriggeredAdvert(v, new Map(v).set(d, { ...r, metricMs }))).toBe(true)
    },
  )
})

describe("our own seqno in the advertised view", () => {
  const decision = (routes: ReadonlyArray<{ destination: number; seqno: number }>): RoutingDecision => {
    const choices = routes.map(
      (r) =>
        ({
          destination: SiteId.make(r.destination),
          nextHop: SiteId.make(r.destination),
          seqno: r.seqno,
          metricMs: 10,
          starved: false,
        }) as unknown as RouteChoice,
    )
    return {
      self: SiteId.make(0),
      atMillis: 0,
      routes: choices,
      byDestination: new Map(choices.map((c) => [c.destination, c])),
    }
  }

  test.prop([fc.nat({ max: 1000 }), fc.integer({ min: 1, max: 5 })])(
    "a raised own seqno goes out at once even when no route changed",
    (seqno, raise) => {
      const d = decision([
        { destination: 1, seqno: 3 },
        { destination: 2, seqno: 7 },
      ])
      const last = advertisedViewOf(d, seqno)
      // Nothing is urgent for the routes: the own entry goes out all the same.
      const urgency = { self: d.self, urgent: () => false }
      expect(needsTriggeredAdvert(last, advertisedViewOf(d, seqno), defaultAdvertTriggerThresholds, urgency)).toBe(
        false,
      )
      expect(
        needsTriggeredAdvert(last, advertisedViewOf(d, seqno + raise), defaultAdvertTriggerThresholds, urgency),
      ).toBe(true)
      expect(needsTriggeredAdvert(last, advertisedViewOf(d, seqno + raise))).toBe(true)
    },
  )
})

describe("when the advert loop sends", () => {
  const moment = (v: AdvertisedView) => ({
    advertised: v,
    view: new Map(v),
    requestsAdded: 7,
    requestsAdvertised: 7,
    nowMillis: 10_500,
    lastAdvertMillis: 10_000,
    intervalMillis: 2_000,
  })

  test.prop([view])("not before the period while nothing changed", (v) => {
    expect(advertDue(moment(v))).toBe(false)
    expect(advertDue({ ...moment(v), nowMillis: 12_000 })).toBe(true)
  })

  test.prop([view, fc.integer({ min: 1, max: 5 })])(
    "at once on a new seqno request, though no route in the view changed",
    (v, more) => {
      expect(advertDue({ ...moment(v), requestsAdded: 7 + more })).toBe(true)
    },
  )

  test.prop([view, fc.nat()])("at once on a structural change", (v, i) => {
    const changed = withRoute(v, i, (r) => ({ ...r, nextHop: r.nextHop === null ? SiteId.make(99) : null }))
    expect(advertDue({ ...moment(v), view: changed })).toBe(true)
  })

  test.prop([view, fc.nat()])("a route's new seqno: at once when urgent, else with the period", (v, i) => {
    const changed = withRoute(v, i, (r) => ({ ...r, seqno: r.seqno + 1 }))
    const self = SiteId.make(1000)
    expect(advertDue({ ...moment(v), view: changed, seqno: { self, urgent: () => false } })).toBe(false)
    expect(advertDue({ ...moment(v), view: changed, seqno: { self, urgent: () => false }, nowMillis: 12_000 })).toBe(
      true,
    )
    expect(advertDue({ ...moment(v), view: changed, seqno: { self, urgent: () => true } })).toBe(true)
    // Without an urgency rule every seqno change counts (callers that cannot tell).
    expect(advertDue({ ...moment(v), view: changed })).toBe(true)
  })
})
