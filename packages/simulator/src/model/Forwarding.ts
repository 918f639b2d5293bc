/**
 * Hop-by-hop forwarding through the model: every site's installed choice (next-hop site and
 * tunnel) per destination, and the classification of every source's traffic towards one
 * destination by following those choices over the true links: delivered, dead (crosses a tunnel
 * that is down), loop, or blackhole (a site with no route, or a route over a tunnel that does not
 * exist). Loops and blackholes are observed here, never assumed.
 *
 * `../analysis/NextHopGraph.ts` (the twin's) traces one pair at a time over Map snapshots and does
 * not know tunnels or link truth; here one pass per destination classifies all N sources in O(N)
 * with memoisation, which the N = 200 runs need (they re-classify destinations thousands of times).
 * The model tests cross-check this against `tracePath` on random tables.
 */
import type { ModelNetwork } from "./ModelNetwork.js"

export const DELIVERED = 0
export const DEAD = 1
export const LOOP = 2
export const BLACKHOLE = 3
export type PairStatus = typeof DELIVERED | typeof DEAD | typeof LOOP | typeof BLACKHOLE
export const statusNames = ["delivered", "dead", "loop", "blackhole"] as const

export class ForwardingTable {
  /** s * sites + d → next-hop site, or -1. */
  readonly nextHop: Int32Array
  /** s * sites + d → link index of the chosen tunnel, or -1 (no route, or no such tunnel). */
  readonly link: Int32Array
  /** s * sites + d → chosen family (0 = none). */
  readonly family: Uint8Array
  /** Scratch of `classifyDestination` (called thousands of times per run: no arrays per call). */
  readonly scratchResolved: Uint8Array
  readonly scratchOnStack: Int32Array
  /** The walk of `classifyDestination` (an array emptied by `length = 0` gave up its storage on every walk). */
  readonly scratchStack: Int32Array

  constructor(readonly net: ModelNetwork) {
    const n = net.sites
    this.nextHop = new Int32Array(n * n).fill(-1)
    this.link = new Int32Array(n * n).fill(-1)
    this.family = new Uint8Array(n * n)
    this.scratchResolved = new Uint8Array(n)
    this.scratchOnStack = new Int32Array(n)
    this.scratchStack = new Int32Array(n)
  }

  /** Installs one route; true when the forwarding of (site, destination) changed. */
  install(site: number, destination: number, nextHop: number | null, family: number | null): boolean {
    const i = site * this.net.sites + destination
    const nh = nextHop ?? -1
    const fam = nextHop === null ? 0 : (family ?? 0)
    if (this.nextHop[i] === nh && this.family[i] === fam) return false
    this.nextHop[i] = nh
    this.family[i] = fam
    this.link[i] = nh < 0 ? -1 : this.net.linkIndex(site, nh, fam)
    return true
  }
}

export interface DestinationClassification {
  /** Per source site: PairStatus (the destination itself is DELIVERED). */
  readonly status: Uint8Array
  /** Canonical keys ("3>5>9") of the cycles found. */
  readonly cycles: ReadonlyArray<string>
}

/**
 * Classifies every source's traffic to `destination`. When `latencyMs` (per link) is given,
 * `pathLatencyOut[s]` receives the one-way latency of s's delivered path (NaN otherwise).
 */
export const classifyDestination = (
  table: ForwardingTable,
  destination: number,
  statusOut: Uint8Array,
  latencyMs?: Float64Array,
  pathLatencyOut?: Float64Array,
): DestinationClassification => {
  const net = table.net
  const n = net.sites
  const resolved = table.scratchResolved.fill(0)
  const onStack = table.scratchOnStack.fill(-1)
  const cycles: string[] = []
  resolved[destination] = 1
  statusOut[destination] = DELIVERED
  if (pathLatencyOut !== undefined) pathLatencyOut[destination] = 0
  // The walk: stack[0 .. depth) (a site appears at most once on a walk, so n slots suffice).
  const stack = table.scratchStack
  let depth = 0
  for (let s = 0; s < n; s++) {
    if (resolved[s] === 1) continue
    depth = 0
    let x = s
    // Walk until a resolved site, a dead end, or a site already on this walk (a loop).
    for (;;) {
      if (resolved[x] === 1) break
      const pos = onStack[x] as number
      if (pos >= 0) {
        const ring = Array.from(stack.subarray(pos, depth))
        let minAt = 0
        for (let k = 1; k < ring.length; k++) if ((ring[k] as number) < (ring[minAt] as number)) minAt = k
        cycles.push([...ring.slice(minAt), ...ring.slice(0, minAt)].join(">"))
        for (const y of ring) {
          statusOut[y] = LOOP
          resolved[y] = 1
          if (pathLatencyOut !== undefined) pathLatencyOut[y] = Number.NaN
        }
        break
      }
      onStack[x] = depth
      stack[depth++] = x
      const i = x * n + destination
      const nh = table.nextHop[i] as number
      const link = table.link[i] as number
      if (nh < 0 || link < 0) {
        statusOut[x] = BLACKHOLE
        resolved[x] = 1
        if (pathLatencyOut !== undefined) pathLatencyOut[x] = Number.NaN
        break
      }
      if (net.linkUp[link] !== 1) {
        statusOut[x] = DEAD
        resolved[x] = 1
        if (pathLatencyOut !== undefined) pathLatencyOut[x] = Number.NaN
        break
      }
      x = nh
    }
    // Unwind: each unresolved site on the walk takes its next hop's fate.
    for (let k = depth - 1; k >= 0; k--) {
      const y = stack[k] as number
      onStack[y] = -1
      if (resolved[y] === 1) continue
      const i = y * n + destination
      const nh = table.nextHop[i] as number
      statusOut[y] = statusOut[nh] as number
      resolved[y] = 1
      if (pathLatencyOut !== undefined && latencyMs !== undefined)
        pathLatencyOut[y] =
          statusOut[y] === DELIVERED
            ? (latencyMs[table.link[i] as number] as number) + (pathLatencyOut[nh] as number)
            : Number.NaN
    }
  }
  return { status: statusOut, cycles }
}
