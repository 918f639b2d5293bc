/**
 * The link-state message each node advertises to every peer, and the store of peers' latest
 * messages.
 *
 * Decision a reader must know: a message carries both the origin's measured tunnels (for the
 * graph algorithms) and its advertised distance per destination with the destination-owned
 * sequence number (for the feasibility condition). Messages are ordered by (incarnation, seq):
 * a duplicate or older message is ignored, and the highest order seen is remembered even after
 * the peer ages out, so a late datagram never resurrects old state. A peer silent for longer
 * than `maxAgeMillis` (receive time; clocks are not assumed synchronised) disappears from the
 * view: its links become unknown, never good. On the wire +Infinity is `null`.
 */
import { Data, Effect, Schema } from "effect"
import type { ParseError } from "effect/ParseResult"
import { Family, LinkStats, SiteId } from "./Domain.js"
import type { RouteMetric } from "./Feasibility.js"

const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const Seqno = Schema.Int.pipe(Schema.nonNegative())

/** One of the origin's tunnels: its stats and cost (null = unusable). */
export const TunnelAdvert = Schema.Struct({
  remote: SiteId,
  family: Family,
  stats: LinkStats,
  costMs: Schema.NullOr(NonNegative),
  /** The family the origin currently routes over to this remote (its tunnel choice). */
  selected: Schema.Boolean,
  /**
   * The origin's latest fast probe over it was lost while it is still up (a first miss): the far
   * end raises its own seqno at once, so detours to it are feasible before either end declares
   * the link dead (NodeRouter `suspicionSeqnoGapMillis`). Absent = false.
   */
  suspect: Schema.optional(Schema.Boolean),
})
export type TunnelAdvert = typeof TunnelAdvert.Type

/** The origin's route to a destination: what the feasibility condition reads. */
export const DistanceAdvert = Schema.Struct({
  destination: SiteId,
  /** Sequence number owned by `destination`. */
  seqno: Seqno,
  /** Route metric in ms-equivalent; null = no route (a retraction). */
  distanceMs: Schema.NullOr(NonNegative),
  /** For diagnostics (perfc, the simulator's loop check); never used for decisions. */
  nextHop: Schema.NullOr(SiteId),
})
export type DistanceAdvert = typeof DistanceAdvert.Type

export const SeqnoRequestSchema = Schema.Struct({ destination: SiteId, seqno: Seqno })

export class LinkStateMessage extends Schema.TaggedClass<LinkStateMessage>()("LinkStateMessage", {
  origin: SiteId,
  /** Distinguishes restarts of the origin (e.g. its start time in ms); compared before seq. */
  incarnation: Schema.Number,
  seq: Seqno,
  generatedAtMillis: Schema.Number,
  tunnels: Schema.Array(TunnelAdvert),
  distances: Schema.Array(DistanceAdvert),
  requests: Schema.Array(SeqnoRequestSchema),
}) {}

/** A link-state message that failed validation, naming the bad field. */
export class LinkStateDecodeError extends Data.TaggedError("LinkStateDecodeError")<{
  readonly cause: ParseError
}> {
  override get message(): string {
    return `invalid link-state message: ${this.cause.message}`
  }
}

/** Decodes outside input (JSON-parsed object) into a message or a typed error. */
export const decodeLinkStateMessage = (input: unknown): Effect.Effect<LinkStateMessage, LinkStateDecodeError> =>
  Schema.decodeUnknown(LinkStateMessage)(input).pipe(Effect.mapError((cause) => new LinkStateDecodeError({ cause })))

/** Encodes a message into its wire (JSON-safe) form. */
export const encodeLinkStateMessage = Schema.encodeSync(LinkStateMessage)

/**
 * Site ids below this are table slots (an array access instead of a Map lookup); the engine's
 * other per-site packed arrays (FeasibilityTable, the route memory) use the same bound.
 */
export const smallSiteLimit = 65_536

/** A site id that has a slot in the engine's per-site arrays (`smallSiteLimit`). */
export const isSmallSite = (site: number): boolean => site >= 0 && site < smallSiteLimit && Number.isInteger(site)

export type AcceptResult = "accepted" | "duplicate" | "older"

/** Updated in place on every accepted message of its origin (no allocation per message). */
interface Entry {
  message: LinkStateMessage
  receivedAtMillis: number
  distances: ParsedDistances
  /** The seqno the origin advertises for itself (−1 when it does not). */
  selfSeqno: number
}

