/**
 * One node's router: the facade the daemon and the model simulator drive. Samples of its own
 * tunnels, peers' link-state messages and BIRD's paths go in; a routing decision per
 * destination, the node's own link-state message and the pathping requests come out.
 *
 * Decision a reader must know: deterministic and free of I/O and clocks (time is an argument;
 * mutable state lives inside). `advertise` advertises the routes of the LAST `decide`, so the
 * caller must install a decision before advertising it; that order, and feasible distances
 * that only improve, are what keep hop-by-hop forwarding loop-free (README, "Loop freedom").
 * After a start the router installs nothing for `startupHoldDownMillis`, long enough for
 * peers to drop routes learnt from this node's previous life.
 */
import * as Aggregation from "./Aggregation.js"
import {
  type AlgorithmName,
  algorithmNames,
  algorithms,
  type BgpCandidate,
  bestFeasible,
  bgpCandidatesFor,
  type ChosenRoute,
  chooseRoute,
  type FallbackReason,
  frozen,
  noFallbacks,
  noFeasibleNextHop,
  type Proposal,
  type RouteMemory,
  type RoutingView,
  stabilityFor,
  TreeProposal,
} from "./Algorithms.js"
import { type CostModel, type CostWeights, defaultCostWeights, linkCost } from "./Cost.js"
import {
  type BgpPath,
  type Family,
  type KernelRoute,
  type LinkStats,
  managedRouteProtocol,
  type Sample,
  SiteId,
  siteAsn,
  type TunnelId,
  tunnelKey,
} from "./Domain.js"
import {
  defaultSeqnoRequestBackoff,
  type Eligibility,
  eligibility,
  FeasibilityTable,
  type RouteMetric,
  type SeqnoRequest,
  SeqnoRequestBackoff,
  type SeqnoRequestBackoffConfig,
} from "./Feasibility.js"
import {
  dijkstra,
  FrozenTreePaths,
  IncrementalSearch,
  type IndexedGraph,
  type LinkRow,
  linkRow,
  MeshGraph,
  type SearchBuffers,
  SearchScratch,
  type ShortestPathTree,
} from "./Graph.js"
import {
  isSmallSite,
  LinkStateMessage,
  LinkStateStore,
  memoPerMessage,
  offersRoute,
  SiteTable,
  smallSiteLimit,
  type TunnelAdvert,
} from "./LinkState.js"
import {
  defaultMeasuredConfig,
  type MeasuredConfig,
  MeasuredPathStore,
  type PathProbeRequest,
} from "./MeasuredPaths.js"
import * as Stability from "./Stability.js"
import type { TunnelDecision } from "./TunnelChoice.js"

export interface NodeRouterConfigInput {
  readonly self: number
  /** Default "graph-least-cost". */
  readonly algorithm?: AlgorithmName
  /** Tried in order when the algorithm cannot route a destination. Default: the other three in `algorithmNames` order. */
  readonly fallback?: ReadonlyArray<AlgorithmName>
  /** Route stability (Stability.ts defaults: 2 ms, 10 %, 1.5σ, 30 s). */
  readonly stability?: Partial<Stability.StabilityConfig>
  /** IPv4/IPv6 tunnel choice per peer (same defaults). */
  readonly tunnelStability?: Partial<Stability.StabilityConfig>
  readonly aggregation?: Partial<Aggregation.AggregationConfig>
  readonly costWeights?: Partial<CostWeights>
  /**
   * Link cost model wherever the router turns LinkStats into a cost (own links, with their
   * IPv4/IPv6 choice, and the tunnel costs it advertises): "default" = Cost.cost, "legacy" =
   * Cost.legacyCost (REFERENCE §5, defect fixed; for before/after comparisons). Default "default".
   */
  readonly costModel?: CostModel
  /** A peer silent this long disappears from the view. Default 30 s. */
  readonly linkStateMaxAgeMillis?: number
  /**
   * No routes this long after the first call. Default linkStateMaxAgeMillis + 10 s: every peer
   * has then seen our retractions or aged our previous life's messages out, and decided since
   * (assuming peers decide at least every 10 s).
   */
  readonly startupHoldDownMillis?: number
  /** How long a seqno request is repeated in our messages. Default 10 s. */
  readonly seqnoRequestLifetimeMillis?: number
  /**
   * Back-off of the requests for a better-but-infeasible route while a feasible one exists
   * (Feasibility.SeqnoRequestBackoff). Default 5 s doubling to 60 s. Starved requests are immediate.
   */
  readonly seqnoRequestBackoff?: Partial<SeqnoRequestBackoffConfig>
  /**
   * An optional request (a better route refused only for feasibility while a feasible one is in
   * use) also needs a gain above this many ms, beside the switch threshold. Default 5. Switching
   * between feasible next hops on a 2 ms gain (the stability margin) is local and cheap; a request
   * raises the destination's seqno mesh-wide, and with the 2 ms margin a steady mesh with ±2 ms
   * noise kept asking (SeqnoChurn.test.ts: more than n raises in 600 s at n = 6).
   */
  readonly requestMinGainMs?: number
  /** Floor of a link's share of a route metric, so metrics strictly grow per hop. Default 0.01 ms. */
  readonly minLinkMetricMs?: number
  readonly measured?: Partial<MeasuredConfig>
  /** Restart marker in our messages. Default: the first time passed in. */
  readonly incarnation?: number
  /**
   * Peer verdicts: an own tunnel its far end reports dead in its link state counts as dead here
   * too, until one of our own probes over it is answered or the far end reports it alive again.
   * Both ends must move their routes and the later detector bounds the reaction; this makes it
   * the earlier one. Default false (the daemon turns it on; README, "Peer verdicts").
   */
  readonly peerVerdicts?: boolean
  /**
   * Raise our own seqno at the first lost fast probe on an up tunnel, at most once per this many
   * ms (+Infinity = never). A failure next to us leaves sites that reach us over the failing link
   * starved until our raised seqno reaches them through a neighbour; raised at the first miss, it
   * is usually there before the link is declared dead (README, "Seqno on suspicion"). Raising our
   * own seqno is always loop-safe; the cost is one triggered message per site per raise. Default
   * +Infinity (the daemon sets 5 s).
   */
  readonly suspicionSeqnoGapMillis?: number
  /** AS number → site; default 64512..65534 → asn − 64512, others outside the mesh. */
  readonly siteOfAsn?: (asn: number) => SiteId | undefined
}

export interface NodeRouterConfig {
  readonly self: SiteId
  readonly algorithm: AlgorithmName
  readonly chain: ReadonlyArray<AlgorithmName>
  readonly stability: Stability.StabilityConfig
  readonly tunnelStability: Stability.StabilityConfig
  readonly aggregation: Aggregation.AggregationConfig
  readonly costWeights: CostWeights
  readonly costModel: CostModel
  readonly linkStateMaxAgeMillis: number
  readonly startupHoldDownMillis: number
  readonly seqnoRequestLifetimeMillis: number
  readonly seqnoRequestBackoff: SeqnoRequestBackoffConfig
  readonly requestMinGainMs: number
  readonly minLinkMetricMs: number
  readonly measured: MeasuredConfig
  readonly incarnation: number | undefined
  readonly peerVerdicts: boolean
  readonly suspicionSeqnoGapMillis: number
  readonly siteOfAsn: (asn: number) => SiteId | undefined
}

export const defaultSiteOfAsn = (asn: number): SiteId | undefined =>
  asn >= siteAsn(SiteId.make(0)) && asn <= 65534 ? SiteId.make(asn - 64512) : undefined

export const resolveConfig = (input: NodeRouterConfigInput): NodeRouterConfig => {
  const algorithm = input.algorithm ?? "graph-least-cost"
  const fallback = input.fallback ?? algorithmNames.filter((a) => a !== algorithm && a !== "measured-fastest")
  const chain = [algorithm, ...fallback.filter((a) => a !== algorithm)].filter((a, i, all) => all.indexOf(a) === i)
  const linkStateMaxAgeMillis = input.linkStateMaxAgeMillis ?? 30_000
  return {
    self: SiteId.make(input.self),
    algorithm,
    chain,
    stability: { ...Stability.defaultStabilityConfig, ...input.stability },
    tunnelStability: { ...Stability.defaultStabilityConfig, ...input.tunnelStability },
    aggregation: { ...Aggregation.defaultAggregationConfig, ...input.aggregation },
    costWeights: { ...defaultCostWeights, ...input.costWeights },
    costModel: input.costModel ?? "default",
    linkStateMaxAgeMillis,
    startupHoldDownMillis: input.startupHoldDownMillis ?? linkStateMaxAgeMillis + 10_000,
    seqnoRequestLifetimeMillis: input.seqnoRequestLifetimeMillis ?? 10_000,
    seqnoRequestBackoff: { ...defaultSeqnoRequestBackoff, ...input.seqnoRequestBackoff },
    requestMinGainMs: input.requestMinGainMs ?? 5,
    minLinkMetricMs: input.minLinkMetricMs ?? 0.01,
    measured: { ...defaultMeasuredConfig, ...input.measured },
    incarnation: input.incarnation,
    peerVerdicts: input.peerVerdicts ?? false,
    suspicionSeqnoGapMillis: input.suspicionSeqnoGapMillis ?? Number.POSITIVE_INFINITY,
    siteOfAsn: input.siteOfAsn ?? defaultSiteOfAsn,
  }
}

