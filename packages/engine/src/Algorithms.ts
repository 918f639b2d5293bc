/**
 * The four routing algorithms behind one interface: a node's view in, ranked next-hop
 * proposals for one destination out (or a reason why the algorithm cannot route it).
 *
 * Decision a reader must know: an algorithm only ranks; it never decides alone. `chooseRoute`
 * runs the node's fallback chain, drops every proposal whose next hop fails the feasibility
 * gate (Feasibility.ts, so no choice can close a forwarding loop), and lets Stability.ts pick
 * among what is left (margins and dwell; a dead or now-infeasible incumbent is left at once).
 * Every proposal carries its next hop, cost and expected path, so the result can say which
 * algorithm produced a route and why the others could not.
 */
import type { BgpPath, Family, SiteId } from "./Domain.js"
import type { Eligibility, RouteMetric } from "./Feasibility.js"
import type { MeshGraph, Path, ShortestPathTree } from "./Graph.js"
import { FrozenTreePaths, treePath } from "./Graph.js"
import * as Stability from "./Stability.js"

export type AlgorithmName = "shortest-bgp" | "least-cost-bgp" | "graph-least-cost" | "measured-fastest"

export const algorithmNames: ReadonlyArray<AlgorithmName> = [
  "graph-least-cost",
  "least-cost-bgp",
  "shortest-bgp",
  "measured-fastest",
]

/** A verified multi-hop measurement of one forward path (from pathping samples). */
export interface MeasuredPath {
  /** Forward path [self, ..., destination]. */
  readonly sites: ReadonlyArray<SiteId>
  /** Cost of the measured round trip in ms-equivalent (RTT plus loss penalty). */
  readonly costMs: number
  /** Standard deviation of the measured RTTs (ms). */
  readonly noiseMs: number
  readonly lastAtMillis: number
}

/** What an algorithm may read. Built once per `decide`; every accessor is cheap. */
export interface RoutingView {
  readonly self: SiteId
  readonly nowMillis: number
  /** The measured mesh: usable links only (own links from own probes, others' from link state). */
  readonly mesh: MeshGraph
  /** Shortest-path tree from self over `mesh` (lazy). */
  readonly tree: () => ShortestPathTree
  /**
   * Shortest path from another site to a destination, avoiding self (undefined when either is
   * unknown or no path exists). Lazy: one search per site per decide, run only as far as asked.
   */
  readonly pathFrom: (site: SiteId, destination: SiteId) => Path | undefined
  /** BIRD's candidate paths to the destination (any prefix family), see `bgpCandidatesFor`. */
  readonly bgpCandidates: (destination: SiteId) => ReadonlyArray<BgpCandidate>
  /** Fresh pathping measurements of forward paths to the destination. */
  readonly measuredPaths: (destination: SiteId) => ReadonlyArray<MeasuredPath>
  /** Our own link to a neighbour: cost (+Infinity when down) and noise (jitter, ms). */
  readonly ownLink: (neighbour: SiteId) => {
    readonly costMs: number
    readonly noiseMs: number
    readonly family: Family
  }
  /** The feasibility gate. */
  readonly eligibility: (neighbour: SiteId, destination: SiteId) => Eligibility
  /** Our feasible distance (absent: treated as none, so every refusal may ask for a seqno). */
  readonly feasibleDistance?: (destination: SiteId) => RouteMetric | undefined
}

/** One ranked option: the next hop, the algorithm's cost and the path it expects. */
export interface Proposal {
  readonly nextHop: SiteId
  readonly costMs: number
  readonly noiseMs: number
  readonly path: ReadonlyArray<SiteId>
  /** AS hops of the BGP path (BGP algorithms only). */
  readonly asHops?: number
}

export type AlgorithmResult =
  | { readonly _tag: "Proposals"; readonly proposals: ReadonlyArray<Proposal> }
  | { readonly _tag: "Unavailable"; readonly reason: string }

export interface Algorithm {
  readonly name: AlgorithmName
  /** Ranked proposals, best first (the order is the tie-break), not yet gated. */
  readonly propose: (view: RoutingView, destination: SiteId, incumbent: SiteId | undefined) => AlgorithmResult
}

