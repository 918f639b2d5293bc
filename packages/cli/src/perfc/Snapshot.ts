/**
 * The mesh-wide route view perfc prints and perfe exports, derived from every site's replies
 * (pure). Two paths per route: `path`, what the source daemon expects, and `via`, the hop-by-hop
 * chain found by following each queried site's own next hop (the original's "Via"), which shows
 * loops and black holes the daemons cannot see alone. Measured RTT/loss of a path are summed
 * from the link stats of each hop's sending site (the tunnel it selected): RTT adds up, delivery
 * ratios multiply; a hop whose site did not answer leaves the figure null, never a guess.
 */
import type { Management } from "@net-perf/node-runtime"
import type { SiteReplies, SiteUnreachable } from "./ManagementClient.js"
import type { SiteTarget } from "./Targets.js"

export interface FallbackView {
  readonly algorithm: string
  readonly reason: string
}

export type ViaStatus =
  /** reached the destination through managed routes only */
  | "ok"
  /** a site on the way has no managed route: BIRD's route applies from there */
  | "bird"
  /** a site on the way was not queried or did not answer */
  | "incomplete"
  /** the chain came back to a site it had visited */
  | "loop"

export interface RouteView {
  readonly destination: number
  readonly nextHop: number | null
  readonly interfaceName: string | null
  /** Algorithm that produced the route; null when none could. */
  readonly algorithm: string | null
  /** Why earlier algorithms of the fallback chain could not route (in order). */
  readonly fallbacks: ReadonlyArray<FallbackView>
  readonly costMs: number | null
  readonly metricMs: number | null
  /** Expected path [source, ..., destination] as the source daemon knows it. */
  readonly path: ReadonlyArray<number>
  /** Hops after the source, following each site's own route: [next, next's next, ...]. */
  readonly via: ReadonlyArray<number>
  readonly viaStatus: ViaStatus
  readonly hopCount: number
  /** Sum of the selected tunnels' RTTs along `path`; null if a hop has no stats. */
  readonly rttMs: number | null
  /** 1 − Π(1 − loss) along `path`; null if a hop has no stats. */
  readonly lossRatio: number | null
  readonly stability: string
  readonly starved: boolean
}

export interface AlgorithmView {
  readonly algorithm: string
  /** This algorithm's choice is the one in force for every destination it routes. */
  readonly routes: ReadonlyArray<RouteView>
}

export interface TunnelView {
  readonly interfaceName: string
  readonly remote: number
  readonly family: number
  readonly state: string
  readonly rttMs: number | null
  readonly jitterMs: number
  readonly lossRatio: number
  readonly availability: number
  readonly costMs: number | null
  readonly selected: boolean
}

export type SiteView =
  | {
      readonly ok: true
      readonly site: number
      readonly name: string | null
      readonly address: string
      readonly configuredAlgorithm: string
      readonly updatedAtMillis: number
      readonly version: string | null
      readonly node: string | null
      readonly elapsedMillis: number
      readonly routes: ReadonlyArray<RouteView>
      readonly perAlgorithm: ReadonlyArray<AlgorithmView>
      readonly tunnels: ReadonlyArray<TunnelView> | null
    }
  | {
      readonly ok: false
      readonly site: number
      readonly name: string | null
      readonly address: string
      readonly error: { readonly code: string; readonly message: string }
    }

export interface MeshView {
  readonly atMillis: number
  readonly sites: ReadonlyArray<SiteView>
  readonly summary: {
    readonly sites: number
    readonly reachable: number
    readonly unreachable: ReadonlyArray<number>
  }
}

export type SiteResult =
  | { readonly _tag: "ok"; readonly replies: SiteReplies }
  | { readonly _tag: "failed"; readonly target: SiteTarget; readonly error: SiteUnreachable }

const orNull = (x: number | undefined): number | null => (x === undefined || !Number.isFinite(x) ? null : x)

/** Follows next hops from `source` towards `destination` through the sites' in-force routes. */
export const followVia = (
  source: number,
  destination: number,
  nextHopOf: (site: number, destination: number) => number | null | undefined,
): { via: ReadonlyArray<number>; status: ViaStatus } => {
  const via: Array<number> = []
  const seen = new Set<number>([source])
  let at = source
  for (;;) {
    const next = nextHopOf(at, destination)
    if (next === undefined) return { via, status: "incomplete" }
    if (next === null) return { via, status: at === destination ? "ok" : "bird" }
    via.push(next)
    if (next === destination) return { via, status: "ok" }
    if (seen.has(next)) return { via, status: "loop" }
    seen.add(next)
    at = next
  }
}

/** The tunnel a site uses towards `remote`: the selected one, else the cheapest up one. */
const tunnelTowards = (
  stats: Management.GetLinkStatsResponse | undefined,
  remote: number,
): Management.TunnelStatus | undefined => {
  if (stats === undefined) return undefined
  const candidates = stats.tunnels.filter((t) => t.remote === remote)
  return (
    candidates.find((t) => t.selected) ??
    candidates
      .filter((t) => t.rttMs !== undefined)
      .sort((a, b) => (a.costMs ?? Number.POSITIVE_INFINITY) - (b.costMs ?? Number.POSITIVE_INFINITY))[0]
  )
}

