/**
 * The `net-perf` daemon: measurement plane + link-state exchange + engine + BIRD + kernel routes.
 *
 * Decision a reader must know: one fiber owns the engine (`NodeRouter`, deterministic, no I/O).
 * Samples, link-state messages and BGP paths are fed to it as they arrive; a decision runs at
 * once when something that can change forwarding happens (a lost probe, a tunnel answering again,
 * a peer's message, new BGP paths) and at least every `decideIntervalMillis`. A decision is
 * installed before it is advertised, so a neighbour never counts on a route we have not yet
 * installed. Closing the daemon's scope (SIGTERM/SIGINT) withdraws every protocol-201 route so
 * BIRD's routes take over.
 */
import {
  type BgpPath,
  defaultAggregationConfig,
  desiredRoutes,
  type KernelRoute,
  type LinkStateMessage,
  linkCost,
  NodeRouter,
  type RoutingDecision,
  type Sample,
  SiteId,
  tunnelKey,
} from "@net-perf/engine"
import { Effect, Layer, LogLevel, Queue, Runtime, Schema, Stream } from "effect"
import { Bird } from "../bird/Bird.js"
import { watchBgpPaths } from "../bird/BirdWatch.js"
import { fillTemplate } from "../discovery/Addressing.js"
import * as managementPb from "../gen/netperf/management/v1/management.js"
import * as measurePb from "../gen/netperf/measure/v1/measure.js"
import { serveGrpc } from "../grpc/GrpcServer.js"
import { Ip } from "../kernel/Ip.js"
import { RouteInstaller } from "../kernel/RouteInstaller.js"
import { makeLinkStateExchange } from "../linkstate/LinkStateExchange.js"
import { loadGrpcTls } from "../linkstate/Tls.js"
import { livePageHeaders, liveStatusOf, renderLivePage } from "../livepage/LivePage.js"
import { MeasurementPlane, MeasurementPlaneConfig, MeasurementPlaneLive } from "../MeasurementPlane.js"
import { type ManagementSource, makeManagementHandler, tunnelSnapshotsOf } from "../management/ManagementServer.js"
import { makeMeasureHandler, planePathPingSource } from "../management/MeasureServer.js"
import { gaugeChildren, MeasurementMetrics } from "../metrics/Metrics.js"
import { serveMetrics } from "../metrics/MetricsServer.js"
import { runMetricsStoreFallback } from "../metricsstore/MetricsStore.js"
import { describeEchoVerdict } from "../probes/EchoProber.js"
import { makeSysctl } from "../sysctl/Sysctl.js"
import { type AdvertisedView, advertDue, advertisedViewOf } from "./AdvertTrigger.js"
import { aggregationOf, type DaemonConfig, defaultListenHosts, prefixesOf } from "./Config.js"
import { makeControlMetrics } from "./ControlMetrics.js"

export interface DaemonOptions {
  readonly version: string
  /** Run kernel commands in this namespace (`ip -n`); default: the daemon's own. */
  readonly namespace?: string
}

/** The measurement plane's settings, derived from the daemon's config. */
export const planeConfigOf = (config: DaemonConfig): MeasurementPlaneConfig =>
  Schema.decodeSync(MeasurementPlaneConfig)({
    localSite: config.site,
    addressTemplate: config.addressTemplate,
    discovery: {
      confDir: config.discovery.confDir,
      ...(config.discovery.namePattern === undefined ? {} : { namePattern: config.discovery.namePattern }),
      rescanIntervalMillis: config.discovery.rescanIntervalMillis,
      monitor: config.discovery.monitor,
    },
    control: { path: config.controlSocket },
    // The daemon serves HTTP itself (status with routes, the live page), on every listen host.
    http: null,
    probes: config.probes,
  })

/** Drops keys whose value is undefined (exactOptionalPropertyTypes). */
const definedOnly = <A extends object>(a: A): { [K in keyof A]: Exclude<A[K], undefined> } =>
  Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) as {
    [K in keyof A]: Exclude<A[K], undefined>
  }

const isV6 = (prefix: string) => prefix.includes(":")

/** Kernel routes for a decision: the engine's per-destination choice + our source addresses. */
export const kernelRoutesOf = (config: DaemonConfig, decision: RoutingDecision): ReadonlyArray<KernelRoute> => {
  const sourceV4 = fillTemplate(config.addressTemplate, config.site, 1)
  const sourceV6 = `fdac:c9:${config.site.toString(16)}::1`
  return desiredRoutes(decision, {
    metric: config.kernel.metric,
    prefixesOf: (site) => prefixesOf(config, site),
  }).map((r) => ({ ...r, source: isV6(r.prefix) ? sourceV6 : sourceV4 }))
}

