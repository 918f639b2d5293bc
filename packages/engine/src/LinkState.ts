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

export type AcceptResult = "accepted" | "duplicate" | "older"

/** Updated in place on every accepted message of its origin (no allocation per message). */
interface Entry {
  message: LinkStateMessage
  receivedAtMillis: number
  distances: ReadonlyMap<number, RouteMetric>
}

/**
 * Parsed distances per message object. Messages are immutable, and a model simulator delivers
 * the same object to every recipient: parsing once per message instead of once per recipient
 * divides that work and its garbage by N (a daemon decodes a fresh object per datagram, so
 * nothing changes there). Weak: an entry goes with its message.
 */
const distancesOf = new WeakMap<LinkStateMessage, ReadonlyMap<number, RouteMetric>>()

const parsedDistances = (message: LinkStateMessage): ReadonlyMap<number, RouteMetric> => {
  let distances = distancesOf.get(message)
  if (distances === undefined) {
    const map = new Map<number, RouteMetric>()
    for (const d of message.distances) {
      map.set(d.destination, { seqno: d.seqno, distanceMs: d.distanceMs ?? Number.POSITIVE_INFINITY })
    }
    distances = map
    distancesOf.set(message, distances)
  }
  return distances
}

const compareOrder = (a: { incarnation: number; seq: number }, b: typeof a): number =>
  a.incarnation !== b.incarnation ? a.incarnation - b.incarnation : a.seq - b.seq

/** Latest message per origin, with age-out. */
export class LinkStateStore {
  private readonly entries = new Map<number, Entry>()
  private readonly highest = new Map<number, { incarnation: number; seq: number }>()
  /** Increases on every change of the live view (for callers' caches). */
  version = 0

  constructor(readonly maxAgeMillis: number) {}

  accept(message: LinkStateMessage, nowMillis: number): AcceptResult {
    const seen = this.highest.get(message.origin)
    if (seen !== undefined) {
      const order = compareOrder(message, seen)
      if (order === 0) return "duplicate"
      if (order < 0) return "older"
    }
    // The message itself carries its order: no allocation per accepted message.
    this.highest.set(message.origin, message)
    const entry = this.entries.get(message.origin)
    if (entry === undefined)
      this.entries.set(message.origin, { message, receivedAtMillis: nowMillis, distances: parsedDistances(message) })
    else {
      entry.message = message
      entry.receivedAtMillis = nowMillis
      entry.distances = parsedDistances(message)
    }
    this.version++
    return "accepted"
  }

  /** Drops origins silent for longer than maxAgeMillis; returns them. */
  expire(nowMillis: number): ReadonlyArray<SiteId> {
    const gone: Array<SiteId> = []
    for (const [origin, e] of this.entries) {
      if (nowMillis - e.receivedAtMillis > this.maxAgeMillis) {
        this.entries.delete(origin)
        gone.push(origin as SiteId)
      }
    }
    if (gone.length > 0) this.version++
    return gone
  }

  /** The origins `expire(nowMillis)` would drop, without dropping them. */
  staleOrigins(nowMillis: number): ReadonlyArray<SiteId> {
    const out: Array<SiteId> = []
    for (const [origin, e] of this.entries)
      if (nowMillis - e.receivedAtMillis > this.maxAgeMillis) out.push(origin as SiteId)
    return out
  }

  /** The latest live message of an origin (call `expire` first for an exact view). */
  get(origin: SiteId): LinkStateMessage | undefined {
    return this.entries.get(origin)?.message
  }

  /** What `origin` advertises for `destination`, undefined when it says nothing. */
  advertised(origin: SiteId, destination: SiteId): RouteMetric | undefined {
    return this.entries.get(origin)?.distances.get(destination)
  }

  receivedAtMillis(origin: SiteId): number | undefined {
    return this.entries.get(origin)?.receivedAtMillis
  }

  /** Live messages in ascending origin order. */
  messages(): ReadonlyArray<LinkStateMessage> {
    return [...this.entries.values()].map((e) => e.message).sort((a, b) => a.origin - b.origin)
  }

  origins(): ReadonlyArray<SiteId> {
    return [...this.entries.keys()].sort((a, b) => a - b) as Array<SiteId>
  }
}
