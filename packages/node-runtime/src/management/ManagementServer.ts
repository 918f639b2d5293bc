/**
 * gRPC ManagementService: what perfc, perfe and dashboards read from a running daemon.
 *
 * Decision a reader must know: the handler only reads snapshots through `ManagementSource`; it
 * never blocks the routing loop and never mutates routing state (per-algorithm views come from
 * the engine's side-effect-free `explain`).
 */
import * as grpc from "@grpc/grpc-js"
import {
  type KernelRoute,
  type LinkStats,
  type RouteChoice,
  type RoutingDecision,
  type SiteId,
  tunnelKey,
} from "@net-perf/engine"
import { Effect, Runtime } from "effect"
import type * as pb from "../gen/netperf/management/v1/management.js"

const finite = (v: number | null | undefined): number | undefined =>
  v === null || v === undefined || !Number.isFinite(v) ? undefined : v

export interface TunnelSnapshot {
  readonly interfaceName: string
  readonly stats: LinkStats
  readonly costMs: number
  readonly selected: boolean
}

export interface PeerSnapshot {
  readonly site: SiteId
  readonly live: boolean
  readonly lastHeardAtMillis: number | undefined
  readonly seq: number
  readonly incarnation: number
  readonly connected: boolean
}

export interface AlgorithmView {
  readonly algorithm: string
  readonly routes: ReadonlyArray<{
    readonly destination: number
    readonly nextHop: number | null
    readonly costMs: number
    readonly path: ReadonlyArray<number>
    readonly reason?: string | undefined
  }>
}

/** Read-only snapshots the daemon exposes. */
export interface ManagementSource {
  readonly site: SiteId
  readonly configuredAlgorithm: string
  readonly decision: Effect.Effect<RoutingDecision | undefined>
  readonly perAlgorithm: (algorithms: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<AlgorithmView>>
  readonly kernelRoutes: Effect.Effect<ReadonlyArray<KernelRoute>, unknown>
  readonly tunnels: Effect.Effect<ReadonlyArray<TunnelSnapshot>>
  readonly peers: Effect.Effect<ReadonlyArray<PeerSnapshot>>
  readonly configJson: Effect.Effect<string>
  readonly version: string
  readonly startedAtMillis: number
  readonly now: () => number
}

/** Tunnel snapshots for the management API: stats, cost (by the caller's model) and whether a route uses it. */
export const tunnelSnapshotsOf = (
  stats: ReadonlyArray<LinkStats>,
  decision: RoutingDecision | undefined,
  costOf: (stats: LinkStats) => number,
): ReadonlyArray<TunnelSnapshot> => {
  const used = new Set(decision?.routes.flatMap((r) => (r.interfaceName === null ? [] : [r.interfaceName])) ?? [])
  return stats.map((s) => {
    const interfaceName = tunnelKey(s.tunnel)
    return { interfaceName, stats: s, costMs: costOf(s), selected: used.has(interfaceName) }
  })
}

export const routeToWire = (r: RouteChoice): pb.Route => ({
  destination: r.destination,
  nextHop: r.nextHop ?? undefined,
  interfaceName: r.interfaceName ?? "",
  costMs: finite(r.costMs),
  metricMs: finite(r.metricMs),
  path: [...r.path],
  algorithm: r.algorithm ?? "",
  fallbacks: r.fallbacks.map((f) => ({ algorithm: f.algorithm, reason: f.reason })),
  stability: r.stability,
  starved: r.starved,
})

const unary =
  <Req, Res>(runtime: Runtime.Runtime<never>, f: (request: Req) => Effect.Effect<Res, unknown>) =>
  (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
    Runtime.runCallback(runtime)(f(call.request), {
      onExit: (exit) => {
        if (exit._tag === "Success") callback(null, exit.value)
        else callback({ code: grpc.status.INTERNAL, details: "management request failed", name: "", message: "" })
      },
    })
  }

export const makeManagementHandler = (source: ManagementSource): Effect.Effect<pb.ManagementServiceServer> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    return {
      getRoutes: unary(runtime, (request: pb.GetRoutesRequest) =>
        Effect.gen(function* () {
          const decision = yield* source.decision
          const views = request.algorithms.length === 0 ? [] : yield* source.perAlgorithm(request.algorithms)
          return {
            site: source.site,
            atMillis: decision?.atMillis ?? 0,
            configuredAlgorithm: source.configuredAlgorithm,
            routes: (decision?.routes ?? []).map(routeToWire),
            perAlgorithm: views.map((v) => ({
              algorithm: v.algorithm,
              routes: v.routes.map((r) => ({
                destination: r.destination,
                nextHop: r.nextHop ?? undefined,
                interfaceName: "",
                costMs: finite(r.costMs),
                metricMs: undefined,
                path: [...r.path],
                algorithm: v.algorithm,
                fallbacks: r.reason === undefined ? [] : [{ algorithm: v.algorithm, reason: r.reason }],
                stability: "",
                starved: false,
              })),
            })),
          } satisfies pb.GetRoutesResponse
        }),
      ),
      getKernelRoutes: unary(runtime, () =>
        Effect.map(source.kernelRoutes, (routes) => ({
          routes: routes.map((r) => ({
            prefix: r.prefix,
            device: r.device,
            gateway: r.gateway ?? "",
            metric: r.metric,
            protocol: r.protocol,
          })),
        })),
      ),
      getLinkStats: unary(runtime, () =>
        Effect.map(source.tunnels, (tunnels) => ({
          site: source.site,
          tunnels: tunnels.map((t) => ({
            interfaceName: t.interfaceName,
            remote: t.stats.tunnel.remote,
            family: t.stats.tunnel.family,
            state: t.stats.state,
            rttMs: finite(t.stats.rttMs),
            jitterMs: t.stats.jitterMs,
            lossRatio: t.stats.lossRatio,
            availability: t.stats.availability,
            costMs: finite(t.costMs),
            lastSampleAtMillis: finite(t.stats.lastSampleAtMillis),
            selected: t.selected,
          })),
        })),
      ),
      getPeers: unary(runtime, () =>
        Effect.map(source.peers, (peers) => {
          const now = source.now()
          return {
            site: source.site,
            peers: peers.map((p) => ({
              site: p.site,
              live: p.live,
              lastHeardAtMillis: p.lastHeardAtMillis,
              ageMillis: p.lastHeardAtMillis === undefined ? undefined : now - p.lastHeardAtMillis,
              seq: p.seq,
              incarnation: p.incarnation,
              connected: p.connected,
            })),
          }
        }),
      ),
      getConfig: unary(runtime, () => Effect.map(source.configJson, (json) => ({ json }))),
      getVersion: unary(runtime, () =>
        Effect.succeed({ version: source.version, node: process.version, startedAtMillis: source.startedAtMillis }),
      ),
    } satisfies pb.ManagementServiceServer
  })