/** The route to one destination. */
export interface RouteChoice {
  readonly destination: SiteId
  /** null = no managed route (BIRD's own route applies). */
  readonly nextHop: SiteId | null
  /** Our tunnel to the next hop (family from the tunnel choice). */
  readonly tunnel: TunnelId | null
  readonly interfaceName: string | null
  /** The producing algorithm's cost (AS hops for shortest-bgp, measured RTT cost for measured-fastest). */
  readonly costMs: number
  /** Link cost to the next hop + its advertised distance: the metric we advertise. */
  readonly metricMs: number
  /** Destination-owned sequence number of the route. */
  readonly seqno: number
  /** Expected path [self, …, destination] as the producing algorithm sees it. */
  readonly path: ReadonlyArray<SiteId>
  readonly algorithm: AlgorithmName | null
  /** Why each algorithm before `algorithm` in the chain (all of them when none routed) could not. */
  readonly fallbacks: ReadonlyArray<FallbackReason>
  readonly stability: Stability.DecisionReason | "none" | "hold-down"
  /** Routes exist but none is feasible: a seqno request goes out with our next advertisement. */
  readonly starved: boolean
  readonly feasibleDistance: RouteMetric | null
}

/** One algorithm's own best feasible proposal for one destination (NodeRouter.explain). */
export interface ExplainedRoute {
  readonly destination: SiteId
  /** null = this algorithm has no feasible proposal; `reason` says why. */
  readonly nextHop: SiteId | null
  /** The algorithm's cost (AS hops for shortest-bgp); +Infinity without a proposal. */
  readonly costMs: number
  /** Expected path [self, …, destination]; [] without a proposal. */
  readonly path: ReadonlyArray<SiteId>
  readonly reason?: string
}

export interface AlgorithmExplanation {
  readonly algorithm: AlgorithmName
  /** Sorted by destination, like RoutingDecision.routes. */
  readonly routes: ReadonlyArray<ExplainedRoute>
}

export interface RoutingDecision {
  readonly self: SiteId
  readonly atMillis: number
  /** Sorted by destination. */
  readonly routes: ReadonlyArray<RouteChoice>
  readonly byDestination: ReadonlyMap<number, RouteChoice>
  /**
   * The same routes as columns (entry i = routes[i]), for callers that read every route of every
   * decision (the model simulator): reading them builds no route objects. Set by `NodeRouter`.
   */
  readonly columns?: RouteColumns
}

/** A decision's routes as columns; entry i is `routes[i]`'s. */
export interface RouteColumns {
  readonly count: number
  readonly destination: ReadonlyArray<SiteId>
  /** −1 = no route (`nextHop` null). */
  readonly nextHop: Float64Array
  /** The tunnel's family; 0 = no tunnel. */
  readonly family: Uint8Array
  readonly costMs: Float64Array
  readonly metricMs: Float64Array
  readonly seqno: Float64Array
  /** 1 = starved. */
  readonly starved: Uint8Array
}

const noPath: ReadonlyArray<SiteId> = []

/** A decision's path reference: the path, or the frozen tree it is read from (see `decide`). */
const pathOf = (ref: unknown, destination: SiteId): ReadonlyArray<SiteId> =>
  ref instanceof FrozenTreePaths ? ref.pathTo(destination) : (ref as ReadonlyArray<SiteId>)

/**
 * A decision held as columns, its route objects built on first read of `routes` (and the
 * `byDestination` map on first read of it). A model run decides ≈ 270 times per simulated second
 * at N = 200 and never reads route objects: 200 of them per decision, each living until the next
 * decision, were a large share of what the collector copied and promoted (speed only; the routes
 * read are field for field the ones built at once before).
 */
class Decision implements RoutingDecision, RouteColumns {
  // Private fields (#): not own enumerable properties, so two decisions with the same routes are
  // deep-equal whichever of them had its route objects built.
  #map: Map<number, RouteChoice> | undefined
  #built: ReadonlyArray<RouteChoice> | undefined
  readonly #tunnelOf: (neighbour: SiteId, family: Family) => { tunnel: TunnelId; interfaceName: string }
  readonly nextHop: Float64Array
  readonly family: Uint8Array
  readonly costMs: Float64Array
  readonly metricMs: Float64Array
  readonly seqno: Float64Array
  readonly starved: Uint8Array
  /** Per route 5 references: path, fallbacks, feasible distance, stability, algorithm. */
  readonly refs: Array<unknown>
  constructor(
    readonly self: SiteId,
    readonly atMillis: number,
    /** The router's destination list (shared, never mutated). */
    readonly destination: ReadonlyArray<SiteId>,
    tunnelOf: (neighbour: SiteId, family: Family) => { tunnel: TunnelId; interfaceName: string },
  ) {
    this.#tunnelOf = tunnelOf
    const n = destination.length
    const buffer = new ArrayBuffer(n * 34)
    this.nextHop = new Float64Array(buffer, 0, n)
    this.costMs = new Float64Array(buffer, 8 * n, n)
    this.metricMs = new Float64Array(buffer, 16 * n, n)
    this.seqno = new Float64Array(buffer, 24 * n, n)
    this.family = new Uint8Array(buffer, 32 * n, n)
    this.starved = new Uint8Array(buffer, 33 * n, n)
    this.refs = new Array(5 * n)
  }
  get count(): number {
    return this.destination.length
  }
  get columns(): RouteColumns {
    return this
  }
  get routes(): ReadonlyArray<RouteChoice> {
    this.#built ??= this.destination.map((destination, i): RouteChoice => {
      const nh = this.nextHop[i]!
      const nextHop = nh < 0 ? null : (nh as SiteId)
      const t = nextHop === null ? undefined : this.#tunnelOf(nextHop, this.family[i] as Family)
      return {
        destination,
        nextHop,
        tunnel: t?.tunnel ?? null,
        interfaceName: t?.interfaceName ?? null,
        costMs: this.costMs[i]!,
        metricMs: this.metricMs[i]!,
        seqno: this.seqno[i]!,
        path: pathOf(this.refs[5 * i], destination),
        algorithm: this.refs[5 * i + 4] as AlgorithmName | null,
        fallbacks: this.refs[5 * i + 1] as ReadonlyArray<FallbackReason>,
        stability: this.refs[5 * i + 3] as RouteChoice["stability"],
        starved: this.starved[i] === 1,
        feasibleDistance: this.refs[5 * i + 2] as RouteMetric | null,
      }
    })
    return this.#built
  }
  get byDestination(): ReadonlyMap<number, RouteChoice> {
    if (this.#map === undefined) {
      this.#map = new Map()
      for (const r of this.routes) this.#map.set(r.destination, r)
    }
    return this.#map
  }
  /** Route i without a next hop (`emptyRoute`'s fields). */
  setEmpty(i: number, fd: RouteMetric | null, fallbacks: ReadonlyArray<FallbackReason>, starved: boolean): void {
    this.nextHop[i] = -1
    this.family[i] = 0
    this.costMs[i] = Number.POSITIVE_INFINITY
    this.metricMs[i] = Number.POSITIVE_INFINITY
    this.seqno[i] = fd?.seqno ?? 0
    this.starved[i] = starved ? 1 : 0
    const r = this.refs
    r[5 * i] = noPath
    r[5 * i + 1] = fallbacks
    r[5 * i + 2] = fd
    r[5 * i + 3] = fallbacks.length > 0 && fallbacks[0]!.reason.startsWith("startup hold-down") ? "hold-down" : "none"
    r[5 * i + 4] = null
  }
}

interface OwnLink {
  readonly costMs: number
  readonly noiseMs: number
  readonly family: Family
}

const deadLink: OwnLink = { costMs: Number.POSITIVE_INFINITY, noiseMs: 0, family: 4 }

/**
 * The route memory per destination, its next hops mirrored in a packed array for small ids: a
 * decision reads the remembered next hop of every destination, and reading each memory object
 * (scattered in the heap) was a cache miss, ≈ 4 % of a quiet model run (speed only: the objects
 * stay the source, `nextHopOf` equals `get(d)?.nextHop ?? -1`).
 */
export class RouteMemoryTable {
  private readonly table = new SiteTable<RouteMemory>()
  /** Remembered next hop per small destination id, NaN = none (any site id fits). */
  private hops = new Float64Array(0)

  get(destination: SiteId): RouteMemory | undefined {
    return this.table.get(destination)
  }

