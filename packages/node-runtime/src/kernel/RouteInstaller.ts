/**
 * Installs the engine's desired routes in the kernel and keeps them there. Managed routes carry
 * protocol 201 and a metric below BIRD's (BIRD 2's kernel protocol uses 32), so they win while
 * present and BIRD's routes take over the moment one is removed. Hence the one rule that
 * matters: when in doubt, remove ours. A route whose device is missing or has no carrier is
 * refused (and any installed copy deleted); a destination absent from the desired set loses
 * its managed route. A full pass reads the kernel back (`ip -json route show proto 201`, `ip
 * link`), diffs with the engine's `planRoutes`, and applies the difference in one `ip -force
 * -batch`; the watchdog repeats it so drift (a deleted route, a vanished tunnel) is repaired.
 * `setDesired` diffs against what the last pass left instead (one `ip` run, not six: installs
 * sit on the failure-reaction path, and each `ip` run cost 10–40 ms on a loaded host); any
 * rejected operation, or a device it has not seen, sends it back to a full pass. Before
 * the first `setDesired` nothing is touched: routes left by a crash stay until the engine has
 * a plan, instead of flapping to BIRD and back.
 */

import {
  InvalidDesiredRoutes,
  type KernelRoute,
  managedRouteProtocol,
  planRoutes,
  RouteDelete,
  type RouteOp,
} from "@net-perf/engine"
import { Clock, Context, Duration, Effect, Either, Layer, Schedule, Schema, type Scope } from "effect"
import { Ip, type IpCommandError, type IpOutputError } from "./Ip.js"
import { fromIpRoute, IpLinkJson, IpRouteJson, isUsableLink, normaliseRoute, renderOp } from "./KernelTable.js"

export interface RouteInstallerOptions {
  /** Watchdog period (the Layer only). Default 5 s. */
  readonly watchdogInterval?: Duration.DurationInput
  /** Add `onlink` to routes with a gateway (needed on point-to-point tunnels). Default true. */
  readonly onlinkGateways?: boolean
  /** Withdraw every managed route when the Layer's scope closes (graceful shutdown). Default true. */
  readonly withdrawOnClose?: boolean
  /** Called with every pass's report (metrics, logs). */
  readonly onReport?: (report: ReconcileReport) => Effect.Effect<void>
}

/** The daemon's installer settings, for its config file. The metric lives in the engine's `desiredRoutes`. */
export const RouteInstallerConfig = Schema.Struct({
  watchdogIntervalMillis: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5_000 }),
  onlinkGateways: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  withdrawOnShutdown: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Run `ip` against this namespace (`ip -n`); absent = the daemon's own. */
  namespace: Schema.optional(Schema.NonEmptyString),
})
export type RouteInstallerConfig = typeof RouteInstallerConfig.Type

/** Installer options from a decoded `RouteInstallerConfig` (pair with `Ip.layer({ namespace })`). */
export const installerOptionsFromConfig = (config: RouteInstallerConfig): RouteInstallerOptions => ({
  watchdogInterval: `${config.watchdogIntervalMillis} millis`,
  onlinkGateways: config.onlinkGateways,
  withdrawOnClose: config.withdrawOnShutdown,
})

export interface RefusedRoute {
  readonly route: KernelRoute
  readonly reason: "device-missing" | "device-down"
}

export interface ReconcileReport {
  readonly atMillis: number
  /** Operations sent to the kernel (empty when aligned). */
  readonly applied: ReadonlyArray<RouteOp>
  /** Operations the kernel rejected, with its message. */
  readonly failed: ReadonlyArray<{ readonly op: RouteOp; readonly error: string }>
  /** Desired routes not installed because their device cannot carry traffic. */
  readonly refused: ReadonlyArray<RefusedRoute>
  /** Managed routes present after the pass (read back; after a `setDesired` without rejections, the routes it planned). */
  readonly installed: ReadonlyArray<KernelRoute>
}

export type RouteInstallerError = IpCommandError | IpOutputError | InvalidDesiredRoutes

export interface RouteInstallerService {
  /** Managed routes currently in the kernel, both families. */
  readonly installed: Effect.Effect<ReadonlyArray<KernelRoute>, IpCommandError | IpOutputError>
  /** Replaces the desired set and aligns the kernel to it now. */
  readonly setDesired: (routes: Iterable<KernelRoute>) => Effect.Effect<ReconcileReport, RouteInstallerError>
  /** Aligns the kernel with the last desired set (no-op before the first `setDesired`). */
  readonly reconcile: Effect.Effect<ReconcileReport, RouteInstallerError>
  /** Deletes every managed route (shutdown); the desired set is forgotten. Returns how many. */
  readonly withdrawAll: Effect.Effect<number, IpCommandError | IpOutputError>
  readonly lastReport: Effect.Effect<ReconcileReport | undefined>
}

export class RouteInstaller extends Context.Tag("@net-perf/node-runtime/RouteInstaller")<
  RouteInstaller,
  RouteInstallerService
>() {
  /** The installer with its watchdog running and (by default) withdrawal on scope close. */
  static readonly layer = (options: RouteInstallerOptions = {}): Layer.Layer<RouteInstaller, never, Ip> =>
    Layer.scoped(
      RouteInstaller,
      Effect.gen(function* () {
        const installer = yield* makeRouteInstaller(options)
        if (options.withdrawOnClose ?? true)
          yield* Effect.addFinalizer(() =>
            installer.withdrawAll.pipe(
              Effect.tap((n) => Effect.logInfo(`withdrew ${n} managed route(s)`)),
              Effect.catchAll((e) => Effect.logError("withdrawing managed routes failed", e)),
            ),
          )
        yield* Effect.forkScoped(watchdog(installer, options.watchdogInterval ?? "5 seconds"))
        return installer
      }),
    )
}

