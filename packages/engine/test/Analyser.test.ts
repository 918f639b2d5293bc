import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import { analysePaths, fromPathSamples, nonNegativeQuadratic, type PathMeasurement } from "../src/Analyser.js"
import { PathSample, SiteId } from "../src/Domain.js"

const s = (n: number) => SiteId.make(n)
const path = (...ids: Array<number>) => ids.map(s)

/** A random complete graph on n sites with latencies, plus cycle measurements over it. */
const scenario = fc.integer({ min: 3, max: 7 }).chain((n) => {
  const pairs: Array<[number, number]> = []
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairs.push([a, b])
  return fc.record({
    n: fc.constant(n),
    pairs: fc.constant(pairs),
    latency: fc.array(fc.double({ min: 0.1, max: 100, noNaN: true }), {
      minLength: pairs.length,
      maxLength: pairs.length,
    }),
    triangles: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 20 }),
  })
})

const exactMeasurements = (
  pairs: ReadonlyArray<[number, number]>,
  latency: ReadonlyArray<number>,
  paths: ReadonlyArray<ReadonlyArray<number>>,
): Array<PathMeasurement> => {
  const lat = new Map(pairs.map(([a, b], i) => [`${a}-${b}`, latency[i]!]))
  const of = (a: number, b: number) => lat.get(a < b ? `${a}-${b}` : `${b}-${a}`)!
  return paths.map((p) => {
    let rtt = 0
    for (let h = 1; h < p.length; h++) rtt += of(p[h - 1]!, p[h]!)
    return { path: path(...p), rttMs: rtt }
  })
}

