/**
 * The measured mesh as a directed graph: one edge per usable link (from → to) weighted by its
 * cost in ms-equivalent, plus shortest paths (Dijkstra) and k shortest loopless paths (Yen).
 *
 * Decision a reader must know: the graph holds only usable links. A dead or unknown link
 * (+Infinity, NaN, negative) is removed rather than stored with an infinite weight, because an
 * Infinity weight does not remove an edge in graphology's Dijkstra, and because one dead link
 * must never disable the whole computation (the original's defect, REFERENCE §13).
 *
 * Storage and search are ours, for measured reasons; graphology stays the exchange format
 * (`toGraphology()`) and graphology-shortest-path the reference the tests check us against.
 * A graphology store of a 200-site full mesh (39,800 links) took 8.9 MiB and ~45 ms to build
 * per node view, and its `singleSource` Dijkstra 6–16 ms per run (it copies a path array on
 * every relaxation) while Yen needs many runs. Here: one sparse row of usable links per site
 * (rows from link state are immutable and shared between routers, see `MeshGraph`) plus an
 * indexed snapshot (compressed adjacency, rebuilt only after a topology change, weights patched
 * after a cost change), and a binary-heap Dijkstra (≈ 0.13 ms per run at N = 200).
 */
import { DirectedGraph } from "graphology"
import { singleSource } from "graphology-shortest-path/dijkstra.js"
import type { Family, SiteId } from "./Domain.js"
import { isSmallSite, smallSiteLimit } from "./LinkState.js"

/** Attributes of one usable link. */
export interface LinkAttributes {
  readonly costMs: number
  /** Underlay family of the tunnel the cost belongs to. */
  readonly family: Family
  /** The link's smoothed RTT when known: costMs − rttMs is its loss/jitter/availability penalty. */
  readonly rttMs?: number
}

/** A path through the mesh with its summed cost. */
export interface Path {
  readonly sites: ReadonlyArray<SiteId>
  readonly costMs: number
}

/** Immutable indexed view of the graph; site indices follow ascending site id. */
export interface IndexedGraph {
  readonly sites: ReadonlyArray<SiteId>
  readonly indexOf: ReadonlyMap<number, number>
  /** Out-edges of node i are positions offsets[i] .. offsets[i+1]-1 of targets/weights. */
  readonly offsets: Int32Array
  readonly targets: Int32Array
  readonly weights: Float64Array
}

const usableCost = (costMs: number): boolean => costMs >= 0 && costMs < Number.POSITIVE_INFINITY

/**
 * One site's outgoing links: usable links only, ascending by remote site id. Immutable once
 * built by `linkRow` (a router builds one per received message and shares it with every view
 * that holds that message: a model run hands the same message to hundreds of routers, so the
 * row is built once and each recipient only stores a reference).
 */
export interface LinkRow {
  readonly remotes: ReadonlyArray<SiteId>
  readonly costsMs: ArrayLike<number>
  readonly families: ArrayLike<number>
  /** NaN = unknown. */
  readonly rttsMs: ArrayLike<number>
  /** The remotes joined (one string object per distinct list): equal keys = same links. */
  readonly topology: string
}

const emptyRow: LinkRow = { remotes: [], costsMs: [], families: [], rttsMs: [], topology: "" }

/** One string object per distinct topology, so rows of one origin compare in O(1) (speed only). */
const internedTopologies = new Map<string, string>()
const internTopology = (key: string): string => {
  const known = internedTopologies.get(key)
  if (known !== undefined) return known
  if (internedTopologies.size > 10_000) internedTopologies.clear()
  internedTopologies.set(key, key)
  return key
}

/**
 * Builds an immutable row of `from`'s links: entry i is from → remotes[i] (remotes distinct);
 * links to `from` itself and unusable costs (+Infinity, NaN, negative) are left out. The arrays
 * are copied, so the caller may reuse its own.
 */
export const linkRow = (
  from: SiteId,
  remotes: ReadonlyArray<SiteId>,
  costsMs: ArrayLike<number>,
  families: ArrayLike<number>,
  rttsMs: ArrayLike<number>,
): LinkRow => {
  const order: Array<number> = []
  for (let i = 0; i < remotes.length; i++) if (remotes[i] !== from && usableCost(costsMs[i]!)) order.push(i)
  order.sort((x, y) => remotes[x]! - remotes[y]!)
  const out = {
    remotes: order.map((i) => remotes[i]!),
    costsMs: Float64Array.from(order, (i) => costsMs[i]!),
    families: Uint8Array.from(order, (i) => families[i]!),
    rttsMs: Float64Array.from(order, (i) => rttsMs[i]!),
  }
  return { ...out, topology: internTopology(out.remotes.join(",")) }
}

interface Adjacency {
  readonly offsets: Int32Array
  readonly targets: Int32Array
}

