/**
 * Loop freedom by a feasibility condition (Babel, RFC 8966 §3.5; EIGRP's DUAL has the same
 * core). Each node keeps, per destination D, a feasible distance FD(D) = the best (seqno,
 * distance) it has ever advertised for D. A neighbour N is eligible as next hop for D only if
 * the (seqno, distance) N advertised for D is strictly better than FD(D).
 *
 * Decision a reader must know: metrics are compared lexicographically, a higher destination
 * sequence number first (it is owned by D and only D increases it), then a lower distance.
 * A node that has routes but none feasible is starved; it asks D for a newer sequence number
 * (`seqno = FD.seqno + 1`), D raises its own to at least that, and routes carrying the new
 * number are feasible everywhere. The proof sketch is in the package README.
 */
import type { SiteId } from "./Domain.js"
import { isSmallSite, SiteTable, smallSiteLimit } from "./LinkState.js"

/** An advertised or feasible metric. `distanceMs` +Infinity = retracted (unreachable). */
export interface RouteMetric {
  readonly seqno: number
  readonly distanceMs: number
}

/** a ≺ b: a is strictly better (newer seqno, or same seqno and shorter distance). */
export const isStrictlyBetter = (a: RouteMetric, b: RouteMetric): boolean =>
  a.seqno > b.seqno || (a.seqno === b.seqno && a.distanceMs < b.distanceMs)

/** The better of two metrics (b on equality). */
export const betterMetric = (a: RouteMetric, b: RouteMetric): RouteMetric => (isStrictlyBetter(a, b) ? a : b)

/** Is an advertisement acceptable given our feasible distance (none yet = anything finite)? */
export const isFeasible = (advertised: RouteMetric, fd: RouteMetric | undefined): boolean =>
  advertised.distanceMs >= 0 &&
  advertised.distanceMs < Number.POSITIVE_INFINITY &&
  (fd === undefined || isStrictlyBetter(advertised, fd))

/** Why a neighbour may or may not be used as next hop for a destination. */
export type Eligibility =
  | { readonly eligible: true; readonly advertised: RouteMetric | undefined }
  | {
      readonly eligible: false
      readonly reason: "link-down" | "no-advertisement" | "unreachable" | "not-feasible"
      readonly advertised: RouteMetric | undefined
    }

/**
 * The feasibility gate for one (neighbour, destination). The destination itself is always
 * eligible over a live link: it delivers locally and forwards the packet nowhere.
 *
 * `isCurrentNextHop`: the neighbour we already forward to stays eligible while it advertises a
 * finite route, even one that is no longer feasible (its distance grew). That is safe: the
 * advertisement that made it feasible when we chose it is still a witness (README, "Loop
 * freedom"), as long as what we advertise is computed from its latest advertisement. It keeps
 * Stability in charge of small metric changes instead of forcing a switch on every increase.
 */
export const eligibility = (
  neighbour: SiteId,
  destination: SiteId,
  linkCostMs: number,
  advertised: RouteMetric | undefined,
  fd: RouteMetric | undefined,
  isCurrentNextHop = false,
): Eligibility => {
  if (!(linkCostMs < Number.POSITIVE_INFINITY)) return { eligible: false, reason: "link-down", advertised }
  if (neighbour === destination) return { eligible: true, advertised }
  if (advertised === undefined) return { eligible: false, reason: "no-advertisement", advertised }
  if (!(advertised.distanceMs < Number.POSITIVE_INFINITY)) return { eligible: false, reason: "unreachable", advertised }
  if (!isCurrentNextHop && !isFeasible(advertised, fd)) return { eligible: false, reason: "not-feasible", advertised }
  return { eligible: true, advertised }
}

/** A request to destination `destination` for a sequence number of at least `seqno`. */
export interface SeqnoRequest {
  readonly destination: SiteId
  readonly seqno: number
}

/** Per-destination feasible distances of one node. Only ever improves (see `noteAdvertised`). */
export class FeasibilityTable {
  /** A site table, not a Map: read several times per destination per decision. */
  private readonly fd = new SiteTable<RouteMetric>()
  /**
   * The same (seqno, distance) per small site id in packed arrays (`known` 0 = none), for
   * `noteAdvertisedMetric`'s check: it runs per route per advertisement and reading the metric
   * objects (scattered in the heap) was a cache miss each (speed only; `fd` stays the source).
   */
  private known = new Uint8Array(0)
  private seqnos = new Float64Array(0)
  private distances = new Float64Array(0)

  get(destination: SiteId): RouteMetric | undefined {
    return this.fd.get(destination)
  }

  /**
   * `get(destination)`'s metric, for a small id copied from the packed arrays into `out` (which is
   * returned, valid until the next read into it): the feasibility gate reads it for every
   * proposal, and the metric objects are a cache miss each (speed only).
   */
  read(destination: SiteId, out: { seqno: number; distanceMs: number }): RouteMetric | undefined {
    if (!isSmallSite(destination)) return this.fd.get(destination)
    if (destination >= this.known.length || this.known[destination] === 0) return undefined
    out.seqno = this.seqnos[destination]!
    out.distanceMs = this.distances[destination]!
    return out
  }