const unavailable = (reason: string): AlgorithmResult => ({ _tag: "Unavailable", reason })

/** Sum of link costs along a site path in the measured mesh (+Infinity if a link is unknown). */
const meshPathCost = (view: RoutingView, sites: ReadonlyArray<SiteId>): number => view.mesh.pathCost(sites)

const lexicographic = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** One of BIRD's paths to a destination as sites [self, first AS, …, origin]. */
export interface BgpCandidate {
  readonly sites: ReadonlyArray<SiteId>
  /** AS-path length as BGP counts it (prepends included). */
  readonly asHops: number
  readonly primary: boolean
}

/**
 * BIRD's paths whose origin is `destination`, as site paths, without duplicates or paths that
 * leave the mesh or come back to us, sorted in shortest-bgp order: fewest AS hops, BIRD's
 * primary, then the lower site sequence. Computed once per `setBgpPaths`, not per decision.
 */
export const bgpCandidatesFor = (
  self: SiteId,
  destination: SiteId,
  paths: ReadonlyArray<BgpPath>,
  asnSite: (asn: number) => SiteId | undefined,
): ReadonlyArray<BgpCandidate> => {
  const seen = new Set<string>()
  const out: Array<BgpCandidate> = []
  next: for (const p of paths) {
    if (p.asPath.length === 0) continue
    const sites: Array<SiteId> = [self]
    for (const asn of p.asPath) {
      const site = asnSite(asn)
      if (site === undefined || site === self) continue next
      // BGP prepending repeats an AS; it is one hop.
      if (sites[sites.length - 1] !== site) sites.push(site)
    }
    if (sites[sites.length - 1] !== destination || new Set(sites).size !== sites.length) continue
    const key = sites.join(",")
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ sites, asHops: p.asPath.length, primary: p.primary })
  }
  return out.sort(
    (a, b) => a.asHops - b.asHops || Number(b.primary) - Number(a.primary) || lexicographic(a.sites, b.sites),
  )
}

/** Keeps the first proposal per next hop (proposals arrive sorted best first). */
const onePerNextHop = (proposals: ReadonlyArray<Proposal>): Array<Proposal> => {
  const seen = new Set<number>()
  const out: Array<Proposal> = []
  for (const p of proposals) {
    if (seen.has(p.nextHop)) continue
    seen.add(p.nextHop)
    out.push(p)
  }
  return out
}

/**
 * 1. Fewest AS hops among BIRD's paths. Tie-break: BIRD's primary, then the lower AS path
 * (lexicographic site ids), never map or arrival order. Its cost is the AS-hop count, so the
 * stability margins (in ms) do not apply to it: see `stabilityFor`.
 */
export const shortestBgp: Algorithm = {
  name: "shortest-bgp",
  propose: (view, destination) => {
    const candidates = view.bgpCandidates(destination)
    if (candidates.length === 0) return unavailable("no BGP path to the destination from BIRD")
    return {
      _tag: "Proposals",
      proposals: onePerNextHop(
        candidates.map((c) => ({
          nextHop: c.sites[1]!,
          costMs: c.asHops,
          noiseMs: 0,
          path: c.sites,
          asHops: c.asHops,
        })),
      ),
    }
  },
}

/** Noise of a path: √Σ jitter² of its links (own jitter for the first hop, advertised ones after). */
const pathNoise = (view: RoutingView, sites: ReadonlyArray<SiteId>): number =>
  sites.length >= 2 ? view.ownLink(sites[1]!).noiseMs : 0