const sameInts = (a: Int32Array, b: Int32Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * One copy per distinct adjacency (a snapshot's offsets and targets, never written after their
 * build) in the thread, by content: the routers of a model run see the same mesh, and each one's
 * searches read their own copy, cold in the cache at every decision (speed only; one shared copy
 * made the N = 200 model run ≈ 3 % faster). Bounded like `internedTopologies`.
 */
const internedAdjacency = new Map<number, Array<Adjacency>>()
const internAdjacency = (offsets: Int32Array, targets: Int32Array): Adjacency => {
  // FNV-1a over both arrays; equal hashes are compared in full.
  let hash = 2166136261
  for (let i = 0; i < offsets.length; i++) hash = Math.imul(hash ^ offsets[i]!, 16777619)
  for (let i = 0; i < targets.length; i++) hash = Math.imul(hash ^ targets[i]!, 16777619)
  let bucket = internedAdjacency.get(hash)
  if (bucket !== undefined)
    for (const a of bucket) if (sameInts(a.offsets, offsets) && sameInts(a.targets, targets)) return a
  if (internedAdjacency.size > 1_000) {
    internedAdjacency.clear()
    bucket = undefined
  }
  const built = { offsets, targets }
  if (bucket === undefined) internedAdjacency.set(hash, [built])
  else bucket.push(built)
  return built
}

/** Position of `site` in an ascending list, or −(insertion point) − 1. */
const search = (remotes: ReadonlyArray<number>, site: number): number => {
  let lo = 0
  let hi = remotes.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const r = remotes[mid]!
    if (r === site) return mid
    if (r < site) lo = mid + 1
    else hi = mid - 1
  }
  return -lo - 1
}

/** A row this graph may change in place (setLink); shared rows are copied into one first. */
interface OwnedRow {
  remotes: Array<SiteId>
  costsMs: Array<number>
  families: Array<number>
  rttsMs: Array<number>
  topology: string
}

/**
 * The mutable mesh graph: per site (slot) a sparse row of its usable links, ascending by remote.
 * A partial mesh's row holds its few tunnels, not a slot per site: the dense per-pair arrays this
 * replaced (256 × 256 costs and RTTs per router, ≈ 0.7 GB for 200 routers in one model process)
 * made every received message a string of cache misses. Rows from link state are shared
 * immutable objects (`setRow`), replaced by reference; only rows written link by link
 * (`setLink`, the router's own links) are owned and changed in place. Mutations invalidate the
 * cached indexed snapshot (topology) or mark its weights stale (costs only).
 */
export class MeshGraph {
  private readonly slotOf = new Map<number, number>()
  /**
   * slot + 1 per small site id (`isSmallSite`; 0 = absent): the same mapping as `slotOf` for the
   * usual ids, read with one array access.
   */
  private slotBySite = new Int32Array(0)
  private siteOfSlot: Array<SiteId> = []
  private rows: Array<LinkRow> = []
  /**
   * Per slot its row's topology (always `rows[a].topology`): `setRow` compares it for every
   * received message, and reading it from the old row object (untouched since that origin's
   * previous message) was a cache miss per message (speed only).
   */
  private topologies: Array<string> = []
  /** Per slot: its row is an OwnedRow of this graph (may be changed in place). */
  private owned: Array<boolean> = []
  /** Rows (slots) whose costs changed since the indexed snapshot's weights were last refreshed. */
  private rowDirty: Array<boolean> = []
  private links = 0
  /**
   * The indexed snapshot, dropped when the topology changes (site or link added/removed); a
   * cost change of an existing link only marks its row's weights stale, refreshed in O(row).
   */
  private snapshot: IndexedGraph | undefined
  private snapshotSlots: Int32Array | undefined
  private weightsStale = false
  /** The snapshot's site maps for `sites()` (read-only once built; see buildIndex). */
  private siteIndex:
    | {
        readonly sites: ReadonlyArray<SiteId>
        readonly indexOf: ReadonlyMap<number, number>
        readonly slots: Int32Array
        readonly indexOfSlot: Int32Array
      }
    | undefined
  /** `sites()` until the next addSite (read on every decision). */
  private sortedSites: ReadonlyArray<SiteId> | undefined

  private slot(site: number): number | undefined {
    if (isSmallSite(site)) {
      const v = site < this.slotBySite.length ? (this.slotBySite[site] as number) : 0
      return v === 0 ? undefined : v - 1
    }
    return this.slotOf.get(site)
  }

  addSite(site: SiteId): void {
    if (this.slot(site) !== undefined) return
    if (isSmallSite(site)) {
      if (site >= this.slotBySite.length) {
        const grown = new Int32Array(Math.min(smallSiteLimit, Math.max(256, 2 * (site + 1))))
        grown.set(this.slotBySite)
        this.slotBySite = grown
      }
      this.slotBySite[site] = this.siteOfSlot.length + 1
    }
    this.slotOf.set(site, this.siteOfSlot.length)
    this.siteOfSlot.push(site)
    this.rows.push(emptyRow)
    this.topologies.push(emptyRow.topology)
    this.owned.push(false)
    this.rowDirty.push(false)
    this.snapshot = undefined
    this.sortedSites = undefined
  }

