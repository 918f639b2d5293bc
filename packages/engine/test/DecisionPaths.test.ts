/**
 * Speed-only mechanisms of session 8 give the results of the plain ones: a decision's kept paths
 * read from the tree's frozen parents (`FrozenTreePaths`, its `nextHopIndex`, `treeNextHopIndex`) against `treePath`,
 * also after the search's lent buffers were reused, and the router's per-instant memo of its own
 * links' stats (a decision and the advertisement right after it) against computing them afresh,
 * including a sample folded between the two at the same instant.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Aggregation from "../src/Aggregation.js"
import { type SiteId, tunnelId, tunnelKey } from "../src/Domain.js"
import { dijkstra, FrozenTreePaths, MeshGraph, treeNextHopIndex, treePath } from "../src/Graph.js"
import { NodeRouter } from "../src/NodeRouter.js"
import { rttSample } from "../src/Samples.js"

const graphCase = fc.integer({ min: 1, max: 12 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    source: fc.nat(n - 1),
    other: fc.nat(n - 1),
    edges: fc.array(fc.record({ from: fc.nat(n - 1), to: fc.nat(n - 1), costMs: fc.integer({ min: 0, max: 4 }) }), {
      maxLength: 40,
    }),
  }),
)

describe("decision paths from the frozen tree", () => {
  it("treeNextHopIndex, FrozenTreePaths.nextHopIndex and .pathTo equal treePath, also after the buffers are reused", () => {
    fc.assert(
      fc.property(graphCase, ({ n, source, other, edges }) => {
        const mesh = new MeshGraph()
        // Site ids 10, 11, …: indices and ids differ.
        for (let s = 0; s < n; s++) mesh.addSite((10 + s) as SiteId)
        for (const e of edges) mesh.setLink((10 + e.from) as SiteId, (10 + e.to) as SiteId, e.costMs, 4)
        const g = mesh.indexed()
        const into = { distanceMs: new Float64Array(n), parent: new Int32Array(n) }
        const tree = dijkstra(g, source, { into })
        const expected = g.sites.map((site) => treePath(tree, site)?.sites)
        const frozen = new FrozenTreePaths(tree)
        for (let t = 0; t < n; t++) {
          const want = expected[t]
          const hop = treeNextHopIndex(tree, t)
          expect(hop === -1 ? undefined : g.sites[hop]).toBe(want?.[1])
          // Asked in any order (the first call finds every node's next hop).
          const u = (t + other) % n
          expect(frozen.nextHopIndex(u)).toBe(treeNextHopIndex(tree, u))
        }
        // The lent buffers now hold another tree: the frozen paths must not change.
        dijkstra(g, other, { into })
        for (let t = 0; t < n; t++) {
          const want = expected[t]
          if (want !== undefined) expect(frozen.pathTo(g.sites[t]!)).toEqual(want)
          const hop = frozen.nextHopIndex(t)
          expect(hop === -1 ? undefined : g.sites[hop]).toBe(want?.[1])
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe("own links' stats memo", () => {
  it("an advertisement right after a decision carries fresh linkStats, a sample folded in between at the same instant included", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            remote: fc.integer({ min: 1, max: 3 }),
            v6: fc.boolean(),
            rttMs: fc.option(fc.integer({ min: 1, max: 50 })),
          }),
          {
            minLength: 1,
            maxLength: 30,
          },
        ),
        fc.integer({ min: 1, max: 50 }),
        (samples, lateRttMs) => {
          const router = NodeRouter.make({ self: 0, startupHoldDownMillis: 0 })
          const folded: Array<ReturnType<typeof rttSample>> = []
          let now = 1_000_000
          for (const s of samples) {
            now += 300
            const sample = rttSample(tunnelId(0, s.remote, s.v6 ? 6 : 4), "udp-echo", now, s.rttMs)
            router.observe(sample)
            folded.push(sample)
          }
          now += 500
          router.decide(now)
          // A sample folded at the same instant, after the decision read the stats.
          const late = rttSample(tunnelId(0, 1, 4), "udp-echo", now, lateRttMs)
          router.observe(late)
          folded.push(late)
          const table = Aggregation.ingestSamples(new Map(), folded)
          const message = router.advertise(now)
          expect(message.tunnels.length).toBe(table.size)
          for (const t of message.tunnels)
            expect(t.stats).toEqual(Aggregation.linkStats(table.get(tunnelKey(tunnelId(0, t.remote, t.family)))!, now))
        },
      ),
      { numRuns: 200 },
    )
  })
})