/** 2. BIRD's paths scored by the sum of measured link costs; paths over an unusable link drop out. */
export const leastCostBgp: Algorithm = {
  name: "least-cost-bgp",
  propose: (view, destination) => {
    const candidates = view.bgpCandidates(destination)
    if (candidates.length === 0) return unavailable("no BGP path to the destination from BIRD")
    const scored: Array<{ sites: ReadonlyArray<SiteId>; asHops: number; costMs: number }> = []
    for (const c of candidates) {
      const costMs = meshPathCost(view, c.sites)
      if (costMs < Number.POSITIVE_INFINITY) scored.push({ sites: c.sites, asHops: c.asHops, costMs })
    }
    if (scored.length === 0) return unavailable(`all ${candidates.length} BGP paths cross a dead or unmeasured link`)
    // Stable sort: equal costs keep the shortest-bgp order (AS hops, primary, lower path).
    scored.sort((a, b) => a.costMs - b.costMs)
    return {
      _tag: "Proposals",
      proposals: onePerNextHop(
        scored.map((c) => ({
          nextHop: c.sites[1]!,
          costMs: c.costMs,
          noiseMs: pathNoise(view, c.sites),
          path: c.sites,
          asHops: c.asHops,
        })),
      ),
    }
  },
}

/**
 * 3. Dijkstra over the measured mesh (dead links are not in it). Proposes the shortest path's
 * next hop and, when different, the incumbent's cost (own link + its shortest path onwards), so
 * Stability can weigh the two.
 */
export const graphLeastCost: Algorithm = {
  name: "graph-least-cost",
  propose: (view, destination, incumbent) => {
    const best = treePath(view.tree(), destination)
    if (best === undefined) return unavailable("destination unreachable in the measured mesh")
    const proposals: Array<Proposal> = [
      { nextHop: best.sites[1]!, costMs: best.costMs, noiseMs: pathNoise(view, best.sites), path: best.sites },
    ]
    if (incumbent !== undefined && incumbent !== best.sites[1]) {
      const first = view.ownLink(incumbent)
      const onwards =
        incumbent === destination ? { sites: [destination], costMs: 0 } : treeOnwards(view, incumbent, destination)
      if (first.costMs < Number.POSITIVE_INFINITY && onwards !== undefined && !onwards.sites.includes(view.self)) {
        const sites = [view.self, ...onwards.sites]
        proposals.push({
          nextHop: incumbent,
          costMs: first.costMs + onwards.costMs,
          noiseMs: first.noiseMs,
          path: sites,
        })
      }
    }
    return { _tag: "Proposals", proposals }
  },
}

const treeOnwards = (view: RoutingView, from: SiteId, destination: SiteId) => view.pathFrom(from, destination)

/**
 * 4. The fastest verified path: pathping measurements of forward paths whose links are all
 * still usable; the lowest measured cost wins. Which paths to verify is `probeRequests`' job.
 * A pathping burst (10 probes) sees little of a few-percent loss, so each path also pays its
 * links' penalties from the aggregated stats (cost − RTT: loss, jitter, availability), which
 * have a long memory; the latency part is the measured one.
 */
export const measuredFastest: Algorithm = {
  name: "measured-fastest",
  propose: (view, destination) => {
    const measured = view.measuredPaths(destination)
    if (measured.length === 0) return unavailable("no fresh pathping measurement to the destination yet")
    const alive = measured
      .map((m) => ({ ...m, costMs: m.costMs + view.mesh.pathPenalty(m.sites) }))
      .filter((m) => m.costMs < Number.POSITIVE_INFINITY)
    if (alive.length === 0) return unavailable(`all ${measured.length} measured paths cross a dead link now`)
    const sorted = [...alive].sort(
      (a, b) => a.costMs - b.costMs || a.sites.length - b.sites.length || lexicographic(a.sites, b.sites),
    )
    return {
      _tag: "Proposals",
      proposals: onePerNextHop(
        sorted.map((m) => ({ nextHop: m.sites[1]!, costMs: m.costMs, noiseMs: m.noiseMs, path: m.sites })),
      ),
    }
  },
}

export const algorithms: Readonly<Record<AlgorithmName, Algorithm>> = {
  "shortest-bgp": shortestBgp,
  "least-cost-bgp": leastCostBgp,
  "graph-least-cost": graphLeastCost,
  "measured-fastest": measuredFastest,
}

/** The stability rule per algorithm: AS-hop counts take no ms margins, only the dwell. */
export const stabilityFor = (name: AlgorithmName, config: Stability.StabilityConfig): Stability.StabilityConfig =>
  name === "shortest-bgp" ? { ...config, absoluteMarginMs: 0, relativeMargin: 0, noiseFactor: 0 } : config