  /** An independent copy (what-if views, e.g. NodeRouter.explain, must not touch the live mesh). */
  clone(): MeshGraph {
    const copy = new MeshGraph()
    for (const [site, slot] of this.slotOf) copy.slotOf.set(site, slot)
    copy.slotBySite = this.slotBySite.slice()
    copy.siteOfSlot = [...this.siteOfSlot]
    copy.rows = [...this.rows]
    copy.topologies = [...this.topologies]
    copy.owned = this.owned.map(() => false)
    // Both now share every row: the next setLink on either side copies first.
    this.owned.fill(false)
    copy.rowDirty = [...this.rowDirty]
    copy.links = this.links
    copy.snapshot = this.snapshot
    copy.snapshotSlots = this.snapshotSlots
    copy.weightsStale = this.weightsStale
    copy.sortedSites = this.sortedSites
    copy.siteIndex = this.siteIndex
    return copy
  }

  hasSite(site: SiteId): boolean {
    return this.slot(site) !== undefined
  }

  /** Every site ever added, ascending (shared until the next site is added: do not mutate). */
  sites(): ReadonlyArray<SiteId> {
    if (this.sortedSites === undefined) this.sortedSites = [...this.siteOfSlot].sort((a, b) => a - b)
    return this.sortedSites
  }

  /** Number of usable links. */
  get linkCount(): number {
    return this.links
  }

  /** The row of slot a, owned by this graph (copied on first write). */
  private ownedRow(a: number): OwnedRow {
    if (this.owned[a]) return this.rows[a] as OwnedRow
    const r = this.rows[a]!
    const copy: OwnedRow = {
      remotes: [...r.remotes],
      costsMs: Array.from(r.costsMs),
      families: Array.from(r.families),
      rttsMs: Array.from(r.rttsMs),
      topology: r.topology,
    }
    this.rows[a] = copy
    this.owned[a] = true
    return copy
  }

  /**
   * Sets the cost of link from → to (and the RTT it contains, when known); an unusable cost
   * removes the link.
   */
  setLink(from: SiteId, to: SiteId, costMs: number, family: Family, rttMs?: number): void {
    if (from === to) return
    if (!usableCost(costMs)) {
      const a = this.slot(from)
      if (a === undefined || this.slot(to) === undefined) return
      const i = search(this.rows[a]!.remotes, to)
      if (i < 0) return
      const row = this.ownedRow(a)
      row.remotes.splice(i, 1)
      row.costsMs.splice(i, 1)
      row.families.splice(i, 1)
      row.rttsMs.splice(i, 1)
      row.topology = row.remotes.join(",")
      this.topologies[a] = row.topology
      this.links--
      this.snapshot = undefined
      return
    }
    this.addSite(from)
    this.addSite(to)
    const a = this.slot(from)!
    const i = search(this.rows[a]!.remotes, to)
    const rtt = rttMs ?? Number.NaN
    if (i < 0) {
      const at = -i - 1
      const row = this.ownedRow(a)
      row.remotes.splice(at, 0, to)
      row.costsMs.splice(at, 0, costMs)
      row.families.splice(at, 0, family)
      row.rttsMs.splice(at, 0, rtt)
      row.topology = row.remotes.join(",")
      this.topologies[a] = row.topology
      this.links++
      this.snapshot = undefined
      return
    }
    const current = this.rows[a]!
    if (current.costsMs[i] === costMs && current.families[i] === family && Object.is(current.rttsMs[i], rtt)) return
    const row = this.ownedRow(a)
    row.rttsMs[i] = rtt
    row.families[i] = family
    if (row.costsMs[i] !== costMs) {
      row.costsMs[i] = costMs
      this.weightsStale = true
      this.rowDirty[a] = true
    }
  }

  /**
   * Replaces every link leaving `from` at once by a row from `linkRow` (kept by reference: rows
   * are immutable). Same result as `setLink` per link plus removing the links not listed.
   */
  setRow(from: SiteId, row: LinkRow): void {
    let a = this.slot(from)
    if (a === undefined) {
      this.addSite(from)
      a = this.slot(from)!
    }
    // Topologies are the remotes joined by commas: equal strings = equal lists (interned ones
    // compare as one object).
    if (this.topologies[a] !== row.topology) {
      // Sites are never removed: the same links as before add none.
      for (const to of row.remotes) if (this.slot(to) === undefined) this.addSite(to)
      this.links += row.remotes.length - this.rows[a]!.remotes.length
      this.snapshot = undefined
    } else {
      this.weightsStale = true
      this.rowDirty[a] = true
    }
    this.rows[a] = row
    this.topologies[a] = row.topology
    this.owned[a] = false
  }

  /**
   * Replaces every link leaving `from` at once: entry i sets from → remotes[i] (unusable cost
   * removes it; `rttsMs[i]` NaN = unknown), and links to sites not listed are removed. Remotes
   * must be distinct. Same result as those `setLink` calls plus removing the others.
   */
  setLinksFrom(
    from: SiteId,
    remotes: ReadonlyArray<SiteId>,
    costsMs: ArrayLike<number>,
    families: ArrayLike<number>,
    rttsMs: ArrayLike<number>,
  ): void {
    // Sites in the caller's order, as setLink per link would add them.
    if (this.slot(from) === undefined) this.addSite(from)
    for (let i = 0; i < remotes.length; i++)
      if (remotes[i] !== from && usableCost(costsMs[i]!) && this.slot(remotes[i]!) === undefined)
        this.addSite(remotes[i]!)
    this.setRow(from, linkRow(from, remotes, costsMs, families, rttsMs))
  }