  set(destination: SiteId, memory: RouteMemory): void {
    this.table.set(destination, memory)
    if (!isSmallSite(destination)) return
    if (destination >= this.hops.length) {
      const grown = new Float64Array(Math.min(smallSiteLimit, Math.max(64, 2 * destination + 1))).fill(Number.NaN)
      grown.set(this.hops)
      this.hops = grown
    }
    this.hops[destination] = memory.nextHop
  }

  delete(destination: SiteId): void {
    this.table.delete(destination)
    if (isSmallSite(destination) && destination < this.hops.length) this.hops[destination] = Number.NaN
  }

  /** The remembered next hop, −1 when none. */
  nextHopOf(destination: SiteId): number {
    if (!isSmallSite(destination)) return this.table.get(destination)?.nextHop ?? -1
    const hop = destination < this.hops.length ? this.hops[destination]! : Number.NaN
    return Number.isNaN(hop) ? -1 : hop
  }
}

/**
 * Arrays lent to the searches of a routing view (`NodeRouter.view`), shared by every router of the
 * thread: a view lives for one decide (or explain), its trees die with it (a decision keeps frozen
 * copies), and no two views are alive at once, so the next view, of any router, reuses them. A
 * model run holds hundreds of routers in one thread; a pool per router was cold in the cache at
 * each of its decides (speed only).
 */
const searchPool: Array<SearchBuffers> = []
const scratchPool: Array<SearchScratch> = []

export class NodeRouter {
  readonly config: NodeRouterConfig
  private readonly aggregates = new Map<string, Aggregation.TunnelAggregate>()
  /** The same aggregates by remote site and family (observe's lookup). */
  private readonly aggregateOf = new SiteTable<{ v4?: Aggregation.TunnelAggregate; v6?: Aggregation.TunnelAggregate }>()
  /** `aggregates`' keys, sorted (advertised in this order); rebuilt when a key is added. */
  private sortedAggregateKeys: ReadonlyArray<string> = []
  private readonly familyChoice = new Map<number, Stability.Choice<Family>>()
  private readonly store: LinkStateStore
  private readonly mesh = new MeshGraph()
  private readonly bgpByOrigin = new Map<number, Array<BgpPath>>()
  private readonly bgpCandidates = new Map<number, ReadonlyArray<BgpCandidate>>()
  private readonly fd = new FeasibilityTable()
  private readonly memory = new RouteMemoryTable()
  private readonly requests = new Map<number, { seqno: number; untilMillis: number }>()
  private readonly requestSeen = new SiteTable<number>()
  private readonly requestBackoff: SeqnoRequestBackoff
  private readonly measured: MeasuredPathStore
  private ownLinks = new Map<number, OwnLink>()
  /** `ownLinks` by site (an array read instead of a Map lookup: several per destination per decide). */
  private readonly ownLinkTable = new SiteTable<OwnLink>()
  /**
   * Own tunnels (tunnelKey) the far end reported dead: "dead" counts as dead; "overruled" = one of
   * our probes was answered since, so further reports of the same episode are ignored until the
   * far end reports the tunnel alive (a stale report must not take a working tunnel down again).
   */
  private readonly peerVerdict = new Map<string, "dead" | "overruled">()
  /**
   * Own tunnels (tunnelKey) whose sibling family the far end just reported dead, until one of our
   * probes over them is answered: both families usually share the underlay path, so the sibling
   * is likely dying too and is not switched onto (like a sibling with a lost probe of our own).
   */
  private readonly siblingSuspect = new Set<string>()
  /** Own tunnels (tunnelKey) the far end's latest message flagged `suspect` (for the raise on its first miss). */
  private readonly peerSuspect = new Set<string>()
  /** Per origin, the destination list of its last accepted message (DerivedLinks.destinationsKey). */
  private readonly destinationsOf = new SiteTable<string>()
  /** Per origin, the request list (DerivedLinks.requestsKey) last handled in full, and the store's selfSeqnoDropEpoch then. */
  private readonly requestsDoneFrom = new SiteTable<{ key: string; epoch: number }>()
  /**
   * Per origin whose latest accepted message is a starved site's plea (see `seqnoUrgent`): the
   * destinations it retracts and requests (DerivedLinks.urgent, with its key) and when that
   * message was accepted. Absent: the origin's latest message pleads for nothing.
   */
  private readonly urgentFrom = new SiteTable<{ key: string; destinations: ReadonlyArray<number>; atMillis: number }>()
  /** Per destination, the origins in `urgentFrom` that plead for it (the same facts, by destination). */
  private readonly urgentBy = new SiteTable<Array<number>>()
  private ownSeqno = 0
  /** `destinations()` and the site list it was computed from (mesh sites are only added, never removed). */
  private destinationsCache: { sites: ReadonlyArray<SiteId>; list: Array<SiteId> } | undefined
  /** `tunnelTo` results per neighbour and family. */
  private readonly tunnels = new SiteTable<{
    4?: { tunnel: TunnelId; interfaceName: string }
    6?: { tunnel: TunnelId; interfaceName: string }
  }>()
  /** Messages received and not yet processed, with their arrival times (see receiveLinkState). */
  private readonly inboxMessages: Array<LinkStateMessage | undefined> = []
  private readonly inboxMillis: Array<number> = []
  /**
   * Entries of the inbox in use: the arrays keep their storage between batches (emptied with
   * `length = 0` they gave it up and grew again in every batch; speed only). A processed slot
   * is cleared: left in place, the slots past a later, smaller batch held the messages of the
   * largest batch ever (a model run at N = 200 kept 480 MB of old messages alive after a
   * restart's burst, and each collection had to walk them).
   */
  private inboxCount = 0
  private messageSeq = 0
  private startedAtMillis: number | undefined
  private last: Decision | undefined

  private constructor(config: NodeRouterConfig) {
    this.config = config
    this.store = new LinkStateStore(config.linkStateMaxAgeMillis)
    this.measured = new MeasuredPathStore(config.self, config.measured)
    this.requestBackoff = new SeqnoRequestBackoff(config.seqnoRequestBackoff)
    this.mesh.addSite(config.self)
  }

  static make(input: NodeRouterConfigInput): NodeRouter {
    return new NodeRouter(resolveConfig(input))
  }

  get self(): SiteId {
    return this.config.self
  }

  /** The last decision (undefined before the first `decide`). */
  get lastDecision(): RoutingDecision | undefined {
    return this.last
  }

  /** Read-only access to the measured mesh (demo, diagnostics). */
  get graph(): MeshGraph {
    this.drainInbox()
    return this.mesh
  }

  /** LinkStats → cost with the configured model and weights (+Infinity when unusable). */
  private readonly linkCostOf = (stats: LinkStats): number =>
    linkCost(stats, { model: this.config.costModel, weights: this.config.costWeights })

  private start(nowMillis: number): void {
    if (this.startedAtMillis === undefined) this.startedAtMillis = nowMillis
  }

  /** Samples of own tunnels (others are ignored) and own pathping results. */
  observe(sample: Sample): void {
    if (sample._tag === "PathSample") {
      this.measured.record(sample)
      return
    }
    if (sample.tunnel.local !== this.config.self || sample.tunnel.remote === this.config.self) return
    // By (remote, family) first: no key string per sample (speed only; `aggregates` stays the record).
    const fam = sample.tunnel.family
    const byFamily = this.aggregateOf.get(sample.tunnel.remote)
    let agg = fam === 4 ? byFamily?.v4 : fam === 6 ? byFamily?.v6 : undefined
    if (agg === undefined) {
      const key = tunnelKey(sample.tunnel)
      agg = this.aggregates.get(key)
      if (agg === undefined) {
        agg = Aggregation.emptyAggregate(sample.tunnel)
        this.aggregates.set(key, agg)
      }
      const entry = byFamily ?? {}
      if (fam === 4) entry.v4 = agg
      else if (fam === 6) entry.v6 = agg
      if (byFamily === undefined) this.aggregateOf.set(sample.tunnel.remote, entry)
    }
    const firstMiss = agg.state === "up" && agg.misses === 0
    // In place (`ingestInto`): the router is its aggregates' only owner and every reader looks
    // them up in `aggregates`, so the result equals `ingest`'s new copy without a new aggregate
    // and its boxed numbers per sample (≈ 1 KB; the daemon folds every sample here and in the plane).
    Aggregation.ingestInto(agg, sample, this.config.aggregation)
    this.samplesFolded++
    this.mesh.addSite(sample.tunnel.remote)
    if (firstMiss && agg.misses > 0) this.raiseOnSuspicion(sample.atMillis)
    // An answered probe proves both directions work now, whatever the far end said before.
    if (
      sample._tag === "RttSample" &&
      sample.rttMs !== null &&
      (this.peerVerdict.size > 0 || this.siblingSuspect.size > 0)
    ) {
      const key = tunnelKey(sample.tunnel)
      if (this.peerVerdict.get(key) === "dead") this.peerVerdict.set(key, "overruled")
      this.siblingSuspect.delete(key)
    }
  }

