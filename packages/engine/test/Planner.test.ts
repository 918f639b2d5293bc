import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import * as fc from "fast-check"
import { KernelRoute, managedRouteProtocol, RouteOp } from "../src/Domain.js"
import { applyPlan, planRoutes, routeIdentity, sameRoute } from "../src/Planner.js"

const route = fc.record(
  {
    prefix: fc.constantFrom("10.201.1.0/24", "10.201.2.0/24", "10.201.3.1/32", "fdac:c9:3::/64", "fdac:c9:4::/64"),
    device: fc.constantFrom("wg1.2_v4", "wg1.3_v6", "wg1.4_v4"),
    gateway: fc.constantFrom("10.201.2.1", "fe80::1"),
    source: fc.constantFrom("10.201.1.1", "fdac:c9:1::1"),
    metric: fc.constantFrom(100, 200),
    protocol: fc.constant(managedRouteProtocol),
    table: fc.constantFrom(254, 100),
  },
  { requiredKeys: ["prefix", "device", "metric", "protocol"] },
) as fc.Arbitrary<KernelRoute>

/** A set with unique identities (what a valid desired set or a kernel table looks like). */
const routeSet = fc.uniqueArray(route, { selector: routeIdentity, maxLength: 12 })
const foreign = fc.array(
  route.map((r) => ({ ...r, protocol: 12 })),
  { maxLength: 3 },
)

const sorted = (rs: ReadonlyArray<KernelRoute>) =>
  [...rs].sort((a, b) => (routeIdentity(a) < routeIdentity(b) ? -1 : 1))
const setEqual = (a: ReadonlyArray<KernelRoute>, b: ReadonlyArray<KernelRoute>) => {
  expect(a.length).toBe(b.length)
  const sa = sorted(a)
  const sb = sorted(b)
  for (const [i, r] of sa.entries()) expect(sameRoute(r, sb[i]!)).toBe(true)
}

describe("Planner", () => {
  it("applying the plan yields the desired set, and planning again yields nothing", () => {
    fc.assert(
      fc.property(routeSet, routeSet, foreign, (desired, installed, others) => {
        const ops = Either.getOrThrow(planRoutes(desired, [...installed, ...others]))
        const after = Either.getOrThrow(applyPlan(installed, ops))
        setEqual(after, desired)
        expect(Either.getOrThrow(planRoutes(desired, [...after, ...others]))).toEqual([])
      }),
      { numRuns: 1000 },
    )
  })

  it("is minimal: one operation per differing identity, none for identical routes, never touching other protocols", () => {
    fc.assert(
      fc.property(routeSet, routeSet, foreign, (desired, installed, others) => {
        const ops = Either.getOrThrow(planRoutes(desired, [...installed, ...others]))
        const have = new Map(installed.map((r) => [routeIdentity(r), r]))
        const want = new Map(desired.map((r) => [routeIdentity(r), r]))
        let differing = 0
        for (const [k, r] of want) {
          const h = have.get(k)
          if (h === undefined || !sameRoute(h, r)) differing++
        }
        for (const k of have.keys()) if (!want.has(k)) differing++
        expect(ops.length).toBe(differing)
        expect(new Set(ops.map((o) => routeIdentity(o.route))).size).toBe(ops.length)
        for (const op of ops) expect(op.route.protocol).toBe(managedRouteProtocol)
      }),
      { numRuns: 1000 },
    )
  })

  it("orders replaces, adds, deletes and is deterministic", () => {
    const a = { prefix: "10.201.1.0/24", device: "wg1.2_v4", metric: 100, protocol: 201 }
    const b = { prefix: "10.201.2.0/24", device: "wg1.2_v4", metric: 100, protocol: 201 }
    const c = { prefix: "10.201.3.0/24", device: "wg1.2_v4", metric: 100, protocol: 201 }
    const ops = Either.getOrThrow(planRoutes([b, { ...a, device: "wg1.3_v6" }], [c, a]))
    expect(ops.map((o) => o._tag)).toEqual(["RouteReplace", "RouteAdd", "RouteDelete"])
    expect(Either.getOrThrow(planRoutes([{ ...a, device: "wg1.3_v6" }, b], [a, c]))).toEqual(ops)
  })

  it("rejects duplicate identities and foreign protocols in the desired set with a typed error", () => {
    const a = { prefix: "10.201.1.0/24", device: "wg1.2_v4", metric: 100, protocol: 201 }
    const dup = planRoutes([a, { ...a, device: "wg1.3_v4" }], [])
    expect(Either.isLeft(dup) && dup.left._tag === "InvalidDesiredRoutes" && dup.left.reason).toBe("duplicate-identity")
    const foreignProto = planRoutes([{ ...a, protocol: 12 }], [])
    expect(Either.isLeft(foreignProto) && foreignProto.left.reason).toBe("unmanaged-protocol")
  })

  it("applyPlan refuses operations the kernel would refuse", () => {
    const a = { prefix: "10.201.1.0/24", device: "wg1.2_v4", metric: 100, protocol: 201 }
    const added = Either.getOrThrow(planRoutes([a], []))
    const twice = applyPlan([a], added)
    expect(Either.isLeft(twice) && twice.left.reason).toBe("exists")
    const deleted = Either.getOrThrow(planRoutes([], [a]))
    const gone = applyPlan([], deleted)
    expect(Either.isLeft(gone) && gone.left.reason).toBe("missing")
  })

  it("routes and operations round-trip through their Schemas; bad input fails with a ParseError", () => {
    fc.assert(
      fc.property(route, (r) => {
        const op = { _tag: "RouteAdd" as const, route: r }
        const encoded = Schema.encodeSync(RouteOp)(Schema.decodeUnknownSync(RouteOp)(op))
        expect(Schema.decodeUnknownSync(RouteOp)(JSON.parse(JSON.stringify(encoded)))).toEqual(
          Schema.decodeUnknownSync(RouteOp)(op),
        )
      }),
    )
    const decode = Schema.decodeUnknownEither(KernelRoute)
    for (const bad of [
      { prefix: "10.201.1.0", device: "wg1.2_v4", metric: 1, protocol: 201 },
      { prefix: "10.201.1.300/24", device: "wg1.2_v4", metric: 1, protocol: 201 },
      { prefix: "fdac::1::2/64", device: "wg1.2_v4", metric: 1, protocol: 201 },
      { prefix: "10.201.1.0/24", device: "a-very-long-interface-name", metric: 1, protocol: 201 },
      { prefix: "10.201.1.0/24", device: "wg1.2_v4", metric: -1, protocol: 201 },
      { prefix: "10.201.1.0/24", device: "wg1.2_v4", metric: 1, protocol: 300 },
    ]) {
      const r = decode(bad)
      expect(Either.isLeft(r) && ParseResult.isParseError(r.left)).toBe(true)
    }
    expect(Either.isRight(decode({ prefix: "fdac:c9:3::/64", device: "wg1.3_v6", metric: 1, protocol: 201 }))).toBe(
      true,
    )
  })
})
