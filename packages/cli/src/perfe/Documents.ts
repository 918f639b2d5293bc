/**
 * perfe's documents (pure): one per (source, destination, export time), with a deterministic
 * `_id` so that a retried bulk item overwrites instead of duplicating. `route_changed` compares
 * with the NEWEST earlier document of the pair (the original's cache kept the oldest one, so
 * every route that ever changed was reported as changed forever).
 */
import type { MeshView, RouteView } from "../perfc/Snapshot.js"

export interface RouteDocument {
  readonly "@timestamp": string
  /** `"<source>-<destination>"`: the key to find a pair's newest document (keyword). */
  readonly pair: string
  readonly source: number
  readonly source_name: string | null
  readonly destination: number
  readonly configured_algorithm: string
  /** Algorithm whose route is in force; null when none could route (BIRD's route applies). */
  readonly algorithm: string | null
  readonly fallbacks: ReadonlyArray<{ readonly algorithm: string; readonly reason: string }>
  readonly next_hop: number | null
  readonly interface: string | null
  /** Expected path [source, ..., destination]. */
  readonly path: ReadonlyArray<number>
  readonly path_str: string
  /** The original's "Via"/bgp_path: hops after the source following each site's own route. */
  readonly via: ReadonlyArray<number>
  readonly via_str: string
  readonly via_status: string
  readonly hop_count: number
  readonly cost_ms: number | null
  readonly metric_ms: number | null
  readonly rtt_ms: number | null
  readonly loss_ratio: number | null
  readonly stability: string
  readonly starved: boolean
  /** Each algorithm's own path, when the daemons were asked for them. */
  readonly paths_by_algorithm: Readonly<Record<string, ReadonlyArray<number>>>
  /** In-force path = graph-least-cost's own path (the original compared with Dijkstra); null if unknown. */
  readonly is_optimal: boolean | null
  readonly route_changed: boolean
  readonly last_path: ReadonlyArray<number> | null
  readonly last_path_str: string | null
}

export interface IndexedDocument {
  readonly id: string
  readonly document: RouteDocument
}

/** The newest known document's path per pair (`pair` → path). */
export type LastPaths = ReadonlyMap<string, ReadonlyArray<number>>

export const pairKey = (source: number, destination: number): string => `${source}-${destination}`

export const pathString = (path: ReadonlyArray<number>): string => path.join(" -> ")

/** The path a document compares: the expected path, else the forwarding chain from the source. */
const effectivePath = (source: number, r: RouteView): ReadonlyArray<number> =>
  r.path.length > 0 ? r.path : r.via.length > 0 ? [source, ...r.via] : []

const samePath = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i])

/** Documents of one export round, sorted by (source, destination), and the updated last paths. */
export const buildDocuments = (
  view: MeshView,
  lastPaths: LastPaths,
): { documents: ReadonlyArray<IndexedDocument>; lastPaths: LastPaths } => {
  const timestamp = new Date(view.atMillis).toISOString()
  const next = new Map(lastPaths)
  const documents: Array<IndexedDocument> = []
  for (const site of view.sites) {
    if (!site.ok) continue
    const byAlgorithm = new Map<string, Map<number, RouteView>>(
      site.perAlgorithm.map((a) => [a.algorithm, new Map(a.routes.map((r) => [r.destination, r]))]),
    )
    for (const r of site.routes) {
      const key = pairKey(site.site, r.destination)
      const path = effectivePath(site.site, r)
      const last = lastPaths.get(key)
      const pathsByAlgorithm: Record<string, ReadonlyArray<number>> = {}
      for (const [algorithm, routes] of byAlgorithm) {
        const own = routes.get(r.destination)
        if (own !== undefined) pathsByAlgorithm[algorithm] = effectivePath(site.site, own)
      }
      const graphPath = pathsByAlgorithm["graph-least-cost"]
      documents.push({
        id: `${key}-${view.atMillis}`,
        document: {
          "@timestamp": timestamp,
          pair: key,
          source: site.site,
          source_name: site.name,
          destination: r.destination,
          configured_algorithm: site.configuredAlgorithm,
          algorithm: r.algorithm,
          fallbacks: r.fallbacks,
          next_hop: r.nextHop,
          interface: r.interfaceName,
          path,
          path_str: pathString(path),
          via: r.via,
          via_str: pathString(r.via),
          via_status: r.viaStatus,
          hop_count: r.hopCount,
          cost_ms: r.costMs,
          metric_ms: r.metricMs,
          rtt_ms: r.rttMs,
          loss_ratio: r.lossRatio,
          stability: r.stability,
          starved: r.starved,
          paths_by_algorithm: pathsByAlgorithm,
          is_optimal: graphPath === undefined || graphPath.length === 0 ? null : samePath(path, graphPath),
          route_changed: last !== undefined && !samePath(last, path),
          last_path: last ?? null,
          last_path_str: last === undefined ? null : pathString(last),
        },
      })
      next.set(key, path)
    }
  }
  documents.sort((a, b) => a.document.source - b.document.source || a.document.destination - b.document.destination)
  return { documents, lastPaths: next }
}

/** Index mappings: keywords for ids and names so that dashboards can aggregate them. */
export const indexMappings = {
  dynamic: true,
  properties: {
    "@timestamp": { type: "date" },
    pair: { type: "keyword" },
    source: { type: "integer" },
    source_name: { type: "keyword" },
    destination: { type: "integer" },
    configured_algorithm: { type: "keyword" },
    algorithm: { type: "keyword" },
    fallbacks: { properties: { algorithm: { type: "keyword" }, reason: { type: "text" } } },
    next_hop: { type: "integer" },
    interface: { type: "keyword" },
    path: { type: "integer" },
    path_str: { type: "keyword" },
    via: { type: "integer" },
    via_str: { type: "keyword" },
    via_status: { type: "keyword" },
    hop_count: { type: "integer" },
    cost_ms: { type: "double" },
    metric_ms: { type: "double" },
    rtt_ms: { type: "double" },
    loss_ratio: { type: "double" },
    stability: { type: "keyword" },
    starved: { type: "boolean" },
    paths_by_algorithm: { type: "object", dynamic: true },
    is_optimal: { type: "boolean" },
    route_changed: { type: "boolean" },
    last_path: { type: "integer" },
    last_path_str: { type: "keyword" },
  },
} as const
