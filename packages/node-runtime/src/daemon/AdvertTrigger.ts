/**
 * When a routing decision is worth a link-state message before the periodic one is due.
 *
 * Every message is flooded to every site, so a message per decision (4/s, since metric noise
 * changes some distance by 0.1 ms almost every time) grows as N² across the mesh: the model
 * simulator saw ≈ 10 adverts per site per second at N = 200 when every change was advertised.
 * Structural changes — a destination gained or lost, another next hop, starvation (its seqno
 * request rides on the message), our own seqno — go out at once, because failure reaction depends
 * on them. A route's new seqno goes out at once only while it is urgent (`SeqnoUrgency`: a starved
 * site's request for that destination is pending, NodeRouter.seqnoUrgent): only the starved site
 * waits for it. Every site adopting every new seqno at once cost +55 % messages at N = 200 in the
 * model (session 10). A metric that only moved goes out at once when it moved by more than
 * max(absolute, relative × last advertised), else with the next periodic message. Holding a
 * metric or a seqno back is safe for loop freedom: neighbours judge feasibility on what they
 * received, and the engine's argument already allows any message delay; it only delays optimality
 * (and a non-starved site's use of a new seqno) by ≤ one advertise interval.
 */
import {
  type AdvertTriggerThresholds,
  advertMetricMoved,
  defaultAdvertTriggerThresholds,
  type RoutingDecision,
  type SiteId,
} from "@net-perf/engine"

export interface AdvertisedRoute {
  readonly nextHop: SiteId | null
  readonly seqno: number
  readonly metricMs: number
  readonly starved: boolean
}

/** What a message carried, per destination. */
export type AdvertisedView = ReadonlyMap<SiteId, AdvertisedRoute>

export { type AdvertTriggerThresholds, defaultAdvertTriggerThresholds } from "@net-perf/engine"

/**
 * The view a message built now carries: every route of `decision`, and our own seqno as the entry
 * for ourselves, so a raised seqno (a neighbour's request, or one of our links died) goes out at
 * once — the sites waiting for it are starved.
 */
export const advertisedViewOf = (decision: RoutingDecision, ownSeqno: number): AdvertisedView =>
  new Map([
    ...decision.routes.map(
      (r) => [r.destination, { nextHop: r.nextHop, seqno: r.seqno, metricMs: r.metricMs, starved: r.starved }] as const,
    ),
    [decision.self, { nextHop: null, seqno: ownSeqno, metricMs: 0, starved: false }] as const,
  ])

/**
 * Which seqno changes are urgent: our own entry (`self`; a raised own seqno answers a request or
 * follows a link of ours that died: the sites waiting for it are starved) always, any other
 * destination when `urgent` says so (the daemon: `NodeRouter.seqnoUrgent` at the decision's time).
 */
export interface SeqnoUrgency {
  readonly self: SiteId
  readonly urgent: (destination: SiteId) => boolean
}

/**
 * True when `next` differs from the last advertised view in a way that must go out now. Without
 * `seqno` every seqno change counts (the rule before session 11, for callers that cannot tell).
 */
export const needsTriggeredAdvert = (
  last: AdvertisedView | undefined,
  next: AdvertisedView,
  thresholds: AdvertTriggerThresholds = defaultAdvertTriggerThresholds,
  seqno?: SeqnoUrgency,
): boolean => {
  if (last === undefined || last.size !== next.size) return true
  for (const [destination, route] of next) {
    const before = last.get(destination)
    if (
      before === undefined ||
      before.nextHop !== route.nextHop ||
      before.starved !== route.starved ||
      advertMetricMoved(before.metricMs, route.metricMs, thresholds) ||
      (before.seqno !== route.seqno && (seqno === undefined || destination === seqno.self || seqno.urgent(destination)))
    )
      return true
  }
  return false
}

/** What the advert loop knows when it asks whether a message is due. */
export interface AdvertMoment {
  /** The view of the last message sent (undefined: none yet). */
  readonly advertised: AdvertisedView | undefined
  /** The view a message built now would carry. */
  readonly view: AdvertisedView
  /** The router's `requestsAdded` now, and when the last message went out. */
  readonly requestsAdded: number
  readonly requestsAdvertised: number
  readonly nowMillis: number
  readonly lastAdvertMillis: number
  readonly intervalMillis: number
  /** Which seqno changes go out at once (`needsTriggeredAdvert`); absent: every one. */
  readonly seqno?: SeqnoUrgency
}

/**
 * A message is due on a change worth sending now, on a new seqno request (a request for a better
 * route that is not feasible yet changes no route in the view: the router is not starved), or
 * when the period has passed.
 */
export const advertDue = (m: AdvertMoment, thresholds: AdvertTriggerThresholds = defaultAdvertTriggerThresholds) =>
  needsTriggeredAdvert(m.advertised, m.view, thresholds, m.seqno) ||
  m.requestsAdded !== m.requestsAdvertised ||
  m.nowMillis - m.lastAdvertMillis >= m.intervalMillis