  /** Removes every link leaving `from` (a peer whose link state aged out). */
  clearLinksFrom(from: SiteId): void {
    const a = this.slot(from)
    if (a === undefined || this.rows[a]!.remotes.length === 0) return
    this.links -= this.rows[a]!.remotes.length
    this.rows[a] = emptyRow
    this.topologies[a] = emptyRow.topology
    this.owned[a] = false
    this.snapshot = undefined
  }

  /** Sites `from` has a usable link to, ascending. */
  linksFrom(from: SiteId): ReadonlyArray<SiteId> {
    const a = this.slot(from)
    return a === undefined ? [] : [...this.rows[a]!.remotes]
  }

  /** Position of the link from → to in its row, or undefined (with the row) when absent. */
  private find(from: SiteId, to: SiteId): { row: LinkRow; i: number } | undefined {
    const a = this.slot(from)
    if (a === undefined) return undefined
    const row = this.rows[a]!
    const i = search(row.remotes, to)
    return i < 0 ? undefined : { row, i }
  }

  /** Cost of the direct link, +Infinity when absent. */
  linkCost(from: SiteId, to: SiteId): number {
    const f = this.find(from, to)
    return f === undefined ? Number.POSITIVE_INFINITY : f.row.costsMs[f.i]!
  }

  linkFamily(from: SiteId, to: SiteId): Family | undefined {
    const f = this.find(from, to)
    return f === undefined ? undefined : (f.row.families[f.i] as Family)
  }

  /** Σ (cost − RTT) along a path: what its links' loss, jitter and availability add to latency. */
  pathPenalty(sites: ReadonlyArray<SiteId>): number {
    let total = 0
    for (let i = 0; i + 1 < sites.length; i++) {
      const f = this.find(sites[i]!, sites[i + 1]!)
      if (f === undefined) return Number.POSITIVE_INFINITY
      const c = f.row.costsMs[f.i]!
      const r = f.row.rttsMs[f.i]!
      if (c > r) total += c - r
    }
    return total
  }

  /** Cost of a path given as sites (+Infinity if any link is missing; 0 for one site). */
  pathCost(sites: ReadonlyArray<SiteId>): number {
    let total = 0
    for (let i = 0; i + 1 < sites.length; i++) total += this.linkCost(sites[i]!, sites[i + 1]!)
    return total
  }

  indexed(): IndexedGraph {
    if (this.snapshot === undefined) {
      this.snapshot = this.buildIndex()
    } else if (this.weightsStale) {
      // Same topology, new costs: a new snapshot sharing the adjacency, so earlier snapshots
      // (held by views or copies) never change under their holders. A row's links are in the
      // snapshot's target order (both ascending by site), so its costs copy straight in.
      const g = this.snapshot
      const slots = this.snapshotSlots!
      const weights = g.weights.slice()
      for (let i = 0; i < g.sites.length; i++) {
        const a = slots[i]!
        if (!this.rowDirty[a]) continue
        const costs = this.rows[a]!.costsMs
        for (let p = g.offsets[i]!, end = g.offsets[i + 1]!, j = 0; p < end; p++, j++) weights[p] = costs[j]!
      }
      this.snapshot = { ...g, weights }
    }
    this.weightsStale = false
    this.rowDirty.fill(false)
    return this.snapshot
  }

  private buildIndex(): IndexedGraph {
    const sites = this.sites()
    // The site index maps only change with the site list (a link's death or return rebuilds the
    // snapshot without adding a site): reused until then.
    if (this.siteIndex?.sites !== sites) {
      const indexOf = new Map<number, number>()
      for (let i = 0; i < sites.length; i++) indexOf.set(sites[i]!, i)
      const slots = Int32Array.from(sites, (site) => this.slot(site)!)
      // Index of a site by its slot: a row's remotes map to target indices without a Map lookup.
      const indexOfSlot = new Int32Array(sites.length)
      for (let i = 0; i < sites.length; i++) indexOfSlot[slots[i]!] = i
      this.siteIndex = { sites, indexOf, slots, indexOfSlot }
    }
    const { indexOf, slots, indexOfSlot } = this.siteIndex
    this.snapshotSlots = slots
    const offsets = new Int32Array(sites.length + 1)
    const targets = new Int32Array(this.links)
    const weights = new Float64Array(this.links)
    let pos = 0
    for (let i = 0; i < sites.length; i++) {
      offsets[i] = pos
      const row = this.rows[slots[i]!]!
      // Ascending site order, so every search is independent of insertion order.
      for (let j = 0; j < row.remotes.length; j++) {
        targets[pos] = indexOfSlot[this.slot(row.remotes[j]!)!]!
        weights[pos] = row.costsMs[j]!
        pos++
      }
    }
    offsets[sites.length] = pos
    const adjacency = internAdjacency(offsets, targets)
    return { sites, indexOf, offsets: adjacency.offsets, targets: adjacency.targets, weights }
  }

