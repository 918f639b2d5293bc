import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { SiteId } from "../src/Domain.js"
import { dijkstra, kShortestPaths, MeshGraph, referenceShortestPaths, shortestPath, treePath } from "../src/Graph.js"

interface Edge {
  readonly from: number
  readonly to: number
  readonly costMs: number
}

/** Random small directed graphs; some edges dead (+Infinity) or unknown (NaN). */
const graphArb = (maxNodes: number) =>
  fc.integer({ min: 2, max: maxNodes }).chain((n) =>
    fc
      .array(
        fc.record({
          from: fc.nat(n - 1),
          to: fc.nat(n - 1),
          costMs: fc.oneof(
            { weight: 8, arbitrary: fc.integer({ min: 0, max: 40 }) },
            { weight: 1, arbitrary: fc.constant(Number.POSITIVE_INFINITY) },
            { weight: 1, arbitrary: fc.constant(Number.NaN) },
          ),
        }),
        { maxLength: n * n },
      )
      .map((edges) => ({ n, edges })),
  )

const build = (n: number, edges: ReadonlyArray<Edge>): MeshGraph => {
  const mesh = new MeshGraph()
  for (let i = 0; i < n; i++) mesh.addSite(i as SiteId)
  // Last write wins, as with successive link-state updates.
  for (const e of edges) mesh.setLink(e.from as SiteId, e.to as SiteId, e.costMs, 4)
  return mesh
}

/** Every simple path from → to by depth-first enumeration, with its cost. */
const allSimplePaths = (mesh: MeshGraph, n: number, from: number, to: number) => {
  const out: Array<{ sites: Array<number>; costMs: number }> = []
  const walk = (path: Array<number>, cost: number) => {
    const last = path[path.length - 1]!
    if (last === to) {
      out.push({ sites: [...path], costMs: cost })
      return
    }
    for (let v = 0; v < n; v++) {
      if (path.includes(v)) continue
      const c = mesh.linkCost(last as SiteId, v as SiteId)
      if (c < Number.POSITIVE_INFINITY) walk([...path, v], cost + c)
    }
  }
  walk([from], 0)
  return out
}

describe("Graph", () => {
  it("stores only usable links: dead and unknown links are removed, not weighted", () => {
    const mesh = new MeshGraph()
    mesh.setLink(0 as SiteId, 1 as SiteId, 5, 4)
    mesh.setLink(1 as SiteId, 2 as SiteId, 5, 6)
    mesh.setLink(0 as SiteId, 2 as SiteId, 3, 4)
    expect(mesh.linkCount).toBe(3)
    expect(mesh.toGraphology().size).toBe(3)
    mesh.setLink(0 as SiteId, 2 as SiteId, Number.POSITIVE_INFINITY, 4)
    expect(mesh.linkCount).toBe(2)
    // One dead link never disables the search: the detour is found.
    expect(shortestPath(mesh.indexed(), 0 as SiteId, 2 as SiteId)).toEqual({ sites: [0, 1, 2], costMs: 10 })
    mesh.setLink(1 as SiteId, 2 as SiteId, Number.NaN, 4)
    expect(shortestPath(mesh.indexed(), 0 as SiteId, 2 as SiteId)).toBeUndefined()
    expect(mesh.linkFamily(0 as SiteId, 1 as SiteId)).toBe(4)
  })

  it("Dijkstra equals brute force on small graphs", () => {
    fc.assert(
      fc.property(graphArb(6), ({ n, edges }) => {
        const mesh = build(n, edges)
        const g = mesh.indexed()
        for (let s = 0; s < n; s++) {
          const tree = dijkstra(g, g.indexOf.get(s)!)
          for (let t = 0; t < n; t++) {
            const brute = allSimplePaths(mesh, n, s, t)
            const best = Math.min(...brute.map((p) => p.costMs))
            const path = treePath(tree, t as SiteId)
            if (brute.length === 0) {
              expect(path).toBeUndefined()
            } else {
              expect(path).toBeDefined()
              expect(path!.costMs).toBe(best)
              // The returned path is real and costs what it claims.
              expect(mesh.pathCost(path!.sites)).toBe(best)
              expect(path!.sites[0]).toBe(s)
              expect(path!.sites[path!.sites.length - 1]).toBe(t)
            }
          }
        }
      }),
      { numRuns: 300 },
    )
  })

  it("indexed Dijkstra agrees with graphology-shortest-path on the same store", () => {
    fc.assert(
      fc.property(graphArb(7), ({ n, edges }) => {
        const mesh = build(n, edges)
        const g = mesh.indexed()
        for (let s = 0; s < n; s++) {
          const ours = dijkstra(g, g.indexOf.get(s)!)
          const ref = referenceShortestPaths(mesh, s as SiteId)
          for (let t = 0; t < n; t++) {
            const d = ours.distanceMs[g.indexOf.get(t)!]!
            const r = ref.get(t)
            if (r === undefined) expect(d).toBe(Number.POSITIVE_INFINITY)
            else expect(d).toBe(r.costMs)
          }
        }
      }),
      { numRuns: 200 },
    )
  })

  it("Yen returns loopless paths in non-decreasing cost that match brute-force enumeration", () => {
    fc.assert(
      fc.property(graphArb(6), fc.integer({ min: 1, max: 8 }), ({ n, edges }, k) => {
        const mesh = build(n, edges)
        const g = mesh.indexed()
        for (let s = 0; s < n; s++) {
          for (let t = 0; t < n; t++) {
            if (s === t) continue
            const paths = kShortestPaths(g, s as SiteId, t as SiteId, k)
            const brute = allSimplePaths(mesh, n, s, t)
            expect(paths.length).toBe(Math.min(k, brute.length))
            const keys = new Set<string>()
            for (let i = 0; i < paths.length; i++) {
              const p = paths[i]!
              expect(new Set(p.sites).size).toBe(p.sites.length)
              expect(p.sites[0]).toBe(s)
              expect(p.sites[p.sites.length - 1]).toBe(t)
              expect(mesh.pathCost(p.sites)).toBe(p.costMs)
              if (i > 0) expect(p.costMs).toBeGreaterThanOrEqual(paths[i - 1]!.costMs)
              keys.add(p.sites.join(","))
            }
            expect(keys.size).toBe(paths.length)
            // The i-th cost equals the i-th smallest cost among all simple paths.
            const bruteCosts = brute.map((p) => p.costMs).sort((a, b) => a - b)
            expect(paths.map((p) => p.costMs)).toEqual(bruteCosts.slice(0, paths.length))
          }
        }
      }),
      { numRuns: 200 },
    )
  })

  it("link-state updates replace costs and invalidate the indexed view", () => {
    const mesh = new MeshGraph()
    mesh.setLink(0 as SiteId, 1 as SiteId, 10, 4)
    mesh.setLink(1 as SiteId, 2 as SiteId, 10, 4)
    mesh.setLink(0 as SiteId, 2 as SiteId, 30, 6)
    expect(shortestPath(mesh.indexed(), 0 as SiteId, 2 as SiteId)?.sites).toEqual([0, 1, 2])
    mesh.setLink(0 as SiteId, 2 as SiteId, 15, 6)
    expect(shortestPath(mesh.indexed(), 0 as SiteId, 2 as SiteId)?.sites).toEqual([0, 2])
    mesh.clearLinksFrom(0 as SiteId)
    expect(shortestPath(mesh.indexed(), 0 as SiteId, 2 as SiteId)).toBeUndefined()
  })
})