  // linkStats of the aggregates as of (samplesFolded, nowMillis): a decision and the
  // advertisement sent right after it read the same stats (speed only; linkStats is pure).
  private samplesFolded = 0
  private statsFolded = -1
  private statsAtMillis = Number.NaN
  private readonly statsMemo = new Map<Aggregation.TunnelAggregate, LinkStats>()
  private linkStatsOf(agg: Aggregation.TunnelAggregate, nowMillis: number): LinkStats {
    if (this.statsFolded !== this.samplesFolded || this.statsAtMillis !== nowMillis) {
      this.statsMemo.clear()
      this.statsFolded = this.samplesFolded
      this.statsAtMillis = nowMillis
    }
    let stats = this.statsMemo.get(agg)
    if (stats === undefined) {
      stats = Aggregation.linkStats(agg, nowMillis, this.config.aggregation)
      this.statsMemo.set(agg, stats)
    }
    return stats
  }

  private lastSuspicionRaiseMillis = Number.NEGATIVE_INFINITY
  private get suspicionOn(): boolean {
    return Number.isFinite(this.config.suspicionSeqnoGapMillis)
  }

  /** `suspicionSeqnoGapMillis`: the first miss on an up tunnel raises our seqno (rate-limited). */
  private raiseOnSuspicion(atMillis: number): void {
    if (!this.suspicionOn || atMillis - this.lastSuspicionRaiseMillis < this.config.suspicionSeqnoGapMillis) return
    this.lastSuspicionRaiseMillis = atMillis
    this.ownSeqno += 1
  }

  /**
   * What the far end says of the tunnels it shares with us. Its verdicts (`peerVerdicts`): a
   * tunnel it reports dead is dead here too (see `peerVerdict`), and its other family suspect.
   * Its first misses (`suspicionSeqnoGapMillis`): the tunnel is one of ours too, so a failure there
   * starves the sites that reach us over it, whichever end notices first: our seqno goes up once
   * per flagged episode.
   */
  private notePeerReports(message: LinkStateMessage, nowMillis: number): void {
    const verdicts = this.config.peerVerdicts
    const suspicion = this.suspicionOn
    for (const t of message.tunnels) {
      if (t.remote !== this.config.self) continue
      const key = tunnelKey({ local: this.config.self, remote: message.origin, family: t.family })
      if (verdicts) {
        if (t.stats.state !== "dead") this.peerVerdict.delete(key)
        else if (!this.peerVerdict.has(key)) {
          this.peerVerdict.set(key, "dead")
          // The twin: the far end reported v6 dead 0.14 s before v4; with no miss of our own on v4
          // yet, the route moved onto v4 (the same dying link) and stayed there 0.35 s.
          const sibling = tunnelKey({ local: this.config.self, remote: message.origin, family: t.family === 4 ? 6 : 4 })
          if (this.aggregates.has(sibling)) this.siblingSuspect.add(sibling)
        }
      }
      if (suspicion) {
        if (t.suspect !== true) this.peerSuspect.delete(key)
        else if (!this.peerSuspect.has(key)) {
          this.peerSuspect.add(key)
          if (this.aggregates.get(key)?.state === "up") this.raiseOnSuspicion(nowMillis)
        }
      }
    }
  }

  /**
   * A peer's message. Taken in arrival order with its arrival time, but processed lazily, in one
   * batch before the next call that reads the link state (decide, advertise, explain,
   * pathProbeRequests, graph): the result is the same as processing each at once (same order,
   * same times, and nothing in between reads what they change), and a model run with hundreds of
   * routers in one process then touches one router's tables for a whole batch instead of a
   * different router's per delivery (each delivery was a string of cache misses: a third of a
   * run's time). Our own seqno raised by a request for us is applied at once (a caller sees it);
   * with `peerVerdicts` every message is processed at once (`observe` reads the verdicts).
   */
  receiveLinkState(message: LinkStateMessage, nowMillis: number): void {
    this.start(nowMillis)
    if (message.origin === this.config.self) return
    // Peer verdicts are read by `observe` too (an answered probe overrules one): not deferred.
    if (this.config.peerVerdicts) {
      this.drainInbox()
      this.acceptLinkState(message, nowMillis)
      return
    }
    this.inboxMessages[this.inboxCount] = message
    this.inboxMillis[this.inboxCount] = nowMillis
    this.inboxCount++
    const requested = derivedOf(message).requestedSeqnoForSite
    if (requested !== undefined && (requested.get(this.config.self) ?? -1) > this.ownSeqno) this.drainInbox()
    else if (this.suspicionOn && this.flagsOurTunnel(message)) this.drainInbox()
  }

  /** The message flags a tunnel to us `suspect` (our seqno may go up: applied at once, like a request). */
  private flagsOurTunnel(message: LinkStateMessage): boolean {
    for (const t of message.tunnels) if (t.suspect === true && t.remote === this.config.self) return true
    return false
  }

  /** Processes the messages received since the last batch, in arrival order (see receiveLinkState). */
  private drainInbox(): void {
    const count = this.inboxCount
    if (count === 0) return
    const inbox = this.inboxMessages
    for (let i = 0; i < count; i++) {
      this.acceptLinkState(inbox[i]!, this.inboxMillis[i]!)
      inbox[i] = undefined
    }
    this.inboxCount = 0
  }

  private acceptLinkState(message: LinkStateMessage, nowMillis: number): void {
    if (this.store.accept(message, nowMillis) !== "accepted") return
    if (this.config.peerVerdicts || this.suspicionOn) this.notePeerReports(message, nowMillis)
    const derived = derivedOf(message)
    // An origin that offers no route is no transit: drawing paths through it (its links are
    // live) proposed next hops that route around it (their advertised routes do), so a site
    // whose shortest path crossed a restarted site in its 40 s hold-down was starved although it
    // had a direct tunnel to the destination, or asked for a better route, again and again, that
    // no new seqno could give (model at N = 200: a storm of requests and seqno waves for the
    // whole hold-down, 28 Nov). It stays a destination: the links into it are its peers'.
    if (offersRoute(message)) this.mesh.setRow(message.origin, derived.row)
    else this.mesh.clearLinksFrom(message.origin)
    if (derived.requestsKey !== "") {
      // Requests are repeated in every message for their lifetime, and every site relays them:
      // the same list from the same origin again is a no-op (what it relayed is now `requestSeen`,
      // own seqno and requestSeen only grow) unless some destination's own seqno went down since,
      // which could let a request through again. Skipping it is speed only (most of a model run's
      // receive time went here).
      const done = this.requestsDoneFrom.get(message.origin)
      const epoch = this.store.selfSeqnoDropEpoch
      if (done === undefined || done.key !== derived.requestsKey || done.epoch !== epoch) {
        for (const r of message.requests) this.noteRequest(r, nowMillis)
        if (done === undefined) this.requestsDoneFrom.set(message.origin, { key: derived.requestsKey, epoch })
        else {
          done.key = derived.requestsKey
          done.epoch = epoch
        }
      }
    }
    // Outside the skip above: the same request list can come with other retractions.
    this.noteUrgent(message.origin, derived, nowMillis)
    // Sites are never removed, so the same destination list as this origin's last one adds none.
    if (this.destinationsOf.get(message.origin) !== derived.destinationsKey) {
      for (const d of message.distances) this.mesh.addSite(d.destination)
      this.destinationsOf.set(message.origin, derived.destinationsKey)
    }
  }

  /**
   * Records what an accepted message of `origin` says about starvation: it replaces the origin's
   * previous plea. The same destinations as before only move the time (one write: every message
   * of a starved site for its request's lifetime, and every site receives each one).
   */
  private noteUrgent(origin: SiteId, derived: DerivedLinks, nowMillis: number): void {
    const previous = this.urgentFrom.get(origin)
    if (previous === undefined && derived.urgentKey === "") return
    if (previous !== undefined && previous.key === derived.urgentKey) {
      previous.atMillis = nowMillis
      return
    }
    if (previous !== undefined) {
      for (const d of previous.destinations) {
        const origins = this.urgentBy.get(d)!
        origins.splice(origins.indexOf(origin), 1)
        if (origins.length === 0) this.urgentBy.delete(d)
      }
    }
    if (derived.urgentKey === "") {
      this.urgentFrom.delete(origin)
      return
    }
    this.urgentFrom.set(origin, { key: derived.urgentKey, destinations: derived.urgent, atMillis: nowMillis })
    for (const d of derived.urgent) {
      const origins = this.urgentBy.get(d)
      if (origins === undefined) this.urgentBy.set(d, [origin])
      else origins.push(origin)
    }
  }

