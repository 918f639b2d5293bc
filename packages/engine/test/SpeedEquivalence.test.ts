/**
 * The speed-only mechanisms of the engine give the results of the plain ones: the lazily
 * processed link-state inbox (NodeRouter.receiveLinkState) against processing every message at
 * once, the per-message memo (memoPerMessage) against deriving each time, searches into lent
 * buffers (dijkstra `into`) against fresh arrays, the searches' decrease-key heap against a plain
 * lazy-deletion Dijkstra (ties included), a search ordered by a potential against the plain one
 * (same costs), the store's dense parsed distances against a map of the message's entries, a
 * decision's kept shortest routes (NodeRouter.keepShortest) against chooseRoute, and the route
 * memory's packed next hops against its objects. The model simulator's report digests check the
 * same at scale; these check it on random small cases, and fail if a mechanism changes a result.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { Family, SiteId } from "../src/Domain.js"
import { FeasibilityTable, isStrictlyBetter, type RouteMetric } from "../src/Feasibility.js"
import { dijkstra, edgePosition, IncrementalSearch, MeshGraph, SearchScratch, treePath } from "../src/Graph.js"
import { LinkStateMessage, LinkStateStore, memoPerMessage } from "../src/LinkState.js"
import { NodeRouter, RouteMemoryTable, type RoutingDecision } from "../src/NodeRouter.js"
import { World } from "./routingWorld.js"

/** A random graph search case: sites 0..n−1, directed edges of small integer costs (many ties), up to 2 banned sites, queries. */
const searchCase = (maxN: number, maxCostMs: number, maxEdges?: number) =>
  fc.integer({ min: 1, max: maxN }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      source: fc.nat(n - 1),
      edges: fc.array(
        fc.record({ from: fc.nat(n - 1), to: fc.nat(n - 1), costMs: fc.integer({ min: 0, max: maxCostMs }) }),
        maxEdges === undefined ? {} : { maxLength: maxEdges },
      ),
      banned: fc.array(fc.nat(n - 1), { maxLength: 2 }),
      queries: fc.array(fc.nat(n + 1), { maxLength: 20 }),
    }),
  )

/** The case's indexed graph and banned-node mask (the source is never banned). */
const indexedCase = (c: {
  n: number
  source: number
  edges: ReadonlyArray<{ from: number; to: number; costMs: number }>
  banned: ReadonlyArray<number>
}) => {
  const mesh = new MeshGraph()
  for (let s = 0; s < c.n; s++) mesh.addSite(s as SiteId)
  for (const e of c.edges) mesh.setLink(e.from as SiteId, e.to as SiteId, e.costMs, 4)
  const bannedNodes = new Uint8Array(c.n)
  for (const b of c.banned) if (b !== c.source) bannedNodes[b] = 1
  return { g: mesh.indexed(), bannedNodes }
}

const routesOf = (d: RoutingDecision) =>
  d.routes.map((r) => ({
    destination: r.destination,
    nextHop: r.nextHop,
    family: r.tunnel?.family ?? null,
    costMs: r.costMs,
    metricMs: r.metricMs,
    seqno: r.seqno,
    starved: r.starved,
    stability: r.stability,
    path: r.path,
  }))

const messageOf = (m: LinkStateMessage) => ({
  seq: m.seq,
  tunnels: m.tunnels.map((t) => [t.remote, t.family, t.costMs, t.selected]),
  distances: m.distances.map((d) => [d.destination, d.seqno, d.distanceMs, d.nextHop]),
  requests: m.requests.map((r) => [r.destination, r.seqno]),
})

type Op =
  | { readonly _tag: "tick" }
  | { readonly _tag: "advertise"; readonly site: number }
  | { readonly _tag: "deliver"; readonly index: number; readonly keep: boolean }
  | { readonly _tag: "drop"; readonly index: number }
  | { readonly _tag: "decide"; readonly site: number }
  | { readonly _tag: "fail"; readonly tunnel: number }
  | { readonly _tag: "heal"; readonly tunnel: number }
  | { readonly _tag: "retime"; readonly tunnel: number; readonly rttMs: number }
  | { readonly _tag: "restart"; readonly site: number }

