/**
 * The runtime truth of a model mesh: one LinkTruth per directed link, dense indexes from
 * (from, to, family) to the link, the up/down state at the current simulated instant, and the
 * oracle. The oracle here is the least one-way-delay path over links that are up, the same
 * definition as the twin's oracle in `../analysis/Oracle.ts`; it is recomputed here as one reverse
 * Dijkstra per destination over dense arrays because the analysis version builds a graphology
 * graph per query, which at N = 200 (40 000 pairs, 80 000 links) would take minutes per instant.
 */
import type { Family } from "@net-perf/engine"
import { type ChangePoint, LinkTruth } from "./LinkTimeline.js"
import type { ModelMesh } from "./Mesh.js"
import { Prng } from "./Prng.js"

export class ModelNetwork {
  readonly sites: number
  readonly families: ReadonlyArray<Family>
  readonly truths: ReadonlyArray<LinkTruth>
  readonly linkFrom: Int32Array
  readonly linkTo: Int32Array
  readonly linkFamily: Uint8Array
  /** Up at the last `refreshUp` instant. */
  readonly linkUp: Uint8Array
  /** (from * sites + to) * families.length + familyIndex → link index, or -1. */
  private readonly index: Int32Array
  /** Outgoing / incoming link indexes per site (for Dijkstra). */
  readonly outLinks: ReadonlyArray<Int32Array>
  readonly inLinks: ReadonlyArray<Int32Array>

  constructor(
    readonly mesh: ModelMesh,
    seed: number,
  ) {
    const n = mesh.sites
    this.sites = n
    this.families = mesh.families
    const m = mesh.links.length
    this.linkFrom = new Int32Array(m)
    this.linkTo = new Int32Array(m)
    this.linkFamily = new Uint8Array(m)
    this.linkUp = new Uint8Array(m).fill(1)
    this.index = new Int32Array(n * n * mesh.families.length).fill(-1)
    const outs: number[][] = Array.from({ length: n }, () => [])
    const ins: number[][] = Array.from({ length: n }, () => [])
    this.truths = mesh.links.map((l, i) => {
      this.linkFrom[i] = l.from
      this.linkTo[i] = l.to
      this.linkFamily[i] = l.family
      this.index[(l.from * n + l.to) * mesh.families.length + this.familyIndex(l.family)] = i
      outs[l.from]?.push(i)
      ins[l.to]?.push(i)
      return new LinkTruth(l.timeline, Prng.derive(seed, "walk", l.from, l.to, l.family).int(2 ** 31))
    })
    this.outLinks = outs.map((a) => Int32Array.from(a))
    this.inLinks = ins.map((a) => Int32Array.from(a))
  }

  familyIndex(family: number): number {
    const i = this.families.indexOf(family as Family)
    return i
  }

  /** Link index of (from → to over family), or -1 when there is no such tunnel. */
  linkIndex(from: number, to: number, family: number): number {
    const f = this.familyIndex(family)
    if (f < 0 || from < 0 || to < 0 || from >= this.sites || to >= this.sites) return -1
    return this.index[(from * this.sites + to) * this.families.length + f] as number
  }

  /** Re-reads up/down of every link at `tMillis`; returns the indexes that changed. */
  refreshUp(tMillis: number): number[] {
    const changed: number[] = []
    for (let i = 0; i < this.truths.length; i++) {
      const up = (this.truths[i] as LinkTruth).isUp(tMillis) ? 1 : 0
      if (up !== this.linkUp[i]) {
        this.linkUp[i] = up
        changed.push(i)
      }
    }
    return changed
  }

  /** Re-reads up/down of the given links only. */
  refreshUpOf(links: ReadonlyArray<number>, tMillis: number): number[] {
    const changed: number[] = []
    for (const i of links) {
      const up = (this.truths[i] as LinkTruth).isUp(tMillis) ? 1 : 0
      if (up !== this.linkUp[i]) {
        this.linkUp[i] = up
        changed.push(i)
      }
    }
    return changed
  }

  /** Every discontinuity of every link in [from, until), grouped by instant. */
  changePoints(
    fromMillis: number,
    untilMillis: number,
  ): ReadonlyArray<{ atMillis: number; links: number[]; kinds: ChangePoint["kind"][] }> {
    const byTime = new Map<number, { links: number[]; kinds: ChangePoint["kind"][] }>()
    this.truths.forEach((t, i) => {
      for (const c of t.changePoints(fromMillis, untilMillis)) {
        let e = byTime.get(c.atMillis)
        if (e === undefined) {
          e = { links: [], kinds: [] }
          byTime.set(c.atMillis, e)
        }
        e.links.push(i)
        e.kinds.push(c.kind)
      }
    })
    return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([atMillis, e]) => ({ atMillis, ...e }))
  }

  /** One-way latency of every link at `tMillis` (Infinity when down). */
  latencies(tMillis: number, out: Float64Array = new Float64Array(this.truths.length)): Float64Array {
    for (let i = 0; i < this.truths.length; i++)
      out[i] = this.linkUp[i] === 1 ? (this.truths[i] as LinkTruth).latencyMs(tMillis) : Number.POSITIVE_INFINITY
    return out
  }

  /**
   * Oracle: least one-way delay from every site to `destination` over links that are up, given
   * per-link latencies (from `latencies`). Reverse Dijkstra with a binary heap; Infinity = cut off.
   */
  oracleTo(
    destination: number,
    latencyMs: Float64Array,
    out: Float64Array = new Float64Array(this.sites),
  ): Float64Array {
    out.fill(Number.POSITIVE_INFINITY)
    out[destination] = 0
    const heapSite: number[] = [destination]
    const heapDist: number[] = [0]
    const done = new Uint8Array(this.sites)
    while (heapSite.length > 0) {
      const site = heapSite[0] as number
      const dist = heapDist[0] as number
      const lastS = heapSite.pop() as number
      const lastD = heapDist.pop() as number
      if (heapSite.length > 0) siftDown(heapSite, heapDist, lastS, lastD)
      if (done[site] === 1) continue
      done[site] = 1
      for (const li of this.inLinks[site] as Int32Array) {
        const w = latencyMs[li] as number
        if (w === Number.POSITIVE_INFINITY) continue
        const from = this.linkFrom[li] as number
        const nd = dist + w
        if (nd < (out[from] as number)) {
          out[from] = nd
          siftUp(heapSite, heapDist, from, nd)
        }
      }
    }
    return out
  }
}

const siftUp = (hs: number[], hd: number[], s: number, d: number): void => {
  hs.push(s)
  hd.push(d)
  let i = hs.length - 1
  while (i > 0) {
    const p = (i - 1) >> 1
    if ((hd[p] as number) <= d) break
    hs[i] = hs[p] as number
    hd[i] = hd[p] as number
    i = p
  }
  hs[i] = s
  hd[i] = d
}

/** Places (s, d) — the former last element — starting at the root. */
const siftDown = (hs: number[], hd: number[], s: number, d: number): void => {
  const n = hs.length
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= n) break
    const r = l + 1
    const c = r < n && (hd[r] as number) < (hd[l] as number) ? r : l
    if ((hd[c] as number) >= d) break
    hs[i] = hs[c] as number
    hd[i] = hd[c] as number
    i = c
  }
  hs[i] = s
  hd[i] = d
}