/** Repeats `reconcile` forever; failures are logged and retried at the next tick. */
export const watchdog = (installer: RouteInstallerService, interval: Duration.DurationInput) =>
  installer.reconcile.pipe(
    Effect.tap((r) =>
      r.applied.length > 0 || r.failed.length > 0
        ? Effect.logWarning(`route watchdog repaired drift: ${r.applied.length} op(s), ${r.failed.length} failed`)
        : Effect.void,
    ),
    Effect.catchAll((e) => Effect.logWarning("route watchdog pass failed", e)),
    Effect.repeat(Schedule.spaced(Duration.decode(interval))),
    Effect.asVoid,
  )

export const makeRouteInstaller = (
  options: RouteInstallerOptions = {},
): Effect.Effect<RouteInstallerService, never, Ip | Scope.Scope> =>
  Effect.gen(function* () {
    const ip = yield* Ip
    // The engine's planner manages protocol 201 only, so the label is not configurable here.
    const protocol = managedRouteProtocol
    const onlink = options.onlinkGateways ?? true
    const lock = yield* Effect.makeSemaphore(1)
    let desired: ReadonlyArray<KernelRoute> | undefined
    let last: ReconcileReport | undefined
    /** What the kernel held after the last pass that had no failure (absent: read it back). */
    let known: { routes: ReadonlyArray<KernelRoute>; devices: ReadonlyMap<string, IpLinkJson> } | undefined

    // `root <family's whole space>` selects the family as `-4`/`-6` would, in a form a batch line
    // can carry (the long-lived `ip -batch` reads it without a process per read).
    const readFamily = (family: 4 | 6) =>
      ip
        .json(Schema.Array(IpRouteJson), [
          "route",
          "show",
          "table",
          "all",
          "proto",
          String(protocol),
          "root",
          family === 4 ? "0.0.0.0/0" : "::/0",
        ])
        .pipe(Effect.map((rs) => rs.map((r) => fromIpRoute(r, family, protocol))))
    const installed = Effect.zipWith(readFamily(4), readFamily(6), (a, b) => [...a, ...b])
    const links = ip
      .json(Schema.Array(IpLinkJson), ["link", "show"])
      .pipe(Effect.map((ls) => new Map(ls.map((l) => [l.ifname, l]))))

    /** `fromKnown`: diff against `known` (setDesired) rather than the kernel read back (watchdog). */
    const pass = (fromKnown: boolean) =>
      Effect.gen(function* () {
        const want = desired
        const cached = fromKnown ? known : undefined
        known = undefined
        const before = cached?.routes ?? (yield* installed)
        if (want === undefined) {
          return { atMillis: yield* Clock.currentTimeMillis, applied: [], failed: [], refused: [], installed: before }
        }
        const cachedDevices = cached?.devices
        const devices =
          cachedDevices !== undefined && want.every((r) => cachedDevices.has(r.device)) ? cachedDevices : yield* links
        const usable: Array<KernelRoute> = []
        const refused: Array<RefusedRoute> = []
        for (const r of want) {
          const link = devices.get(r.device)
          if (link === undefined) refused.push({ route: r, reason: "device-missing" })
          else if (!isUsableLink(link)) refused.push({ route: r, reason: "device-down" })
          else usable.push(r)
        }
        const ops = yield* Either.match(planRoutes(usable, before), { onLeft: Effect.fail, onRight: Effect.succeed })
        const result = yield* ip.batch(ops.map((op) => renderOp(op, onlink)))
        const failed = result.failures
          .map((f) => ({ op: ops[f.line - 1]!, error: f.error }))
          // Deleting a route that is already gone is the outcome we wanted.
          .filter((f) => !(f.op._tag === "RouteDelete" && /No such process/.test(f.error)))
        const after =
          ops.length === 0 ? before : cached !== undefined && result.failures.length === 0 ? usable : yield* installed
        const report: ReconcileReport = {
          atMillis: yield* Clock.currentTimeMillis,
          applied: ops,
          failed,
          refused,
          installed: after,
        }
        if (result.failures.length === 0) known = { routes: after, devices }
        last = report
        if (options.onReport !== undefined) yield* options.onReport(report)
        return report
      })

    const reconcile = lock.withPermits(1)(pass(false))

    const setDesired = (routes: Iterable<KernelRoute>) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          const normalised = [...routes].map(normaliseRoute)
          const wrongProtocol = normalised.filter((r) => r.protocol !== protocol)
          if (wrongProtocol.length > 0)
            return Effect.fail(new InvalidDesiredRoutes({ reason: "unmanaged-protocol", routes: wrongProtocol }))
          desired = normalised
          return pass(true)
        }),
      )

    const withdrawAll = lock.withPermits(1)(
      Effect.gen(function* () {
        desired = undefined
        known = undefined
        const before = yield* installed
        yield* ip.batch(before.map((route) => renderOp(RouteDelete.make({ route }), onlink)))
        const after = yield* installed
        return before.length - after.length
      }),
    )

    return {
      installed,
      setDesired,
      reconcile,
      withdrawAll,
      lastReport: Effect.sync(() => last),
    } satisfies RouteInstallerService
  })