  /**
   * Whether a starved site is waiting for a new seqno of `destination` now: some origin's latest
   * accepted message retracts the destination (no route; an absent entry counts) and requests a
   * seqno for it, and was accepted less than `seqnoRequestLifetimeMillis` before `nowMillis`; or
   * our own last decision was starved for it and our request is pending. False otherwise, also
   * when nothing is known of the destination. A request alone is not enough: every site relays
   * every request for its lifetime, while only a starved site retracts the destination it asks
   * for. Callers advertise a route's new seqno at once only while it is urgent (the daemon's
   * AdvertTrigger, the model simulator): the starved site waits for it, anyone else can wait for
   * the periodic message. Reads state only (queued messages are taken in first, as everywhere).
   */
  seqnoUrgent(destination: SiteId, nowMillis: number): boolean {
    this.drainInbox()
    const origins = this.urgentBy.get(destination)
    if (origins !== undefined) {
      const lifetime = this.config.seqnoRequestLifetimeMillis
      for (const o of origins) if (this.urgentFrom.get(o)!.atMillis + lifetime > nowMillis) return true
    }
    const last = this.last
    if (last === undefined) return false
    const own = this.requests.get(destination)
    if (own === undefined || !(own.untilMillis > nowMillis)) return false
    const i = sortedIndexOf(last.destination, destination)
    return i >= 0 && last.starved[i] === 1
  }

  setBgpPaths(paths: ReadonlyArray<BgpPath>): void {
    this.bgpByOrigin.clear()
    this.destinationsCache = undefined
    this.bgpCandidates.clear()
    for (const p of paths) {
      const originAsn = p.asPath[p.asPath.length - 1]
      if (originAsn === undefined) continue
      const origin = this.config.siteOfAsn(originAsn)
      if (origin === undefined || origin === this.config.self) continue
      const list = this.bgpByOrigin.get(origin) ?? []
      list.push(p)
      this.bgpByOrigin.set(origin, list)
    }
  }

  private noteRequest(r: SeqnoRequest, nowMillis: number): void {
    if (r.destination === this.config.self) {
      // The destination's rule (Feasibility.ownSeqnoAfterRequests).
      if (r.seqno > this.ownSeqno) this.ownSeqno = r.seqno
      return
    }
    // Relay each (destination, seqno) once, in case the requester cannot reach the destination.
    // (The cheaper check first: most requests arrive again in every message for their lifetime.)
    if (r.seqno <= (this.requestSeen.get(r.destination) ?? -1)) return
    const known = this.store.advertised(r.destination, r.destination)?.seqno ?? -1
    if (r.seqno <= known) return
    this.requestSeen.set(r.destination, r.seqno)
    this.requests.set(r.destination, {
      seqno: r.seqno,
      untilMillis: nowMillis + this.config.seqnoRequestLifetimeMillis,
    })
  }

  /**
   * Own links at `nowMillis`: per peer the tunnel family chosen with hysteresis (TunnelChoice's
   * rule, with the configured cost model) and its cost. Reads state only; `refreshOwnLinks`
   * commits it.
   */
  private ownLinksAt(nowMillis: number): Array<OwnLinkUpdate> {
    const byRemote = new Map<number, { 4?: LinkStats; 6?: LinkStats }>()
    for (const [key, agg] of this.aggregates) {
      const entry = byRemote.get(agg.tunnel.remote) ?? {}
      const peerSaysDead = this.peerVerdict.get(key) === "dead"
      // A family whose latest fast probe was lost is not switched onto (the incumbent keeps its
      // place until it is dead): when one family's tunnel dies the other often dies a few ms
      // later (same underlay path), and a detour through it cost an install and then starvation
      // (the twin: the route moved to the dying v6 tunnel 11 ms before it was declared dead).
      const incumbent = this.familyChoice.get(agg.tunnel.remote)?.key === agg.tunnel.family
      const doubted = agg.misses > 0 || this.siblingSuspect.has(key)
      if ((!doubted && !peerSaysDead) || incumbent) {
        const stats = this.linkStatsOf(agg, nowMillis)
        entry[agg.tunnel.family] = peerSaysDead ? { ...stats, state: "dead" } : stats
      }
      byRemote.set(agg.tunnel.remote, entry)
    }
    const out: Array<OwnLinkUpdate> = []
    for (const [remote, stats] of byRemote) {
      const decision = familyDecision(
        this.familyChoice.get(remote),
        stats,
        nowMillis,
        this.config.tunnelStability,
        this.linkCostOf,
      )
      const family = decision.choice?.key ?? 4
      out.push({
        remote: remote as SiteId,
        link: { costMs: decision.cost, noiseMs: stats[family]?.jitterMs ?? 0, family },
        rttMs: stats[family]?.rttMs ?? undefined,
        choice: decision.choice,
      })
    }
    return out
  }

  /** Own links now, committed: the family choices are remembered and the mesh updated. */
  private refreshOwnLinks(nowMillis: number): void {
    const updates = this.ownLinksAt(nowMillis)
    for (const u of updates) if (u.choice !== undefined) this.familyChoice.set(u.remote, u.choice)
    const before = this.ownLinks
    this.ownLinks = applyOwnLinks(this.mesh, this.config.self, updates, this.ownLinks)
    for (const remote of before.keys()) this.ownLinkTable.delete(remote)
    for (const [remote, link] of this.ownLinks) this.ownLinkTable.set(remote, link)
    // A neighbour that routed to us over a link that just died may find every other neighbour
    // infeasible (its FD is the direct link's distance). Raising our seqno now, as the node next
    // to the failure, makes every alternative to us feasible one message later, instead of after
    // that neighbour's starvation request has travelled here and our answer back (README, "Loop
    // freedom": only we raise our seqno, and raising it is always safe).
    for (const [remote, link] of before) {
      const costNowMs = this.ownLinks.get(remote)?.costMs ?? Number.POSITIVE_INFINITY
      if (Number.isFinite(link.costMs) && !Number.isFinite(costNowMs)) {
        this.ownSeqno += 1
        break
      }
    }
  }

  /** Every known site but self, ascending (shared until the mesh or the BGP paths gain a site: do not mutate). */
  private destinations(): ReadonlyArray<SiteId> {
    const sites = this.mesh.sites()
    if (this.destinationsCache === undefined || this.destinationsCache.sites !== sites) {
      const all = new Set<number>(sites)
      for (const o of this.bgpByOrigin.keys()) all.add(o)
      all.delete(this.config.self)
      this.destinationsCache = { sites, list: [...all].sort((a, b) => a - b) as Array<SiteId> }
    }
    return this.destinationsCache.list
  }

  /** Our tunnel to a neighbour over a family and its interface name (immutable, one object per pair). */
  private tunnelTo(neighbour: SiteId, family: Family): { tunnel: TunnelId; interfaceName: string } {
    const byFamily = this.tunnels.get(neighbour) ?? {}
    let t = byFamily[family]
    if (t === undefined) {
      const tunnel: TunnelId = { local: this.config.self, remote: neighbour, family }
      t = { tunnel, interfaceName: tunnelKey(tunnel) }
      byFamily[family] = t
      this.tunnels.set(neighbour, byFamily)
    }
    return t
  }

  private ownLink(neighbour: SiteId): OwnLink {
    return this.ownLinkTable.get(neighbour) ?? deadLink
  }

  /** The feasible distance `eligibilityOf` reads (packed copies; `eligibility` keeps neither). */
  private readonly fdScratch = { seqno: 0, distanceMs: 0 }

  private eligibilityOf(neighbour: SiteId, destination: SiteId) {
    return eligibility(
      neighbour,
      destination,
      this.ownLink(neighbour).costMs,
      this.store.advertised(neighbour, destination),
      this.fd.read(destination, this.fdScratch),
      this.memory.nextHopOf(destination) === neighbour,
    )
  }

