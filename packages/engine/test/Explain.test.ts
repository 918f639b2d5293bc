/**
 * NodeRouter.explain: each algorithm's own best feasible proposal, read-only. Two identical
 * worlds run the same random operations; one also calls explain (at the decision time and at
 * other times, future ones included) before its decisions. Every decision and advertisement
 * must come out the same, and explain must agree with the decision where stability does not
 * intervene.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type AlgorithmName, algorithmNames } from "../src/Algorithms.js"
import { type Family, SiteId } from "../src/Domain.js"
import type { AlgorithmExplanation } from "../src/NodeRouter.js"
import { type Tunnel, World } from "./routingWorld.js"

type Op =
  | { readonly _tag: "round"; readonly dt: number }
  | { readonly _tag: "tick"; readonly dt: number }
  | { readonly _tag: "decide"; readonly site: number; readonly explainOffsets: ReadonlyArray<number> }
  | { readonly _tag: "advertise"; readonly site: number }
  | { readonly _tag: "deliver"; readonly index: number; readonly keep: boolean }
  | { readonly _tag: "drop"; readonly index: number }
  | { readonly _tag: "setLink"; readonly index: number; readonly rttMs: number | null; readonly both: boolean }
  | { readonly _tag: "probePaths"; readonly site: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.integer({ min: 1, max: 10_000 }).map((dt) => ({ _tag: "round" as const, dt })),
  fc.integer({ min: 1, max: 40_000 }).map((dt) => ({ _tag: "tick" as const, dt })),
  fc
    .tuple(fc.nat(10), fc.array(fc.integer({ min: -5_000, max: 60_000 }), { maxLength: 2 }))
    .map(([site, explainOffsets]) => ({ _tag: "decide" as const, site, explainOffsets })),
  fc
    .tuple(fc.nat(10), fc.array(fc.integer({ min: -5_000, max: 60_000 }), { maxLength: 2 }))
    .map(([site, explainOffsets]) => ({ _tag: "decide" as const, site, explainOffsets })),
  fc.nat(10).map((site) => ({ _tag: "advertise" as const, site })),
  fc.tuple(fc.nat(1000), fc.boolean()).map(([index, keep]) => ({ _tag: "deliver" as const, index, keep })),
  fc.nat(1000).map((index) => ({ _tag: "deliver" as const, index, keep: false })),
  fc.nat(1000).map((index) => ({ _tag: "drop" as const, index })),
  fc
    .tuple(fc.nat(100), fc.option(fc.integer({ min: 1, max: 200 }), { freq: 3 }), fc.boolean())
    .map(([index, rttMs, both]) => ({ _tag: "setLink" as const, index, rttMs, both })),
  fc.nat(10).map((site) => ({ _tag: "probePaths" as const, site })),
)

const worldArb = fc.record({
  n: fc.integer({ min: 3, max: 6 }),
  density: fc.double({ min: 0.3, max: 1, noNaN: true }),
  pairs: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 150 })), {
    minLength: 15,
    maxLength: 15,
  }),
  families: fc.array(fc.constantFrom<ReadonlyArray<Family>>([4], [6], [4, 6]), { minLength: 15, maxLength: 15 }),
  algorithms: fc.array(
    fc.constantFrom<AlgorithmName>("graph-least-cost", "least-cost-bgp", "shortest-bgp", "measured-fastest"),
    { minLength: 6, maxLength: 6 },
  ),
  dwellMillis: fc.constantFrom(0, 5_000, 30_000),
  holdDown: fc.constantFrom(0, 0, 20_000),
  bgpHops: fc.integer({ min: 1, max: 4 }),
})

type Setup = typeof worldArb extends fc.Arbitrary<infer T> ? T : never

const makeWorld = (p: Setup): World => {
  const tunnels: Array<Tunnel & { rttMs: number }> = []
  let k = 0
  for (let a = 0; a < p.n; a++) {
    for (let b = a + 1; b < p.n; b++) {
      const [roll, rttMs] = p.pairs[k]!
      const families = p.families[k]!
      k++
      if (roll > p.density) continue
      for (const family of families) tunnels.push({ a, b, family, rttMs })
    }
  }
  const w = new World(p.n, tunnels, (self) => ({
    algorithm: p.algorithms[self]!,
    startupHoldDownMillis: p.holdDown,
    stability: { dwellMillis: p.dwellMillis },
    linkStateMaxAgeMillis: 30_000,
    measured: { probeBudget: 3, reverifyAfterMillis: 1_000 },
  }))
  for (let s = 0; s < p.n; s++) w.routers[s]!.setBgpPaths(w.bgpPathsOf(s, p.bgpHops))
  return w
}

const apply = (w: World, op: Op, onDecide: (site: number) => void): void => {
  switch (op._tag) {
    case "round":
      w.tick(op.dt)
      for (let s = 0; s < w.n; s++) onDecide(s)
      for (let s = 0; s < w.n; s++) w.advertise(s)
      w.deliverAll()
      return
    case "tick":
      w.tick(op.dt)
      return
    case "decide":
      onDecide(op.site % w.n)
      return
    case "advertise":
      w.advertise(op.site % w.n)
      return
    case "deliver":
      w.deliver(op.index, op.keep)
      return
    case "drop":
      w.drop(op.index)
      return
    case "setLink": {
      const keys = [...w.rtt.keys()]
      if (keys.length === 0) return
      w.setDirectionRtt(keys[op.index % keys.length]!, op.rttMs, op.both)
      return
    }
    case "probePaths":
      w.probePaths(op.site % w.n)
  }
}

/** Where stability does not intervene, the decision is the producing algorithm's own best. */
const checkAgainstDecision = (w: World, site: number, explained: ReadonlyArray<AlgorithmExplanation>): void => {
  const router = w.routers[site]!
  const byAlgorithm = new Map(explained.map((e) => [e.algorithm, e] as const))
  for (const route of router.lastDecision!.routes) {
    if (route.stability === "hold-down") continue
    const first = router.config.chain.find(
      (a) => byAlgorithm.get(a)!.routes.find((r) => r.destination === route.destination)?.nextHop != null,
    )
    expect(route.algorithm, `${site} → ${route.destination}`).toBe(first ?? null)
    if (route.algorithm === null) continue
    const mine = byAlgorithm.get(route.algorithm)!.routes.find((r) => r.destination === route.destination)!
    expect(mine.reason).toBeUndefined()
    if (route.stability === "initial" || route.stability === "better" || route.stability === "left-dead") {
      expect(mine.nextHop, `${site} → ${route.destination} (${route.stability})`).toBe(route.nextHop)
      expect(mine.costMs).toBe(route.costMs)
      expect(mine.path).toEqual(route.path)
    }
  }
  // Algorithms before the producing one have nothing, and say why.
  for (const route of router.lastDecision!.routes) {
    for (const f of route.fallbacks) {
      const mine = byAlgorithm.get(f.algorithm)!.routes.find((r) => r.destination === route.destination)!
      if (route.stability !== "hold-down") expect(mine.nextHop).toBeNull()
      expect(typeof mine.reason === "string" || route.stability === "hold-down").toBe(true)
    }
  }
}

