/**
 * A small in-test world for NodeRouter tests: sites with real NodeRouters, tunnels with
 * per-direction RTTs (or dead), a link-state channel that can delay, reorder, drop and
 * duplicate messages, and a hop-by-hop forwarding walk over every node's current decision.
 */
import {
  type BgpPath,
  type Family,
  LossTestSample,
  PathSample,
  RttSample,
  SiteId,
  siteAsn,
  tunnelId,
} from "../src/Domain.js"
import type { LinkStateMessage } from "../src/LinkState.js"
import { NodeRouter, type NodeRouterConfigInput } from "../src/NodeRouter.js"

export interface Tunnel {
  readonly a: number
  readonly b: number
  readonly family: Family
}

export const linkKey = (from: number, to: number, family: Family): string => `${from}>${to}/${family}`

/** The direction a `linkKey` names. */
const parseLinkKey = (key: string): { from: number; to: number; family: Family } => {
  const m = /^(\d+)>(\d+)\/([46])$/.exec(key)
  if (m === null) throw new Error(`not a link key: ${key}`)
  return { from: Number(m[1]), to: Number(m[2]), family: Number(m[3]) as Family }
}

export class World {
  nowMillis = 1_000_000
  readonly routers: Array<NodeRouter>
  private readonly configOf: (self: number) => Omit<NodeRouterConfigInput, "self">
  /** RTT per direction and family; null = dead. Absent = no tunnel. */
  readonly rtt = new Map<string, number | null>()
  /** Loss ratio per direction and family (absent = none), reported by a loss test every tick. */
  readonly loss = new Map<string, number>()
  readonly inflight: Array<{ readonly to: number; readonly message: LinkStateMessage }> = []

  constructor(
    readonly n: number,
    tunnels: ReadonlyArray<Tunnel & { readonly rttMs: number }>,
    configOf: (self: number) => Omit<NodeRouterConfigInput, "self">,
    /** Applied to every router made, at the start and on restarts (tests swap a mechanism). */
    private readonly adapt: (router: NodeRouter) => NodeRouter = (router) => router,
  ) {
    this.configOf = configOf
    this.routers = Array.from({ length: n }, (_, self) => adapt(NodeRouter.make({ self, ...configOf(self) })))
    for (const t of tunnels) {
      this.rtt.set(linkKey(t.a, t.b, t.family), t.rttMs)
      this.rtt.set(linkKey(t.b, t.a, t.family), t.rttMs)
    }
  }

  /** Advances time and gives every tunnel end one probe result (three losses when dead). */
  tick(dtMillis: number): void {
    this.nowMillis += dtMillis
    for (const [key, rtt] of this.rtt) {
      const { from, to, family } = parseLinkKey(key)
      const tunnel = tunnelId(from, to, family)
      const router = this.routers[tunnel.local]!
      if (rtt === null) {
        for (let i = 0; i < 3; i++) {
          router.observe(new RttSample({ tunnel, kind: "udp-echo", atMillis: this.nowMillis - 2 + i, rttMs: null }))
        }
      } else {
        router.observe(new RttSample({ tunnel, kind: "udp-echo", atMillis: this.nowMillis - 1, rttMs: rtt }))
        router.observe(new RttSample({ tunnel, kind: "udp-echo", atMillis: this.nowMillis, rttMs: rtt }))
        const loss = this.loss.get(key)
        if (loss !== undefined && loss > 0) {
          router.observe(
            new LossTestSample({
              tunnel,
              atMillis: this.nowMillis,
              sent: 1000,
              received: Math.round(1000 * (1 - loss)),
              reordered: 0,
              jitterMs: 0,
              rateBitsPerSecond: 0,
            }),
          )
        }
      }
    }
  }

  /** Sets a tunnel's RTT both ways (null = dead); a tunnel not there yet is added. */
  setTunnelRtt(a: number, b: number, family: Family, rttMs: number | null): void {
    this.rtt.set(linkKey(a, b, family), rttMs)
    this.rtt.set(linkKey(b, a, family), rttMs)
  }

  /** Sets the RTT of one direction (a key of `rtt`) and, with `bothWays`, of its reverse too. */
  setDirectionRtt(key: string, rttMs: number | null, bothWays: boolean): void {
    if (!bothWays) {
      this.rtt.set(key, rttMs)
      return
    }
    const { from, to, family } = parseLinkKey(key)
    this.setTunnelRtt(from, to, family, rttMs)
  }

  /** The site's daemon restarts: a new router (new incarnation, empty state) in its place. */
  restart(site: number): void {
    this.routers[site] = this.adapt(NodeRouter.make({ self: site, ...this.configOf(site) }))
  }

  advertise(site: number): void {
    const message = this.routers[site]!.advertise(this.nowMillis)
    for (let to = 0; to < this.n; to++) if (to !== site) this.inflight.push({ to, message })
  }