  private view(
    nowMillis: number,
    mesh: MeshGraph = this.mesh,
    ownLink: (n: SiteId) => OwnLink = (n) => this.ownLink(n),
    eligibilityOf: (n: SiteId, d: SiteId) => Eligibility = (n, d) => this.eligibilityOf(n, d),
  ): RoutingView {
    let tree: ShortestPathTree | undefined
    const ownTree = (): ShortestPathTree => {
      if (tree === undefined) tree = dijkstra(graph, graph.indexOf.get(self)!, { into: buffers() })
      return tree
    }
    const searches = new Map<number, IncrementalSearch | undefined>()
    let bannedSelf: Uint8Array | undefined
    const self = this.config.self
    const graph = mesh.indexed()
    // The searches' arrays are lent from the shared pools (see `searchPool`).
    let lent = 0
    const buffers = (): SearchBuffers => {
      const n = graph.sites.length
      let b = searchPool[lent]
      if (b === undefined || b.distanceMs.length !== n) {
        b = { distanceMs: new Float64Array(n), parent: new Int32Array(n) }
        searchPool[lent] = b
      }
      lent++
      return b
    }
    let lentScratch = 0
    const scratch = (): SearchScratch => {
      let b = scratchPool[lentScratch]
      if (b === undefined) {
        b = new SearchScratch()
        scratchPool[lentScratch] = b
      }
      lentScratch++
      return b
    }
    return {
      self,
      nowMillis,
      mesh,
      tree: ownTree,
      pathFrom: (site, destination) => {
        let search = searches.get(site)
        if (search === undefined && !searches.has(site)) {
          const i = graph.indexOf.get(site)
          if (bannedSelf === undefined) {
            bannedSelf = new Uint8Array(graph.sites.length)
            bannedSelf[graph.indexOf.get(self)!] = 1
          }
          if (i === undefined) search = undefined
          else {
            // Our tree's distances order the search (IncrementalSearch: same costs, half the
            // pops) wherever it reaches the site; self is banned only in the search's graph.
            const own = ownTree().distanceMs
            search = new IncrementalSearch(
              graph,
              i,
              bannedSelf,
              scratch(),
              own[i]! < Number.POSITIVE_INFINITY ? own : undefined,
            )
          }
          searches.set(site, search)
        }
        return search?.pathTo(destination)
      },
      bgpCandidates: (d) => {
        let c = this.bgpCandidates.get(d)
        if (c === undefined) {
          c = bgpCandidatesFor(self, d, this.bgpByOrigin.get(d) ?? [], this.config.siteOfAsn)
          this.bgpCandidates.set(d, c)
        }
        return c
      },
      measuredPaths: (d) => this.measured.measured(d, nowMillis),
      ownLink,
      eligibility: eligibilityOf,
      feasibleDistance: (d) => this.fd.get(d),
    }
  }

  /**
   * Each algorithm's own best feasible proposal per destination, without stability: what every
   * algorithm would pick now, for management views (perfc). Read-only: the view is the one
   * `decide(nowMillis)` would use (silent peers aged out, own links and their family choice at
   * `nowMillis`), built on copies, so route memory, feasible distances, seqnos, requests, family
   * choices and the link-state store are untouched and the next `decide` is unaffected. The
   * feasibility gate applies (the current next hop stays eligible, as in `decide`), so no
   * proposal shown could close a loop. All four algorithms, in `algorithmNames` order, whatever
   * the chain; the start-up hold-down is not applied (the decision reports it).
   */
  explain(nowMillis: number): ReadonlyArray<AlgorithmExplanation> {
    this.drainInbox()
    const mesh = this.mesh.clone()
    const stale = new Set<number>(this.store.staleOrigins(nowMillis))
    for (const gone of stale) mesh.clearLinksFrom(gone as SiteId)
    const ownLinks = applyOwnLinks(mesh, this.config.self, this.ownLinksAt(nowMillis), this.ownLinks)
    const ownLink = (n: SiteId): OwnLink => ownLinks.get(n) ?? deadLink
    const view = this.view(nowMillis, mesh, ownLink, (n, d) =>
      eligibility(
        n,
        d,
        ownLink(n).costMs,
        stale.has(n) ? undefined : this.store.advertised(n, d),
        this.fd.get(d),
        this.memory.get(d)?.nextHop === n,
      ),
    )
    const destinations = this.destinations()
    return algorithmNames.map((algorithm) => ({
      algorithm,
      routes: destinations.map((destination): ExplainedRoute => {
        const best = bestFeasible(view, destination, algorithm, this.memory.get(destination)?.nextHop)
        return best._tag === "Proposal"
          ? { destination, nextHop: best.proposal.nextHop, costMs: best.proposal.costMs, path: best.proposal.path }
          : { destination, nextHop: null, costMs: Number.POSITIVE_INFINITY, path: [], reason: best.reason }
      }),
    }))
  }

  /** Computes the route to every known destination. */
  decide(nowMillis: number): RoutingDecision {
    this.drainInbox()
    this.start(nowMillis)
    for (const gone of this.store.expire(nowMillis)) this.mesh.clearLinksFrom(gone)
    this.refreshOwnLinks(nowMillis)
    const self = this.config.self
    const holdDownUntil = (this.startedAtMillis ?? nowMillis) + this.config.startupHoldDownMillis
    const inHoldDown = nowMillis < holdDownUntil
    const view = this.view(nowMillis)
    const destinations = this.destinations()
    const decision = new Decision(self, nowMillis, destinations, this.tunnelOfBound)
    // One (immutable) reason list shared by every route of this decision held down.
    const holdDownFallbacks: ReadonlyArray<FallbackReason> = inHoldDown
      ? [{ algorithm: this.config.algorithm, reason: `startup hold-down until ${holdDownUntil}` }]
      : []
    const keepsShortest = this.config.chain[0] === "graph-least-cost"
    for (let i = 0; i < destinations.length; i++) {
      const destination = destinations[i]!
      const fd = this.fd.get(destination) ?? null
      if (inHoldDown) {
        decision.setEmpty(i, fd, holdDownFallbacks, false)
        continue
      }
      if (keepsShortest && this.keepShortest(view, decision, i, destination, fd)) continue
      const previous = this.memory.get(destination)
      const chosen = chooseRoute(view, destination, this.config.chain, previous, this.config.stability)
      if (chosen.nextHop === null || chosen.proposal === undefined) {
        this.memory.delete(destination)
        const starved = this.isStarved(destination)
        if (starved) this.requestSeqno(destination, nowMillis)
        decision.setEmpty(i, fd, chosen.fallbacks, starved)
        continue
      }
      const nextHop = chosen.nextHop
      const remembered = this.memory.get(destination)
      if (remembered === undefined || remembered.nextHop !== nextHop || remembered.sinceMillis !== chosen.sinceMillis)
        this.memory.set(destination, { nextHop, sinceMillis: chosen.sinceMillis })
      if (chosen.betterInfeasible) this.requestForBetter(view, destination, chosen, nowMillis)
      const link = this.ownLink(nextHop)
      const linkMetric = Math.max(link.costMs, this.config.minLinkMetricMs)
      const advertised = chosen.advertised
      const seqno =
        advertised !== undefined
          ? advertised.seqno
          : (this.store.advertised(destination, destination)?.seqno ?? fd?.seqno ?? 0)
      const metricMs = linkMetric + (advertised?.distanceMs ?? 0)
      decision.nextHop[i] = nextHop
      decision.family[i] = link.family
      decision.costMs[i] = chosen.proposal.costMs
      decision.metricMs[i] = metricMs
      decision.seqno[i] = seqno
      decision.starved[i] = 0
      const refs = decision.refs
      // A kept shortest path is held as the decision's one frozen tree, built when read (speed only).
      refs[5 * i] = chosen.proposal instanceof TreeProposal ? chosen.proposal.paths : chosen.proposal.path
      refs[5 * i + 1] = chosen.fallbacks
      refs[5 * i + 2] = fd
      refs[5 * i + 3] = chosen.stability
      refs[5 * i + 4] = chosen.algorithm
    }
    this.last = decision
    return decision
  }

  private readonly advertisedScratch = { seqno: 0, distanceMs: 0 }
  private graphIndexCache:
    | { destinations: ReadonlyArray<SiteId>; indexOf: ReadonlyMap<number, number>; index: Int32Array }
    | undefined

  /**
   * Each destination's node index in the graph (−1 when it is not in it), per position in the
   * destination list; rebuilt when the list or the graph's site index changes (both are reused
   * while the site list is unchanged), so a decision does not look each destination up in a Map.
   */
  private graphIndexOf(graph: IndexedGraph, destinations: ReadonlyArray<SiteId>): Int32Array {
    const c = this.graphIndexCache
    if (c !== undefined && c.destinations === destinations && c.indexOf === graph.indexOf) return c.index
    const index = Int32Array.from(destinations, (d) => graph.indexOf.get(d) ?? -1)
    this.graphIndexCache = { destinations, indexOf: graph.indexOf, index }
    return index
  }

