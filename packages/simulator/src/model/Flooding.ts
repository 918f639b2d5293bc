/**
 * Relayed link state: how one advertisement spreads when every site floods each new message to
 * its tunnel peers, as the daemon's exchange does (node-runtime `linkstate/LinkStateExchange.ts`:
 * one stream per peer with a tunnel, every newer message relayed to all peers but the one it came
 * from, duplicates dropped before the engine). A recipient takes the copy that arrives first, so
 * its arrival time is the shortest path from the origin over the peer graph, where each hop is
 * a tunnel that is up in that direction (either family), costs `delay + U(0, jitter)` ms and loses
 * the copy with probability `lossRatio`. Computed as one Dijkstra per message instead of one event
 * per relayed copy (degree × N copies per message), with the per-hop draws made as edges are
 * relaxed, so a run stays deterministic per seed.
 */
import type { ModelNetwork } from "./ModelNetwork.js"
import type { Prng } from "./Prng.js"

export interface HopModel {
  readonly delayMillis: number
  readonly delayJitterMillis: number
  readonly lossRatio: number
}

export class FloodGraph {
  /** Per site: peers (sites sharing a tunnel) and, per peer, the directed link indexes (one per family). */
  private readonly peerStart: Int32Array
  private readonly peers: Int32Array
  private readonly peerLinks: Int32Array
  private readonly families: number
  private readonly dist: Float64Array
  private readonly done: Uint8Array
  private heapT: Float64Array
  private heapS: Int32Array

  constructor(private readonly net: ModelNetwork) {
    const n = net.sites
    const fams = net.families.length
    this.families = fams
    this.peerStart = new Int32Array(n + 1)
    const peers: number[] = []
    const links: number[] = []
    for (let a = 0; a < n; a++) {
      this.peerStart[a] = peers.length
      for (const b of net.mesh.neighbours[a] ?? []) {
        peers.push(b)
        for (const f of net.families) links.push(net.linkIndex(a, b, f))
      }
    }
    this.peerStart[n] = peers.length
    this.peers = Int32Array.from(peers)
    this.peerLinks = Int32Array.from(links)
    this.dist = new Float64Array(n)
    this.done = new Uint8Array(n)
    this.heapT = new Float64Array(64)
    this.heapS = new Int32Array(64)
  }

  /** Is some tunnel a → b (peer position k of a) up right now? */
  private hopUp(k: number): boolean {
    const base = k * this.families
    for (let f = 0; f < this.families; f++) {
      const li = this.peerLinks[base + f] as number
      if (li >= 0 && this.net.linkUp[li] === 1) return true
    }
    return false
  }

  /**
   * Arrival delay (ms after sending) of a message from `origin` at every site, +Infinity when no
   * copy arrives. Sites with `down[s] === 1` neither receive nor relay. The result array is
   * reused by the next call.
   */
  arrivals(origin: number, hop: HopModel, prng: Prng, down: Uint8Array): Float64Array {
    const dist = this.dist
    const done = this.done
    dist.fill(Number.POSITIVE_INFINITY)
    done.fill(0)
    dist[origin] = 0
    let size = 0
    const push = (t: number, s: number): void => {
      if (size === this.heapT.length) {
        const t2 = new Float64Array(size * 2)
        t2.set(this.heapT)
        const s2 = new Int32Array(size * 2)
        s2.set(this.heapS)
        this.heapT = t2
        this.heapS = s2
      }
      const ht = this.heapT
      const hs = this.heapS
      let i = size++
      while (i > 0) {
        const p = (i - 1) >> 1
        if ((ht[p] as number) <= t) break
        ht[i] = ht[p] as number
        hs[i] = hs[p] as number
        i = p
      }
      ht[i] = t
      hs[i] = s
    }
    const pop = (): number => {
      const ht = this.heapT
      const hs = this.heapS
      const top = hs[0] as number
      size--
      if (size > 0) {
        const t = ht[size] as number
        const s = hs[size] as number
        let i = 0
        for (;;) {
          const l = 2 * i + 1
          if (l >= size) break
          const r = l + 1
          const c = r < size && (ht[r] as number) < (ht[l] as number) ? r : l
          if ((ht[c] as number) >= t) break
          ht[i] = ht[c] as number
          hs[i] = hs[c] as number
          i = c
        }
        ht[i] = t
        hs[i] = s
      }
      return top
    }
    push(0, origin)
    while (size > 0) {
      const a = pop()
      if (done[a] === 1) continue
      done[a] = 1
      // A site that is down holds no stream: it neither takes the message nor passes it on.
      if (a !== origin && down[a] === 1) {
        dist[a] = Number.POSITIVE_INFINITY
        continue
      }
      const da = dist[a] as number
      for (let k = this.peerStart[a] as number, end = this.peerStart[a + 1] as number; k < end; k++) {
        const b = this.peers[k] as number
        if (done[b] === 1 || !this.hopUp(k)) continue
        if (hop.lossRatio > 0 && prng.next() < hop.lossRatio) continue
        const t = da + hop.delayMillis + (hop.delayJitterMillis > 0 ? prng.next() * hop.delayJitterMillis : 0)
        if (t < (dist[b] as number)) {
          dist[b] = t
          push(t, b)
        }
      }
    }
    return dist
  }
}