describe("MeshGraph incremental updates", () => {
  type Op =
    | { readonly _tag: "set"; readonly from: number; readonly to: number; readonly costMs: number }
    | {
        readonly _tag: "row"
        readonly from: number
        readonly links: ReadonlyArray<{ readonly to: number; readonly costMs: number }>
      }
    | { readonly _tag: "clear"; readonly from: number }
    | { readonly _tag: "site"; readonly site: number }
    | { readonly _tag: "index" }
  const costArb = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 40 }) },
    { weight: 1, arbitrary: fc.constant(Number.POSITIVE_INFINITY) },
  )
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ _tag: fc.constant("set" as const), from: fc.nat(11), to: fc.nat(11), costMs: costArb }),
    fc.record({
      _tag: fc.constant("row" as const),
      from: fc.nat(11),
      links: fc.uniqueArray(fc.record({ to: fc.nat(11), costMs: costArb }), { selector: (l) => l.to, maxLength: 12 }),
    }),
    fc.record({ _tag: fc.constant("clear" as const), from: fc.nat(11) }),
    fc.record({ _tag: fc.constant("site" as const), site: fc.nat(40) }),
    fc.constant({ _tag: "index" as const }),
  )

  it("a row equal to the one before a removal or a clear adds its links back (setRow's topology per slot follows every change)", () => {
    const ids = [1, 2] as Array<SiteId>
    const row = (g: MeshGraph) => g.setLinksFrom(0 as SiteId, ids, [1, 1], [4, 4], [Number.NaN, Number.NaN])
    const removed = new MeshGraph()
    row(removed)
    removed.setLink(0 as SiteId, 2 as SiteId, Number.POSITIVE_INFINITY, 4)
    expect(removed.linkCount).toBe(1)
    row(removed)
    expect(removed.linkCount).toBe(2)
    expect(Array.from(removed.indexed().targets)).toEqual([1, 2])
    const cleared = new MeshGraph()
    row(cleared)
    cleared.clearLinksFrom(0 as SiteId)
    expect(cleared.linkCount).toBe(0)
    row(cleared)
    expect(cleared.linkCount).toBe(2)
    expect(cleared.linksFrom(0 as SiteId)).toEqual(ids)
    expect(Array.from(cleared.indexed().targets)).toEqual([1, 2])
  })

  it("setLinksFrom = setLink per link plus removing the rest; patched snapshots equal rebuilt ones and old ones never change", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const fast = new MeshGraph()
        const slow = new MeshGraph()
        const held: Array<{ readonly g: ReturnType<MeshGraph["indexed"]>; readonly weights: Array<number> }> = []
        for (const op of ops) {
          switch (op._tag) {
            case "set":
              fast.setLink(op.from as SiteId, op.to as SiteId, op.costMs, 4, op.costMs / 2)
              slow.setLink(op.from as SiteId, op.to as SiteId, op.costMs, 4, op.costMs / 2)
              break
            case "row": {
              fast.setLinksFrom(
                op.from as SiteId,
                op.links.map((l) => l.to as SiteId),
                op.links.map((l) => l.costMs),
                op.links.map(() => 6),
                op.links.map((l) => l.costMs / 2),
              )
              const listed = new Set(op.links.filter((l) => l.costMs < Number.POSITIVE_INFINITY).map((l) => l.to))
              for (const to of slow.linksFrom(op.from as SiteId)) {
                if (!listed.has(to)) slow.setLink(op.from as SiteId, to, Number.POSITIVE_INFINITY, 4)
              }
              slow.addSite(op.from as SiteId)
              for (const l of op.links) slow.setLink(op.from as SiteId, l.to as SiteId, l.costMs, 6, l.costMs / 2)
              break
            }
            case "clear":
              fast.clearLinksFrom(op.from as SiteId)
              slow.clearLinksFrom(op.from as SiteId)
              break
            case "site":
              fast.addSite(op.site as SiteId)
              slow.addSite(op.site as SiteId)
              break
            case "index": {
              const g = fast.indexed()
              held.push({ g, weights: [...g.weights] })
            }
          }
        }
        expect(fast.sites()).toEqual(slow.sites())
        expect(fast.linkCount).toBe(slow.linkCount)
        for (const a of slow.sites()) {
          expect(fast.linksFrom(a)).toEqual(slow.linksFrom(a))
          for (const b of slow.sites()) {
            expect(fast.linkCost(a, b)).toBe(slow.linkCost(a, b))
            expect(fast.linkFamily(a, b)).toBe(slow.linkFamily(a, b))
            expect(fast.pathPenalty([a, b])).toBe(slow.pathPenalty([a, b]))
          }
        }
        // A rebuilt snapshot (a fresh copy of the links) equals the patched one.
        const rebuilt = new MeshGraph()
        for (const a of slow.sites()) rebuilt.addSite(a)
        for (const a of slow.sites()) for (const b of slow.linksFrom(a)) rebuilt.setLink(a, b, slow.linkCost(a, b), 4)
        const g = fast.indexed()
        const r = rebuilt.indexed()
        expect([...g.offsets]).toEqual([...r.offsets])
        expect([...g.targets]).toEqual([...r.targets])
        expect([...g.weights]).toEqual([...r.weights])
        expect(g.sites).toEqual(r.sites)
        // Snapshots handed out earlier are never patched under their holders.
        for (const h of held) expect([...h.g.weights]).toEqual(h.weights)
        // A copy is independent.
        const copy = fast.clone()
        copy.clearLinksFrom(g.sites[0]!)
        expect(fast.linkCount).toBe(slow.linkCount)
      }),
      { numRuns: 500 },
    )
  })

  it("graphs with the same links share one adjacency, and each reads its own links", () => {
    // The adjacency (offsets, targets) a graph's links give, built here independently.
    const expected = (n: number, edges: ReadonlyArray<Edge>) => {
      const cost = new Map<string, number>()
      for (const e of edges) cost.set(`${e.from}>${e.to}`, e.costMs)
      const offsets = [0]
      const targets: Array<number> = []
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          const c = cost.get(`${a}>${b}`)
          if (a !== b && c !== undefined && c >= 0 && c < Number.POSITIVE_INFINITY) targets.push(b)
        }
        offsets.push(targets.length)
      }
      return JSON.stringify({ offsets, targets })
    }
    fc.assert(
      fc.property(graphArb(5), graphArb(5), fc.boolean(), (x, y, twin) => {
        // Half the pairs are two graphs of the same links (one adjacency).
        const other = twin ? x : y
        const gx = build(x.n, x.edges).indexed()
        const gy = build(other.n, other.edges).indexed()
        const ex = expected(x.n, x.edges)
        const ey = expected(other.n, other.edges)
        expect(JSON.stringify({ offsets: [...gx.offsets], targets: [...gx.targets] })).toBe(ex)
        expect(JSON.stringify({ offsets: [...gy.offsets], targets: [...gy.targets] })).toBe(ey)
        const shared = gx.offsets === gy.offsets && gx.targets === gy.targets
        expect(shared).toBe(ex === ey)
      }),
      { numRuns: 500 },
    )
  })
})