/**
 * Data derived once per immutable message object (e.g. its parsed distances), shared by every
 * router that receives that object. A model simulator hands the same object to hundreds of
 * recipients, one after the other, so the lookup sits on the hottest path of a model run: the
 * last message seen per origin is checked by identity first (one array load), and only other
 * messages (reordered, or from another run in the same process) go through the WeakMap. Weak: an
 * entry goes with its message. A daemon decodes a fresh object per datagram, so nothing is
 * shared there, and the result is the same either way.
 */
export const memoPerMessage = <T>(derive: (message: LinkStateMessage) => T): ((message: LinkStateMessage) => T) => {
  const byMessage = new WeakMap<LinkStateMessage, T>()
  const lastMessage: Array<LinkStateMessage | undefined> = []
  const lastValue: Array<T | undefined> = []
  return (message) => {
    const origin = message.origin
    const small = isSmallSite(origin)
    if (small && lastMessage[origin] === message) return lastValue[origin] as T
    let value = byMessage.get(message)
    if (value === undefined) {
      value = derive(message)
      byMessage.set(message, value)
    }
    if (small) {
      // Grown one slot at a time so the arrays stay packed.
      while (lastMessage.length <= origin) {
        lastMessage.push(undefined)
        lastValue.push(undefined)
      }
      lastMessage[origin] = message
      lastValue[origin] = value
    }
    return value
  }
}

/**
 * A message's distances by destination. Usually two dense arrays indexed by destination (seqno
 * NaN = not listed): a message lives in every store for about a second, and a metric object per
 * entry (200 per message at N = 200, each shared by every store) was a large share of what a
 * model run's young generation had to copy and promote; `advertised` makes a metric object per
 * read instead, which dies young. Sparse or large site ids use a site table of metrics.
 */
type ParsedDistances =
  | { readonly dense: true; readonly seqno: Float64Array; readonly distanceMs: Float64Array }
  | { readonly dense: false; readonly table: SiteTable<RouteMetric> }

/** Largest destination id held densely (arrays of max id + 1 entries, at most 4 × the entry count). */
const denseLimit = (entries: number): number => Math.min(smallSiteLimit, Math.max(64, 4 * entries))

/**
 * Parsed distances per message object (see `memoPerMessage`); `offersRoute`: a finite distance to
 * some destination other than the origin (later entries win, as everywhere here).
 */
const parsed = memoPerMessage((message): { distances: ParsedDistances; selfSeqno: number; offersRoute: boolean } => {
  let max = -1
  let dense = true
  for (const d of message.distances) {
    const x = d.destination
    if (!(x >= 0 && Number.isInteger(x))) dense = false
    else if (x > max) max = x
  }
  if (dense && max < denseLimit(message.distances.length)) {
    const seqno = new Float64Array(max + 1).fill(Number.NaN)
    const distanceMs = new Float64Array(max + 1)
    // Later entries for the same destination win, as with a table.
    for (const d of message.distances) {
      seqno[d.destination] = d.seqno
      distanceMs[d.destination] = d.distanceMs ?? Number.POSITIVE_INFINITY
    }
    const own = message.origin >= 0 && message.origin <= max ? seqno[message.origin]! : Number.NaN
    let offersRoute = false
    for (let d = 0; d <= max && !offersRoute; d++)
      offersRoute = d !== message.origin && !Number.isNaN(seqno[d]!) && distanceMs[d]! < Number.POSITIVE_INFINITY
    return { distances: { dense: true, seqno, distanceMs }, selfSeqno: Number.isNaN(own) ? -1 : own, offersRoute }
  }
  const table = new SiteTable<RouteMetric>()
  for (const d of message.distances) {
    table.set(d.destination, { seqno: d.seqno, distanceMs: d.distanceMs ?? Number.POSITIVE_INFINITY })
  }
  let offersRoute = false
  table.forEach((m, d) => {
    if (d !== message.origin && m.distanceMs < Number.POSITIVE_INFINITY) offersRoute = true
  })
  return { distances: { dense: false, table }, selfSeqno: table.get(message.origin)?.seqno ?? -1, offersRoute }
})

/**
 * The message offers a route to some destination other than its origin. A site that offers
 * none forwards nothing (its start-up hold-down, or starved for everything): no transit.
 */
export const offersRoute = (message: LinkStateMessage): boolean => parsed(message).offersRoute

