/**
 * Domain types shared by every part of net-perf: sites, tunnels and the samples probes produce.
 * Every value that crosses a package or process boundary has a Schema here; times are epoch
 * milliseconds passed in by the caller (the engine never reads a clock).
 */
import { Schema } from "effect"

/** A site of the mesh (X in `wgX.Y_vZ`, ASN 64512+X). Any non-negative integer. */
export const SiteId = Schema.Int.pipe(Schema.nonNegative(), Schema.brand("SiteId"))
export type SiteId = typeof SiteId.Type

/** Address family of a tunnel's underlay (the WireGuard endpoint), not of the traffic it carries. */
export const Family = Schema.Literal(4, 6)
export type Family = typeof Family.Type

/** One WireGuard tunnel seen from its local end: `wg<local>.<remote>_v<family>`. */
export const TunnelId = Schema.Struct({
  local: SiteId,
  remote: SiteId,
  family: Family,
})
export type TunnelId = typeof TunnelId.Type

export const tunnelId = (local: number, remote: number, family: Family): TunnelId => ({
  local: SiteId.make(local),
  remote: SiteId.make(remote),
  family,
})

/** Stable string key of a tunnel, identical to its default interface name. */
export const tunnelKey = (t: TunnelId): string => `wg${t.local}.${t.remote}_v${t.family}`

const tunnelNamePattern = /^wg(\d+)\.(\d+)_v([46])$/

/** Parses a default-pattern interface name (`wg3.7_v6`); undefined when it is not one. */
export const parseTunnelName = (name: string): TunnelId | undefined => {
  const m = tunnelNamePattern.exec(name)
  if (m === null) return undefined
  const [, local, remote, family] = m
  if (local === remote) return undefined
  return tunnelId(Number(local), Number(remote), Number(family) as Family)
}

/** Probe kinds that yield one round-trip time (or a loss) per probe. */
export const RttProbeKind = Schema.Literal("udp-echo", "icmp", "tcp")
export type RttProbeKind = typeof RttProbeKind.Type

export const SampleKind = Schema.Literal("udp-echo", "icmp", "tcp", "loss-test", "pathping")
export type SampleKind = typeof SampleKind.Type

/** One probe over one tunnel: its RTT in milliseconds, or `null` when the probe was lost. */
export class RttSample extends Schema.TaggedClass<RttSample>()("RttSample", {
  tunnel: TunnelId,
  kind: RttProbeKind,
  atMillis: Schema.Number,
  rttMs: Schema.NullOr(Schema.Number.pipe(Schema.nonNegative())),
}) {}

/** The outcome of one loss/rate burst over a tunnel. */
export class LossTestSample extends Schema.TaggedClass<LossTestSample>()("LossTestSample", {
  tunnel: TunnelId,
  atMillis: Schema.Number,
  sent: Schema.Int.pipe(Schema.positive()),
  received: Schema.Int.pipe(Schema.nonNegative()),
  reordered: Schema.Int.pipe(Schema.nonNegative()),
  jitterMs: Schema.Number.pipe(Schema.nonNegative()),
  rateBitsPerSecond: Schema.Number.pipe(Schema.nonNegative()),
}) {}

/**
 * A multi-hop measurement (pathping): the sites visited, in order, starting and ending at the
 * origin, with the families of each hop's tunnel (0 = follow the kernel's routing).
 */
export class PathSample extends Schema.TaggedClass<PathSample>()("PathSample", {
  path: Schema.Array(SiteId),
  families: Schema.Array(Schema.Literal(0, 4, 6)),
  atMillis: Schema.Number,
  rttMs: Schema.NullOr(Schema.Number.pipe(Schema.nonNegative())),
  sent: Schema.Int.pipe(Schema.positive()),
  received: Schema.Int.pipe(Schema.nonNegative()),
}) {}

export const Sample = Schema.Union(RttSample, LossTestSample, PathSample)
export type Sample = typeof Sample.Type

/** Health of a tunnel as the aggregator sees it. `unknown` is never treated as good. */
export const TunnelState = Schema.Literal("up", "dead", "unknown")
export type TunnelState = typeof TunnelState.Type

