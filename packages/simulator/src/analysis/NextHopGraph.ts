/**
 * Forwarding state of a whole mesh at one instant, as a next-hop graph: for every site and
 * destination site, the neighbour the site forwards to (or nothing). Loops and blackholes are
 * properties of this graph, found by following next hops from every source; a loop is reported
 * once per destination and cycle, however many sources run into it.
 */

/** Site ids are plain non-negative integers here (SiteId from the engine is assignable). */
export type Site = number

/** `nextHops.get(src)?.get(dst)` = the neighbour src forwards dst's traffic to; absent = no route. */
export interface ForwardingSnapshot {
  readonly atMillis: number
  readonly sites: ReadonlyArray<Site>
  readonly nextHops: ReadonlyMap<Site, ReadonlyMap<Site, Site>>
}

export type PathTrace =
  | { readonly _tag: "Delivered"; readonly path: ReadonlyArray<Site> }
  /** `path` ends with the first repeated site; `cycle` is the repeating part (first == last). */
  | { readonly _tag: "Loop"; readonly path: ReadonlyArray<Site>; readonly cycle: ReadonlyArray<Site> }
  /** Traffic reached `at`, which has no route to dst. */
  | { readonly _tag: "Blackhole"; readonly path: ReadonlyArray<Site>; readonly at: Site }

/** Builds a snapshot from `[src, dst, nextHop]` triples. */
export const snapshotOf = (
  atMillis: number,
  sites: ReadonlyArray<Site>,
  routes: Iterable<readonly [Site, Site, Site]>,
): ForwardingSnapshot => {
  const nextHops = new Map<Site, Map<Site, Site>>()
  for (const s of sites) nextHops.set(s, new Map())
  for (const [src, dst, via] of routes) {
    let m = nextHops.get(src)
    if (m === undefined) {
      m = new Map()
      nextHops.set(src, m)
    }
    m.set(dst, via)
  }
  return { atMillis, sites, nextHops }
}

export const nextHopOf = (snap: ForwardingSnapshot, src: Site, dst: Site): Site | undefined =>
  snap.nextHops.get(src)?.get(dst)

/** Follows next hops from src towards dst. */
export const tracePath = (snap: ForwardingSnapshot, src: Site, dst: Site): PathTrace => {
  const path: Site[] = [src]
  const seenAt = new Map<Site, number>([[src, 0]])
  let here = src
  while (here !== dst) {
    const via = nextHopOf(snap, here, dst)
    if (via === undefined) return { _tag: "Blackhole", path, at: here }
    path.push(via)
    const first = seenAt.get(via)
    if (first !== undefined) return { _tag: "Loop", path, cycle: path.slice(first) }
    seenAt.set(via, path.length - 1)
    here = via
  }
  return { _tag: "Delivered", path }
}

export interface LoopFinding {
  readonly dst: Site
  /** Rotated so the smallest site comes first; first == last. */
  readonly cycle: ReadonlyArray<Site>
  /** Sources whose traffic to dst ends in this cycle. */
  readonly sources: ReadonlyArray<Site>
}

export interface BlackholeFinding {
  readonly src: Site
  readonly dst: Site
  /** The site that had no route. */
  readonly at: Site
}

const canonicalCycle = (cycle: ReadonlyArray<Site>): Site[] => {
  const ring = cycle.slice(0, -1)
  let best = 0
  for (let i = 1; i < ring.length; i++) if ((ring[i] as Site) < (ring[best] as Site)) best = i
  const rotated = [...ring.slice(best), ...ring.slice(0, best)]
  return [...rotated, rotated[0] as Site]
}

/** Every forwarding loop in the snapshot, one entry per (destination, cycle). */
export const findLoops = (snap: ForwardingSnapshot): ReadonlyArray<LoopFinding> => {
  const found = new Map<string, { dst: Site; cycle: Site[]; sources: Site[] }>()
  for (const dst of snap.sites)
    for (const src of snap.sites) {
      if (src === dst) continue
      const t = tracePath(snap, src, dst)
      if (t._tag !== "Loop") continue
      const cycle = canonicalCycle(t.cycle)
      const key = `${dst}:${cycle.join(",")}`
      const entry = found.get(key)
      if (entry === undefined) found.set(key, { dst, cycle, sources: [src] })
      else entry.sources.push(src)
    }
  return [...found.values()]
}

/** Every (src, dst) pair whose traffic is dropped for lack of a route somewhere on its path. */
export const findBlackholes = (snap: ForwardingSnapshot): ReadonlyArray<BlackholeFinding> => {
  const out: BlackholeFinding[] = []
  for (const src of snap.sites)
    for (const dst of snap.sites) {
      if (src === dst) continue
      const t = tracePath(snap, src, dst)
      if (t._tag === "Blackhole") out.push({ src, dst, at: t.at })
    }
  return out
}

/** True when every ordered pair of distinct sites is delivered. */
export const isFullyDelivering = (snap: ForwardingSnapshot): boolean =>
  snap.sites.every((src) => snap.sites.every((dst) => src === dst || tracePath(snap, src, dst)._tag === "Delivered"))

/** True when two snapshots forward identically (same next hop for every src/dst). */
export const sameForwarding = (a: ForwardingSnapshot, b: ForwardingSnapshot): boolean => {
  const keys = new Set([...a.nextHops.keys(), ...b.nextHops.keys()])
  for (const src of keys) {
    const ma = a.nextHops.get(src) ?? new Map<Site, Site>()
    const mb = b.nextHops.get(src) ?? new Map<Site, Site>()
    if (ma.size !== mb.size) return false
    for (const [dst, via] of ma) if (mb.get(dst) !== via) return false
  }
  return true
}
