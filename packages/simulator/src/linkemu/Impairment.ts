/**
 * Config types of the link emulator: what one directed link does to datagrams, and how a
 * relay pair is described. These are wire types (control protocol, in-process API); runtime
 * state lives in Link.ts and Relay.ts. `lossRatio` is clamped to 0..1 rather than rejected,
 * as tailscale's vnet does, so a scenario asking for 1.2 means "everything is lost".
 */
import { isIPv4, isIPv6 } from "node:net"
import { Schema } from "effect"

const NonNegativeFinite = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/** Direction of a datagram through a pair: from end `a` to end `b`, or back. */
export const Direction = Schema.Literal("a->b", "b->a")
export type Direction = typeof Direction.Type

/** A direction, or both at once (for `setImpairment`). */
export const DirectionSelector = Schema.Literal("a->b", "b->a", "both")
export type DirectionSelector = typeof DirectionSelector.Type

export const JitterDistribution = Schema.Literal("uniform", "normal")
export type JitterDistribution = typeof JitterDistribution.Type

/** Everything one directed link does to the datagrams crossing it. */
export const Impairment = Schema.Struct({
  /** One-way propagation delay added to every datagram. */
  delayMs: NonNegativeFinite,
  /** Spread of the delay: uniform in [delay-jitter, delay+jitter], or delay + jitter*N(0,1); clamped at 0. */
  jitterMs: NonNegativeFinite,
  jitterDistribution: JitterDistribution,
  /** true: every datagram leaves at its own due time, so jitter reorders (netem's behaviour); false: FIFO. */
  reorder: Schema.Boolean,
  /** Independent drop probability per datagram, clamped to 0..1. */
  lossRatio: Schema.Number.pipe(Schema.finite(), Schema.clamp(0, 1)),
  /** Serialisation rate of the IP packet (UDP payload + 28 bytes IPv4, + 48 bytes IPv6); 0 = unlimited. */
  rateBitsPerSecond: NonNegativeFinite,
  /** Datagrams the direction may hold (serialising or in flight), like netem's `limit`; more are dropped. */
  queueLimitPackets: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  /** Blackhole: every arriving datagram is dropped; datagrams already in flight still arrive. */
  down: Schema.Boolean,
})
export type Impairment = typeof Impairment.Type

export const defaultImpairment: Impairment = {
  delayMs: 0,
  jitterMs: 0,
  jitterDistribution: "uniform",
  reorder: true,
  lossRatio: 0,
  rateBitsPerSecond: 0,
  queueLimitPackets: 1000,
  down: false,
}

/** Any subset of the impairment fields; absent fields keep their current value. */
export const ImpairmentPatch = Schema.Struct({
  delayMs: Schema.optionalWith(Impairment.fields.delayMs, { exact: true }),
  jitterMs: Schema.optionalWith(Impairment.fields.jitterMs, { exact: true }),
  jitterDistribution: Schema.optionalWith(Impairment.fields.jitterDistribution, { exact: true }),
  reorder: Schema.optionalWith(Impairment.fields.reorder, { exact: true }),
  lossRatio: Schema.optionalWith(Impairment.fields.lossRatio, { exact: true }),
  rateBitsPerSecond: Schema.optionalWith(Impairment.fields.rateBitsPerSecond, { exact: true }),
  queueLimitPackets: Schema.optionalWith(Impairment.fields.queueLimitPackets, { exact: true }),
  down: Schema.optionalWith(Impairment.fields.down, { exact: true }),
})
export type ImpairmentPatch = typeof ImpairmentPatch.Type
/** What callers may pass: lossRatio outside 0..1 is accepted and clamped on decode. */
export type ImpairmentPatchInput = typeof ImpairmentPatch.Encoded

export const applyPatch = (current: Impairment, patch: ImpairmentPatch): Impairment => ({ ...current, ...patch })

const Address = Schema.String.pipe(
  Schema.filter((s) => isIPv4(s) || isIPv6(s), { message: (i) => `not an IP address: ${JSON.stringify(i.actual)}` }),
)

/** A UDP endpoint. Port 0 is allowed only where the relay picks the port (`listen`). */
export const Endpoint = Schema.Struct({
  address: Address,
  port: Schema.Int.pipe(Schema.between(0, 65535)),
})
export type Endpoint = typeof Endpoint.Type

export const Family = Schema.Literal(4, 6)
export type Family = typeof Family.Type

/** One relay socket for one site pair and underlay family; both WireGuard ends point at `listen`. */
export const PairSpec = Schema.Struct({
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  family: Family,
  listen: Endpoint,
  a: Endpoint,
  b: Endpoint,
  aToB: Schema.optionalWith(ImpairmentPatch, { exact: true }),
  bToA: Schema.optionalWith(ImpairmentPatch, { exact: true }),
}).pipe(
  Schema.filter((spec) => {
    const fits = (e: Endpoint) => (spec.family === 4 ? isIPv4(e.address) : isIPv6(e.address))
    if (!fits(spec.listen)) return `listen address ${spec.listen.address} is not IPv${spec.family}`
    if (!fits(spec.a)) return `end a address ${spec.a.address} is not IPv${spec.family}`
    if (!fits(spec.b)) return `end b address ${spec.b.address} is not IPv${spec.family}`
    if (spec.a.port === 0 || spec.b.port === 0) return "end ports must be fixed (non-zero)"
    return true
  }),
)
export type PairSpec = typeof PairSpec.Type
export type PairSpecInput = typeof PairSpec.Encoded

export const DirectionStats = Schema.Struct({
  received: Schema.Number,
  forwarded: Schema.Number,
  forwardedBytes: Schema.Number,
  droppedLoss: Schema.Number,
  droppedDown: Schema.Number,
  droppedQueue: Schema.Number,
  sendErrors: Schema.Number,
  inFlight: Schema.Number,
  /** Sum, over released datagrams, of how late the relay released them after their due time. */
  releaseLatenessTotalMs: Schema.Number,
  releaseLatenessMaxMs: Schema.Number,
  /** Datagrams the relay released more than 1 ms after their due time (scheduling stalls). */
  releasedLateOver1Ms: Schema.Number,
  impairment: Impairment,
})
export type DirectionStats = typeof DirectionStats.Type

export const PairStats = Schema.Struct({
  id: Schema.String,
  family: Family,
  listen: Endpoint,
  a: Endpoint,
  b: Endpoint,
  /** Datagrams that reached the relay socket from neither end (dropped). */
  invalidSource: Schema.Number,
  directions: Schema.Struct({ "a->b": DirectionStats, "b->a": DirectionStats }),
})
export type PairStats = typeof PairStats.Type

export const Impairments = Schema.Struct({ "a->b": Impairment, "b->a": Impairment })
export type Impairments = typeof Impairments.Type