const routeKey = (routes: ReadonlyArray<KernelRoute>) =>
  routes
    .map((r) => `${r.prefix} ${r.device} ${r.metric} ${r.source ?? ""}`)
    .sort()
    .join("\n")

/** A peer's loss estimate on our shared tunnel at or above this asks our loss trigger for a burst. */
const PEER_LOSS_SUSPICION_RATIO = 0.01

/** A debug line built only when debug logging is on (messages arrive many times a second in a big mesh). */
const logDebugLazily = (line: () => string): Effect.Effect<void> =>
  Effect.asVoid(
    Effect.whenLogLevel(
      Effect.suspend(() => Effect.logDebug(line())),
      LogLevel.Debug,
    ),
  )

/**
 * A link-state message in one debug line: seq, per destination `d:seqno/distance`, requests
 * `d≥seqno`, dead or suspect tunnels. What a failure reaction's timeline is read from.
 */
const describeLinkState = (m: LinkStateMessage): string => {
  const routes = m.distances
    .map((d) => `${d.destination}:${d.seqno}/${d.distanceMs === null ? "none" : d.distanceMs.toFixed(1)}`)
    .join(" ")
  const requests = m.requests.map((r) => `${r.destination}≥${r.seqno}`).join(" ")
  const tunnels = m.tunnels
    .filter((t) => t.stats.state === "dead" || t.suspect === true)
    .map((t) => `${m.origin}-${t.remote}v${t.family}:${t.stats.state === "dead" ? "dead" : "suspect"}`)
    .join(" ")
  return `seq ${m.seq} routes [${routes}]${requests === "" ? "" : ` requests [${requests}]`}${tunnels === "" ? "" : ` tunnels [${tunnels}]`}`
}