/** Why one algorithm of the chain did not produce the route. */
export interface FallbackReason {
  readonly algorithm: AlgorithmName
  readonly reason: string
}

/** The previous choice for a destination, kept by the caller between decisions. */
export interface RouteMemory {
  readonly nextHop: SiteId
  readonly sinceMillis: number
}

export interface ChosenRoute {
  readonly nextHop: SiteId | null
  readonly proposal: Proposal | undefined
  readonly algorithm: AlgorithmName | null
  readonly fallbacks: ReadonlyArray<FallbackReason>
  readonly stability: Stability.DecisionReason | "none"
  /** Set when a switch happened now (or the first choice); else the previous time. */
  readonly sinceMillis: number
  /** The next hop's advertisement that made it feasible (undefined for a direct route). */
  readonly advertised: RouteMetric | undefined
  /**
   * A proposal better than the chosen one (or any proposal of an algorithm that fell through)
   * was refused only because it is not feasible: a seqno request would let us take it once the
   * destination's new sequence number reaches us (Babel does the same).
   */
  readonly betterInfeasible: boolean
}

const describeRejection = (nextHop: SiteId, e: Eligibility & { eligible: false }): string => {
  const adv = e.advertised
  const what =
    adv === undefined
      ? ""
      : ` (advertised seqno ${adv.seqno}, ${Number.isFinite(adv.distanceMs) ? `${adv.distanceMs.toFixed(1)} ms` : "unreachable"})`
  return `via ${nextHop}: ${e.reason}${what}`
}

/** An algorithm's proposals for one destination after the feasibility gate. */
export type GatedProposals =
  | { readonly _tag: "Unavailable"; readonly reason: string }
  | {
      readonly _tag: "Gated"
      /**
       * Eligible proposals in the algorithm's order, with the advertisement that made each
       * eligible; each is also the proposal's Stability candidate (key = next hop, its cost and noise).
       */
      readonly eligible: ReadonlyArray<EligibleProposal>
      /** The first three rejections, described. */
      readonly rejected: ReadonlyArray<string>
      /**
       * Lowest cost among proposals refused only for feasibility although they already carry
       * our feasible distance's seqno (+Infinity when none): only a newer seqno can make those
       * feasible. One refused with an older seqno is still waiting for the current one (it
       * travels hop by hop), and asking again would only start a race the short path always wins.
       */
      readonly bestInfeasibleCostMs: number
    }

/**
 * An eligible proposal, which is also its Stability candidate (key = next hop, cost, noise): one
 * object per proposal instead of two (this runs per destination per decision; speed only).
 */
export interface EligibleProposal extends Stability.Candidate<SiteId> {
  readonly proposal: Proposal
  readonly advertised: RouteMetric | undefined
}

const noRejections: ReadonlyArray<{ readonly nextHop: SiteId; readonly e: Eligibility & { eligible: false } }> = []

/** GatedProposals' "Gated" case; `rejected` is described on first read (a class: cheap to create). */
class Gated {
  readonly _tag = "Gated"
  private described: ReadonlyArray<string> | undefined
  constructor(
    readonly eligible: ReadonlyArray<EligibleProposal>,
    private readonly rejections: ReadonlyArray<{
      readonly nextHop: SiteId
      readonly e: Eligibility & { eligible: false }
    }>,
    readonly bestInfeasibleCostMs: number,
  ) {}
  get rejected(): ReadonlyArray<string> {
    this.described ??= this.rejections.map((r) => describeRejection(r.nextHop, r.e))
    return this.described
  }
}