  /** The mesh as a graphology `DirectedGraph` (usable links only), for inspection and tools. */
  toGraphology(): DirectedGraph<{ site: number }, LinkAttributes> {
    const graph = new DirectedGraph<{ site: number }, LinkAttributes>()
    const sites = this.sites()
    for (const site of sites) graph.addNode(String(site), { site })
    for (const a of sites) {
      const row = this.rows[this.slot(a)!]!
      for (let j = 0; j < row.remotes.length; j++) {
        const b = row.remotes[j]!
        const r = row.rttsMs[j]!
        const base = { costMs: row.costsMs[j]!, family: row.families[j] as Family }
        graph.addDirectedEdgeWithKey(`${a}>${b}`, String(a), String(b), Number.isNaN(r) ? base : { ...base, rttMs: r })
      }
    }
    return graph
  }
}

/** Builds an indexed graph straight from weighted edges (tests, bench, model simulator). */
export const indexedFromEdges = (
  siteIds: ReadonlyArray<number>,
  edges: ReadonlyArray<{ readonly from: number; readonly to: number; readonly costMs: number }>,
): IndexedGraph => {
  const mesh = new MeshGraph()
  for (const s of siteIds) mesh.addSite(s as SiteId)
  for (const e of edges) mesh.setLink(e.from as SiteId, e.to as SiteId, e.costMs, 4)
  return mesh.indexed()
}

/** Result of a single-source search over an indexed graph. */
export interface ShortestPathTree {
  readonly graph: IndexedGraph
  readonly source: number
  /** Per node index; +Infinity when unreachable. */
  readonly distanceMs: Float64Array
  /** Per node index: predecessor index, -1 for the source and unreachable nodes. */
  readonly parent: Int32Array
}

/**
 * Output arrays a caller lends to `dijkstra` (reused between searches: at N = 200 a model run
 * makes ≈ 1 000 searches per simulated second, and fresh typed arrays per search were a large
 * share of its garbage). The tree returned holds them, so it is only valid until they are lent again.
 */
export interface SearchBuffers {
  readonly distanceMs: Float64Array
  readonly parent: Int32Array
}

export interface SearchRestrictions {
  /** Stop once this node index is settled. */
  readonly target?: number
  /** Node indices (value 1) the search may not enter. */
  readonly bannedNodes?: Uint8Array
  /** Edge positions (value 1) the search may not use. */
  readonly bannedEdges?: Uint8Array
  /** Arrays of at least the graph's size to hold the result (see `SearchBuffers`). */
  readonly into?: SearchBuffers
}

/** The search's own scratch (never part of a result; searches do not nest), grown as needed. */
let scratchDone = new Uint8Array(0)
let scratchHeap: MinHeap | undefined

/** A lent buffer viewed at length n (or a new one when none is lent or it is too short). */
const lentOrNew = <T extends Float64Array | Int32Array>(lent: T | undefined, n: number, make: (n: number) => T): T =>
  lent === undefined || lent.length < n ? make(n) : lent.length === n ? lent : (lent.subarray(0, n) as T)

/**
 * Dijkstra from node index `source`. Ties between equal distances go to the lower node index
 * (heap order), and a node's parent is the first predecessor that reached its final distance,
 * so the result depends only on the graph.
 */
export const dijkstra = (g: IndexedGraph, source: number, restrictions: SearchRestrictions = {}): ShortestPathTree => {
  const n = g.sites.length
  const { target, bannedNodes, bannedEdges, into } = restrictions
  const distanceMs = lentOrNew(into?.distanceMs, n, (k) => new Float64Array(k))
  const parent = lentOrNew(into?.parent, n, (k) => new Int32Array(k))
  distanceMs.fill(Number.POSITIVE_INFINITY)
  parent.fill(-1)
  if (scratchDone.length < n) scratchDone = new Uint8Array(Math.max(n, 2 * scratchDone.length))
  const done = scratchDone
  done.fill(0, 0, n)
  scratchHeap ??= new MinHeap(256)
  const heap = scratchHeap
  heap.reset(n)
  distanceMs[source] = 0
  heap.push(0, source)
  while (heap.size > 0) {
    // Each node is queued at most once and never after it is done (MinHeap, relaxEdges).
    const u = heap.popNode()
    done[u] = 1
    if (u === target) break
    relaxEdges(g, u, distanceMs, parent, done, heap, bannedNodes, bannedEdges)
  }
  return { graph: g, source, distanceMs, parent }
}

/**
 * Relaxes the out-edges of settled node `u`: the inner loop of `dijkstra` and `IncrementalSearch`.
 * With `potentialMs` (a search ordered by reduced distance, see `IncrementalSearch`), v is queued
 * at its distance minus `potentialMs[v]` plus the source's (keys start at 0); distances and
 * parents are the plain ones either way.
 */
const relaxEdges = (
  g: IndexedGraph,
  u: number,
  distanceMs: Float64Array,
  parent: Int32Array,
  done: Uint8Array,
  heap: MinHeap,
  bannedNodes: Uint8Array | undefined,
  bannedEdges: Uint8Array | undefined,
  potentialMs?: Float64Array,
  sourcePotentialMs = 0,
): void => {
  const du = distanceMs[u]!
  for (let p = g.offsets[u]!, end = g.offsets[u + 1]!; p < end; p++) {
    if (bannedEdges !== undefined && bannedEdges[p] === 1) continue
    const v = g.targets[p]!
    if (done[v] === 1 || (bannedNodes !== undefined && bannedNodes[v] === 1)) continue
    const dv = du + g.weights[p]!
    if (dv < distanceMs[v]!) {
      distanceMs[v] = dv
      parent[v] = u
      heap.push(potentialMs === undefined ? dv : dv - potentialMs[v]! + sourcePotentialMs, v)
    }
  }
}

