/**
 * The oracle: the best possible path between two sites given the impairments injected on every
 * directed link, used to judge the paths routing actually chose. "Best" = least one-way delay;
 * a link that is down or loses everything is unusable. RTT of a pair = best forward delay plus
 * best reverse delay (the two directions may take different paths).
 */
import { DirectedGraph } from "graphology"
import { bidirectional } from "graphology-shortest-path/dijkstra.js"
import type { Site } from "./NextHopGraph.js"

export interface DirectedLinkState {
  readonly from: Site
  readonly to: Site
  /** Mean one-way delay in ms (propagation plus injected delay). */
  readonly delayMs: number
  readonly lossRatio: number
  readonly down: boolean
}

export interface OraclePath {
  readonly path: ReadonlyArray<Site>
  readonly delayMs: number
}

const usable = (l: DirectedLinkState): boolean => !l.down && l.lossRatio < 1 && Number.isFinite(l.delayMs)

/**
 * Least-delay path from src to dst, or undefined when dst is unreachable. Unusable links are
 * left out of the graph (an Infinity weight would not remove them from graphology's Dijkstra).
 */
export const oraclePath = (links: ReadonlyArray<DirectedLinkState>, src: Site, dst: Site): OraclePath | undefined => {
  if (src === dst) return { path: [src], delayMs: 0 }
  const g = new DirectedGraph<Record<string, never>, { delayMs: number }>()
  for (const l of links) {
    if (!usable(l)) continue
    const a = String(l.from)
    const b = String(l.to)
    g.mergeNode(a)
    g.mergeNode(b)
    // Parallel links (e.g. v4 and v6 tunnels) collapse to the faster one.
    const existing = g.directedEdge(a, b)
    if (existing === undefined) g.addDirectedEdge(a, b, { delayMs: l.delayMs })
    else if (g.getEdgeAttribute(existing, "delayMs") > l.delayMs) g.setEdgeAttribute(existing, "delayMs", l.delayMs)
  }
  if (!g.hasNode(String(src)) || !g.hasNode(String(dst))) return undefined
  const nodes = bidirectional(g, String(src), String(dst), "delayMs")
  if (nodes === null || nodes === undefined || nodes.length === 0) return undefined
  const path = nodes.map(Number)
  const delayMs = pathDelayMs(links, path)
  return delayMs === undefined ? undefined : { path, delayMs }
}

/** One-way delay of a given path, or undefined if some hop has no usable link. */
export const pathDelayMs = (links: ReadonlyArray<DirectedLinkState>, path: ReadonlyArray<Site>): number | undefined => {
  let total = 0
  for (let i = 0; i + 1 < path.length; i++) {
    const from = path[i]
    const to = path[i + 1]
    let best: number | undefined
    for (const l of links)
      if (l.from === from && l.to === to && usable(l) && (best === undefined || l.delayMs < best)) best = l.delayMs
    if (best === undefined) return undefined
    total += best
  }
  return total
}

/** Best achievable round-trip time between a and b, or undefined when either way is cut. */
export const oracleRttMs = (links: ReadonlyArray<DirectedLinkState>, a: Site, b: Site): number | undefined => {
  const fwd = oraclePath(links, a, b)
  const rev = oraclePath(links, b, a)
  return fwd === undefined || rev === undefined ? undefined : fwd.delayMs + rev.delayMs
}
