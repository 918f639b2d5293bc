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
 * every relaxation) while Yen needs many runs. Here: dense per-pair arrays plus an indexed
 * snapshot (compressed adjacency, rebuilt only after a cost change), ≈ 1.5 MiB at 200 sites,
 * and a binary-heap Dijkstra (≈ 0.13 ms per run at N = 200).
 */
import { DirectedGraph } from "graphology"
import { singleSource } from "graphology-shortest-path/dijkstra.js"
import type { Family, SiteId } from "./Domain.js"

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

/** Site ids below this are mapped to slots through an array (see `MeshGraph.slotBySite`). */
const fastSiteLimit = 65_536

const usableCost = (costMs: number): boolean => costMs >= 0 && costMs < Number.POSITIVE_INFINITY

/**
 * The mutable mesh graph: dense per-site-pair arrays (cost, RTT, family), +Infinity = no usable
 * link. Mutations invalidate the cached indexed snapshot.
 */
export class MeshGraph {
  private readonly slotOf = new Map<number, number>()
  /**
   * slot + 1 per site id below 65 536 (0 = absent): the same mapping as `slotOf` for the usual
   * small ids, read with one array access (a model run does millions of lookups per simulated
   * second, and a Map lookup per router was most of a row update's time).
   */
  private slotBySite = new Int32Array(0)
  /** Rows (slots) whose costs changed since the indexed snapshot's weights were last refreshed. */
  private rowDirty = new Uint8Array(0)
  private siteOfSlot: Array<SiteId> = []
  private capacity = 0
  private cost = new Float64Array(0)
  private rtt = new Float64Array(0)
  private family = new Uint8Array(0)
  private links = 0
  /** Usable links per slot row (lets a whole-row update skip its stale-link scan). */
  private rowLinks = new Int32Array(0)
  /**
   * The indexed snapshot, dropped when the topology changes (site or link added/removed); a
   * cost change of an existing link only marks its weights stale, refreshed in O(links).
   */
  private snapshot: IndexedGraph | undefined
  private snapshotSlots: Int32Array | undefined
  private weightsStale = false
  /** `sites()` until the next addSite (read on every decision). */
  private sortedSites: ReadonlyArray<SiteId> | undefined

  private grow(): void {
    const old = this.capacity
    const capacity = Math.max(8, old * 2)
    const cost = new Float64Array(capacity * capacity).fill(Number.POSITIVE_INFINITY)
    const rtt = new Float64Array(capacity * capacity).fill(Number.NaN)
    const family = new Uint8Array(capacity * capacity)
    const rowLinks = new Int32Array(capacity)
    rowLinks.set(this.rowLinks)
    this.rowLinks = rowLinks
    const rowDirty = new Uint8Array(capacity)
    rowDirty.set(this.rowDirty)
    this.rowDirty = rowDirty
    for (let i = 0; i < old; i++) {
      cost.set(this.cost.subarray(i * old, (i + 1) * old), i * capacity)
      rtt.set(this.rtt.subarray(i * old, (i + 1) * old), i * capacity)
      family.set(this.family.subarray(i * old, (i + 1) * old), i * capacity)
    }
    this.capacity = capacity
    this.cost = cost
    this.rtt = rtt
    this.family = family
  }

  private slot(site: number): number | undefined {
    if (site >= 0 && site < fastSiteLimit && Number.isInteger(site)) {
      const v = site < this.slotBySite.length ? (this.slotBySite[site] as number) : 0
      return v === 0 ? undefined : v - 1
    }
    return this.slotOf.get(site)
  }

  addSite(site: SiteId): void {
    if (this.slot(site) !== undefined) return
    if (this.siteOfSlot.length === this.capacity) this.grow()
    if (site >= 0 && site < fastSiteLimit && Number.isInteger(site)) {
      if (site >= this.slotBySite.length) {
        const grown = new Int32Array(Math.min(fastSiteLimit, Math.max(256, 2 * (site + 1))))
        grown.set(this.slotBySite)
        this.slotBySite = grown
      }
      this.slotBySite[site] = this.siteOfSlot.length + 1
    }
    this.slotOf.set(site, this.siteOfSlot.length)
    this.siteOfSlot.push(site)
    this.snapshot = undefined
    this.sortedSites = undefined
  }

