/**
 * Desired kernel routes vs installed ones → the fewest `ip route` operations that turn one into
 * the other.
 *
 * Decision a reader must know: only routes with protocol 201 (`managedRouteProtocol`) are ours;
 * installed routes of any other protocol are invisible to the planner and never touched, and a
 * desired route must carry protocol 201. Routes are matched by their kernel identity (table,
 * prefix, metric): same identity and different content → one `replace`, identity only desired →
 * `add`, only installed → `delete`. Operations are ordered replaces, adds, then deletes (make
 * before break), each sorted by identity, so equal inputs give equal plans.
 */
import { Data, Either } from "effect"
import { type KernelRoute, managedRouteProtocol, RouteAdd, RouteDelete, type RouteOp, RouteReplace } from "./Domain.js"

/** The desired route set is not plannable (two routes with one identity, or not protocol 201). */
export class InvalidDesiredRoutes extends Data.TaggedError("InvalidDesiredRoutes")<{
  readonly reason: "duplicate-identity" | "unmanaged-protocol"
  readonly routes: ReadonlyArray<KernelRoute>
}> {}

/** An operation that the kernel would refuse on the given route set (add of an existing route, …). */
export class PlanConflict extends Data.TaggedError("PlanConflict")<{
  readonly op: RouteOp
  readonly reason: "exists" | "missing"
}> {}

/** Kernel identity of a route: table, prefix, metric. */
export const routeIdentity = (r: KernelRoute): string => `${r.table ?? 254} ${r.prefix} ${r.metric}`

/** True when two routes are the same in every field (absent optional = absent). */
export const sameRoute = (a: KernelRoute, b: KernelRoute): boolean =>
  a.prefix === b.prefix &&
  a.device === b.device &&
  a.metric === b.metric &&
  a.protocol === b.protocol &&
  (a.gateway ?? null) === (b.gateway ?? null) &&
  (a.source ?? null) === (b.source ?? null) &&
  (a.table ?? 254) === (b.table ?? 254)

const byIdentity = (a: KernelRoute, b: KernelRoute): number => {
  const x = routeIdentity(a)
  const y = routeIdentity(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Installed managed routes by identity; should the kernel list one identity twice, the first wins. */
const managedByIdentity = (installed: Iterable<KernelRoute>): Map<string, KernelRoute> => {
  const map = new Map<string, KernelRoute>()
  for (const r of installed) {
    if (r.protocol !== managedRouteProtocol) continue
    const k = routeIdentity(r)
    if (!map.has(k)) map.set(k, r)
  }
  return map
}

/** The operations that turn the installed managed routes into `desired`. */
export const planRoutes = (
  desired: Iterable<KernelRoute>,
  installed: Iterable<KernelRoute>,
): Either.Either<ReadonlyArray<RouteOp>, InvalidDesiredRoutes> => {
  const want = new Map<string, KernelRoute>()
  const unmanaged: Array<KernelRoute> = []
  const duplicates: Array<KernelRoute> = []
  for (const r of desired) {
    if (r.protocol !== managedRouteProtocol) unmanaged.push(r)
    const k = routeIdentity(r)
    const seen = want.get(k)
    if (seen !== undefined) duplicates.push(seen, r)
    else want.set(k, r)
  }
  if (unmanaged.length > 0)
    return Either.left(new InvalidDesiredRoutes({ reason: "unmanaged-protocol", routes: unmanaged }))
  if (duplicates.length > 0)
    return Either.left(new InvalidDesiredRoutes({ reason: "duplicate-identity", routes: duplicates }))
  const have = managedByIdentity(installed)
  const adds: Array<KernelRoute> = []
  const replaces: Array<[KernelRoute, KernelRoute]> = []
  const deletes: Array<KernelRoute> = []
  for (const [k, r] of want) {
    const current = have.get(k)
    if (current === undefined) adds.push(r)
    else if (!sameRoute(current, r)) replaces.push([r, current])
  }
  for (const [k, r] of have) if (!want.has(k)) deletes.push(r)
  adds.sort(byIdentity)
  replaces.sort((a, b) => byIdentity(a[0], b[0]))
  deletes.sort(byIdentity)
  return Either.right([
    ...replaces.map(([route, previous]) => RouteReplace.make({ route, previous })),
    ...adds.map((route) => RouteAdd.make({ route })),
    ...deletes.map((route) => RouteDelete.make({ route })),
  ])
}

/**
 * Applies operations to a set of managed routes with the kernel's rules (add needs a free
 * identity, replace and delete an existing one). For tests and the model simulator.
 * The result is sorted by identity.
 */
export const applyPlan = (
  installed: Iterable<KernelRoute>,
  ops: Iterable<RouteOp>,
): Either.Either<ReadonlyArray<KernelRoute>, PlanConflict> => {
  const routes = managedByIdentity(installed)
  for (const op of ops) {
    const k = routeIdentity(op.route)
    switch (op._tag) {
      case "RouteAdd":
        if (routes.has(k)) return Either.left(new PlanConflict({ op, reason: "exists" }))
        routes.set(k, op.route)
        break
      case "RouteReplace":
        // `ip route replace` would also create; a plan that relies on that is a planner bug.
        if (!routes.has(k)) return Either.left(new PlanConflict({ op, reason: "missing" }))
        routes.set(k, op.route)
        break
      case "RouteDelete":
        if (!routes.has(k)) return Either.left(new PlanConflict({ op, reason: "missing" }))
        routes.delete(k)
        break
    }
  }
  return Either.right([...routes.values()].sort(byIdentity))
}