/** Whether dense parsed distances list `destination` (its slot exists and holds a seqno). */
const listedDensely = (distances: ParsedDistances & { readonly dense: true }, destination: number): boolean =>
  destination >= 0 &&
  destination < distances.seqno.length &&
  Number.isInteger(destination) &&
  !Number.isNaN(distances.seqno[destination]!)

/** What parsed distances say for a destination (a fresh metric), undefined when not listed. */
const distanceIn = (distances: ParsedDistances, destination: number): RouteMetric | undefined => {
  if (!distances.dense) return distances.table.get(destination)
  if (!listedDensely(distances, destination)) return undefined
  return { seqno: distances.seqno[destination]!, distanceMs: distances.distanceMs[destination]! }
}

const compareOrder = (a: { incarnation: number; seq: number }, b: typeof a): number =>
  a.incarnation !== b.incarnation ? a.incarnation - b.incarnation : a.seq - b.seq

/**
 * A map keyed by site id: an array for the usual small ids, a Map for the rest. Iteration is in
 * ascending site order. A model run keeps hundreds of routers in one process and each message
 * delivery touches several of these per router; a Map lookup there was a chain of cache misses.
 */
export class SiteTable<T> {
  private readonly small: Array<T | undefined> = []
  private readonly large = new Map<number, T>()
  private count = 0

  get size(): number {
    return this.count
  }

  get(site: number): T | undefined {
    return isSmallSite(site) ? this.small[site] : this.large.get(site)
  }

  set(site: number, value: T): void {
    if (isSmallSite(site)) {
      // Grown one slot at a time so the array stays packed (never a sparse dictionary).
      while (this.small.length <= site) this.small.push(undefined)
      if (this.small[site] === undefined) this.count++
      this.small[site] = value
    } else {
      if (!this.large.has(site)) this.count++
      this.large.set(site, value)
    }
  }

  delete(site: number): void {
    if (isSmallSite(site)) {
      if (site < this.small.length && this.small[site] !== undefined) {
        this.small[site] = undefined
        this.count--
      }
    } else if (this.large.delete(site)) this.count--
  }

  /** Every (site, value), ascending by site. */
  entries(): Array<readonly [number, T]> {
    const out: Array<readonly [number, T]> = []
    for (let site = 0; site < this.small.length; site++) {
      const v = this.small[site]
      if (v !== undefined) out.push([site, v])
    }
    if (this.large.size > 0) out.push(...[...this.large].sort((a, b) => a[0] - b[0]))
    return out
  }

  /** Calls `f` for every (site, value), ascending by site (no allocation for small ids). */
  forEach(f: (value: T, site: number) => void): void {
    for (let site = 0; site < this.small.length; site++) {
      const v = this.small[site]
      if (v !== undefined) f(v, site)
    }
    if (this.large.size > 0) for (const [site, v] of [...this.large].sort((a, b) => a[0] - b[0])) f(v, site)
  }
}

/** Latest message per origin, with age-out. */
export class LinkStateStore {
  private readonly entries = new SiteTable<Entry>()
  /** Highest (incarnation, seq) seen per origin, kept after age-out; NaN = none (small ids; others in `highestLarge`). */
  private highestIncarnation = new Float64Array(0)
  private highestSeq = new Float64Array(0)
  private readonly highestLarge = new Map<number, { incarnation: number; seq: number }>()
  /** Increases on every change of the live view (for callers' caches). */
  version = 0
  /**
   * Increases whenever the sequence number some origin advertises for itself may have gone
   * down (its entry aged out, or a message with a lower one, e.g. after a restart). Between two
   * changes of this counter, `advertised(o, o).seqno` of every origin only grows (for callers'
   * caches of decisions that depend on it monotonically).
   */
  selfSeqnoDropEpoch = 0

  constructor(readonly maxAgeMillis: number) {}

