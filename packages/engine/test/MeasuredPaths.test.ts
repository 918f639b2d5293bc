import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { PathSample, SiteId } from "../src/Domain.js"
import { MeshGraph } from "../src/Graph.js"
import { defaultMeasuredConfig, forwardOfCycle, hash32, MeasuredPathStore } from "../src/MeasuredPaths.js"

const s = (n: number) => SiteId.make(n)

/** Full mesh of n sites, cost |a − b| · 10 + 5, IPv6 between even sites. */
const fullMesh = (n: number): MeshGraph => {
  const mesh = new MeshGraph()
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++)
      if (a !== b) mesh.setLink(s(a), s(b), Math.abs(a - b) * 10 + 5, a % 2 === 0 && b % 2 === 0 ? 6 : 4)
  return mesh
}

const sample = (path: ReadonlyArray<number>, atMillis: number, rttMs: number | null, received = 10) =>
  new PathSample({
    path: path.map(s),
    families: path.slice(1).map(() => 0 as const),
    atMillis,
    rttMs,
    sent: 10,
    received,
  })

describe("MeasuredPaths", () => {
  it("accepts only palindromic loopless cycles from self", () => {
    expect(forwardOfCycle(s(0), [0, 1, 2, 1, 0].map(s))).toEqual([0, 1, 2])
    expect(forwardOfCycle(s(0), [0, 2, 0].map(s))).toEqual([0, 2])
    expect(forwardOfCycle(s(0), [1, 2, 1].map(s))).toBeUndefined()
    expect(forwardOfCycle(s(0), [0, 1, 2, 0].map(s))).toBeUndefined()
    expect(forwardOfCycle(s(0), [0, 1, 0, 1, 0].map(s))).toBeUndefined()
  })

  it("scores a path by its median RTT plus its loss, forgets old samples and ignores all-lost paths", () => {
    const store = new MeasuredPathStore(s(0))
    expect(store.record(sample([0, 1, 2, 1, 0], 1000, 30))).toBe(true)
    expect(store.record(sample([0, 1, 2, 1, 0], 2000, 34))).toBe(true)
    expect(store.record(sample([0, 1, 2, 1, 0], 3000, 90))).toBe(true)
    expect(store.record(sample([0, 2, 0], 3000, null, 0))).toBe(true)
    expect(store.record(sample([1, 2, 1], 3000, 5))).toBe(false)
    const m = store.measured(s(2), 4000)
    expect(m).toHaveLength(1)
    expect(m[0]!.sites).toEqual([0, 1, 2])
    expect(m[0]!.costMs).toBe(34)
    expect(m[0]!.noiseMs).toBeGreaterThan(20)
    store.record(sample([0, 3, 0], 5000, 20, 9))
    expect(store.measured(s(3), 5000)[0]!.costMs).toBeCloseTo(20 + (1000 * 0.1) / 0.9, 6)
    expect(store.measured(s(2), 1000 + defaultMeasuredConfig.sampleMaxAgeMillis + 2001)).toEqual([])
  })

  it("asks for at most the budget, top-k candidates first, round-robin over destinations, deterministically", () => {
    const config = { ...defaultMeasuredConfig, k: 3, probeBudget: 4, seed: 7 }
    const mesh = fullMesh(6)
    const destinations = [1, 2, 3, 4, 5].map(s)
    const a = new MeasuredPathStore(s(0), config)
    const b = new MeasuredPathStore(s(0), config)
    const seen = new Set<number>()
    for (let round = 0; round < 4; round++) {
      const ra = a.requests(mesh, destinations, 10_000 + round, () => true)
      const rb = b.requests(mesh, destinations, 10_000 + round, () => true)
      expect(ra).toEqual(rb)
      expect(ra.length).toBeLessThanOrEqual(4)
      for (const r of ra) {
        seen.add(r.destination)
        expect(forwardOfCycle(s(0), r.path)).toBeDefined()
        expect(r.path[(r.path.length - 1) / 2]).toBe(r.destination)
        expect(r.families).toHaveLength(r.path.length - 1)
        expect(r.notBeforeMillis).toBeGreaterThanOrEqual(10_000 + round)
        expect(r.notBeforeMillis).toBeLessThan(10_000 + round + config.jitterMillis)
      }
    }
    expect(seen.size).toBe(5)
    // A path just verified is not asked for again before reverifyAfterMillis.
    const fresh = new MeasuredPathStore(s(0), { ...config, probeBudget: 100 })
    const first = fresh.requests(mesh, [s(5)], 0, () => true)
    expect(first).toHaveLength(3)
    expect(fresh.requests(mesh, [s(5)], 1000, () => true)).toEqual([])
    expect(fresh.requests(mesh, [s(5)], config.reverifyAfterMillis, () => true)).toHaveLength(3)
    // Candidates whose first hop is unusable are skipped.
    const gated = new MeasuredPathStore(s(0), { ...config, probeBudget: 100 })
    for (const r of gated.requests(mesh, [s(5)], 0, (nextHop) => nextHop !== 5)) expect(r.path[1]).not.toBe(5)
  })

  it("hash32 is deterministic and spreads", () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 5 }), (words) => {
        expect(hash32(...words)).toBe(hash32(...words))
        expect(hash32(...words)).toBeGreaterThanOrEqual(0)
        expect(hash32(...words)).toBeLessThan(2 ** 32)
      }),
    )
    const buckets = new Array(8).fill(0)
    for (let i = 0; i < 8000; i++) buckets[hash32(1, i) % 8]++
    for (const count of buckets) expect(count).toBeGreaterThan(800)
  })
})