  deliver(index: number, keep = false): void {
    if (this.inflight.length === 0) return
    const i = index % this.inflight.length
    const m = this.inflight[i]!
    if (!keep) this.inflight.splice(i, 1)
    this.routers[m.to]!.receiveLinkState(m.message, this.nowMillis)
  }

  drop(index: number): void {
    if (this.inflight.length > 0) this.inflight.splice(index % this.inflight.length, 1)
  }

  deliverAll(): void {
    while (this.inflight.length > 0) this.deliver(0)
  }

  /** Best RTT of a direction over its live families (undefined when no live tunnel). */
  liveRtt(from: number, to: number): number | undefined {
    let best: number | undefined
    for (const f of [4, 6] as const) {
      const r = this.rtt.get(linkKey(from, to, f))
      if (r !== undefined && r !== null && (best === undefined || r < best)) best = r
    }
    return best
  }

  /** Answers every pending pathping request of a site with the true cycle RTT. */
  probePaths(site: number): void {
    for (const req of this.routers[site]!.pathProbeRequests(this.nowMillis)) {
      let rtt = 0
      let alive = true
      for (let i = 0; i + 1 < req.path.length; i++) {
        const r = this.liveRtt(req.path[i]!, req.path[i + 1]!)
        if (r === undefined) alive = false
        else rtt += r / 2
      }
      this.routers[site]!.observe(
        new PathSample({
          path: req.path,
          families: req.families,
          atMillis: this.nowMillis,
          rttMs: alive ? rtt : null,
          sent: 10,
          received: alive ? 10 : 0,
        }),
      )
    }
  }

  /** BGP paths as BIRD would offer them: every simple path of ≤ maxHops over tunnels that exist. */
  bgpPathsOf(site: number, maxHops: number): Array<BgpPath> {
    const out: Array<BgpPath> = []
    const walk = (path: Array<number>) => {
      const last = path[path.length - 1]!
      if (path.length > 1) {
        const asPath = path.slice(1).map((s) => siteAsn(SiteId.make(s)))
        out.push({
          prefix: `10.201.${last}.0/24`,
          prefixFamily: 4,
          asPath,
          nextHop: `10.201.${path[1]}.1`,
          interface: `wg${site}.${path[1]}_v4`,
          primary: false,
        })
      }
      if (path.length > maxHops) return
      for (let v = 0; v < this.n; v++) {
        if (path.includes(v)) continue
        if (this.rtt.has(linkKey(last, v, 4)) || this.rtt.has(linkKey(last, v, 6))) walk([...path, v])
      }
    }
    walk([site])
    return out
  }

  nextHop(site: number, destination: number): number | null {
    return this.routers[site]!.lastDecision?.byDestination.get(destination)?.nextHop ?? null
  }

  /** Follows packets hop by hop from every site to every destination; returns a loop if any. */
  findLoop(): Array<number> | undefined {
    for (let d = 0; d < this.n; d++) {
      for (let s = 0; s < this.n; s++) {
        const seen: Array<number> = []
        let cur: number | null = s
        while (cur !== null && cur !== d) {
          if (seen.includes(cur)) return [...seen, cur, -1, d]
          seen.push(cur)
          cur = this.nextHop(cur, d)
        }
      }
    }
    return undefined
  }

  /** The site a packet from s to d ends at (d when delivered), following live links only. */
  walk(s: number, d: number): { readonly end: number; readonly hops: ReadonlyArray<number> } {
    const hops: Array<number> = [s]
    let cur = s
    while (cur !== d && hops.length <= this.n + 1) {
      const nh = this.nextHop(cur, d)
      if (nh === null || this.liveRtt(cur, nh) === undefined) break
      hops.push(nh)
      cur = nh
    }
    return { end: cur, hops }
  }

  /** Are s and d connected by live tunnels? */
  connected(s: number, d: number): boolean {
    const seen = new Set<number>([s])
    const queue = [s]
    while (queue.length > 0) {
      const u = queue.shift()!
      if (u === d) return true
      for (let v = 0; v < this.n; v++) {
        if (!seen.has(v) && this.liveRtt(u, v) !== undefined && this.liveRtt(v, u) !== undefined) {
          seen.add(v)
          queue.push(v)
        }
      }
    }
    return false
  }

  /** Quiet rounds: probes, decide, advertise, deliver everything. */
  settle(rounds: number, stepMillis: number): void {
    for (let r = 0; r < rounds; r++) {
      this.tick(stepMillis)
      for (let s = 0; s < this.n; s++) this.routers[s]!.decide(this.nowMillis)
      for (let s = 0; s < this.n; s++) this.advertise(s)
      this.deliverAll()
    }
  }
}