/** Arrays one `IncrementalSearch` works in; reusable by the next search once that one is dropped. */
export class SearchScratch {
  distanceMs = new Float64Array(0)
  parent = new Int32Array(0)
  done = new Uint8Array(0)
  readonly heap = new MinHeap(64)

  /** Sized for n nodes and reset (distances +Infinity, no parent, nothing done, empty heap). */
  reset(n: number): void {
    if (this.distanceMs.length !== n) {
      this.distanceMs = new Float64Array(n)
      this.parent = new Int32Array(n)
      this.done = new Uint8Array(n)
    } else this.done.fill(0)
    this.distanceMs.fill(Number.POSITIVE_INFINITY)
    this.parent.fill(-1)
    this.heap.reset(n)
  }
}

/**
 * Dijkstra from one source, run only as far as the queries need: `pathTo(t)` continues the search
 * until t is settled (or nothing is left), then reads its path. A settled node's distance and
 * parent never change again.
 *
 * Without `potentialMs`, the pops and relaxations are those of a full `dijkstra` run (same heap,
 * same order), only stopped early, so every path read equals the full search's (a property test
 * checks it). A route decision asks a neighbour's tree for the few destinations it is the
 * incumbent for; the full searches were a tenth of a model run.
 *
 * With `potentialMs`, the shortest distances of this graph (or a supergraph of it, e.g. the graph
 * before nodes were banned) from some root, finite at `source`, nodes are popped by reduced
 * distance, distance − potential: Dijkstra on the costs w(u, v) + π(u) − π(v), which are ≥ 0
 * because π is a shortest distance (the A* of every target at once, with the root's tree as the
 * lower bound). A node is still settled at its shortest distance, so every cost read equals the
 * full search's (up to rounding); among paths of equal cost another may be read. The decision's
 * own tree is the potential of its neighbours' searches: they pop nodes by the detour through the
 * neighbour, and the destinations a neighbour is the incumbent for are those with a small detour,
 * so the searches stop after about half the pops (10.7 M against 19.4 M in 150 s of the N = 200
 * model run, with no cost or path read different).
 */
export class IncrementalSearch {
  private readonly tree: ShortestPathTree
  private readonly sourcePotentialMs: number

  constructor(
    readonly graph: IndexedGraph,
    readonly source: number,
    private readonly bannedNodes: Uint8Array | undefined,
    private readonly scratch: SearchScratch,
    private readonly potentialMs?: Float64Array,
  ) {
    scratch.reset(graph.sites.length)
    scratch.distanceMs[source] = 0
    scratch.heap.push(0, source)
    this.tree = { graph, source, distanceMs: scratch.distanceMs, parent: scratch.parent }
    this.sourcePotentialMs = potentialMs?.[source] ?? 0
    if (!(this.sourcePotentialMs < Number.POSITIVE_INFINITY))
      throw new Error(`IncrementalSearch: potential of source ${source} is not finite`)
  }

  /** Runs the search until node index `target` is settled or the queue is empty. */
  private settle(target: number): void {
    const { distanceMs, parent, done, heap } = this.scratch
    const g = this.graph
    const bannedNodes = this.bannedNodes
    const potentialMs = this.potentialMs
    // The loop of `dijkstra`, resumable.
    while (done[target] === 0 && heap.size > 0) {
      const u = heap.popNode()
      done[u] = 1
      relaxEdges(g, u, distanceMs, parent, done, heap, bannedNodes, undefined, potentialMs, this.sourcePotentialMs)
    }
  }

  /** The shortest path to a site (as `treePath` on the full tree), or undefined. */
  pathTo(target: SiteId): Path | undefined {
    const t = this.graph.indexOf.get(target)
    if (t === undefined) return undefined
    this.settle(t)
    return treePath(this.tree, target)
  }
}

/** Node indices of the tree path source → target, or undefined when unreachable. */
export const treePathIndices = (tree: ShortestPathTree, target: number): Array<number> | undefined => {
  if (!(tree.distanceMs[target]! < Number.POSITIVE_INFINITY)) return undefined
  const out: Array<number> = []
  for (let v = target; v !== -1; v = tree.parent[v]!) out.push(v)
  out.reverse()
  return out
}

/** The tree path to a site, or undefined when unreachable or unknown. */
export const treePath = (tree: ShortestPathTree, target: SiteId): Path | undefined => {
  const t = tree.graph.indexOf.get(target)
  if (t === undefined || !(tree.distanceMs[t]! < Number.POSITIVE_INFINITY)) return undefined
  // Filled from the end, without the index list (a route decision reads one path per destination).
  let length = 0
  for (let v = t; v !== -1; v = tree.parent[v]!) length++
  const sites: Array<SiteId> = new Array(length)
  for (let v = t, i = length - 1; v !== -1; v = tree.parent[v]!, i--) sites[i] = tree.graph.sites[v]!
  return { sites, costMs: tree.distanceMs[t]! }
}