/** Measured RTT and loss along a path from each hop's sending site's tunnel stats. */
export const measurePath = (
  path: ReadonlyArray<number>,
  statsOf: (site: number) => Management.GetLinkStatsResponse | undefined,
): { rttMs: number | null; lossRatio: number | null } => {
  if (path.length < 2) return { rttMs: null, lossRatio: null }
  let rttMs = 0
  let delivery = 1
  for (let i = 0; i + 1 < path.length; i++) {
    const from = path[i] as number
    const to = path[i + 1] as number
    const tunnel = tunnelTowards(statsOf(from), to)
    if (tunnel === undefined || tunnel.rttMs === undefined) return { rttMs: null, lossRatio: null }
    rttMs += tunnel.rttMs
    delivery *= 1 - Math.min(1, Math.max(0, tunnel.lossRatio))
  }
  return { rttMs, lossRatio: 1 - delivery }
}

const routeView = (
  source: number,
  route: Management.Route,
  nextHopOf: (site: number, destination: number) => number | null | undefined,
  statsOf: (site: number) => Management.GetLinkStatsResponse | undefined,
): RouteView => {
  // The first hop is this route's own (it may be one algorithm's choice, not the one in force).
  const { via, status } = followVia(source, route.destination, (site, destination) =>
    site === source ? (route.nextHop ?? null) : nextHopOf(site, destination),
  )
  const path = route.path.length > 0 ? [...route.path] : []
  const measured = measurePath(path, statsOf)
  return {
    destination: route.destination,
    nextHop: route.nextHop ?? null,
    interfaceName: route.interfaceName === "" ? null : route.interfaceName,
    algorithm: route.algorithm === "" ? null : route.algorithm,
    fallbacks: route.fallbacks.map((f) => ({ algorithm: f.algorithm, reason: f.reason })),
    costMs: orNull(route.costMs),
    metricMs: orNull(route.metricMs),
    path,
    via,
    viaStatus: status,
    hopCount: path.length > 0 ? path.length - 1 : via.length,
    rttMs: measured.rttMs,
    lossRatio: measured.lossRatio,
    stability: route.stability,
    starved: route.starved,
  }
}

const byDestination = (a: RouteView, b: RouteView) => a.destination - b.destination

/** Builds the mesh view from every site's result (sites sorted by id). */
export const buildMeshView = (results: ReadonlyArray<SiteResult>, atMillis: number): MeshView => {
  const replies = new Map<number, SiteReplies>()
  for (const r of results) if (r._tag === "ok") replies.set(r.replies.target.site, r.replies)
  const inForce = new Map<number, Map<number, Management.Route>>()
  for (const [site, r] of replies)
    inForce.set(site, new Map(r.routes.routes.map((route) => [route.destination, route])))
  const nextHopOf = (site: number, destination: number): number | null | undefined => {
    if (site === destination) return null
    const table = inForce.get(site)
    if (table === undefined) return undefined
    return table.get(destination)?.nextHop ?? null
  }
  const statsOf = (site: number) => replies.get(site)?.linkStats

  const sites = [...results]
    .sort((a, b) => siteOf(a) - siteOf(b))
    .map((result): SiteView => {
      if (result._tag === "failed") {
        return {
          ok: false,
          site: result.target.site,
          name: result.target.name ?? null,
          address: result.target.address,
          error: { code: result.error.code, message: result.error.detail },
        }
      }
      const { target, routes, linkStats, version, elapsedMillis } = result.replies
      const view = (r: Management.Route) => routeView(target.site, r, nextHopOf, statsOf)
      return {
        ok: true,
        site: target.site,
        name: target.name ?? null,
        address: target.address,
        configuredAlgorithm: routes.configuredAlgorithm,
        updatedAtMillis: routes.atMillis,
        version: version?.version ?? null,
        node: version?.node ?? null,
        elapsedMillis,
        routes: routes.routes.map(view).sort(byDestination),
        perAlgorithm: routes.perAlgorithm.map((a) => ({
          algorithm: a.algorithm,
          routes: a.routes.map(view).sort(byDestination),
        })),
        tunnels:
          linkStats === undefined
            ? null
            : linkStats.tunnels.map((t) => ({
                interfaceName: t.interfaceName,
                remote: t.remote,
                family: t.family,
                state: t.state,
                rttMs: orNull(t.rttMs),
                jitterMs: t.jitterMs,
                lossRatio: t.lossRatio,
                availability: t.availability,
                costMs: orNull(t.costMs),
                selected: t.selected,
              })),
      }
    })
  const unreachable = sites.filter((s) => !s.ok).map((s) => s.site)
  return {
    atMillis,
    sites,
    summary: { sites: sites.length, reachable: sites.length - unreachable.length, unreachable },
  }
}

const siteOf = (r: SiteResult): number => (r._tag === "ok" ? r.replies.target.site : r.target.site)