/** Runs one algorithm for one destination and applies the feasibility gate to its proposals. */
export const gatedProposals = (
  view: RoutingView,
  destination: SiteId,
  name: AlgorithmName,
  incumbent: SiteId | undefined,
): GatedProposals => {
  const result = algorithms[name].propose(view, destination, incumbent)
  if (result._tag === "Unavailable") return result
  const eligible: Array<EligibleProposal> = []
  // The first three rejections, described only when read (most decisions never read them, and
  // describing one formats numbers: a hot path of a model run). Allocated on the first one.
  let rejections: Array<{ nextHop: SiteId; e: Eligibility & { eligible: false } }> | undefined
  let bestInfeasibleCostMs = Number.POSITIVE_INFINITY
  const fd = view.feasibleDistance?.(destination)
  for (const p of result.proposals) {
    const e = view.eligibility(p.nextHop, destination)
    if (e.eligible) {
      eligible.push({
        proposal: p,
        advertised: p.nextHop === destination ? undefined : e.advertised,
        key: p.nextHop,
        cost: p.costMs,
        noiseMs: p.noiseMs,
      })
      continue
    }
    if (
      e.reason === "not-feasible" &&
      p.costMs < bestInfeasibleCostMs &&
      (fd === undefined || e.advertised === undefined || e.advertised.seqno >= fd.seqno)
    )
      bestInfeasibleCostMs = p.costMs
    rejections ??= []
    if (rejections.length < 3) rejections.push({ nextHop: p.nextHop, e })
  }
  return new Gated(eligible, rejections ?? noRejections, bestInfeasibleCostMs)
}

/** Every fallback reason for "proposals existed, none feasible" starts with this (NodeRouter requests on it). */
export const noFeasibleNextHop = "no feasible next hop"
const noFeasibleReason = (rejected: ReadonlyArray<string>): string => `${noFeasibleNextHop}: ${rejected.join("; ")}`

/** The fallback list of a route chosen by the first algorithm tried (one shared empty list). */
export const noFallbacks: ReadonlyArray<FallbackReason> = []
const sameSite = (a: SiteId, b: SiteId): boolean => a === b
const addFallback = (list: Array<FallbackReason> | undefined, reason: FallbackReason): Array<FallbackReason> => {
  const out = list ?? []
  out.push(reason)
  return out
}

/**
 * chooseRoute's result for graph-least-cost in its most common case, without the intermediate
 * lists and objects (speed only: this runs per destination per decision): the shortest path's
 * next hop is the incumbent and is eligible, so it is the only proposal, the only eligible one,
 * and Stability keeps it ("incumbent-best", the incumbent's time). undefined in every other case,
 * which the general path handles.
 */
const keptShortest = (
  view: RoutingView,
  destination: SiteId,
  previous: RouteMemory,
  fallbacks: ReadonlyArray<FallbackReason> | undefined,
  betterInfeasible: boolean,
): ChosenRoute | undefined => {
  // `treePath(tree, destination)`'s next hop and cost, without its path (built only if read).
  const tree = view.tree()
  const t = tree.graph.indexOf.get(destination)
  if (t === undefined) return undefined
  const paths = frozen(tree)
  const hop = paths.nextHopIndex(t)
  if (hop < 0 || tree.graph.sites[hop] !== previous.nextHop) return undefined
  const nextHop = previous.nextHop
  const e = view.eligibility(nextHop, destination)
  if (!e.eligible) return undefined
  const proposal = new TreeProposal(nextHop, tree.distanceMs[t]!, view.ownLink(nextHop).noiseMs, paths, destination)
  return {
    nextHop,
    proposal,
    algorithm: "graph-least-cost",
    fallbacks: fallbacks ?? noFallbacks,
    stability: "incumbent-best",
    sinceMillis: previous.sinceMillis,
    advertised: nextHop === destination ? undefined : e.advertised,
    betterInfeasible,
  }
}

/**
 * keptShortest's proposal: its path is the tree path, built on first read from the tree's
 * frozen parents (`paths`), so a decision can hold `paths` instead of one array per route.
 */
export class TreeProposal implements Proposal {
  #path: ReadonlyArray<SiteId> | undefined
  constructor(
    readonly nextHop: SiteId,
    readonly costMs: number,
    readonly noiseMs: number,
    readonly paths: FrozenTreePaths,
    readonly destination: SiteId,
  ) {}
  get path(): ReadonlyArray<SiteId> {
    this.#path ??= this.paths.pathTo(this.destination)
    return this.#path
  }
}

// The frozen paths of the last tree asked for (one per view: a decision's kept routes share it).
let frozenOf: ShortestPathTree | undefined
let frozenPaths: FrozenTreePaths | undefined
export const frozen = (tree: ShortestPathTree): FrozenTreePaths => {
  if (frozenOf !== tree || frozenPaths === undefined) {
    frozenPaths = new FrozenTreePaths(tree)
    frozenOf = tree
  }
  return frozenPaths
}