  /** An independent copy (what-if views, e.g. NodeRouter.explain, must not touch the live mesh). */
  clone(): MeshGraph {
    const copy = new MeshGraph()
    for (const [site, slot] of this.slotOf) copy.slotOf.set(site, slot)
    copy.slotBySite = this.slotBySite.slice()
    copy.rowDirty = this.rowDirty.slice()
    copy.siteOfSlot = [...this.siteOfSlot]
    copy.capacity = this.capacity
    copy.cost = this.cost.slice()
    copy.rtt = this.rtt.slice()
    copy.family = this.family.slice()
    copy.links = this.links
    copy.rowLinks = this.rowLinks.slice()
    copy.snapshot = this.snapshot
    copy.snapshotSlots = this.snapshotSlots
    copy.weightsStale = this.weightsStale
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

  /**
   * Sets the cost of link from → to (and the RTT it contains, when known); an unusable cost
   * removes the link.
   */
  setLink(from: SiteId, to: SiteId, costMs: number, family: Family, rttMs?: number): void {
    if (from === to) return
    if (!usableCost(costMs)) {
      const a = this.slot(from)
      const b = this.slot(to)
      if (a === undefined || b === undefined) return
      const k = a * this.capacity + b
      if (this.cost[k]! < Number.POSITIVE_INFINITY) {
        this.cost[k] = Number.POSITIVE_INFINITY
        this.rtt[k] = Number.NaN
        this.links--
        this.rowLinks[a]!--
        this.snapshot = undefined
      }
      return
    }
    this.addSite(from)
    this.addSite(to)
    const a = this.slot(from)!
    const k = a * this.capacity + this.slot(to)!
    const old = this.cost[k]!
    if (!(old < Number.POSITIVE_INFINITY)) {
      this.links++
      this.rowLinks[a]!++
      this.snapshot = undefined
    }
    this.rtt[k] = rttMs ?? Number.NaN
    this.family[k] = family
    if (old !== costMs) {
      this.cost[k] = costMs
      this.weightsStale = true
      this.rowDirty[a] = 1
    }
  }

  /**
   * Replaces every link leaving `from` at once: entry i sets from → remotes[i] (unusable cost
   * removes it; `rttsMs[i]` NaN = unknown), and links to sites not listed are removed. Remotes
   * must be distinct. Same result as those `setLink` calls plus removing the others, without
   * scanning the row when no link was left over (the common case: a peer's message lists the
   * same tunnels as its previous one).
   */
  setLinksFrom(
    from: SiteId,
    remotes: ReadonlyArray<SiteId>,
    costsMs: ArrayLike<number>,
    families: ArrayLike<number>,
    rttsMs: ArrayLike<number>,
  ): void {
    let a = this.slot(from)
    if (a === undefined) {
      this.addSite(from)
      a = this.slot(from)!
    }
    let usable = 0
    // setLink(from, remotes[i], …) inlined: one map lookup per link instead of four.
    for (let i = 0; i < remotes.length; i++) {
      const to = remotes[i]!
      if (to === from) continue
      const c = costsMs[i]!
      let b = this.slot(to)
      if (!usableCost(c)) {
        if (b !== undefined) this.setLink(from, to, c, 4)
        continue
      }
      usable++
      if (b === undefined) {
        this.addSite(to)
        b = this.slot(to)!
      }
      const k = a * this.capacity + b
      const old = this.cost[k]!
      if (!(old < Number.POSITIVE_INFINITY)) {
        this.links++
        this.rowLinks[a]!++
        this.snapshot = undefined
      }
      this.rtt[k] = rttsMs[i]!
      this.family[k] = families[i]!
      if (old !== c) {
        this.cost[k] = c
        this.weightsStale = true
        this.rowDirty[a] = 1
      }
    }
    if (this.rowLinks[a] === usable) return
    const keep = new Set<number>()
    for (let i = 0; i < remotes.length; i++) if (usableCost(costsMs[i]!)) keep.add(remotes[i]!)
    for (let b = 0; b < this.siteOfSlot.length; b++) {
      const to = this.siteOfSlot[b]!
      if (this.cost[a * this.capacity + b]! < Number.POSITIVE_INFINITY && !keep.has(to)) {
        this.setLink(from, to, Number.POSITIVE_INFINITY, 4)
      }
    }
  }

  /** Removes every link leaving `from` (a peer whose link state aged out). */
  clearLinksFrom(from: SiteId): void {
    const a = this.slot(from)
    if (a === undefined || this.rowLinks[a] === 0) return
    for (const to of this.siteOfSlot) this.setLink(from, to, Number.POSITIVE_INFINITY, 4)
  }

  /** Sites `from` has a usable link to. */
  linksFrom(from: SiteId): ReadonlyArray<SiteId> {
    const a = this.slot(from)
    if (a === undefined) return []
    const out: Array<SiteId> = []
    for (let b = 0; b < this.siteOfSlot.length; b++) {
      if (this.cost[a * this.capacity + b]! < Number.POSITIVE_INFINITY) out.push(this.siteOfSlot[b]!)
    }
    return out
  }

  /** Cost of the direct link, +Infinity when absent. */
  linkCost(from: SiteId, to: SiteId): number {
    const a = this.slot(from)
    const b = this.slot(to)
    return a === undefined || b === undefined ? Number.POSITIVE_INFINITY : this.cost[a * this.capacity + b]!
  }

  linkFamily(from: SiteId, to: SiteId): Family | undefined {
    const a = this.slot(from)
    const b = this.slot(to)
    if (a === undefined || b === undefined) return undefined
    const k = a * this.capacity + b
    return this.cost[k]! < Number.POSITIVE_INFINITY ? (this.family[k] as Family) : undefined
  }

  /** Σ (cost − RTT) along a path: what its links' loss, jitter and availability add to latency. */
  pathPenalty(sites: ReadonlyArray<SiteId>): number {
    let total = 0
    for (let i = 0; i + 1 < sites.length; i++) {
      const a = this.slot(sites[i]!)
      const b = this.slot(sites[i + 1]!)
      if (a === undefined || b === undefined) return Number.POSITIVE_INFINITY
      const k = a * this.capacity + b
      const c = this.cost[k]!
      if (!(c < Number.POSITIVE_INFINITY)) return Number.POSITIVE_INFINITY
      const r = this.rtt[k]!
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
      // (held by views or copies) never change under their holders.
      // Rows whose costs did not change keep their weights (one sequential copy).
      const g = this.snapshot
      const slots = this.snapshotSlots!
      const weights = g.weights.slice()
      for (let i = 0; i < g.sites.length; i++) {
        if (this.rowDirty[slots[i]!] === 0) continue
        const row = slots[i]! * this.capacity
        for (let p = g.offsets[i]!, end = g.offsets[i + 1]!; p < end; p++)
          weights[p] = this.cost[row + slots[g.targets[p]!]!]!
      }
      this.snapshot = { ...g, weights }
    }
    this.weightsStale = false
    this.rowDirty.fill(0)
    return this.snapshot
  }

  private buildIndex(): IndexedGraph {
    const sites = this.sites()
    const indexOf = new Map<number, number>()
    for (let i = 0; i < sites.length; i++) indexOf.set(sites[i]!, i)
    const slots = Int32Array.from(sites, (site) => this.slot(site)!)
    this.snapshotSlots = slots
    const offsets = new Int32Array(sites.length + 1)
    const targets = new Int32Array(this.links)
    const weights = new Float64Array(this.links)
    let pos = 0
    for (let i = 0; i < sites.length; i++) {
      offsets[i] = pos
      const row = slots[i]! * this.capacity
      // Ascending site order, so every search is independent of insertion order.
      for (let j = 0; j < sites.length; j++) {
        const c = this.cost[row + slots[j]!]!
        if (c < Number.POSITIVE_INFINITY) {
          targets[pos] = j
          weights[pos] = c
          pos++
        }
      }
    }
    offsets[sites.length] = pos
    return { sites, indexOf, offsets, targets, weights }
  }

  /** The mesh as a graphology `DirectedGraph` (usable links only), for inspection and tools. */
  toGraphology(): DirectedGraph<{ site: number }, LinkAttributes> {
    const graph = new DirectedGraph<{ site: number }, LinkAttributes>()
    const sites = this.sites()
    for (const site of sites) graph.addNode(String(site), { site })
    for (const a of sites) {
      for (const b of this.linksFrom(a)) {
        const k = this.slot(a)! * this.capacity + this.slot(b)!
        const r = this.rtt[k]!
        const base = { costMs: this.cost[k]!, family: this.family[k] as Family }
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

export interface SearchRestrictions {
  /** Stop once this node index is settled. */
  readonly target?: number
  /** Node indices (value 1) the search may not enter. */
  readonly bannedNodes?: Uint8Array
  /** Edge positions (value 1) the search may not use. */
  readonly bannedEdges?: Uint8Array
}

/**
 * Dijkstra from node index `source`. Ties between equal distances go to the lower node index
 * (heap order), and a node's parent is the first predecessor that reached its final distance,
 * so the result depends only on the graph.
 */
export const dijkstra = (g: IndexedGraph, source: number, restrictions: SearchRestrictions = {}): ShortestPathTree => {
  const n = g.sites.length
  const distanceMs = new Float64Array(n).fill(Number.POSITIVE_INFINITY)
  const parent = new Int32Array(n).fill(-1)
  const done = new Uint8Array(n)
  const { target, bannedNodes, bannedEdges } = restrictions
  const heap = new MinHeap(Math.max(16, n))
  distanceMs[source] = 0
  heap.push(0, source)
  while (heap.size > 0) {
    const u = heap.popNode()
    if (done[u] === 1) continue
    done[u] = 1
    if (u === target) break
    const du = distanceMs[u]!
    for (let p = g.offsets[u]!, end = g.offsets[u + 1]!; p < end; p++) {
      if (bannedEdges !== undefined && bannedEdges[p] === 1) continue
      const v = g.targets[p]!
      if (done[v] === 1 || (bannedNodes !== undefined && bannedNodes[v] === 1)) continue
      const dv = du + g.weights[p]!
      if (dv < distanceMs[v]!) {
        distanceMs[v] = dv
        parent[v] = u
        heap.push(dv, v)
      }
    }
  }
  return { graph: g, source, distanceMs, parent }
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
  if (t === undefined) return undefined
  const idx = treePathIndices(tree, t)
  if (idx === undefined) return undefined
  return { sites: idx.map((i) => tree.graph.sites[i]!), costMs: tree.distanceMs[t]! }
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

/** Binary min-heap of (priority, node) pairs with lazy deletion (stale entries are skipped by the caller). */
class MinHeap {
  private prio: Float64Array
  private node: Int32Array
  size = 0
  constructor(capacity: number) {
    this.prio = new Float64Array(capacity)
    this.node = new Int32Array(capacity)
  }
  push(p: number, v: number): void {
    if (this.size === this.prio.length) {
      const prio = new Float64Array(this.size * 2)
      prio.set(this.prio)
      const node = new Int32Array(this.size * 2)
      node.set(this.node)
      this.prio = prio
      this.node = node
    }
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pp = this.prio[parent]!
      if (pp < p || (pp === p && this.node[parent]! <= v)) break
      this.prio[i] = pp
      this.node[i] = this.node[parent]!
      i = parent
    }
    this.prio[i] = p
    this.node[i] = v
  }
  popNode(): number {
    const top = this.node[0]!
    const n = --this.size
    if (n > 0) {
      const p = this.prio[n]!
      const v = this.node[n]!
      let i = 0
      for (;;) {
        let c = 2 * i + 1
        if (c >= n) break
        const r = c + 1
        if (
          r < n &&
          (this.prio[r]! < this.prio[c]! || (this.prio[r] === this.prio[c] && this.node[r]! < this.node[c]!))
        )
          c = r
        const cp = this.prio[c]!
        if (p < cp || (p === cp && v <= this.node[c]!)) break
        this.prio[i] = cp
        this.node[i] = this.node[c]!
        i = c
      }
      this.prio[i] = p
      this.node[i] = v
    }
    return top
  }
}