export const runDaemon = (config: DaemonConfig, options: DaemonOptions) =>
  Effect.gen(function* () {
    const startedAtMillis = Date.now()
    const self = SiteId.make(config.site)
    const plane = yield* MeasurementPlane
    const metrics = yield* MeasurementMetrics
    const bird = yield* Bird
    const installer = yield* RouteInstaller
    const control = makeControlMetrics(metrics.registry)
    // Set on every decide, per destination or origin: children instead of labelled sets.
    const routeCostOf = gaugeChildren(control.routeCost, "destination")
    const linkStateAgeOf = gaugeChildren(control.linkStateAge, "origin")
    const linkStatePeerLiveOf = gaugeChildren(control.linkStatePeerLive, "origin")
    const peerConnectedOf = gaugeChildren(control.peerConnected, "peer")
    const hosts = config.grpc.hosts ?? defaultListenHosts(config)

    if (config.sysctl.enabled) {
      const sysctl = makeSysctl(config.sysctl)
      const results = yield* sysctl.apply()
      const changed = results.filter((r) => r.outcome === "changed")
      yield* Effect.logInfo(
        `sysctl: ${changed.length} value(s) changed, ${results.length - changed.length} unchanged or failed`,
      )
    }

    const router = NodeRouter.make({
      self,
      algorithm: config.routing.algorithm,
      ...(config.routing.fallback === undefined ? {} : { fallback: config.routing.fallback }),
      ...(config.routing.stability === undefined ? {} : { stability: definedOnly(config.routing.stability) }),
      aggregation: aggregationOf(config),
      costModel: config.routing.costModel,
      linkStateMaxAgeMillis: config.routing.linkStateMaxAgeMillis,
      peerVerdicts: config.routing.peerVerdicts,
      suspicionSeqnoGapMillis: config.routing.suspicionSeqnoGapMillis,
      ...(config.routing.startupHoldDownMillis === undefined
        ? {}
        : { startupHoldDownMillis: config.routing.startupHoldDownMillis }),
      incarnation: startedAtMillis,
    })

    // Mutual TLS on every gRPC server and link-state client when `grpc.tls` is set (else plaintext).
    const tls = config.grpc.tls === undefined ? undefined : yield* loadGrpcTls(config.grpc.tls)
    // gRPC callbacks run outside any fiber: their log lines go through the daemon's runtime (its logger).
    const logFromCallback = Runtime.runFork(yield* Effect.runtime<never>())
    const exchange = yield* makeLinkStateExchange({
      self,
      ...(tls === undefined ? {} : { credentials: tls.client }),
      onInvalid: (peer, error) => {
        control.linkStateMessages.inc({ outcome: "invalid" })
        logFromCallback(Effect.logWarning(`invalid link-state message from ${peer}`, error))
      },
      onUndecodable: (frame, error) => {
        control.linkStateMessages.inc({ outcome: "undecodable" })
        logFromCallback(Effect.logWarning(`undecodable link-state message (${frame}): not a LinkStateMessage`, error))
      },
      onPeerStream: (peer, state, cause) => {
        control.peerStreamChanges.inc({ peer: String(peer), state })
        logFromCallback(
          state === "open"
            ? Effect.logInfo(`link-state stream to site ${peer} open`)
            : Effect.logWarning(`link-state stream to site ${peer} lost: ${String(cause)}`),
        )
      },
    })
    const management = yield* makeManagementHandler(managementSource())
    // On-demand pathping (perfc pathping, benches): same server, port and TLS as management.
    const measure = yield* makeMeasureHandler(
      planePathPingSource(plane, self, () => router.graph.sites(), config.probes.pathPing),
      { registry: metrics.registry, pathGauges: [metrics.pathRtt, metrics.pathLoss] },
    )
    for (const host of hosts) {
      yield* serveGrpc({
        host,
        port: config.grpc.port,
        ...(tls === undefined ? {} : { credentials: tls.server }),
        services: [
          { definition: exchange.definition, implementation: exchange.handler },
          { definition: managementPb.ManagementServiceService, implementation: management },
          { definition: measurePb.MeasureServiceService, implementation: measure },
        ],
      })
    }

    // --- the engine's inputs -------------------------------------------------------------------
    const wake = yield* Queue.sliding<void>(1)
    const trigger = Queue.offer(wake, undefined)
    const lossStreak = new Map<string, boolean>()
    const onSample = (s: Sample) =>
      Effect.suspend(() => {
        router.observe(s)
        if (s._tag !== "RttSample") return Effect.void
        const key = tunnelKey(s.tunnel)
        const lost = s.rttMs === null
        const wasLost = lossStreak.get(key) ?? false
        lossStreak.set(key, lost)
        // A loss may kill a tunnel; the first reply after losses may revive it.
        return lost || wasLost ? trigger : Effect.void
      })
    const samples = yield* plane.subscribe
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(samples), onSample)))

    const lastHeard = new Map<number, number>()
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(Queue.take(exchange.received), (message) =>
          Effect.suspend(() => {
            const now = Date.now()
            lastHeard.set(message.origin, now)
            control.linkStateMessages.inc({ outcome: "accepted" })
            router.receiveLinkState(message, now)
            // The far end found our shared tunnel dead or lossy: look now rather than wait for our
            // own evidence (both ends must move their routes; the later one bounds the reaction).
            const suspects: Array<Effect.Effect<void>> = []
            for (const t of message.tunnels) {
              if (t.remote !== self) continue
              const tunnel = { local: self, remote: message.origin, family: t.family }
              if (t.stats.state === "dead") suspects.push(plane.suspect(tunnel, "failure"))
              else if (t.stats.lossRatio >= PEER_LOSS_SUSPICION_RATIO) suspects.push(plane.suspect(tunnel, "loss"))
            }
            const react =
              suspects.length === 0 ? trigger : Effect.zipRight(Effect.all(suspects, { discard: true }), trigger)
            return Effect.zipRight(
              logDebugLazily(() => `link state from site ${message.origin}: ${describeLinkState(message)}`),
              react,
            )
          }),
        ),
      ),
    )

    // --- metrics store (optional): fills graph links of origins without fresh link state ---------
    // The merge rule is metricsstore/Fallback.ts: the exchange wins, distances never come from the store.
    if (config.metricsStore !== undefined)
      yield* runMetricsStoreFallback({
        settings: config.metricsStore,
        self,
        registry: metrics.registry,
        graph: router.graph,
        exchangeFresh: (origin, now) =>
          now - (lastHeard.get(origin) ?? Number.NEGATIVE_INFINITY) <= config.routing.linkStateMaxAgeMillis,
        costModel: config.routing.costModel,
        onChange: trigger,
      })
    // --- end metrics store ---------------------------------------------------------------------------

    let bgpPathCount = 0
    let birdDown = false
    yield* Effect.forkScoped(
      Stream.runForEach(watchBgpPaths(bird, `${config.bird.pollIntervalMillis} millis`), (event) =>
        Effect.suspend(() => {
          if (event._tag === "Paths") {
            control.birdUp.set(1)
            bgpPathCount = event.paths.length
            control.bgpPaths.set(bgpPathCount)
            router.setBgpPaths(event.paths as ReadonlyArray<BgpPath>)
            const recovered = birdDown
            birdDown = false
            return recovered
              ? Effect.zipRight(Effect.logInfo(`BIRD is back: ${bgpPathCount} BGP path(s)`), trigger)
              : trigger
          }
          birdDown = true
          control.birdUp.set(0)
          control.birdFailures.inc({ error: event.error._tag })
          return Effect.logWarning(
            `BIRD unavailable (${event.error._tag}: ${event.error.message}); routing continues on measured link state`,
          )
        }),
      ),
    )

    // The echo failure detector's verdicts, as a log line and a counter per tunnel.
    yield* Effect.forkScoped(
      Stream.runForEach(plane.healthChanges, (change) =>
        Effect.suspend(() => {
          control.tunnelStateChanges.inc({ tunnel: change.key, state: change.health })
          return (change.health === "dead" ? Effect.logWarning : Effect.logInfo)(
            `tunnel ${change.key}: ${change.health}${change.detail === undefined ? "" : ` (${describeEchoVerdict(change.detail)})`}`,
          )
        }),
      ),
    )

    // Peers to stream link state to: every remote site we have a tunnel to.
    const peerHost = (site: number) => fillTemplate(config.addressTemplate, site, 1)
    yield* Effect.forkScoped(
      Stream.runForEach(plane.discovery.tunnels.changes, (table) => {
        const remotes = new Set<number>()
        for (const t of table.values()) if (t.id.local === self) remotes.add(t.id.remote)
        return exchange.setPeers(
          [...remotes]
            .sort((a, b) => a - b)
            .map((site) => ({ site: SiteId.make(site), host: peerHost(site), port: config.grpc.port })),
        )
      }),
    )

    // --- decide → install → advertise -------------------------------------------------------------
    // Routes a crash (kill -9) left behind: the installer keeps them until the first plan replaces them.
    const foundAtStart = yield* installer.installed.pipe(
      Effect.catchAll((e) => Effect.as(Effect.logWarning("cannot read protocol-201 routes at start", e), [])),
    )
    control.routesFoundAtStart.set(foundAtStart.length)
    if (foundAtStart.length > 0)
      yield* Effect.logWarning(
        `found ${foundAtStart.length} protocol-201 route(s) left by a previous run; the first plan reconciles them`,
      )
    let startupReconciled = false
    const liveOf = new Map<number, boolean>()
    let installedKey: string | undefined
    let managedRouteCount = 0
    let advertised: AdvertisedView | undefined
    let lastAdvertMillis = 0
    /** The router's `requestsAdded` when the last message went out (a new request of ours goes at once; a relayed one waits). */
    let requestsAdvertised = 0
    let previous: RoutingDecision | undefined
    let loggedSeqno = router.seqno
    const step = Effect.gen(function* () {
      const now = Date.now()
      const decision = router.decide(now)
      control.decisions.inc()
      // The two events a failure reaction turns on, for the operator (and the twin's timelines):
      // our own seqno going up (it ends others' starvation), and below, a destination left with
      // no feasible next hop.
      if (router.seqno !== loggedSeqno) {
        yield* Effect.logInfo(`own seqno ${loggedSeqno} → ${router.seqno}`)
        loggedSeqno = router.seqno
      }
      let infoChanged = previous === undefined || previous.routes.length !== decision.routes.length
      for (const r of decision.routes) {
        const before = previous?.byDestination.get(r.destination)
        if (r.starved !== (before?.starved ?? false))
          yield* Effect.logInfo(
            r.starved
              ? `route to site ${r.destination}: starved (no feasible next hop; a new seqno requested)`
              : `route to site ${r.destination}: feasible again${r.nextHop === null ? "" : ` via site ${r.nextHop}`}`,
          )
        const destination = String(r.destination)
        if (before !== undefined && before.nextHop !== r.nextHop) control.routeSwitches.inc({ destination })
        if (before === undefined || before.algorithm !== r.algorithm || before.nextHop !== r.nextHop) infoChanged = true
        if (r.algorithm !== null && r.algorithm !== config.routing.algorithm)
          control.fallbacks.inc({ algorithm: r.algorithm })
        routeCostOf(destination).set(r.costMs)
      }
      // One series per destination: rebuilt only when some route's algorithm or next hop changed.
      if (infoChanged) {
        control.routeAlgorithm.reset()
        for (const r of decision.routes)
          control.routeAlgorithm.set(
            {
              destination: String(r.destination),
              algorithm: r.algorithm ?? "none",
              next_hop: String(r.nextHop ?? "none"),
            },
            1,
          )
      }
      previous = decision
      const routes = kernelRoutesOf(config, decision)
      const key = routeKey(routes)
      if (key !== installedKey) {
        const report = yield* installer.setDesired(routes).pipe(Effect.either)
        if (report._tag === "Left") {
          yield* Effect.logError("installing routes failed; will retry", report.left)
        } else {
          installedKey = key
          managedRouteCount = report.right.installed.length
          control.managedRoutes.set(managedRouteCount)
          if (!startupReconciled) {
            startupReconciled = true
            control.startupReconciled.set(1)
            if (foundAtStart.length > 0)
              yield* Effect.logInfo(
                `routes reconciled at start: ${foundAtStart.length} left by a previous run, ${report.right.applied.length} operation(s), ${managedRouteCount} managed route(s) now`,
              )
          }
          if (report.right.applied.length > 0)
            yield* Effect.logInfo(
              `routes: ${report.right.applied.map((op) => `${op._tag.slice(5).toLowerCase()} ${op.route.prefix} dev ${op.route.device}`).join(", ")}`,
            )
          for (const op of report.right.applied) control.kernelOps.inc({ op: op._tag, result: "ok" })
          for (const f of report.right.failed) control.kernelOps.inc({ op: f.op._tag, result: "failed" })
          for (const r of report.right.refused)
            yield* Effect.logWarning(`not installing ${r.route.prefix} via ${r.route.device}: ${r.reason}`)
        }
      }
      const view = advertisedViewOf(decision, router.seqno)
      if (
        advertDue({
          advertised,
          view,
          requestsAdded: router.requestsAdded,
          requestsAdvertised,
          nowMillis: now,
          lastAdvertMillis,
          intervalMillis: config.routing.advertiseIntervalMillis,
          seqno: { self: decision.self, urgent: (d) => router.seqnoUrgent(d, now) },
        })
      ) {
        const message = router.advertise(now)
        requestsAdvertised = router.requestsAdded
        yield* exchange.publish(message)
        yield* logDebugLazily(() => `link state sent: ${describeLinkState(message)}`)
        control.linkStateMessages.inc({ outcome: "sent" })
        advertised = view
        lastAdvertMillis = now
      }
      for (const [origin, at] of lastHeard) {
        const live = now - at <= config.routing.linkStateMaxAgeMillis
        const originLabel = String(origin)
        linkStateAgeOf(originLabel).set((now - at) / 1000)
        linkStatePeerLiveOf(originLabel).set(live ? 1 : 0)
        const was = liveOf.get(origin)
        liveOf.set(origin, live)
        if (was === undefined || was === live) continue
        yield* live
          ? Effect.logInfo(`link state of site ${origin} is fresh again`)
          : Effect.logWarning(
              `link state of site ${origin} aged out (silent ${((now - at) / 1000).toFixed(1)} s): its links count as unknown`,
            )
      }
      for (const p of exchange.peers()) peerConnectedOf(String(p.site)).set(p.connected ? 1 : 0)
    })
    yield* Effect.forkScoped(
      Effect.forever(
        Queue.take(wake).pipe(
          Effect.timeout(`${config.routing.decideIntervalMillis} millis`),
          Effect.option,
          Effect.zipRight(step),
          Effect.catchAllCause((cause) => Effect.logError("routing step failed", cause)),
        ),
      ),
    )

    // --- measured-fastest: verify candidate paths with pathping ------------------------------------
    const inFlight = new Set<string>()
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          yield* Effect.sleep("1 second")
          const now = Date.now()
          for (const request of router.pathProbeRequests(now)) {
            const key = request.path.join(">")
            if (request.notBeforeMillis > now || inFlight.has(key)) continue
            inFlight.add(key)
            yield* Effect.forkScoped(
              plane.measurePath(request.path, request.families).pipe(
                Effect.tap((result) => onSample(result.sample)),
                Effect.catchAll((e) => Effect.logDebug(`pathping ${key} failed`, e)),
                Effect.ensuring(Effect.sync(() => inFlight.delete(key))),
              ),
            )
          }
        }),
      ),
    )

    // --- HTTP: /metrics, /healthz, /status (plane + routes), / (live mesh page) ---------------------
    const status = Effect.map(plane.status, (s) =>
      liveStatusOf(s, {
        ...(router.lastDecision === undefined ? {} : { decision: router.lastDecision }),
        configuredAlgorithm: config.routing.algorithm,
      }),
    )
    const health = Effect.map(plane.status, (s) => ({
      site: self,
      tunnels: s.tunnels.length,
      tunnelsUp: s.tunnels.filter((t) => t.stats?.state === "up").length,
      managedRoutes: managedRouteCount,
      birdPaths: bgpPathCount,
    }))
    const page = { html: renderLivePage({ title: `net-perf site ${self}` }), headers: livePageHeaders }
    const httpHosts = config.http.hosts ?? defaultListenHosts(config)
    for (const host of httpHosts)
      yield* serveMetrics({ host, port: config.http.port }, metrics.registry, status, health, page)

    yield* Effect.logInfo(
      `net-perf ${options.version} site ${self}: HTTP on ${httpHosts.map((h) => `${h}:${config.http.port}`).join(", ")}, gRPC on ${hosts.map((h) => `${h}:${config.grpc.port}`).join(", ")}, algorithm ${config.routing.algorithm}`,
    )

    function managementSource(): ManagementSource {
      return {
        site: self,
        configuredAlgorithm: config.routing.algorithm,
        decision: Effect.sync(() => router.lastDecision),
        perAlgorithm: (wanted) =>
          Effect.sync(() => {
            const all = wanted.includes("all")
            return router
              .explain(Date.now())
              .filter((e) => all || wanted.includes(e.algorithm))
              .map((e) => ({ algorithm: e.algorithm, routes: e.routes }))
          }),
        kernelRoutes: installer.installed,
        tunnels: Effect.map(plane.linkStats, (stats) =>
          tunnelSnapshotsOf(stats, router.lastDecision, (s) => linkCost(s, { model: config.routing.costModel })),
        ),
        peers: Effect.sync(() => {
          const connections = new Map(exchange.peers().map((p) => [p.site as number, p]))
          const origins = new Set<number>([...connections.keys(), ...lastHeard.keys()])
          return [...origins]
            .sort((a, b) => a - b)
            .map((site) => {
              const heard = lastHeard.get(site)
              return {
                site: SiteId.make(site),
                live: heard !== undefined && Date.now() - heard <= config.routing.linkStateMaxAgeMillis,
                lastHeardAtMillis: heard,
                seq: 0,
                incarnation: 0,
                connected: connections.get(site)?.connected ?? false,
              }
            })
        }),
        configJson: Effect.sync(() => JSON.stringify(config, null, 2)),
        version: options.version,
        startedAtMillis,
        now: Date.now,
      }
    }
    return { router, exchange }
  })