describe("Analyser", () => {
  it("recovers known link latencies from exact round trips, with residuals ~0", () => {
    fc.assert(
      fc.property(scenario, ({ pairs, latency, triangles }) => {
        const paths: Array<Array<number>> = pairs.map(([a, b]) => [a, b, a])
        for (const [a, b, c] of triangles) if (a !== b && b !== c && c !== a) paths.push([a, b, c, a])
        const r = Either.getOrThrow(analysePaths(exactMeasurements(pairs, latency, paths)))
        expect(r.rank).toBe(pairs.length)
        for (const [i, l] of r.links.entries()) {
          expect(l.a).toBe(pairs[i]![0])
          expect(l.b).toBe(pairs[i]![1])
          expect(l.identifiable).toBe(true)
          expect(Math.abs(l.latencyMs - latency[i]!)).toBeLessThan(1e-4)
        }
        for (const res of r.residuals) expect(Math.abs(res.residualMs)).toBeLessThan(1e-4)
      }),
      { numRuns: 200 },
    )
  })

  it("recovers a triangle from cycles that are not single-link round trips", () => {
    const pairs: Array<[number, number]> = [
      [0, 1],
      [0, 2],
      [1, 2],
    ]
    const latency = [5, 7, 11]
    const paths = [
      [0, 1, 2, 0],
      [0, 1, 0, 2, 0],
      [1, 2, 1, 0, 1],
    ]
    const r = Either.getOrThrow(analysePaths(exactMeasurements(pairs, latency, paths)))
    expect(r.links.map((l) => l.latencyMs)).toEqual([expect.closeTo(5, 4), expect.closeTo(7, 4), expect.closeTo(11, 4)])
  })

  it("reports an under-determined system instead of guessing: minimum-norm fit, links not identifiable", () => {
    const r = Either.getOrThrow(
      analysePaths([
        { path: path(0, 1, 2, 0), rttMs: 30 },
        { path: path(0, 3, 0), rttMs: 8 },
      ]),
    )
    expect(r.rank).toBe(2)
    const byPair = new Map(r.links.map((l) => [`${l.a}-${l.b}`, l]))
    for (const k of ["0-1", "0-2", "1-2"]) {
      expect(byPair.get(k)!.identifiable).toBe(false)
      expect(byPair.get(k)!.latencyMs).toBeCloseTo(10, 4)
    }
    expect(byPair.get("0-3")!.identifiable).toBe(true)
    expect(byPair.get("0-3")!.latencyMs).toBeCloseTo(4, 6)
    expect(r.rmsResidualMs).toBeLessThan(1e-6)
  })

  it("never estimates a negative latency", () => {
    // Unconstrained least squares would make 1-2 negative here.
    const r = Either.getOrThrow(
      analysePaths([
        { path: path(0, 1, 0), rttMs: 20 },
        { path: path(0, 2, 0), rttMs: 20 },
        { path: path(0, 1, 2, 0), rttMs: 10 },
      ]),
    )
    for (const l of r.links) expect(l.latencyMs).toBeGreaterThanOrEqual(0)
    expect(r.links.find((l) => l.a === 1 && l.b === 2)!.latencyMs).toBe(0)
  })

  it("points at the measurement and links that disagree", () => {
    const pairs: Array<[number, number]> = [
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 2],
      [1, 3],
      [2, 3],
    ]
    const latency = [5, 6, 7, 8, 9, 10]
    const paths: Array<Array<number>> = pairs.map(([a, b]) => [a, b, a])
    paths.push([0, 1, 2, 0], [0, 2, 3, 0], [0, 1, 3, 0], [1, 2, 3, 1])
    const ms = exactMeasurements(pairs, latency, paths)
    ms.push({ path: path(1, 2, 1), rttMs: 16 + 40 })
    const r = Either.getOrThrow(analysePaths(ms))
    const worst = [...r.residuals].sort((a, b) => Math.abs(b.residualMs) - Math.abs(a.residualMs))[0]!
    expect(worst.index).toBe(ms.length - 1)
    expect([r.worstLinks[0]!.a, r.worstLinks[0]!.b]).toEqual([1, 2])
  })

  it("satisfies the optimality (KKT) conditions of the non-negative quadratic", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            a: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), {
              minLength: n * (n + 2),
              maxLength: n * (n + 2),
            }),
            c: fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: n, maxLength: n }),
          }),
        ),
        ({ n, a, c }) => {
          // Q = BᵀB + I (SPD) with B of (n+2)×n.
          const q = new Float64Array(n * n)
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              let v = i === j ? 1 : 0
              for (let k = 0; k < n + 2; k++) v += a[k * n + i]! * a[k * n + j]!
              q[i * n + j] = v
            }
          }
          const x = nonNegativeQuadratic(q, Float64Array.from(c), n)
          for (let i = 0; i < n; i++) {
            let g = -c[i]!
            for (let j = 0; j < n; j++) g += q[i * n + j]! * x[j]!
            expect(x[i]!).toBeGreaterThanOrEqual(0)
            expect(g).toBeGreaterThan(-1e-6)
            if (x[i]! > 1e-9) expect(Math.abs(g)).toBeLessThan(1e-6)
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it("rejects bad measurements with a typed error and reads pathping samples", () => {
    for (const bad of [
      { path: path(0), rttMs: 1 },
      { path: path(0, 0, 1), rttMs: 1 },
      { path: path(0, 1, 0), rttMs: Number.NaN },
      { path: path(0, 1, 0), rttMs: 1, weight: 0 },
    ]) {
      const r = analysePaths([bad])
      expect(Either.isLeft(r) && r.left._tag === "InvalidPathMeasurement").toBe(true)
    }
    const samples = [
      PathSample.make({ path: path(0, 1, 0), families: [4, 4], atMillis: 0, rttMs: 10, sent: 10, received: 10 }),
      PathSample.make({ path: path(0, 2, 0), families: [4, 4], atMillis: 0, rttMs: null, sent: 10, received: 0 }),
    ]
    expect(fromPathSamples(samples)).toEqual([{ path: path(0, 1, 0), rttMs: 10, weight: 10 }])
    expect(Either.getOrThrow(analysePaths([])).links).toEqual([])
  })
})