describe("NodeRouter.explain", () => {
  it("is read-only: the same operations give the same decisions and advertisements with or without it", () => {
    fc.assert(
      fc.property(worldArb, fc.array(opArb, { maxLength: 60 }), (setup, ops) => {
        const plain = makeWorld(setup)
        const explained = makeWorld(setup)
        for (const op of ops) {
          apply(plain, op, (s) => plain.routers[s]!.decide(plain.nowMillis))
          apply(explained, op, (s) => {
            const router = explained.routers[s]!
            if (op._tag === "decide") for (const dt of op.explainOffsets) router.explain(explained.nowMillis + dt)
            const before = router.explain(explained.nowMillis)
            router.decide(explained.nowMillis)
            checkAgainstDecision(explained, s, before)
          })
          for (let s = 0; s < setup.n; s++) {
            expect(explained.routers[s]!.lastDecision).toEqual(plain.routers[s]!.lastDecision)
            expect(explained.routers[s]!.seqno).toBe(plain.routers[s]!.seqno)
          }
          expect(explained.inflight).toEqual(plain.inflight)
        }
        // Whatever was pending (seqno requests, FDs, family choices) comes out in the next messages.
        for (let s = 0; s < setup.n; s++) {
          explained.routers[s]!.explain(explained.nowMillis + 1)
          expect(explained.routers[s]!.advertise(explained.nowMillis + 1)).toEqual(
            plain.routers[s]!.advertise(plain.nowMillis + 1),
          )
          expect(explained.routers[s]!.decide(explained.nowMillis + 40_000)).toEqual(
            plain.routers[s]!.decide(plain.nowMillis + 40_000),
          )
        }
      }),
      { numRuns: 300 },
    )
  }, 180_000)

  it("lists every algorithm with a proposal or a reason per destination", () => {
    const w = new World(
      3,
      [
        { a: 0, b: 1, family: 4, rttMs: 10 },
        { a: 1, b: 2, family: 4, rttMs: 10 },
        { a: 0, b: 2, family: 4, rttMs: 50 },
      ],
      (self) => ({ startupHoldDownMillis: 0, ...(self === 0 ? { algorithm: "shortest-bgp" as const } : {}) }),
    )
    w.routers[0]!.setBgpPaths(w.bgpPathsOf(0, 2))
    w.settle(4, 1000)
    const explained = w.routers[0]!.explain(w.nowMillis)
    expect(explained.map((e) => e.algorithm)).toEqual(algorithmNames)
    const to2 = (a: AlgorithmName) => explained.find((e) => e.algorithm === a)!.routes.find((r) => r.destination === 2)!
    expect(to2("graph-least-cost")).toMatchObject({ nextHop: 1, path: [0, 1, 2] })
    expect(to2("graph-least-cost").costMs).toBeCloseTo(20, 0)
    expect(to2("least-cost-bgp")).toMatchObject({ nextHop: 1, path: [0, 1, 2] })
    expect(to2("shortest-bgp")).toEqual({ destination: 2, nextHop: 2, costMs: 1, path: [0, 2] })
    expect(to2("measured-fastest")).toEqual({
      destination: 2,
      nextHop: null,
      costMs: Number.POSITIVE_INFINITY,
      path: [],
      reason: "no fresh pathping measurement to the destination yet",
    })
    // The decision is shortest-bgp's (the node's algorithm), whatever the others would pick.
    expect(w.routers[0]!.lastDecision!.byDestination.get(2)!.nextHop).toBe(2)
    // Peers silent for 31 s (own probes go on) age out in the explained view as in decide,
    // without leaving the router's store or mesh.
    w.tick(31_000)
    const graphLater = w.routers[0]!.explain(w.nowMillis).find((e) => e.algorithm === "graph-least-cost")!
    expect(graphLater.routes.find((r) => r.destination === 2)).toMatchObject({ nextHop: 2, path: [0, 2] })
    expect(w.routers[0]!.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBeLessThan(Number.POSITIVE_INFINITY)
    w.routers[0]!.decide(w.nowMillis)
    expect(w.routers[0]!.graph.linkCost(SiteId.make(1), SiteId.make(2))).toBe(Number.POSITIVE_INFINITY)
  })
})