/** Every service the daemon needs, from its config. */
export const daemonLayer = (config: DaemonConfig, options: DaemonOptions) => {
  const birdOptions = {
    socket: config.bird.socket,
    socket6: config.bird.socket6,
    requestTimeout: `${config.bird.requestTimeoutMillis} millis` as const,
  }
  const bird = config.bird.generation === "bird1" ? Bird.bird1(birdOptions) : Bird.bird2(birdOptions)
  // One long-lived `ip -batch` for route installs (a spawn per install cost 30–250 ms under load).
  const ip = Ip.layerScoped(options.namespace === undefined ? {} : { namespace: options.namespace })
  const installer = RouteInstaller.layer({
    watchdogInterval: `${config.kernel.watchdogIntervalMillis} millis`,
    withdrawOnClose: config.kernel.withdrawOnExit,
  }).pipe(Layer.provide(ip))
  const aggregation = { ...defaultAggregationConfig, ...aggregationOf(config) }
  return Layer.mergeAll(MeasurementPlaneLive(planeConfigOf(config), aggregation), bird, installer)
}

/** Runs the daemon until interrupted; the scope's finalizers withdraw routes and close sockets. */
export const daemonProgram = (config: DaemonConfig, options: DaemonOptions) =>
  Effect.scoped(Effect.zipRight(runDaemon(config, options), Effect.never)).pipe(
    Effect.provide(daemonLayer(config, options)),
  )