/**
 * Node index of the second node on the tree path to node `target` (the source's next hop), −1
 * when `target` is the source or unreachable: `treePath(tree, site).sites[1]`'s index without the
 * path (a decision asks this for every destination; speed only).
 */
export const treeNextHopIndex = (tree: ShortestPathTree, target: number): number => {
  if (target === tree.source || !(tree.distanceMs[target]! < Number.POSITIVE_INFINITY)) return -1
  let v = target
  for (let p = tree.parent[v]!; p !== tree.source; p = tree.parent[v]!) {
    if (p === -1) return -1
    v = p
  }
  return v
}

/**
 * A tree's paths, kept after the tree's lent arrays are reused (its parents copied once): a
 * decision that keeps the shortest path for most destinations holds this one object instead of a
 * path array per destination, and builds a path only when read (speed only: the paths read are
 * `treePath`'s).
 */
export class FrozenTreePaths {
  private readonly parent: Int32Array
  private readonly source: number
  // Not the graph: its weights need not outlive the decision's view.
  private readonly sites: ReadonlyArray<SiteId>
  private readonly indexOf: ReadonlyMap<number, number>
  private nextHops: Int32Array | undefined
  constructor(tree: ShortestPathTree) {
    this.sites = tree.graph.sites
    this.indexOf = tree.graph.indexOf
    this.source = tree.source
    this.parent = tree.parent.slice()
  }

  /**
   * `treeNextHopIndex(tree, target)` of the tree this was made from. Every node's next hop is
   * found in one pass on the first call (each parent chain walked once): a decision asks for
   * every destination, and walking each chain anew was ≈ 4 % of a quiet N = 200 model run.
   */
  nextHopIndex(target: number): number {
    this.nextHops ??= this.allNextHops()
    return this.nextHops[target]!
  }

  private allNextHops(): Int32Array {
    const parent = this.parent
    const unknown = -2
    const hops = new Int32Array(parent.length).fill(unknown)
    hops[this.source] = -1
    for (let v = 0; v < parent.length; v++) {
      if (hops[v] !== unknown) continue
      let u = v
      while (hops[u] === unknown) {
        const p = parent[u]!
        if (p === -1)
          hops[u] = -1 // unreachable (the source is known already)
        else if (p === this.source) hops[u] = u
        else u = p
      }
      const hop = hops[u]!
      for (let w = v; w !== u; w = parent[w]!) hops[w] = hop
    }
    return hops
  }
  /** `treePath(tree, target).sites` of the tree this was made from (the target must be reachable). */
  pathTo(target: SiteId): ReadonlyArray<SiteId> {
    const t = this.indexOf.get(target)!
    let length = 0
    for (let v = t; v !== -1; v = this.parent[v]!) length++
    const sites: Array<SiteId> = new Array(length)
    for (let v = t, i = length - 1; v !== -1; v = this.parent[v]!, i--) sites[i] = this.sites[v]!
    return sites
  }
}

/** Shortest path between two sites (undefined when either is unknown or no path exists). */
export const shortestPath = (g: IndexedGraph, from: SiteId, to: SiteId): Path | undefined => {
  const s = g.indexOf.get(from)
  const t = g.indexOf.get(to)
  if (s === undefined || t === undefined) return undefined
  return treePath(dijkstra(g, s, { target: t }), to)
}

/** Position of edge u → v in the adjacency arrays, -1 when absent (binary search: segments are sorted). */
export const edgePosition = (g: IndexedGraph, u: number, v: number): number => {
  let lo = g.offsets[u]!
  let hi = g.offsets[u + 1]! - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const t = g.targets[mid]!
    if (t === v) return mid
    if (t < v) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

const comparePaths = (a: { costMs: number; nodes: ReadonlyArray<number> }, b: typeof a): number => {
  if (a.costMs !== b.costMs) return a.costMs - b.costMs
  if (a.nodes.length !== b.nodes.length) return a.nodes.length - b.nodes.length
  for (let i = 0; i < a.nodes.length; i++) if (a.nodes[i] !== b.nodes[i]) return a.nodes[i]! - b.nodes[i]!
  return 0
}

/**
 * Yen's k shortest loopless paths from → to, in non-decreasing cost (ties: fewer hops, then
 * lower site indices). Fewer than k when fewer loopless paths exist.
 */
export const kShortestPaths = (g: IndexedGraph, from: SiteId, to: SiteId, k: number): ReadonlyArray<Path> => {
  const s = g.indexOf.get(from)
  const t = g.indexOf.get(to)
  if (s === undefined || t === undefined || k <= 0) return []
  if (s === t) return [{ sites: [from], costMs: 0 }]
  const first = treePathIndices(dijkstra(g, s, { target: t }), t)
  if (first === undefined) return []
  const accepted: Array<{ costMs: number; nodes: Array<number> }> = [{ costMs: indexPathCost(g, first), nodes: first }]
  const candidates: Array<{ costMs: number; nodes: Array<number> }> = []
  const seen = new Set<string>([first.join(",")])
  const bannedNodes = new Uint8Array(g.sites.length)
  const bannedEdges = new Uint8Array(g.targets.length)
  while (accepted.length < k) {
    const prev = accepted[accepted.length - 1]!.nodes
    let rootCost = 0
    for (let j = 0; j + 1 < prev.length; j++) {
      const spur = prev[j]!
      // Forbid the next edge of every accepted path sharing this root, and the root's nodes.
      const touched: Array<number> = []
      for (const a of accepted) {
        if (a.nodes.length <= j + 1 || !samePrefix(a.nodes, prev, j + 1)) continue
        const pos = edgePosition(g, spur, a.nodes[j + 1]!)
        if (pos >= 0 && bannedEdges[pos] === 0) {
          bannedEdges[pos] = 1
          touched.push(pos)
        }
      }
      for (let r = 0; r < j; r++) bannedNodes[prev[r]!] = 1
      const tree = dijkstra(g, spur, { target: t, bannedNodes, bannedEdges })
      const spurPath = treePathIndices(tree, t)
      for (const pos of touched) bannedEdges[pos] = 0
      for (let r = 0; r < j; r++) bannedNodes[prev[r]!] = 0
      if (spurPath !== undefined) {
        const nodes = prev.slice(0, j).concat(spurPath)
        const key = nodes.join(",")
        if (!seen.has(key)) {
          seen.add(key)
          candidates.push({ costMs: rootCost + tree.distanceMs[t]!, nodes })
        }
      }
      rootCost += g.weights[edgePosition(g, spur, prev[j + 1]!)]!
    }
    if (candidates.length === 0) break
    let best = 0
    for (let i = 1; i < candidates.length; i++) if (comparePaths(candidates[i]!, candidates[best]!) < 0) best = i
    accepted.push(candidates[best]!)
    candidates.splice(best, 1)
  }
  return accepted.map((a) => ({ sites: a.nodes.map((i) => g.sites[i]!), costMs: a.costMs }))
}

const samePrefix = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, length: number): boolean => {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false
  return true
}