/**
 * Runs the chain for one destination: the first algorithm with at least one eligible proposal
 * wins; Stability then picks among its eligible proposals given the previous next hop.
 */
export const chooseRoute = (
  view: RoutingView,
  destination: SiteId,
  chain: ReadonlyArray<AlgorithmName>,
  previous: RouteMemory | undefined,
  stability: Stability.StabilityConfig,
): ChosenRoute => {
  // One shared empty list for the usual route that needed no fallback (it lives as long as the decision).
  let fallbacks: Array<FallbackReason> | undefined
  let betterInfeasible = false
  for (const name of chain) {
    if (name === "graph-least-cost" && previous !== undefined) {
      const kept = keptShortest(view, destination, previous, fallbacks, betterInfeasible)
      if (kept !== undefined) return kept
    }
    const gated = gatedProposals(view, destination, name, previous?.nextHop)
    if (gated._tag === "Unavailable") {
      fallbacks = addFallback(fallbacks, { algorithm: name, reason: gated.reason })
      continue
    }
    const { eligible, bestInfeasibleCostMs } = gated
    if (bestInfeasibleCostMs < Number.POSITIVE_INFINITY && eligible.length === 0) betterInfeasible = true
    if (eligible.length === 0) {
      fallbacks = addFallback(fallbacks, { algorithm: name, reason: noFeasibleReason(gated.rejected) })
      continue
    }
    const decision = Stability.decide<SiteId>(
      previous === undefined ? undefined : { key: previous.nextHop, sinceMillis: previous.sinceMillis },
      eligible,
      view.nowMillis,
      stabilityFor(name, stability),
      sameSite,
    )
    let chosen: EligibleProposal | undefined
    if (decision.choice !== undefined)
      for (const x of eligible)
        if (x.proposal.nextHop === decision.choice.key) {
          chosen = x
          break
        }
    if (chosen === undefined || !(chosen.proposal.costMs < Number.POSITIVE_INFINITY)) {
      fallbacks = addFallback(fallbacks, { algorithm: name, reason: "every eligible proposal is unusable" })
      continue
    }
    return {
      nextHop: chosen.proposal.nextHop,
      proposal: chosen.proposal,
      algorithm: name,
      fallbacks: fallbacks ?? noFallbacks,
      stability: decision.reason,
      sinceMillis: decision.choice!.sinceMillis,
      advertised: chosen.advertised,
      betterInfeasible: betterInfeasible || bestInfeasibleCostMs < chosen.proposal.costMs,
    }
  }
  return {
    nextHop: null,
    proposal: undefined,
    algorithm: null,
    fallbacks: fallbacks ?? noFallbacks,
    stability: "none",
    sinceMillis: view.nowMillis,
    advertised: undefined,
    betterInfeasible,
  }
}

/** One algorithm's own best feasible proposal for a destination, or why it has none. */
export type BestFeasible =
  | { readonly _tag: "Proposal"; readonly proposal: Proposal }
  | { readonly _tag: "None"; readonly reason: string }

/**
 * The lowest-cost eligible proposal of one algorithm (ties: the algorithm's order), without
 * stability: what the algorithm alone would pick now. Reads the view only.
 */
export const bestFeasible = (
  view: RoutingView,
  destination: SiteId,
  name: AlgorithmName,
  incumbent: SiteId | undefined,
): BestFeasible => {
  const gated = gatedProposals(view, destination, name, incumbent)
  if (gated._tag === "Unavailable") return { _tag: "None", reason: gated.reason }
  let best: Proposal | undefined
  for (const { proposal } of gated.eligible) {
    if (proposal.costMs < (best?.costMs ?? Number.POSITIVE_INFINITY)) best = proposal
  }
  if (best !== undefined) return { _tag: "Proposal", proposal: best }
  return {
    _tag: "None",
    reason: gated.eligible.length === 0 ? noFeasibleReason(gated.rejected) : "every eligible proposal is unusable",
  }
}