  /**
   * `decide`'s row for a remembered route that `chooseRoute` keeps through `keptShortest` (the
   * chain starts with graph-least-cost, the tree's next hop is the remembered one, and that
   * neighbour is eligible: its link is up and, unless it is the destination, it offers a finite
   * distance; as the current next hop it needs no feasibility check). Written straight into the
   * decision, without the eligibility, proposal and route objects of the general path, which were
   * a third of a quiet model run's allocations (speed only: the row is the general path's, a
   * property test compares them). false, nothing written, in every other case.
   */
  private keepShortest(
    view: RoutingView,
    decision: Decision,
    i: number,
    destination: SiteId,
    fd: RouteMetric | null,
  ): boolean {
    const remembered = this.memory.nextHopOf(destination)
    if (remembered < 0) return false
    const nextHop = remembered as SiteId
    const tree = view.tree()
    const t = this.graphIndexOf(tree.graph, decision.destination)[i]!
    if (t < 0) return false
    const paths = frozen(tree)
    const hop = paths.nextHopIndex(t)
    if (hop < 0 || tree.graph.sites[hop] !== nextHop) return false
    const link = this.ownLink(nextHop)
    if (!(link.costMs < Number.POSITIVE_INFINITY)) return false
    let seqno: number
    let advertisedMs = 0
    if (nextHop === destination) seqno = this.store.advertised(destination, destination)?.seqno ?? fd?.seqno ?? 0
    else {
      const a = this.advertisedScratch
      if (!this.store.advertisedInto(nextHop, destination, a) || !(a.distanceMs < Number.POSITIVE_INFINITY))
        return false
      seqno = a.seqno
      advertisedMs = a.distanceMs
    }
    decision.nextHop[i] = nextHop
    decision.family[i] = link.family
    decision.costMs[i] = tree.distanceMs[t]!
    decision.metricMs[i] = Math.max(link.costMs, this.config.minLinkMetricMs) + advertisedMs
    decision.seqno[i] = seqno
    decision.starved[i] = 0
    const refs = decision.refs
    refs[5 * i] = paths
    refs[5 * i + 1] = noFallbacks
    refs[5 * i + 2] = fd
    refs[5 * i + 3] = "incumbent-best"
    refs[5 * i + 4] = "graph-least-cost"
    return true
  }

  /** `tunnelTo` for the decisions' route objects (built on first read). */
  private readonly tunnelOfBound = (neighbour: SiteId, family: Family) => this.tunnelTo(neighbour, family)

  /** Some live neighbour offers a finite route, but none passes the feasibility gate. */
  private isStarved(destination: SiteId): boolean {
    for (const [n, link] of this.ownLinks) {
      if (!(link.costMs < Number.POSITIVE_INFINITY)) continue
      const e = this.eligibilityOf(n as SiteId, destination)
      if (!e.eligible && e.reason === "not-feasible") return true
    }
    return false
  }

  /**
   * A proposal better than the chosen route was refused only for feasibility. Ask the
   * destination for a new seqno only when it matters (README, "Loop freedom", "Optional
   * requests"): at once when an algorithm earlier in the chain had proposals but none feasible
   * (the preferred algorithm is starved; failure reaction must not wait); otherwise only when
   * the refused route's gain over the chosen one beats the stability threshold, i.e. we would
   * switch to it once feasible, and then through the per-destination back-off. Asking whenever
   * a noisy metric dipped below the chosen one made seqnos rise forever in a quiet network.
   */
  private requestForBetter(view: RoutingView, destination: SiteId, chosen: ChosenRoute, nowMillis: number): void {
    if (chosen.fallbacks.some((f) => f.reason.startsWith(noFeasibleNextHop))) {
      this.requestSeqno(destination, nowMillis)
      return
    }
    const name = chosen.algorithm
    const incumbent = chosen.proposal
    if (name === null || incumbent === undefined) return
    const result = algorithms[name].propose(view, destination, chosen.nextHop ?? undefined)
    if (result._tag !== "Proposals") return
    const fd = this.fd.get(destination)
    let best: Proposal | undefined
    for (const p of result.proposals) {
      if (best !== undefined && !(p.costMs < best.costMs)) continue
      const e = view.eligibility(p.nextHop, destination)
      if (e.eligible || e.reason !== "not-feasible") continue
      // Same filter as gatedProposals: one with an older seqno is still waiting for the current one.
      if (fd !== undefined && e.advertised !== undefined && e.advertised.seqno < fd.seqno) continue
      best = p
    }
    if (best === undefined) return
    const thresholdMs = Stability.switchThresholdMs(
      incumbent.costMs,
      Stability.combineNoise(incumbent.noiseMs, best.noiseMs),
      stabilityFor(name, this.config.stability),
    )
    if (!(incumbent.costMs - best.costMs > Math.max(thresholdMs, this.config.requestMinGainMs))) return
    if (this.requestBackoff.grant(destination, nowMillis)) this.requestSeqno(destination, nowMillis)
  }

  private requestSeqno(destination: SiteId, nowMillis: number): void {
    const r = this.fd.requestFor(destination)
    const existing = this.requests.get(destination)
    if (existing !== undefined && existing.seqno >= r.seqno && existing.untilMillis > nowMillis) return
    this.requests.set(destination, { seqno: r.seqno, untilMillis: nowMillis + this.config.seqnoRequestLifetimeMillis })
    this.requestSeen.set(destination, Math.max(r.seqno, this.requestSeen.get(destination) ?? -1))
    this.requestsAddedCount++
  }

  /**
   * Our link-state message: own tunnels, our distance to ourselves, the LAST decision's routes
   * (retractions for destinations without one) and pending seqno requests. Updates the
   * feasible distances (they must cover every metric ever sent).
   */
  advertise(nowMillis: number): LinkStateMessage {
    this.drainInbox()
    this.start(nowMillis)
    const self = this.config.self
    const tunnels: Array<TunnelAdvert> = []
    // Keys are only ever added (never deleted), so an unchanged size is an unchanged key set.
    if (this.sortedAggregateKeys.length !== this.aggregates.size)
      this.sortedAggregateKeys = [...this.aggregates.keys()].sort()
    const keys = this.sortedAggregateKeys
    for (const key of keys) {
      const agg = this.aggregates.get(key)!
      const stats = this.linkStatsOf(agg, nowMillis)
      const c = this.linkCostOf(stats)
      tunnels.push({
        remote: agg.tunnel.remote,
        family: agg.tunnel.family,
        stats,
        costMs: c < Number.POSITIVE_INFINITY ? c : null,
        selected: this.familyChoice.get(agg.tunnel.remote)?.key === agg.tunnel.family,
        // Only read by peers that act on suspicion themselves (the same setting mesh-wide).
        ...(this.suspicionOn && stats.state === "up" && agg.misses > 0 ? { suspect: true } : {}),
      })
    }
    const distances: Array<LinkStateMessage["distances"][number]> = [
      { destination: self, seqno: this.ownSeqno, distanceMs: 0, nextHop: null },
    ]
    const last = this.last
    const count = last?.count ?? 0
    for (let i = 0; i < count; i++) {
      const d = last!.destination[i]!
      const nextHop = last!.nextHop[i]!
      const metricMs = last!.metricMs[i]!
      if (nextHop >= 0 && metricMs < Number.POSITIVE_INFINITY) {
        const seqno = last!.seqno[i]!
        this.fd.noteAdvertisedMetric(d, seqno, metricMs)
        distances.push({ destination: d, seqno, distanceMs: metricMs, nextHop: nextHop as SiteId })
      } else {
        distances.push({ destination: d, seqno: this.fd.get(d)?.seqno ?? 0, distanceMs: null, nextHop: null })
      }
    }
    const requests: Array<SeqnoRequest> = []
    for (const [destination, r] of [...this.requests.entries()].sort((a, b) => a[0] - b[0])) {
      if (r.untilMillis <= nowMillis) this.requests.delete(destination)
      else requests.push({ destination: destination as SiteId, seqno: r.seqno })
    }
    this.messageSeq++
    // Built from our own state, so not validated again (it was ~8 % of a model run's CPU):
    // validation belongs where messages come in, decodeLinkStateMessage.
    return new LinkStateMessage(
      {
        origin: self,
        incarnation: this.config.incarnation ?? this.startedAtMillis ?? nowMillis,
        seq: this.messageSeq,
        generatedAtMillis: nowMillis,
        tunnels,
        distances,
        requests,
      },
      true,
    )
  }

  /** Measured-fastest: which candidate paths to verify by pathping now. */
  pathProbeRequests(nowMillis: number): ReadonlyArray<PathProbeRequest> {
    this.drainInbox()
    this.start(nowMillis)
    if (!this.config.chain.includes("measured-fastest")) return []
    for (const gone of this.store.expire(nowMillis)) this.mesh.clearLinksFrom(gone)
    this.refreshOwnLinks(nowMillis)
    return this.measured.requests(
      this.mesh,
      this.destinations(),
      nowMillis,
      (n, d) => this.eligibilityOf(n, d).eligible,
    )
  }

  /** Own sequence number (the one we own as a destination). */
  get seqno(): number {
    return this.ownSeqno
  }

  private requestsAddedCount = 0
  /**
   * Our own seqno requests added or renewed so far (not the ones we relay); only grows. A
   * caller that advertises when it changed sends a new request at once instead of with the next
   * periodic message: the requester waits for the destination's answer, and the starved flag
   * does not cover a request for a better, infeasible route (`requestForBetter`). A relayed
   * request waits for the periodic message: the requester's own message is flooded to every
   * site, the destination included, so relaying it at once only repeats it, from every site
   * for every request. The model's `ExchangeConfig.requestTrigger` reads it, as the daemon's
   * advert trigger does.
   */
  get requestsAdded(): number {
    this.drainInbox()
    return this.requestsAddedCount
  }

  /** Feasible distances (diagnostics, tests). */
  feasibleDistance(destination: SiteId): RouteMetric | undefined {
    return this.fd.get(destination)
  }
}

