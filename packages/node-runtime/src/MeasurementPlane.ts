/**
 * The measurement plane: discovery + control socket + one worker per active tunnel (echo, ICMP,
 * TCP, loss test) + probe servers (5121 echo/loss, 5124 pathping relay) + metrics on :5120, as one
 * scoped Layer. Samples go to the engine's aggregation (per-tunnel `LinkStats` and link cost) and
 * to every subscriber of `samples`; the control plane reads `linkStats` and calls `measurePath`.
 * A worker lives exactly as long as its tunnel is active: when it stops, its sockets, ping process,
 * aggregate and metric series go with it.
 */
import {
  type AggregationConfig,
  defaultAggregationConfig,
  emptyAggregate,
  ingestInto,
  type LinkStats,
  type LossTestSample,
  linkCost,
  linkStats,
  type RttSample,
  type Sample,
  type TunnelAggregate,
  type TunnelId,
  tunnelKey,
} from "@net-perf/engine"
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  FiberMap,
  Layer,
  Option,
  PubSub,
  type Queue,
  Schedule,
  Schema,
  type Scope,
  Stream,
  SubscriptionRef,
} from "effect"
import { serveControlSocket } from "./control/ControlSocket.js"
import { templateAddressing, tunnelEndpoints } from "./discovery/Addressing.js"
import { type DiscoveredTunnel, Discovery, type DiscoveryService, makeDiscovery } from "./discovery/Discovery.js"
import { makeIpScoped } from "./kernel/Ip.js"
import { gaugeChild, MeasurementMetrics, tunnelLabelValues } from "./metrics/Metrics.js"
import { serveMetrics } from "./metrics/MetricsServer.js"
import {
  type EchoHealth,
  type EchoProberStats,
  type EchoStatsReader,
  type EchoVerdictDetail,
  makeEchoProbes,
} from "./probes/EchoProber.js"
import { runIcmpProber } from "./probes/IcmpProber.js"
import { runLossTester } from "./probes/LossTester.js"
import { type LossTrigger, runLossTrigger } from "./probes/LossTrigger.js"
import {
  type InvalidPath,
  measurePath,
  type PathFamily,
  type PathRelayUnavailable,
  type PathResult,
} from "./probes/PathPinger.js"
import { type PathPingConfig, ProbesConfig } from "./probes/ProbeConfig.js"
import { runTcpProber } from "./probes/TcpProber.js"
import { makeAllowList } from "./servers/Guard.js"
import { makePathRelay, type PathRelay } from "./servers/PathRelay.js"
import { defaultProbeServerConfig, serveProbeServer } from "./servers/ProbeServer.js"

const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: () => value })
const Port = Schema.Int.pipe(Schema.between(1, 65535))