/** What the aggregator knows about one tunnel at one instant (all times epoch ms). */
export const LinkStats = Schema.Struct({
  tunnel: TunnelId,
  state: TunnelState,
  /** Smoothed round-trip time; null before the first reply. */
  rttMs: Schema.NullOr(Schema.Number.pipe(Schema.nonNegative())),
  /** RFC 3550 interarrival jitter estimate of the RTT. */
  jitterMs: Schema.Number.pipe(Schema.nonNegative()),
  /** Decaying-memory loss ratio 0..1. */
  lossRatio: Schema.Number.pipe(Schema.between(0, 1)),
  /** Share of recent time the tunnel was up, 0..1. */
  availability: Schema.Number.pipe(Schema.between(0, 1)),
  lastSampleAtMillis: Schema.NullOr(Schema.Number),
  lastReplyAtMillis: Schema.NullOr(Schema.Number),
})
export type LinkStats = typeof LinkStats.Type

/** Private ASN of a site: 64512 + id. */
export const siteAsn = (site: SiteId): number => 64512 + site

/** One candidate BGP path for a prefix, as BIRD reports it (`show route all`). */
export const BgpPath = Schema.Struct({
  /** CIDR prefix, e.g. `10.201.3.0/24` or `fdac:c9:3::/64`. */
  prefix: Schema.String,
  /** Address family of the prefix (not of the underlay). */
  prefixFamily: Family,
  /** AS path as BIRD prints it, nearest AS first; the last element is the origin. */
  asPath: Schema.Array(Schema.Int.pipe(Schema.nonNegative())),
  /** BGP next-hop address. */
  nextHop: Schema.String,
  /** Outgoing interface BIRD would use (e.g. `wg1.3_v4`). */
  interface: Schema.String,
  /** BIRD's own preferred path for the prefix. */
  primary: Schema.Boolean,
})
export type BgpPath = typeof BgpPath.Type

/** Kernel route protocol number that marks the routes net-perf manages (`ip route … proto 201`). */
export const managedRouteProtocol = 201

const ipv4Cidr = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/
const ipv6Cidr = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\/(\d{1,3})$/

/** True for `a.b.c.d/n` (octets ≤ 255, n ≤ 32) or an IPv6 address with `/n` (n ≤ 128). */
export const isCidr = (s: string): boolean => {
  const v4 = ipv4Cidr.exec(s)
  if (v4 !== null) return v4.slice(1, 5).every((o) => Number(o) <= 255) && Number(v4[5]) <= 32
  const v6 = ipv6Cidr.exec(s)
  return v6 !== null && Number(v6[1]) <= 128 && (s.match(/::/g)?.length ?? 0) <= 1
}

/** A CIDR prefix with an explicit length (`10.201.3.0/24`, `fdac:c9:3::/64`). */
export const Cidr = Schema.String.pipe(
  Schema.filter(isCidr, { message: (s) => `not a CIDR prefix with a length: ${JSON.stringify(s)}` }),
)

/**
 * One kernel route. Its identity, as for `ip route replace`, is (table, prefix, metric): two
 * routes with the same identity cannot coexist. Prefixes compare as strings, so the edge that
 * reads the kernel must normalise them (host routes with `/32` or `/128`, lower-case IPv6).
 */
export const KernelRoute = Schema.Struct({
  prefix: Cidr,
  device: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(15)),
  gateway: Schema.optional(Schema.String),
  source: Schema.optional(Schema.String),
  metric: Schema.Int.pipe(Schema.between(0, 4294967295)),
  protocol: Schema.Int.pipe(Schema.between(0, 255)),
  /** Routing table id; absent = main (254). */
  table: Schema.optional(Schema.Int.pipe(Schema.between(0, 4294967295))),
})
export type KernelRoute = typeof KernelRoute.Type

/** Route operations, as `ip route add|replace|del`. */
export class RouteAdd extends Schema.TaggedClass<RouteAdd>()("RouteAdd", { route: KernelRoute }) {}
export class RouteReplace extends Schema.TaggedClass<RouteReplace>()("RouteReplace", {
  route: KernelRoute,
  previous: KernelRoute,
}) {}
export class RouteDelete extends Schema.TaggedClass<RouteDelete>()("RouteDelete", { route: KernelRoute }) {}
export const RouteOp = Schema.Union(RouteAdd, RouteReplace, RouteDelete)
export type RouteOp = typeof RouteOp.Type

/** A kernel route plan: operations to apply in order. */
export const RoutePlan = Schema.Array(RouteOp)
export type RoutePlan = typeof RoutePlan.Type