/** What a router takes from a message's tunnels, derived once per message object. */
interface DerivedLinks {
  /**
   * Per remote, the origin's link to it (the family it routes over, else the cheaper): an
   * immutable graph row every recipient stores by reference.
   */
  readonly row: LinkRow
  /** The message's destinations, joined: equal keys = same destination list. */
  readonly destinationsKey: string
  /** The message's seqno requests as "destination:seqno" joined ("" for none): equal keys = same requests. */
  readonly requestsKey: string
  /** Per requested destination the highest seqno requested (undefined: no requests). */
  readonly requestedSeqnoForSite: ReadonlyMap<number, number> | undefined
  /**
   * The requested destinations the same message retracts or does not list (the origin is starved
   * for them, or relays a request for a destination it cannot reach), ascending; `urgentKey` them
   * joined ("" for none).
   */
  readonly urgent: ReadonlyArray<number>
  readonly urgentKey: string
}

/** Index of `site` in an ascending list, −1 when absent. */
const sortedIndexOf = (list: ReadonlyArray<number>, site: number): number => {
  let lo = 0
  let hi = list.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const v = list[mid]!
    if (v === site) return mid
    if (v < site) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

const noUrgent: ReadonlyArray<number> = []

/**
 * One string object per distinct destination list: every recipient compares a message's key with
 * the origin's previous one, and equal keys that are the same object compare without reading
 * their ~1 000 characters (speed only; the comparison's result is the same).
 */
const internedKeys = new Map<string, string>()
const internedKey = (key: string): string => {
  const known = internedKeys.get(key)
  if (known !== undefined) return known
  if (internedKeys.size > 10_000) internedKeys.clear()
  internedKeys.set(key, key)
  return key
}

/**
 * Derived data per immutable message object. The model simulator hands one message object to
 * every recipient, so this runs once per message instead of once per recipient (request 4).
 */
const derivedOf = memoPerMessage((message): DerivedLinks => {
  const origin = message.origin
  const best = new Map<number, { costMs: number; family: Family; selected: boolean; rttMs: number | null }>()
  for (const t of message.tunnels) {
    if (t.remote === origin) continue
    const c = t.costMs ?? Number.POSITIVE_INFINITY
    const old = best.get(t.remote)
    // The family the origin routes over wins; otherwise the cheaper one.
    if (old === undefined || (t.selected && !old.selected) || (t.selected === old.selected && c < old.costMs)) {
      best.set(t.remote, { costMs: c, family: t.family, selected: t.selected, rttMs: t.stats.rttMs })
    }
  }
  const remotes: Array<SiteId> = []
  const costsMs = new Float64Array(best.size)
  const families = new Uint8Array(best.size)
  const rttsMs = new Float64Array(best.size)
  for (const [remote, l] of best) {
    costsMs[remotes.length] = l.costMs
    families[remotes.length] = l.family
    rttsMs[remotes.length] = l.rttMs ?? Number.NaN
    remotes.push(remote as SiteId)
  }
  let requestedSeqnoForSite: Map<number, number> | undefined
  for (const r of message.requests) {
    requestedSeqnoForSite ??= new Map()
    requestedSeqnoForSite.set(r.destination, Math.max(r.seqno, requestedSeqnoForSite.get(r.destination) ?? -1))
  }
  let urgent = noUrgent
  if (requestedSeqnoForSite !== undefined) {
    // Later entries for the same destination win, as in the store.
    const retracted = new Map<number, boolean>()
    for (const d of message.distances)
      if (requestedSeqnoForSite.has(d.destination)) retracted.set(d.destination, d.distanceMs === null)
    urgent = [...requestedSeqnoForSite.keys()].filter((d) => retracted.get(d) !== false).sort((a, b) => a - b)
  }
  const derived = {
    requestedSeqnoForSite,
    urgent,
    urgentKey: urgent.join(","),
    row: linkRow(origin, remotes, costsMs, families, rttsMs),
    destinationsKey: internedKey(message.distances.map((d) => d.destination).join(",")),
    requestsKey:
      message.requests.length === 0
        ? ""
        : internedKey(message.requests.map((r) => `${r.destination}:${r.seqno}`).join(",")),
  }
  return derived
})

interface OwnLinkUpdate {
  readonly remote: SiteId
  readonly link: OwnLink
  readonly rttMs: number | undefined
  readonly choice: Stability.Choice<Family> | undefined
}

/** Writes own links into a mesh (removing peers no longer measured); returns them by peer. */
const applyOwnLinks = (
  mesh: MeshGraph,
  self: SiteId,
  updates: ReadonlyArray<OwnLinkUpdate>,
  previous: ReadonlyMap<number, OwnLink>,
): Map<number, OwnLink> => {
  const links = new Map<number, OwnLink>()
  for (const u of updates) {
    links.set(u.remote, u.link)
    mesh.setLink(self, u.remote, u.link.costMs, u.link.family, u.rttMs)
  }
  for (const remote of previous.keys()) {
    if (!links.has(remote)) mesh.setLink(self, remote as SiteId, Number.POSITIVE_INFINITY, 4)
  }
  return links
}

/**
 * TunnelChoice.chooseTunnel with the link cost as a parameter (so the cost model applies to the
 * IPv4/IPv6 choice too): the same candidates, order (incumbent, then 4) and hysteresis. A test
 * checks it equals chooseTunnel under the default model. The router uses `familyDecision` alone.
 */
export const chooseFamily = (
  peer: SiteId,
  previous: Stability.Choice<Family> | undefined,
  links: { readonly 4?: LinkStats | undefined; readonly 6?: LinkStats | undefined },
  nowMillis: number,
  stability: Stability.StabilityConfig,
  costOf: (stats: LinkStats) => number,
): TunnelDecision => {
  const costByFamily = {
    4: links[4] === undefined ? Number.POSITIVE_INFINITY : costOf(links[4]),
    6: links[6] === undefined ? Number.POSITIVE_INFINITY : costOf(links[6]),
  }
  return { ...familyDecision(previous, links, nowMillis, stability, costOf), peer, costByFamily }
}

const sameFamily = (a: Family, b: Family): boolean => a === b

/**
 * `chooseFamily`'s Stability decision alone (candidates 4 then 6), without the copy into a
 * TunnelDecision: own links are chosen per peer per decision (speed only).
 */
const familyDecision = (
  previous: Stability.Choice<Family> | undefined,
  links: { readonly 4?: LinkStats | undefined; readonly 6?: LinkStats | undefined },
  nowMillis: number,
  stability: Stability.StabilityConfig,
  costOf: (stats: LinkStats) => number,
): Stability.Decision<Family> => {
  const l4 = links[4]
  const l6 = links[6]
  const candidates: Array<Stability.Candidate<Family>> = []
  if (l4 !== undefined) candidates.push({ key: 4, cost: costOf(l4), noiseMs: l4.jitterMs ?? 0 })
  if (l6 !== undefined) candidates.push({ key: 6, cost: costOf(l6), noiseMs: l6.jitterMs ?? 0 })
  return Stability.decide<Family>(previous, candidates, nowMillis, stability, sameFamily)
}

export interface DesiredRouteOptions {
  /** Overlay prefixes of a site. Default 10.201.X.0/24 and fdac:c9:<hex X>::/64. */
  readonly prefixesOf?: (site: SiteId) => ReadonlyArray<string>
  /** Interface of a tunnel. Default `tunnelKey` (wgX.Y_vZ). */
  readonly interfaceOf?: (tunnel: TunnelId) => string
  /** Kernel metric; lower than BIRD's kernel protocol metric (32 by default) so ours win. Default 10. */
  readonly metric?: number
  /** Default 201 (`managedRouteProtocol`). */
  readonly protocol?: number
}

export const defaultPrefixesOf = (site: SiteId): ReadonlyArray<string> => [
  `10.201.${site}.0/24`,
  `fdac:c9:${site.toString(16)}::/64`,
]

/**
 * Pure mapping from a decision to the kernel routes it wants (protocol 201, device = the
 * chosen tunnel), in destination order; the Planner diffs them against the installed routes.
 * Destinations without a route get none, so BIRD's route applies.
 */
export const desiredRoutes = (
  decision: RoutingDecision,
  options: DesiredRouteOptions = {},
): ReadonlyArray<KernelRoute> => {
  const prefixesOf = options.prefixesOf ?? defaultPrefixesOf
  const interfaceOf = options.interfaceOf ?? tunnelKey
  const protocol = options.protocol ?? managedRouteProtocol
  const metric = options.metric ?? 10
  const out: Array<KernelRoute> = []
  for (const r of decision.routes) {
    if (r.tunnel === null) continue
    const device = interfaceOf(r.tunnel)
    for (const prefix of prefixesOf(r.destination)) out.push({ prefix, device, metric, protocol })
  }
  return out
}