/** Every setting of the plane, with defaults; decode it from a config file, flags or env. */
export const MeasurementPlaneConfig = Schema.Struct({
  /** This site's id; by default the X of the first discovered `wgX.Y_vZ`. */
  localSite: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  addressTemplate: field(Schema.String, "10.201.{site}.{role}"),
  allowPrefixes: field(Schema.Array(Schema.String), ["10.201.0.0/16", "fdac:c9::/32"]),
  /** 5121 bind addresses; default the site's probe endpoints (role 4 and 6). Never the underlay. */
  probeServerAddresses: Schema.optional(Schema.Array(Schema.String)),
  /** 5124 bind addresses; default the site's router and probe endpoints. */
  pathRelayAddresses: Schema.optional(Schema.Array(Schema.String)),
  serverRateLimit: field(
    Schema.Struct({
      packetsPerSecond: Schema.Number.pipe(Schema.positive()),
      burstPackets: Schema.Number.pipe(Schema.positive()),
    }),
    { packetsPerSecond: 1000, burstPackets: 2000 },
  ),
  discovery: field(
    Schema.Struct({
      confDir: field(Schema.String, "/etc/wireguard"),
      namePattern: Schema.optional(Schema.String),
      commandPrefix: field(Schema.Array(Schema.String), []),
      /** Rescan interval while `ip monitor` is not running (off, failed, restarting). */
      rescanIntervalMillis: field(Schema.Number.pipe(Schema.positive()), 15_000),
      /** Safety rescan while `ip monitor` runs (missed events; `wg` state for STATUS). */
      monitorRescanIntervalMillis: field(Schema.Number.pipe(Schema.positive()), 60_000),
      monitor: field(Schema.Boolean, true),
    }),
    {
      confDir: "/etc/wireguard",
      commandPrefix: [],
      rescanIntervalMillis: 15_000,
      monitorRescanIntervalMillis: 60_000,
      monitor: true,
    },
  ),
  control: field(
    Schema.NullOr(
      Schema.Struct({
        path: field(Schema.String, "/opt/wg-mesh/net-perf.sock"),
        mode: field(Schema.Int, 0o660),
        readTimeoutMillis: field(Schema.Number.pipe(Schema.positive()), 5000),
      }),
    ),
    { path: "/opt/wg-mesh/net-perf.sock", mode: 0o660, readTimeoutMillis: 5000 },
  ),
  http: field(Schema.NullOr(Schema.Struct({ host: field(Schema.String, "0.0.0.0"), port: field(Port, 5120) })), {
    host: "0.0.0.0",
    port: 5120,
  }),
  probes: field(ProbesConfig, Schema.decodeSync(ProbesConfig)({})),
  /**
   * How often the aggregated gauges (loss, jitter, availability, smoothed RTT) are refreshed; `up`
   * and `cost` also follow every echo verdict at once. Scrapes come every ~15 s: 5 s is plenty
   * (1 s cost ~0.06 % of a core at 100 tunnels).
   */
  gaugeIntervalMillis: field(Schema.Number.pipe(Schema.positive()), 5000),
})
export type MeasurementPlaneConfig = typeof MeasurementPlaneConfig.Type
export type MeasurementPlaneConfigInput = typeof MeasurementPlaneConfig.Encoded

/** One tunnel as the plane sees it now. */
export interface TunnelStatus {
  readonly name: string
  readonly key: string
  readonly local: number
  readonly remote: number
  readonly family: 4 | 6
  readonly active: boolean
  readonly disabled: boolean
  readonly localAddress: string
  readonly remoteAddress: string
  /** The echo prober's own verdict (prompt; the engine's `stats.state` agrees after 3 losses). */
  readonly echo: EchoProberStats | null
  /** Samples received per probe kind since the worker started. */
  readonly sampleCounts: Readonly<Record<SampleCountKey, number>> | null
  readonly stats: LinkStats | null
  /** Engine link cost in ms-equivalent; null when unusable (+Infinity). */
  readonly costMs: number | null
  readonly conf: { readonly file: string; readonly peers: number } | null
  readonly wg: {
    readonly listenPort: number | null
    readonly endpoint: string | null
    readonly latestHandshakeSeconds: number | null
    readonly rxBytes: number
    readonly txBytes: number
  } | null
}

export interface PlaneStatus {
  readonly localSite: number | null
  readonly atMillis: number
  readonly tunnels: ReadonlyArray<TunnelStatus>
  readonly confErrors: ReadonlyArray<{ readonly file: string; readonly line: number; readonly reason: string }>
}

/** An echo verdict change of one tunnel; a dead verdict says how it came about. */
export interface HealthChange {
  readonly key: string
  readonly health: EchoHealth
  readonly atMillis: number
  readonly detail?: EchoVerdictDetail
}

export interface MeasurementPlaneService {
  /** Every sample from the moment of subscription (RTT, loss test and pathping). */
  readonly samples: Stream.Stream<Sample>
  readonly subscribe: Effect.Effect<Queue.Dequeue<Sample>, never, Scope.Scope>
  /** Engine aggregation of every active tunnel at this instant. */
  readonly linkStats: Effect.Effect<ReadonlyArray<LinkStats>>
  readonly status: Effect.Effect<PlaneStatus>
  /** Echo verdict changes (fast failure detection), as they happen. */
  readonly healthChanges: Stream.Stream<HealthChange>
  /**
   * Outside evidence about a tunnel, typically the peer's link state: `failure` (it reports the
   * tunnel dead) makes the echo probe now instead of at its next slot (EchoProbes.suspect);
   * `loss` (it reports loss) asks the loss trigger for a burst (its rate limits apply). The other
   * family's tunnel to the same peer is suspected by the plane itself when one dies.
   */
  readonly suspect: (tunnel: TunnelId, evidence: "failure" | "loss") => Effect.Effect<void>
  /** pathping a source-routed path from this site; waits for the site id and the relay. */
  readonly measurePath: (
    path: ReadonlyArray<number>,
    families: ReadonlyArray<PathFamily>,
    config?: Partial<PathPingConfig>,
  ) => Effect.Effect<PathResult, InvalidPath | PathRelayUnavailable>
  readonly discovery: DiscoveryService
}

