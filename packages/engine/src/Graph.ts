/**
 * The measured mesh as a directed graph: one edge per usable link (from → to) weighted by its
 * cost in ms-equivalent, plus shortest paths (Dijkstra) and k shortest loopless paths (Yen).
 *
 * Decision a reader must know: the graph holds only usable links. A dead or unknown link
 * (+Infinity, NaN, negative) is removed rather than stored with an infinite weight, because an
 * Infinity weight does not remove an edge in graphology's Dijkstra, and because one dead link
 * must never disable the whole computation (the original's defect, REFERENCE §13).
 *
 * The graph lives in graphology (`DirectedGraph`), the store every reader can inspect. Path
 * searches run on an indexed snapshot (compressed adjacency arrays, rebuilt only after a
 * change) with our own binary-heap Dijkstra: graphology-shortest-path's `singleSource` took
 * 6–16 ms per run on a 200-site full mesh here (it copies a path array on every relaxation),
 * and Yen needs hundreds of runs; the indexed one takes well under 1 ms. The test suite checks
 * both against each other and against brute force.
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

const usableCost = (costMs: number): boolean => costMs >= 0 && costMs < Number.POSITIVE_INFINITY

const edgeKey = (from: number, to: number): string => `${from}>${to}`

/** The mutable mesh graph. Mutations invalidate the cached indexed snapshot. */
export class MeshGraph {
  readonly graph = new DirectedGraph<{ site: number }, LinkAttributes>()
  private snapshot: IndexedGraph | undefined

  addSite(site: SiteId): void {
    const key = String(site)
    if (!this.graph.hasNode(key)) {
      this.graph.addNode(key, { site })
      this.snapshot = undefined
    }
  }

  /** Sets the cost of link from → to; an unusable cost removes the link. */
  setLink(from: SiteId, to: SiteId, costMs: number, family: Family, rttMs?: number): void {
    if (from === to) return
    const key = edgeKey(from, to)
    if (!usableCost(costMs)) {
      if (this.graph.hasEdge(key)) {
        this.graph.dropEdge(key)
        this.snapshot = undefined
      }
      return
    }
    this.addSite(from)
    this.addSite(to)
    const attrs: LinkAttributes = rttMs === undefined ? { costMs, family } : { costMs, family, rttMs }
    if (this.graph.hasEdge(key)) {
      const old = this.graph.getEdgeAttributes(key)
      if (old.costMs === costMs && old.family === family && old.rttMs === rttMs) return
      this.graph.replaceEdgeAttributes(key, attrs)
      // Only a cost change alters the indexed view.
      if (old.costMs === costMs) return
    } else {
      this.graph.addDirectedEdgeWithKey(key, String(from), String(to), attrs)
    }
    this.snapshot = undefined
  }

  /** Removes every link leaving `from` (a peer whose link state aged out). */
  clearLinksFrom(from: SiteId): void {
    const key = String(from)
    if (!this.graph.hasNode(key) || this.graph.outDegree(key) === 0) return
    for (const e of this.graph.outEdges(key)) this.graph.dropEdge(e)
    this.snapshot = undefined
  }

  /** Cost of the direct link, +Infinity when absent. */
  linkCost(from: SiteId, to: SiteId): number {
    const key = edgeKey(from, to)
    return this.graph.hasEdge(key) ? this.graph.getEdgeAttributes(key).costMs : Number.POSITIVE_INFINITY
  }

  linkFamily(from: SiteId, to: SiteId): Family | undefined {
    const key = edgeKey(from, to)
    return this.graph.hasEdge(key) ? this.graph.getEdgeAttributes(key).family : undefined
  }

  /** Σ (cost − RTT) along a path: what its links' loss, jitter and availability add to latency. */
  pathPenalty(sites: ReadonlyArray<SiteId>): number {
    let total = 0
    for (let i = 0; i + 1 < sites.length; i++) {
      const key = edgeKey(sites[i]!, sites[i + 1]!)
      if (!this.graph.hasEdge(key)) return Number.POSITIVE_INFINITY
      const a = this.graph.getEdgeAttributes(key)
      if (a.rttMs !== undefined && a.costMs > a.rttMs) total += a.costMs - a.rttMs
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
    if (this.snapshot === undefined) this.snapshot = buildIndex(this.graph)
    return this.snapshot
  }
}

const buildIndex = (graph: DirectedGraph<{ site: number }, LinkAttributes>): IndexedGraph => {
  const sites: Array<SiteId> = []
  graph.forEachNode((_key, attrs) => {
    sites.push(attrs.site as SiteId)
  })
  sites.sort((a, b) => a - b)
  const indexOf = new Map<number, number>()
  for (let i = 0; i < sites.length; i++) indexOf.set(sites[i]!, i)
  const offsets = new Int32Array(sites.length + 1)
  const targets = new Int32Array(graph.size)
  const weights = new Float64Array(graph.size)
  let pos = 0
  for (let i = 0; i < sites.length; i++) {
    offsets[i] = pos
    const start = pos
    graph.forEachOutEdge(String(sites[i]), (_e, attrs, _s, target) => {
      targets[pos] = indexOf.get(Number(target))!
      weights[pos] = attrs.costMs
      pos++
    })
    // Sorted neighbours make every search independent of insertion order.
    sortSegment(targets, weights, start, pos)
  }
  offsets[sites.length] = pos
  return { sites, indexOf, offsets, targets, weights }
}

const sortSegment = (targets: Int32Array, weights: Float64Array, start: number, end: number): void => {
  // Insertion sort: segments arrive nearly sorted (graphology keeps insertion order).
  for (let i = start + 1; i < end; i++) {
    const t = targets[i]!
    const w = weights[i]!
    let j = i - 1
    while (j >= start && targets[j]! > t) {
      targets[j + 1] = targets[j]!
      weights[j + 1] = weights[j]!
      j--
    }
    targets[j + 1] = t
    weights[j + 1] = w
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
  if (!mesh.graph.hasNode(String(source))) return out
  const paths = singleSource(mesh.graph, String(source), (_e, attrs) => attrs.costMs)
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
