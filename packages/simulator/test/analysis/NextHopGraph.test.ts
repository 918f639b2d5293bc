import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import {
  findBlackholes,
  findLoops,
  isFullyDelivering,
  nextHopOf,
  snapshotOf,
  tracePath,
} from "../../src/analysis/NextHopGraph.js"

/** A random forwarding state over n sites: each (src,dst) gets a next hop or none. */
const arbSnapshot = fc.integer({ min: 2, max: 7 }).chain((n) =>
  fc
    .array(fc.option(fc.integer({ min: 0, max: n - 1 }), { nil: undefined }), {
      minLength: n * n,
      maxLength: n * n,
    })
    .map((hops) => {
      const sites = Array.from({ length: n }, (_, i) => i)
      const routes: Array<[number, number, number]> = []
      for (const src of sites)
        for (const dst of sites) {
          const h = hops[src * n + dst]
          if (src !== dst && h !== undefined && h !== src) routes.push([src, dst, h])
        }
      return snapshotOf(0, sites, routes)
    }),
)

/** Forwarding along a random spanning tree rooted at each destination: loop- and hole-free. */
const arbTreeSnapshot = fc.integer({ min: 2, max: 8 }).chain((n) =>
  fc.array(fc.nat(), { minLength: n * n, maxLength: n * n }).map((rnd) => {
    const sites = Array.from({ length: n }, (_, i) => i)
    const routes: Array<[number, number, number]> = []
    for (const dst of sites) {
      // order sites so dst is first; each later site picks a parent among earlier ones
      const order = [dst, ...sites.filter((s) => s !== dst)]
      order.forEach((s, i) => {
        if (i === 0) return
        const parent = order[(rnd[dst * n + i] ?? 0) % i] as number
        routes.push([s, dst, parent])
      })
    }
    return snapshotOf(0, sites, routes)
  }),
)

describe("NextHopGraph", () => {
  test.prop([arbSnapshot])("every trace follows next hops and ends as its tag says", (snap) => {
    for (const src of snap.sites)
      for (const dst of snap.sites) {
        if (src === dst) continue
        const t = tracePath(snap, src, dst)
        for (let i = 0; i + 1 < t.path.length; i++)
          expect(nextHopOf(snap, t.path[i] as number, dst)).toBe(t.path[i + 1])
        if (t._tag === "Delivered") expect(t.path.at(-1)).toBe(dst)
        if (t._tag === "Blackhole") {
          expect(nextHopOf(snap, t.at, dst)).toBeUndefined()
          expect(t.path.at(-1)).toBe(t.at)
        }
        if (t._tag === "Loop") {
          expect(t.cycle[0]).toBe(t.cycle.at(-1))
          expect(t.cycle.length).toBeGreaterThanOrEqual(3)
          expect(t.cycle).not.toContain(dst)
        }
      }
  })

  test.prop([arbSnapshot])("loops/blackholes are found exactly when some trace shows one", (snap) => {
    const traces = snap.sites.flatMap((s) => snap.sites.filter((d) => d !== s).map((d) => tracePath(snap, s, d)))
    expect(findLoops(snap).length > 0).toBe(traces.some((t) => t._tag === "Loop"))
    expect(findBlackholes(snap).length).toBe(traces.filter((t) => t._tag === "Blackhole").length)
    expect(isFullyDelivering(snap)).toBe(traces.every((t) => t._tag === "Delivered"))
  })

  test.prop([arbTreeSnapshot])("tree-shaped forwarding has no loop and no blackhole", (snap) => {
    expect(findLoops(snap)).toEqual([])
    expect(findBlackholes(snap)).toEqual([])
    expect(isFullyDelivering(snap)).toBe(true)
  })

  test("a two-node loop is reported once with all its sources", () => {
    // 0 -> 1 -> 2 -> 1 for dst 3; 2 also loops
    const snap = snapshotOf(
      0,
      [0, 1, 2, 3],
      [
        [0, 3, 1],
        [1, 3, 2],
        [2, 3, 1],
      ],
    )
    const loops = findLoops(snap)
    expect(loops).toHaveLength(1)
    expect(loops[0]?.cycle).toEqual([1, 2, 1])
    expect([...(loops[0]?.sources ?? [])].sort()).toEqual([0, 1, 2])
    expect(findBlackholes(snap).filter((b) => b.dst === 3)).toEqual([])
    expect(findBlackholes(snap).some((b) => b.src === 3 && b.at === 3)).toBe(true)
  })
})