const opArb = (n: number, tunnels: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant({ _tag: "tick" as const }) },
    { weight: 3, arbitrary: fc.record({ _tag: fc.constant("advertise" as const), site: fc.nat(n - 1) }) },
    {
      weight: 8,
      arbitrary: fc.record({ _tag: fc.constant("deliver" as const), index: fc.nat(1000), keep: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("drop" as const), index: fc.nat(1000) }) },
    { weight: 3, arbitrary: fc.record({ _tag: fc.constant("decide" as const), site: fc.nat(n - 1) }) },
    {
      weight: 1,
      arbitrary: fc.record({ _tag: fc.constant("fail" as const), tunnel: fc.nat(Math.max(0, tunnels - 1)) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ _tag: fc.constant("heal" as const), tunnel: fc.nat(Math.max(0, tunnels - 1)) }),
    },
    // A tunnel's RTT moves (both ways; a dead one comes back): trees change while Stability holds
    // incumbents.
    {
      weight: 2,
      arbitrary: fc.record({
        _tag: fc.constant("retime" as const),
        tunnel: fc.nat(Math.max(0, tunnels - 1)),
        rttMs: fc.integer({ min: 2, max: 80 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("restart" as const), site: fc.nat(n - 1) }) },
  )

/** Applies an operation to a world; "decide" is the caller's (each test compares decisions its way). */
const applyOp = (w: World, op: Op, spec: ReadonlyArray<{ a: number; b: number; family: Family; rttMs: number }>) => {
  switch (op._tag) {
    case "tick":
      w.tick(700)
      break
    case "advertise":
      w.advertise(op.site)
      break
    case "deliver":
      w.deliver(op.index, op.keep)
      break
    case "drop":
      w.drop(op.index)
      break
    case "decide":
      break
    case "fail":
    case "heal":
    case "retime": {
      const t = spec[op.tunnel % spec.length]!
      const rtt = op._tag === "fail" ? null : op._tag === "heal" ? t.rttMs : op.rttMs
      w.setTunnelRtt(t.a, t.b, t.family, rtt)
      break
    }
    case "restart":
      w.restart(op.site)
      break
  }
}

const scenarioArb = fc.integer({ min: 3, max: 6 }).chain((n) => {
  const pairs: Array<[number, number]> = []
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairs.push([a, b])
  return fc.record({
    n: fc.constant(n),
    tunnels: fc.uniqueArray(
      fc.record({
        pair: fc.constantFrom(...pairs),
        family: fc.constantFrom<Family>(4, 6),
        rttMs: fc.integer({ min: 2, max: 80 }),
      }),
      { minLength: n, maxLength: pairs.length * 2, selector: (t) => `${t.pair[0]}-${t.pair[1]}/${t.family}` },
    ),
    ops: fc.array(opArb(n, pairs.length * 2), { minLength: 20, maxLength: 200 }),
  })
})

describe("speed-only mechanisms", () => {
  it("a lazily processed link-state inbox decides, advertises and raises seqnos as processing each message at once", () => {
    fc.assert(
      fc.property(scenarioArb, ({ n, tunnels, ops }) => {
        const spec = tunnels.map((t) => ({ a: t.pair[0], b: t.pair[1], family: t.family, rttMs: t.rttMs }))
        const config = () => ({ startupHoldDownMillis: 2_000, linkStateMaxAgeMillis: 5_000 })
        const lazy = new World(n, spec, config)
        const eager = new World(n, spec, config)
        for (const op of ops) {
          // The recipient of a delivery, read before it leaves the in-flight list.
          const to =
            op._tag === "deliver" && lazy.inflight.length > 0
              ? lazy.inflight[op.index % lazy.inflight.length]!.to
              : undefined
          applyOp(lazy, op, spec)
          applyOp(eager, op, spec)
          switch (op._tag) {
            case "advertise":
              expect(messageOf(lazy.inflight[lazy.inflight.length - 1]!.message)).toEqual(
                messageOf(eager.inflight[eager.inflight.length - 1]!.message),
              )
              break
            case "deliver":
              if (to === undefined) break
              // Reading the graph processes the inbox: the eager world takes each message at once.
              void eager.routers[to]!.graph
              // Our own seqno, raised by a request for us, is visible at once in both.
              expect(lazy.routers[to]!.seqno).toBe(eager.routers[to]!.seqno)
              break
            case "decide":
              expect(routesOf(lazy.routers[op.site]!.decide(lazy.nowMillis))).toEqual(
                routesOf(eager.routers[op.site]!.decide(eager.nowMillis)),
              )
              break
          }
        }
        for (let s = 0; s < n; s++)
          expect(routesOf(lazy.routers[s]!.decide(lazy.nowMillis + 1))).toEqual(
            routesOf(eager.routers[s]!.decide(eager.nowMillis + 1)),
          )
      }),
      { numRuns: 150 },
    )
  })

  it("a decision writes a kept shortest route as chooseRoute's general path does", () => {
    // NodeRouter.keepShortest is private; the reference world's routers skip it (speed only).
    type KeepShortest = { keepShortest: (...args: Array<unknown>) => boolean }
    let kept = 0
    const counted = (router: NodeRouter) => {
      const r = router as unknown as KeepShortest
      const own = r.keepShortest.bind(router)
      r.keepShortest = (...args) => {
        const k = own(...args)
        if (k) kept++
        return k
      }
      return router
    }
    const generalOnly = (router: NodeRouter) => {
      ;(router as unknown as KeepShortest).keepShortest = () => false
      return router
    }
    const allOf = (d: RoutingDecision) => d.routes.map((r) => ({ ...r, path: [...r.path] }))
    fc.assert(
      fc.property(scenarioArb, fc.boolean(), ({ n, tunnels, ops }, sticky) => {
        const spec = tunnels.map((t) => ({ a: t.pair[0], b: t.pair[1], family: t.family, rttMs: t.rttMs }))
        // No hold-down: routes are remembered from the first decisions on. A floor on link metrics
        // above most links' cost, so a metric that skipped it differs. Wide margins (sticky) hold
        // incumbents the tree no longer takes.
        const config = () => ({
          startupHoldDownMillis: 0,
          linkStateMaxAgeMillis: 5_000,
          minLinkMetricMs: 40,
          ...(sticky ? { stability: { absoluteMarginMs: 10, relativeMargin: 0.6 } } : {}),
        })
        const fast = new World(n, spec, config, counted)
        const general = new World(n, spec, config, generalOnly)
        for (const op of ops) {
          applyOp(fast, op, spec)
          applyOp(general, op, spec)
          // Every site decides on a tick (the daemon's periodic decide), so routes are remembered
          // and held across RTT changes.
          const deciding = op._tag === "decide" ? [op.site] : op._tag === "tick" ? fast.routers.keys() : []
          for (const s of deciding) {
            expect(allOf(fast.routers[s]!.decide(fast.nowMillis))).toEqual(
              allOf(general.routers[s]!.decide(general.nowMillis)),
            )
            // The seqno requests a decision adds (a better route refused for feasibility).
            expect(fast.routers[s]!.requestsAdded).toBe(general.routers[s]!.requestsAdded)
          }
        }
        for (const dt of [1, 700])
          for (let s = 0; s < n; s++) {
            fast.tick(dt)
            general.tick(dt)
            expect(allOf(fast.routers[s]!.decide(fast.nowMillis))).toEqual(
              allOf(general.routers[s]!.decide(general.nowMillis)),
            )
          }
      }),
      { numRuns: 150 },
    )
    // Not vacuous: the property's worlds kept routes through the fast path.
    expect(kept).toBeGreaterThan(1000)
  })

  it("the route memory's packed next hops read as its objects (small and large ids, sets and deletes)", () => {
    const id = fc.oneof(fc.nat(300), fc.integer({ min: 65_530, max: 70_000 }))
    fc.assert(
      fc.property(
        fc.array(fc.record({ destination: id, nextHop: fc.option(id, { nil: undefined }) }), { maxLength: 80 }),
        (ops) => {
          const memory = new RouteMemoryTable()
          const touched = new Set<number>([0, 65_535, 65_536])
          for (const { destination, nextHop } of ops) {
            touched.add(destination)
            if (nextHop === undefined) memory.delete(destination as SiteId)
            else memory.set(destination as SiteId, { nextHop: nextHop as SiteId, sinceMillis: 0 })
            for (const d of touched) expect(memory.nextHopOf(d as SiteId)).toBe(memory.get(d as SiteId)?.nextHop ?? -1)
          }
        },
      ),
    )
  })

  it("a request for us raises our seqno at the delivery, before anything processes the inbox", () => {
    const router = NodeRouter.make({ self: 0 })
    const request = (seq: number, seqno: number) =>
      new LinkStateMessage({
        origin: 1 as SiteId,
        incarnation: 1,
        seq,
        generatedAtMillis: 0,
        tunnels: [],
        distances: [{ destination: 1 as SiteId, seqno: 0, distanceMs: 0, nextHop: null }],
        requests: [{ destination: 0 as SiteId, seqno }],
      })
    router.receiveLinkState(request(1, 5), 1_000)
    expect(router.seqno).toBe(5)
    // An older message is not accepted, so its (higher) request does not count.
    router.receiveLinkState(request(2, 7), 1_001)
    router.receiveLinkState(request(1, 9), 1_002)
    expect(router.seqno).toBe(7)
  })

  it("memoPerMessage derives once per message object and returns that value, in any order of origins", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ origin: fc.constantFrom(0, 1, 2, 70_000), version: fc.nat(3) }), { maxLength: 60 }),
        (lookups) => {
          const messages = new Map<string, LinkStateMessage>()
          const messageFor = (origin: number, version: number) => {
            const key = `${origin}/${version}`
            let m = messages.get(key)
            if (m === undefined) {
              m = new LinkStateMessage({
                origin: origin as SiteId,
                incarnation: 1,
                seq: version,
                generatedAtMillis: 0,
                tunnels: [],
                distances: [],
                requests: [],
              })
              messages.set(key, m)
            }
            return m
          }
          const calls = new Map<LinkStateMessage, number>()
          const memo = memoPerMessage((m) => {
            calls.set(m, (calls.get(m) ?? 0) + 1)
            return { of: m }
          })
          const seen = new Map<LinkStateMessage, { of: LinkStateMessage }>()
          for (const { origin, version } of lookups) {
            const m = messageFor(origin, version)
            const v = memo(m)
            expect(v.of).toBe(m)
            if (seen.has(m)) expect(v).toBe(seen.get(m))
            seen.set(m, v)
          }
          for (const count of calls.values()) expect(count).toBe(1)
        },
      ),
    )
  })

  it("dijkstra into lent buffers (reused, longer than the graph or not) equals a search into fresh arrays", () => {
    const buffers = { distanceMs: new Float64Array(12), parent: new Int32Array(12) }
    fc.assert(
      fc.property(searchCase(12, 50), (c) => {
        const { n, source } = c
        const { g, bannedNodes } = indexedCase(c)
        const fresh = dijkstra(g, source, { bannedNodes })
        const lent = dijkstra(g, source, { bannedNodes, into: buffers })
        expect([...lent.distanceMs]).toEqual([...fresh.distanceMs])
        expect([...lent.parent]).toEqual([...fresh.parent])
        expect(lent.distanceMs.length).toBe(n)
      }),
    )
  })

  it("an incremental search reads, in any order of queries, the paths of the full search", () => {
    const scratch = new SearchScratch()
    fc.assert(
      fc.property(
        // Small integer costs: many equal-cost paths, so the tie-breaks are exercised.
        searchCase(12, 20),
        (c) => {
          const { source, queries } = c
          const { g, bannedNodes } = indexedCase(c)
          const full = dijkstra(g, source, { bannedNodes })
          // The scratch is reused from the previous case, as a router's pool reuses it.
          const search = new IncrementalSearch(g, source, bannedNodes, scratch)
          for (const q of queries) expect(search.pathTo(q as SiteId)).toEqual(treePath(full, q as SiteId))
        },
      ),
    )
  })

  it("a search ordered by a potential reads the full search's costs, on paths of that cost", () => {
    const scratch = new SearchScratch()
    // A ring (so the root's tree reaches the source) with chords; integer costs with zeros give
    // many equal-cost paths, so another one may be read, but never a dearer one.
    const ringCase = fc.integer({ min: 2, max: 12 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        source: fc.nat(n - 1),
        root: fc.nat(n - 1),
        ring: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: n, maxLength: n }),
        edges: fc.array(
          fc.record({ from: fc.nat(n - 1), to: fc.nat(n - 1), costMs: fc.integer({ min: 0, max: 20 }) }),
          { minLength: n, maxLength: 4 * n },
        ),
        banned: fc.array(fc.nat(n - 1), { maxLength: 2 }),
      }),
    )
    fc.assert(
      fc.property(ringCase, (c) => {
        const { n, source } = c
        const edges = [...c.ring.map((costMs, i) => ({ from: i, to: (i + 1) % n, costMs })), ...c.edges]
        const { g, bannedNodes } = indexedCase({ ...c, edges })
        const full = dijkstra(g, source, { bannedNodes })
        // As a decision's own tree: distances on the graph before the bans, from another root.
        const potentialMs = dijkstra(g, c.root).distanceMs.slice()
        const search = new IncrementalSearch(g, source, bannedNodes, scratch, potentialMs)
        for (let q = 0; q < n; q++) {
          const expected = treePath(full, q as SiteId)
          const got = search.pathTo(q as SiteId)
          if (expected === undefined) {
            expect(got).toBeUndefined()
            continue
          }
          expect(got?.costMs).toBe(expected.costMs)
          const nodes = got!.sites.map((s) => g.indexOf.get(s)!)
          expect(nodes[0]).toBe(source)
          expect(nodes.at(-1)).toBe(q)
          let sum = 0
          for (let i = 0; i + 1 < nodes.length; i++) {
            const p = edgePosition(g, nodes[i]!, nodes[i + 1]!)
            expect(p).toBeGreaterThanOrEqual(0)
            expect(bannedNodes[nodes[i + 1]!]).toBe(0)
            sum += g.weights[p]!
          }
          expect(sum).toBe(got!.costMs)
        }
      }),
      { numRuns: 300 },
    )
    // A potential that does not reach the source orders nothing: refused.
    const mesh = new MeshGraph()
    mesh.setLink(0 as SiteId, 1 as SiteId, 5, 4)
    const g = mesh.indexed()
    expect(() => new IncrementalSearch(g, 0, undefined, scratch, dijkstra(g, 1).distanceMs)).toThrow(/not finite/)
  })

  it("the searches' decrease-key heap settles as a lazy-deletion Dijkstra ordered by (distance, node)", () => {
    // The reference: every improvement pushed, stale entries skipped, ties to the lower node.
    const reference = (n: number, adj: Array<Array<[number, number]>>, source: number, banned: Uint8Array) => {
      const distanceMs = new Array<number>(n).fill(Number.POSITIVE_INFINITY)
      const parent = new Array<number>(n).fill(-1)
      const done = new Array<boolean>(n).fill(false)
      const queue: Array<[number, number]> = [[0, source]]
      distanceMs[source] = 0
      while (queue.length > 0) {
        queue.sort((a, b) => a[0] - b[0] || a[1] - b[1])
        const [, u] = queue.shift()!
        if (done[u]) continue
        done[u] = true
        for (const [v, w] of adj[u]!) {
          if (done[v] || banned[v] === 1) continue
          const dv = distanceMs[u]! + w
          if (dv < distanceMs[v]!) {
            distanceMs[v] = dv
            parent[v] = u
            queue.push([dv, v])
          }
        }
      }
      return { distanceMs, parent }
    }
    fc.assert(
      fc.property(
        // Costs 0-6 on up to 60 edges: many equal distances, so the order of ties decides parents.
        searchCase(14, 6, 60),
        (c) => {
          const { n, source } = c
          const { g, bannedNodes } = indexedCase(c)
          const adj: Array<Array<[number, number]>> = Array.from({ length: n }, () => [])
          for (let u = 0; u < n; u++)
            for (let p = g.offsets[u]!; p < g.offsets[u + 1]!; p++) adj[u]!.push([g.targets[p]!, g.weights[p]!])
          const want = reference(n, adj, source, bannedNodes)
          const got = dijkstra(g, source, { bannedNodes })
          expect([...got.distanceMs]).toEqual(want.distanceMs)
          expect([...got.parent]).toEqual(want.parent)
        },
      ),
    )
  })

  it("the store's parsed distances read as a map of the message's entries (dense, sparse, repeated, large ids)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            destination: fc.oneof(fc.nat(40), fc.integer({ min: 0, max: 200_000 })),
            seqno: fc.nat(9),
            distanceMs: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
          }),
          { maxLength: 30 },
        ),
        fc.nat(40),
        (entries, origin) => {
          const message = new LinkStateMessage(
            {
              origin: origin as SiteId,
              incarnation: 1,
              seq: 1,
              generatedAtMillis: 0,
              tunnels: [],
              distances: entries.map((e) => ({
                destination: e.destination as SiteId,
                seqno: e.seqno,
                distanceMs: e.distanceMs,
                nextHop: null,
              })),
              requests: [],
            },
            true,
          )
          const store = new LinkStateStore(60_000)
          expect(store.accept(message, 0)).toBe("accepted")
          const want = new Map<number, { seqno: number; distanceMs: number }>()
          for (const e of entries)
            want.set(e.destination, { seqno: e.seqno, distanceMs: e.distanceMs ?? Number.POSITIVE_INFINITY })
          for (const d of [...entries.map((e) => e.destination), 0, 41, 199_999, 200_001, -1, 2.5])
            expect(store.advertised(origin as SiteId, d as SiteId)).toEqual(want.get(d))
        },
      ),
    )
  })

  it("the feasibility table's packed copy keeps, and reads as, the best metric ever advertised, as the plain rule (small and large ids)", () => {
    // Few destinations, so each is noted many times: packed ids (growing the arrays past 256) and table-only ones.
    const destination = fc.constantFrom(0, 1, 2, 255, 256, 600, 65_536, 70_000, -1, 1.5)
    const distance = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(Number.POSITIVE_INFINITY))
    fc.assert(
      fc.property(
        fc.array(fc.record({ destination, seqno: fc.integer({ min: 0, max: 3 }), distanceMs: distance }), {
          maxLength: 200,
        }),
        (notes) => {
          const table = new FeasibilityTable()
          const plain = new Map<number, RouteMetric>()
          for (const n of notes) {
            table.noteAdvertisedMetric(n.destination as SiteId, n.seqno, n.distanceMs)
            const old = plain.get(n.destination)
            if (
              Number.isFinite(n.distanceMs) &&
              (old === undefined || isStrictlyBetter({ seqno: n.seqno, distanceMs: n.distanceMs }, old))
            )
              plain.set(n.destination, { seqno: n.seqno, distanceMs: n.distanceMs })
            for (const d of new Set([...notes.map((x) => x.destination), 3, 70_001])) {
              expect(table.get(d as SiteId)).toEqual(plain.get(d))
              // The packed read (into a scratch metric) reads the same.
              const read = table.read(d as SiteId, { seqno: Number.NaN, distanceMs: Number.NaN })
              expect(read === undefined ? undefined : { seqno: read.seqno, distanceMs: read.distanceMs }).toEqual(
                plain.get(d),
              )
            }
          }
        },
      ),
    )
  })
})