const indexPathCost = (g: IndexedGraph, nodes: ReadonlyArray<number>): number => {
  let total = 0
  for (let i = 0; i + 1 < nodes.length; i++) total += g.weights[edgePosition(g, nodes[i]!, nodes[i + 1]!)]!
  return total
}

/**
 * Shortest paths from `source` computed by graphology-shortest-path on the graphology store
 * (which holds only usable links). Slower; kept as the library reference the tests compare
 * the indexed Dijkstra against.
 */
export const referenceShortestPaths = (mesh: MeshGraph, source: SiteId): ReadonlyMap<number, Path> => {
  const out = new Map<number, Path>()
  const graph = mesh.toGraphology()
  if (!graph.hasNode(String(source))) return out
  const paths = singleSource(graph, String(source), (_e, attrs) => attrs.costMs)
  for (const [key, nodes] of Object.entries(paths)) {
    const sites = nodes.map((n) => Number(n) as SiteId)
    out.set(Number(key), { sites, costMs: mesh.pathCost(sites) })
  }
  return out
}

/**
 * Binary min-heap of (priority, node) pairs ordered by priority, then node, holding each node at
 * most once: a push of a queued node lowers its priority in place (searches only ever lower it).
 * The pops come out in the order of the lazy-deletion heap this replaced (which skipped a node's
 * stale, higher entries after its first pop): the least (priority, node) among queued nodes. Half
 * the heap operations of a search (speed only; `reset` before each search).
 */
class MinHeap {
  private prio: Float64Array
  private node: Int32Array
  /** Heap position of each node, −1 when not queued. */
  private pos = new Int32Array(0)
  size = 0
  constructor(capacity: number) {
    this.prio = new Float64Array(capacity)
    this.node = new Int32Array(capacity)
  }
  /** Empty, for nodes 0 .. n−1. */
  reset(n: number): void {
    if (this.pos.length < n) this.pos = new Int32Array(Math.max(n, 2 * this.pos.length))
    this.pos.fill(-1, 0, n)
    if (this.prio.length < n) {
      this.prio = new Float64Array(n)
      this.node = new Int32Array(n)
    }
    this.size = 0
  }
  /** Queues v at priority p, or lowers its priority to p if it is queued (p must not be higher). */
  push(p: number, v: number): void {
    let i = this.pos[v]!
    if (i < 0) i = this.size++
    const prio = this.prio
    const node = this.node
    const pos = this.pos
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pp = prio[parent]!
      const pn = node[parent]!
      if (pp < p || (pp === p && pn <= v)) break
      prio[i] = pp
      node[i] = pn
      pos[pn] = i
      i = parent
    }
    prio[i] = p
    node[i] = v
    pos[v] = i
  }
  popNode(): number {
    const prio = this.prio
    const node = this.node
    const pos = this.pos
    const top = node[0]!
    pos[top] = -1
    const n = --this.size
    if (n > 0) {
      const p = prio[n]!
      const v = node[n]!
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= n) break
        const r = c + 1
        if (r < n && (prio[r]! < prio[c]! || (prio[r] === prio[c] && node[r]! < node[c]!))) c = r
        const cp = prio[c]!
        const cn = node[c]!
        if (p < cp || (p === cp && v <= cn)) break
        prio[i] = cp
        node[i] = cn
        pos[cn] = i
        i = c
      }
      prio[i] = p
      node[i] = v
      pos[v] = i
    }
    return top
  }
}