export class MeasurementPlane extends Context.Tag("net-perf/MeasurementPlane")<
  MeasurementPlane,
  MeasurementPlaneService
>() {}

interface WorkerState {
  aggregate: TunnelAggregate
  echo: EchoStatsReader | undefined
  /** Suspicion-triggered loss bursts; fed every RTT sample of the tunnel. */
  lossTrigger?: LossTrigger
  /** Plain fields, not keyed by sample kind: a keyed increment per sample was a megamorphic store. */
  readonly sampleCounts: { echo: number; icmp: number; tcp: number; lossTest: number }
  /** Label children resolved once: prom-client hashes the labels on every `labels()` call. */
  readonly gauges: Record<
    "up" | "lossRatio" | "jitter" | "availability" | "cost" | "rttSmoothed",
    { set: (v: number) => void }
  >
}
type SampleCountKey = "udp-echo" | "icmp" | "tcp" | "loss-test"

/** A gauge child that skips unchanged values (most gauges of a steady tunnel do not move). */
const changesOnly = (gauge: { set: (v: number) => void }) => {
  let last = Number.NaN
  return {
    set: (v: number) => {
      if (v === last) return
      last = v
      gauge.set(v)
    },
  }
}

export const makeMeasurementPlane = (
  config: MeasurementPlaneConfig,
  aggregation: AggregationConfig = defaultAggregationConfig,
): Effect.Effect<MeasurementPlaneService, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const addressing = templateAddressing(config.addressTemplate)
    const allow = yield* Either.match(makeAllowList(config.allowPrefixes), {
      onLeft: (e) => Effect.dieMessage(`allowPrefixes: ${e.prefix}: ${e.reason}`),
      onRight: Effect.succeed,
    })
    const discovery = yield* makeDiscovery({
      confDir: config.discovery.confDir,
      namePattern: config.discovery.namePattern,
      commands: { prefix: config.discovery.commandPrefix, ip: "ip", wg: "wg" },
      // Its own `ip -batch` process, started at the first read (none with a command prefix, which
      // readLiveLinks does not send through it): no fork of the plane per rescan.
      ipSession: yield* makeIpScoped(),
      rescanIntervalMillis: config.discovery.rescanIntervalMillis,
      monitorRescanIntervalMillis: config.discovery.monitorRescanIntervalMillis,
      debounceMillis: 200,
      monitor: config.discovery.monitor,
    })
    const samples = yield* PubSub.sliding<Sample>(10_000)
    const healthHub = yield* PubSub.sliding<HealthChange>(1000)
    const workers = new Map<string, WorkerState>()
    const localSite = yield* Deferred.make<number>()
    const relay = yield* Deferred.make<PathRelay>()
    // One echo scheduler for every tunnel: a socket per local address, one timer.
    const echoProbes = yield* makeEchoProbes(config.probes.echo)
    const lossBurstSlots = yield* Effect.makeSemaphore(config.probes.lossTrigger.maxConcurrentBursts)

    const refreshGauges = (state: WorkerState, nowMillis: number) => {
      const stats = linkStats(state.aggregate, nowMillis, aggregation)
      const g = state.gauges
      const echoDead = state.echo?.health() === "dead"
      g.up.set(stats.state === "up" && !echoDead ? 1 : 0)
      g.lossRatio.set(stats.lossRatio)
      g.jitter.set(stats.jitterMs / 1000)
      g.availability.set(stats.availability)
      g.cost.set(echoDead ? Number.POSITIVE_INFINITY : linkCost(stats))
      if (stats.rttMs !== null) g.rttSmoothed.set(stats.rttMs / 1000)
    }

    const fold = (state: WorkerState, s: RttSample | LossTestSample) => {
      // In place: the plane is the aggregate's only owner (ingest would allocate ≈ 1 KB per sample).
      ingestInto(state.aggregate, s, aggregation)
      if (s._tag === "LossTestSample") state.sampleCounts.lossTest++
      else if (s.kind === "udp-echo") state.sampleCounts.echo++
      else if (s.kind === "icmp") state.sampleCounts.icmp++
      else state.sampleCounts.tcp++
      if (s._tag === "RttSample") state.lossTrigger?.observe(s)
    }
    /**
     * `publish` for the probes of one worker, whose samples are all of its tunnel: the worker is
     * looked up by its key string as it is (no key built from the sample's numbers per sample).
     */
    const publishOf = (key: string) => (s: RttSample | LossTestSample) => {
      const state = workers.get(key)
      if (state !== undefined) fold(state, s)
      // unsafeOffer: a synchronous enqueue; running an Effect per sample cost ~1 % of a core per 100 tunnels.
      samples.unsafeOffer(s)
    }

    const worker = (t: DiscoveredTunnel) =>
      Effect.gen(function* () {
        const endpoints = tunnelEndpoints(addressing, t.id)
        const publishOwn = publishOf(t.key)
        // The other family's tunnel to the same peer: often the same underlay path.
        const sibling: TunnelId = { ...t.id, family: t.id.family === 4 ? 6 : 4 }
        const state: WorkerState = {
          aggregate: emptyAggregate(t.id),
          echo: undefined,
          sampleCounts: { echo: 0, icmp: 0, tcp: 0, lossTest: 0 },
          gauges: (() => {
            const labels = tunnelLabelValues(t.id)
            return {
              up: changesOnly(gaugeChild(metrics.up, labels)),
              lossRatio: changesOnly(gaugeChild(metrics.lossRatio, labels)),
              jitter: changesOnly(gaugeChild(metrics.jitter, labels)),
              availability: changesOnly(gaugeChild(metrics.availability, labels)),
              cost: changesOnly(gaugeChild(metrics.cost, labels)),
              rttSmoothed: changesOnly(gaugeChild(metrics.rttSmoothed, labels)),
            }
          })(),
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => workers.set(t.key, state)),
          () =>
            Effect.sync(() => {
              workers.delete(t.key)
              metrics.removeTunnel(t.id)
            }),
        )
        const { probes } = config
        if (probes.echo.enabled) {
          // The probe endpoint may appear later (wg-quick PostUp): retry the bind.
          yield* Effect.gen(function* () {
            state.echo = yield* echoProbes.add(t.id, endpoints, {
              onSample: publishOwn,
              onHealth: (health, atMillis, detail) => {
                refreshGauges(state, Date.now())
                healthHub.unsafeOffer(
                  detail === undefined ? { key: t.key, health, atMillis } : { key: t.key, health, atMillis, detail },
                )
                // Both families' tunnels to a peer usually cross the same underlay path: when one
                // dies, probe the other now (the twin: v6 dead 0.6 s before v4, which the route used).
                if (health === "dead") echoProbes.suspect(sibling)
              },
            })
            return yield* Effect.never
          }).pipe(
            Effect.scoped,
            Effect.tapError((e) => Effect.logWarning(`${t.name}: echo prober cannot bind ${e.address}`, e.cause)),
            Effect.retry(Schedule.spaced(Duration.seconds(5))),
            Effect.forkScoped,
          )
        }
        if (probes.icmp.enabled) yield* runIcmpProber(t.id, endpoints, probes.icmp, publishOwn)
        if (probes.tcp.enabled) yield* runTcpProber(t.id, endpoints, probes.tcp, publishOwn)
        // One lock: a triggered burst never overlaps the scheduled loss test of its tunnel.
        const lossLock = yield* Effect.makeSemaphore(1)
        if (probes.lossTest.enabled) yield* runLossTester(t.id, endpoints, probes.lossTest, publishOwn, lossLock)
        if (probes.lossTrigger.enabled) {
          const view = {
            isUp: () =>
              state.echo?.health() !== "dead" && linkStats(state.aggregate, Date.now(), aggregation).state === "up",
            lossRatio: () => linkStats(state.aggregate, Date.now(), aggregation).lossRatio,
            peerSilences: () => state.echo?.peerSilences() ?? 0,
            peerLateRequests: () => state.echo?.peerLateRequests() ?? 0,
          }
          state.lossTrigger = yield* runLossTrigger(
            t.id,
            endpoints,
            probes.lossTest,
            probes.lossTrigger,
            publishOwn,
            view,
            lossLock,
            () => workers.get(tunnelKey(sibling))?.lossTrigger?.suspect("loss found on the other family's tunnel"),
            lossBurstSlots,
          )
        }
        yield* Effect.logDebug(`${t.name}: measuring ${endpoints.localAddress} -> ${endpoints.remoteAddress}`)
        return yield* Effect.never
      })

    if (config.localSite !== undefined) yield* Deferred.succeed(localSite, config.localSite)
    // Workers follow the active tunnels; a new generation (WGRESTART) replaces the old worker.
    const fibers = yield* FiberMap.make<string>()
    const running = new Map<string, string>()
    yield* discovery.tunnels.changes.pipe(
      Stream.runForEach((table) =>
        Effect.gen(function* () {
          const wanted = new Map([...table.values()].filter((t) => t.active).map((t) => [t.name, t]))
          for (const [name, fiberKey] of running) {
            const t = wanted.get(name)
            if (t === undefined || `${name}#${t.generation}` !== fiberKey) {
              yield* FiberMap.remove(fibers, fiberKey)
              running.delete(name)
            }
          }
          for (const [name, t] of wanted) {
            if (running.has(name)) continue
            if (!(yield* Deferred.isDone(localSite))) yield* Deferred.succeed(localSite, t.id.local)
            const fiberKey = `${name}#${t.generation}`
            running.set(name, fiberKey)
            yield* FiberMap.run(fibers, fiberKey, Effect.scoped(worker(t)))
          }
          metrics.tunnels.set(running.size)
        }),
      ),
      Effect.forkScoped,
    )
    // Servers start once the site id is known (configured, or from the first tunnel).
    yield* Effect.gen(function* () {
      const site = yield* Deferred.await(localSite)
      const probeAddresses = config.probeServerAddresses ?? [addressing.address(site, 4), addressing.address(site, 6)]
      const relayAddresses = config.pathRelayAddresses ?? [
        addressing.address(site, 0),
        addressing.address(site, 4),
        addressing.address(site, 6),
      ]
      yield* serveProbeServer({
        ...defaultProbeServerConfig(probeAddresses, allow),
        port: config.probes.echo.port,
        rateLimit: config.serverRateLimit,
        onEchoRequest: echoProbes.peerRequest,
        onEchoSymmetric: echoProbes.peerSymmetric,
      })
      const r = yield* makePathRelay({
        localSite: site,
        bindAddresses: relayAddresses,
        port: config.probes.pathPing.port,
        addressing,
        allow,
        rateLimit: config.serverRateLimit,
        rebindIntervalMillis: 5000,
        stampThread: config.probes.pathPing.stampThread,
        stampFifoPriority: config.probes.pathPing.stampThreadFifoPriority,
      })
      yield* r.stampPriority.pipe(
        Effect.flatMap((p) =>
          p.raiseFailed
            ? Effect.logWarning(`pathping stamps: ${p.description}`)
            : Effect.logInfo(`pathping stamps: ${p.description}`),
        ),
        Effect.forkScoped,
      )
      yield* Deferred.succeed(relay, r)
      return yield* Effect.never
    }).pipe(Effect.forkScoped)

    // A plain interval, not a fiber repeated on a Schedule: the refresh is synchronous, and the
    // fiber's resume, schedule step and sleep were Effect runtime work around it on every tick (the
    // plane's periodic fibers: ≈ 6 % of the main thread's busy samples at 100 tunnel ends, session
    // 9). Same cadence: at once, then every interval.
    const refreshAll = () => {
      const now = Date.now()
      for (const state of workers.values()) refreshGauges(state, now)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        refreshAll()
        return setInterval(refreshAll, config.gaugeIntervalMillis)
      }),
      (timer) => Effect.sync(() => clearInterval(timer)),
    )

    const status: Effect.Effect<PlaneStatus> = Effect.gen(function* () {
      const table = yield* SubscriptionRef.get(discovery.tunnels)
      const site = yield* Deferred.poll(localSite).pipe(
        Effect.flatMap(Option.match({ onNone: () => Effect.succeed(null), onSome: (x) => x })),
      )
      const now = Date.now()
      const tunnels = [...table.values()].map((t): TunnelStatus => {
        const state = workers.get(t.key)
        const stats = state === undefined ? null : linkStats(state.aggregate, now, aggregation)
        const c = stats === null ? Number.POSITIVE_INFINITY : linkCost(stats)
        const peer = t.wg?.peers[0]
        return {
          name: t.name,
          key: t.key,
          local: t.id.local,
          remote: t.id.remote,
          family: t.id.family,
          active: t.active,
          disabled: t.disabled,
          ...tunnelEndpoints(addressing, t.id),
          echo: state?.echo?.() ?? null,
          sampleCounts:
            state === undefined
              ? null
              : {
                  "udp-echo": state.sampleCounts.echo,
                  icmp: state.sampleCounts.icmp,
                  tcp: state.sampleCounts.tcp,
                  "loss-test": state.sampleCounts.lossTest,
                },
          stats,
          costMs: Number.isFinite(c) ? c : null,
          conf: t.conf === null ? null : { file: t.conf.file, peers: t.conf.peers.length },
          wg:
            t.wg === null
              ? null
              : {
                  listenPort: t.wg.listenPort,
                  endpoint: peer?.endpoint ?? null,
                  latestHandshakeSeconds: peer?.latestHandshakeSeconds ?? null,
                  rxBytes: peer?.rxBytes ?? 0,
                  txBytes: peer?.txBytes ?? 0,
                },
        }
      })
      const errors = yield* discovery.confErrors
      return {
        localSite: site,
        atMillis: now,
        tunnels,
        confErrors: errors.map((e) => ({ file: e.file, line: e.line, reason: e.reason })),
      }
    })

    const service: MeasurementPlaneService = {
      samples: Stream.fromPubSub(samples),
      subscribe: PubSub.subscribe(samples),
      linkStats: Effect.sync(() => {
        const now = Date.now()
        return [...workers.values()].map((s) => linkStats(s.aggregate, now, aggregation))
      }),
      status,
      healthChanges: Stream.fromPubSub(healthHub),
      suspect: (tunnel, evidence) =>
        Effect.sync(() =>
          evidence === "failure"
            ? echoProbes.suspect(tunnel)
            : workers.get(tunnelKey(tunnel))?.lossTrigger?.suspect("the peer reports loss on this tunnel"),
        ),
      measurePath: (path, families, overrides = {}) =>
        Effect.gen(function* () {
          const site = yield* Deferred.await(localSite)
          const r = yield* Deferred.await(relay)
          const result = yield* measurePath(r, site, path, families, { ...config.probes.pathPing, ...overrides })
          samples.unsafeOffer(result.sample)
          return result
        }).pipe(Effect.provideService(MeasurementMetrics, metrics)),
      discovery,
    }

    if (config.control !== null) {
      yield* serveControlSocket(config.control, (command) => {
        switch (command._tag) {
          case "WgAdd":
            return Effect.map(discovery.add(command.name), (t) =>
              t === undefined ? "OK (no such interface here yet; it will be measured when it appears)" : "OK",
            )
          case "WgDel":
            return Effect.as(discovery.remove(command.name), "OK")
          case "WgRestart":
            return command.name === undefined
              ? Effect.flatMap(SubscriptionRef.get(discovery.tunnels), (table) =>
                  Effect.as(Effect.forEach(table.keys(), discovery.restart, { discard: true }), "OK"),
                )
              : Effect.as(discovery.restart(command.name), "OK")
          case "Status":
            return Effect.map(status, (s) => JSON.stringify(s))
        }
      }).pipe(Effect.orDie)
    }
    if (config.http !== null) {
      yield* serveMetrics(
        config.http,
        metrics.registry,
        status,
        Effect.map(SubscriptionRef.get(discovery.tunnels), (t) => ({ tunnels: t.size, measured: workers.size })),
      ).pipe(Effect.orDie)
    }
    return service
  })

/** The plane as a Layer (provides its metrics registry too, for the daemon's other parts). */
export const MeasurementPlaneLive = (config: MeasurementPlaneConfig, aggregation?: AggregationConfig) =>
  Layer.scoped(MeasurementPlane, makeMeasurementPlane(config, aggregation)).pipe(
    Layer.provideMerge(MeasurementMetrics.Default),
  )

/** Also expose discovery as its own service for code that needs only the tunnel table. */
export const DiscoveryFromPlane = Layer.effect(
  Discovery,
  Effect.map(MeasurementPlane, (p) => p.discovery),
)

/** Decodes a (partial) config, filling defaults; errors name the field and the bad value. */
export const decodeMeasurementPlaneConfig = Schema.decodeUnknown(MeasurementPlaneConfig)
