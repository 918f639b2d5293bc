/**
 * How metrics-store data may enter the routing graph: the merge rule between the link-state
 * exchange (primary) and the metrics store (fallback).
 *
 * Decision a reader must know — the rule:
 *  1. Per origin site, the exchange wins: while the exchange has a fresh message from X (heard
 *     within `linkStateMaxAgeMillis`), X's links in the graph are exactly what X said; the store
 *     never touches them.
 *  2. Only for an origin the exchange has no fresh data for (never heard, or aged out) are X's
 *     links taken from the store, and only from samples younger than `maxSampleAgeMillis`
 *     (the sample's scrape time, not the query time) whose tunnel was up at X. An older sample,
 *     a tunnel X reported down/unknown, or no sample at all leaves the link unknown (absent =
 *     +Infinity): store data can make a link usable only while it is recent, never better
 *     than unknown once it is old. When the store is down its last samples simply age out.
 *  3. Advertised distances — what the loop-freedom rule (feasibility condition) reads — come
 *     only from the exchange. The store fills graph links (costs), never distances, so a
 *     neighbour with no fresh advertisement stays ineligible as a next hop, and the engine's
 *     loop-freedom argument (engine README, "Loop freedom") holds unchanged: it does not depend
 *     on the graph's link costs at all.
 *  4. Our own links always come from our own probes.
 * The rows are written into the router's graph (`MeshGraph.setLinksFrom`), which the next
 * exchange message from that origin replaces, and the engine clears when the origin ages out.
 */
import { type CostModel, type LinkStats, linkCost, type SiteId } from "@net-perf/engine"

export interface FallbackRow {
  readonly origin: SiteId
  readonly remotes: ReadonlyArray<SiteId>
  readonly costsMs: ReadonlyArray<number>
  readonly families: ReadonlyArray<number>
  /** NaN = unknown (the graph's convention). */
  readonly rttsMs: ReadonlyArray<number>
}

export interface FallbackPlan {
  /** Rows to write (each replaces the origin's links). */
  readonly set: ReadonlyArray<FallbackRow>
  /** Origins we filled before whose store data is gone or old: their links become unknown. */
  readonly clear: ReadonlyArray<SiteId>
  /** Origins whose links now come from the store. */
  readonly filled: ReadonlySet<number>
  /** Usable links in `set`. */
  readonly links: number
}

export interface FallbackInput {
  readonly self: SiteId
  readonly nowMillis: number
  /** The store's tunnels (LinkStats with the sample's scrape time). */
  readonly tunnels: ReadonlyArray<LinkStats>
  /** Rule 1: does the exchange have a fresh message from this origin? */
  readonly exchangeFresh: (origin: SiteId) => boolean
  readonly maxSampleAgeMillis: number
  readonly costModel: CostModel
  /** Origins filled by the previous plan. */
  readonly filled: ReadonlySet<number>
}

/** Pure: the rule above applied to one snapshot. */
export const planFallback = (input: FallbackInput): FallbackPlan => {
  const byOrigin = new Map<number, Map<number, { costMs: number; family: number; rttMs: number }>>()
  for (const stats of input.tunnels) {
    const { local, remote, family } = stats.tunnel
    if (local === input.self || local === remote || input.exchangeFresh(local)) continue
    const costMs = linkCost(stats, {
      model: input.costModel,
      nowMillis: input.nowMillis,
      staleAfterMillis: input.maxSampleAgeMillis,
    })
    const row = byOrigin.get(local) ?? new Map()
    byOrigin.set(local, row)
    const old = row.get(remote)
    // Per remote the cheaper family (the store does not say which one the origin routes over).
    if (old === undefined || costMs < old.costMs || (costMs === old.costMs && family < old.family))
      row.set(remote, { costMs, family, rttMs: stats.rttMs ?? Number.NaN })
  }
  const set: Array<FallbackRow> = []
  const filled = new Set<number>()
  let links = 0
  for (const [origin, row] of [...byOrigin].sort((a, b) => a[0] - b[0])) {
    const usable = [...row].filter(([, l]) => l.costMs < Number.POSITIVE_INFINITY).sort((a, b) => a[0] - b[0])
    if (usable.length === 0) continue
    filled.add(origin)
    links += usable.length
    set.push({
      origin: origin as SiteId,
      remotes: usable.map(([r]) => r as SiteId),
      costsMs: usable.map(([, l]) => l.costMs),
      families: usable.map(([, l]) => l.family),
      rttsMs: usable.map(([, l]) => l.rttMs),
    })
  }
  // An origin we filled and no longer fill: unknown again, unless the exchange has taken it over
  // (its message has replaced the row already; clearing would erase the exchange's data).
  const clear = [...input.filled]
    .filter((o) => !filled.has(o) && !input.exchangeFresh(o as SiteId))
    .sort((a, b) => a - b) as Array<SiteId>
  return { set, clear, filled, links }
}

/** The part of the engine's `MeshGraph` the fallback writes. */
export interface GraphRows {
  setLinksFrom(
    from: SiteId,
    remotes: ReadonlyArray<SiteId>,
    costsMs: ArrayLike<number>,
    families: ArrayLike<number>,
    rttsMs: ArrayLike<number>,
  ): void
  clearLinksFrom(from: SiteId): void
}

const rowKey = (r: FallbackRow) =>
  `${r.origin}:${r.remotes.map((x, i) => `${x}/${r.families[i]}/${Math.round((r.costsMs[i] ?? 0) * 100)}`).join(",")}`

/**
 * Stateful applier: remembers which origins it filled and what it wrote, writes a plan into the
 * graph and says whether anything changed (so the caller can trigger a decision only then).
 */
export const makeFallbackApplier = (options: {
  readonly self: SiteId
  readonly graph: GraphRows
  readonly exchangeFresh: (origin: SiteId, nowMillis: number) => boolean
  readonly maxSampleAgeMillis: number
  readonly costModel: CostModel
}) => {
  let filled: ReadonlySet<number> = new Set()
  const written = new Map<number, string>()
  return {
    filled: () => filled,
    apply: (tunnels: ReadonlyArray<LinkStats>, nowMillis: number): { changed: boolean; plan: FallbackPlan } => {
      const plan = planFallback({
        self: options.self,
        nowMillis,
        tunnels,
        exchangeFresh: (o) => options.exchangeFresh(o, nowMillis),
        maxSampleAgeMillis: options.maxSampleAgeMillis,
        costModel: options.costModel,
        filled,
      })
      let changed = false
      for (const row of plan.set) {
        const key = rowKey(row)
        // Rewritten every time (the engine may have cleared an aged-out origin's row since);
        // "changed" only when the content differs.
        options.graph.setLinksFrom(row.origin, row.remotes, row.costsMs, row.families, row.rttsMs)
        if (written.get(row.origin) !== key) changed = true
        written.set(row.origin, key)
      }
      for (const origin of plan.clear) {
        options.graph.clearLinksFrom(origin)
        written.delete(origin)
        changed = true
      }
      for (const origin of [...written.keys()]) if (!plan.filled.has(origin)) written.delete(origin)
      filled = plan.filled
      return { changed, plan }
    },
  }
}