  accept(message: LinkStateMessage, nowMillis: number): AcceptResult {
    const origin = message.origin
    if (isSmallSite(origin)) {
      if (origin >= this.highestSeq.length) {
        const size = Math.min(smallSiteLimit, Math.max(256, 2 * (origin + 1)))
        const incarnation = new Float64Array(size).fill(Number.NaN)
        incarnation.set(this.highestIncarnation)
        const seq = new Float64Array(size).fill(Number.NaN)
        seq.set(this.highestSeq)
        this.highestIncarnation = incarnation
        this.highestSeq = seq
      }
      const seenSeq = this.highestSeq[origin]!
      if (!Number.isNaN(seenSeq)) {
        const seenIncarnation = this.highestIncarnation[origin]!
        const order =
          message.incarnation !== seenIncarnation ? message.incarnation - seenIncarnation : message.seq - seenSeq
        if (order === 0) return "duplicate"
        if (order < 0) return "older"
      }
      this.highestIncarnation[origin] = message.incarnation
      this.highestSeq[origin] = message.seq
    } else {
      const seen = this.highestLarge.get(origin)
      if (seen !== undefined) {
        const order = compareOrder(message, seen)
        if (order === 0) return "duplicate"
        if (order < 0) return "older"
      }
      // The message itself carries its order: no allocation per accepted message.
      this.highestLarge.set(origin, message)
    }
    const entry = this.entries.get(origin)
    const { distances, selfSeqno } = parsed(message)
    if (entry === undefined) this.entries.set(origin, { message, receivedAtMillis: nowMillis, distances, selfSeqno })
    else {
      if (selfSeqno < entry.selfSeqno) this.selfSeqnoDropEpoch++
      entry.message = message
      entry.receivedAtMillis = nowMillis
      entry.distances = distances
      entry.selfSeqno = selfSeqno
    }
    this.version++
    return "accepted"
  }

  /** Drops origins silent for longer than maxAgeMillis; returns them (ascending). */
  expire(nowMillis: number): ReadonlyArray<SiteId> {
    const gone = this.staleOrigins(nowMillis)
    for (const origin of gone) this.entries.delete(origin)
    if (gone.length > 0) {
      this.version++
      this.selfSeqnoDropEpoch++
    }
    return gone
  }

  /** The origins `expire(nowMillis)` would drop, without dropping them (ascending). */
  staleOrigins(nowMillis: number): ReadonlyArray<SiteId> {
    const out: Array<SiteId> = []
    this.entries.forEach((e, origin) => {
      if (nowMillis - e.receivedAtMillis > this.maxAgeMillis) out.push(origin as SiteId)
    })
    return out
  }

  /** The latest live message of an origin (call `expire` first for an exact view). */
  get(origin: SiteId): LinkStateMessage | undefined {
    return this.entries.get(origin)?.message
  }

  /** What `origin` advertises for `destination`, undefined when it says nothing. */
  advertised(origin: SiteId, destination: SiteId): RouteMetric | undefined {
    const entry = this.entries.get(origin)
    return entry === undefined ? undefined : distanceIn(entry.distances, destination)
  }

  /**
   * `advertised(origin, destination)` copied into `out`, without an object per call (a decision
   * reads one per destination); false, `out` untouched, when there is none.
   */
  advertisedInto(origin: SiteId, destination: SiteId, out: { seqno: number; distanceMs: number }): boolean {
    const entry = this.entries.get(origin)
    if (entry === undefined) return false
    const distances = entry.distances
    if (!distances.dense) {
      const m = distances.table.get(destination)
      if (m === undefined) return false
      out.seqno = m.seqno
      out.distanceMs = m.distanceMs
      return true
    }
    if (!listedDensely(distances, destination)) return false
    out.seqno = distances.seqno[destination]!
    out.distanceMs = distances.distanceMs[destination]!
    return true
  }

  receivedAtMillis(origin: SiteId): number | undefined {
    return this.entries.get(origin)?.receivedAtMillis
  }

  /** Live messages in ascending origin order. */
  messages(): ReadonlyArray<LinkStateMessage> {
    return this.entries.entries().map(([, e]) => e.message)
  }

  origins(): ReadonlyArray<SiteId> {
    return this.entries.entries().map(([origin]) => origin as SiteId)
  }
}

/** When a route's metric moved enough to be advertised before the periodic message is due. */
export interface AdvertTriggerThresholds {
  /** A metric change above this many ms is advertised at once (default 1). */
  readonly absoluteMs: number
  /** … and above this share of the advertised metric (default 0.05). */
  readonly relative: number
}

export const defaultAdvertTriggerThresholds: AdvertTriggerThresholds = { absoluteMs: 1, relative: 0.05 }

/**
 * True when a route's metric moved from the advertised `before` to `after` by more than
 * max(absolute, relative × before), or into or out of +Infinity. The daemon's advert trigger and
 * the model simulator's mirror of it share this rule.
 */
export const advertMetricMoved = (before: number, after: number, t: AdvertTriggerThresholds): boolean => {
  if (before === after) return false
  if (!Number.isFinite(before) || !Number.isFinite(after)) return true
  return Math.abs(after - before) > Math.max(t.absoluteMs, t.relative * Math.abs(before))
}