  /**
   * Records that we advertised `metric` for `destination`. Must be called for every finite
   * metric we send: FD is the best metric ever advertised, which is what makes our
   * neighbours' use of our advertisements safe.
   */
  noteAdvertised(destination: SiteId, metric: RouteMetric): void {
    this.noteAdvertisedMetric(destination, metric.seqno, metric.distanceMs)
  }

  /** `noteAdvertised` of (seqno, distanceMs), allocating a metric only when it is kept (runs per route per advertisement). */
  noteAdvertisedMetric(destination: SiteId, seqno: number, distanceMs: number): void {
    if (!(distanceMs < Number.POSITIVE_INFINITY)) return
    if (isSmallSite(destination)) {
      if (destination >= this.known.length) this.grow(destination)
      const oldSeqno = this.seqnos[destination]!
      // isStrictlyBetter({ seqno, distanceMs }, old) on the packed copy.
      if (
        this.known[destination] === 0 ||
        seqno > oldSeqno ||
        (seqno === oldSeqno && distanceMs < this.distances[destination]!)
      ) {
        this.fd.set(destination, { seqno, distanceMs })
        this.known[destination] = 1
        this.seqnos[destination] = seqno
        this.distances[destination] = distanceMs
      }
      return
    }
    const old = this.fd.get(destination)
    // isStrictlyBetter({ seqno, distanceMs }, old), without the object.
    if (old === undefined || seqno > old.seqno || (seqno === old.seqno && distanceMs < old.distanceMs))
      this.fd.set(destination, { seqno, distanceMs })
  }

  private grow(destination: number): void {
    const size = Math.min(smallSiteLimit, Math.max(256, 2 * (destination + 1)))
    const known = new Uint8Array(size)
    known.set(this.known)
    const seqnos = new Float64Array(size)
    seqnos.set(this.seqnos)
    const distances = new Float64Array(size)
    distances.set(this.distances)
    this.known = known
    this.seqnos = seqnos
    this.distances = distances
  }

  /** The request a starved node sends: one more than the seqno its FD carries. */
  requestFor(destination: SiteId): SeqnoRequest {
    return { destination, seqno: (this.fd.get(destination)?.seqno ?? 0) + 1 }
  }

  entries(): ReadonlyArray<readonly [SiteId, RouteMetric]> {
    return this.fd.entries().map(([d, m]) => [d as SiteId, m] as const)
  }
}

/**
 * The destination's rule: raise its own seqno to the highest one requested for it (never
 * lower it). Jumping straight to the requested value, not +1, also recovers a destination that
 * restarted with a lower seqno than the network remembers.
 */
export const ownSeqnoAfterRequests = (self: SiteId, ownSeqno: number, requests: Iterable<SeqnoRequest>): number => {
  let seqno = ownSeqno
  for (const r of requests) if (r.destination === self && r.seqno > seqno) seqno = r.seqno
  return seqno
}

/** Back-off of the optional seqno requests (see `SeqnoRequestBackoff`). */
export interface SeqnoRequestBackoffConfig {
  /** Minimum time between two optional requests for one destination at first. Default 5 s. */
  readonly initialMillis: number
  /** The interval doubles per request while the wish persists, up to this. Default 60 s. */
  readonly maxMillis: number
}

export const defaultSeqnoRequestBackoff: SeqnoRequestBackoffConfig = { initialMillis: 5_000, maxMillis: 60_000 }

/**
 * Rate limit of the seqno requests a node sends for a better-but-infeasible route while it has
 * a feasible one (Babel rate-limits its requests too). Such a request is optional: the node
 * still routes, loop-free, and every request makes the destination raise its seqno, which
 * resets every node's feasible distance for it. Unlimited, metric noise turned that into
 * steady churn (FD ratchets down to the lowest noisy metric ever advertised, a neighbour's next
 * noisy advertisement fails it, a request, a bump, and again). A starved node's requests do not
 * go through here: they stay immediate.
 *
 * Rule per destination: the first wish of an episode is granted at once; while the wish persists
 * the next grant waits `initialMillis`, then twice that, up to `maxMillis`; an episode ends when
 * no wish came for `maxMillis`.
 */
export class SeqnoRequestBackoff {
  private readonly state = new Map<number, { grantedMillis: number; intervalMillis: number; wishedMillis: number }>()

  constructor(readonly config: SeqnoRequestBackoffConfig = defaultSeqnoRequestBackoff) {}

  /** A request for `destination` is wanted now: may it go out? (Records the grant.) */
  grant(destination: SiteId, nowMillis: number): boolean {
    const { initialMillis, maxMillis } = this.config
    const old = this.state.get(destination)
    const episode = old !== undefined && nowMillis - old.wishedMillis <= maxMillis ? old : undefined
    if (episode !== undefined && nowMillis - episode.grantedMillis < episode.intervalMillis) {
      this.state.set(destination, { ...episode, wishedMillis: nowMillis })
      return false
    }
    this.state.set(destination, {
      grantedMillis: nowMillis,
      intervalMillis: episode === undefined ? initialMillis : Math.min(2 * episode.intervalMillis, maxMillis),
      wishedMillis: nowMillis,
    })
    return true
  }
}
