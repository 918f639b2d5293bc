/**
 * Tunnel discovery: reconciles WireGuard confs, live links of this namespace and `wg` state into
 * one table of tunnels, kept current by `ip monitor` events, a periodic rescan (safety net for
 * missed events) and control-socket commands. A tunnel is *active* — measured — when its link
 * exists here, is up, and was not disabled by `WGDEL`; a conf without a link is listed, inactive.
 * `WGRESTART` bumps a tunnel's generation, which restarts its worker.
 */
import { parseTunnelName, type TunnelId, tunnelKey } from "@net-perf/engine"
import {
  Context,
  Data,
  Duration,
  Effect,
  Layer,
  Queue,
  Ref,
  Schedule,
  type Scope,
  Stream,
  SubscriptionRef,
} from "effect"
import type { IpService } from "../kernel/Ip.js"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import {
  type CommandConfig,
  defaultCommandConfig,
  type LiveLink,
  monitorLinks,
  readLiveLinks,
  readWgState,
  type WgInterfaceState,
} from "./LiveLinks.js"
import { loadWgConfs, type WgConf, type WgConfError } from "./WgConf.js"

export interface DiscoveryConfig {
  readonly confDir: string
  /**
   * Interface-name pattern: a regex with named groups `local`, `remote`, `family` (4|6). Undefined
   * means the mesh default `wgX.Y_vZ` (engine's `parseTunnelName`).
   */
  readonly namePattern: string | undefined
  readonly commands: CommandConfig
  /**
   * Reads links and addresses through this long-lived `ip -batch` session (`makeIpScoped`)
   * instead of an `ip` process per scan; used only when `commands.prefix` is empty.
   */
  readonly ipSession?: IpService
  /** Periodic rescan while `ip monitor` is not running (disabled, failed, restarting). */
  readonly rescanIntervalMillis: number
  /**
   * Periodic rescan while `ip monitor` runs: only a safety net for missed events and the `wg`
   * state shown by STATUS (handshake, byte counters), so slow. Default max(60 s, rescanIntervalMillis).
   */
  readonly monitorRescanIntervalMillis?: number
  readonly debounceMillis: number
  /** Follow `ip monitor` events (off in environments without netlink monitoring). */
  readonly monitor: boolean
}

export const defaultDiscoveryConfig: DiscoveryConfig = {
  confDir: "/etc/wireguard",
  namePattern: undefined,
  commands: defaultCommandConfig,
  rescanIntervalMillis: 15_000,
  monitorRescanIntervalMillis: 60_000,
  debounceMillis: 200,
  monitor: true,
}

export class InvalidTunnelName extends Data.TaggedError("InvalidTunnelName")<{
  readonly name: string
  readonly reason: string
}> {
  override get message() {
    return `${this.name}: ${this.reason}`
  }
}

export interface DiscoveredTunnel {
  readonly name: string
  readonly id: TunnelId
  /** `tunnelKey(id)`, the key used by samples and metrics. */
  readonly key: string
  readonly link: LiveLink | null
  readonly wg: WgInterfaceState | null
  readonly conf: WgConf | null
  readonly disabled: boolean
  readonly generation: number
  readonly active: boolean
}

/** Builds the name parser for a pattern (see `DiscoveryConfig.namePattern`). */
export const makeTunnelNameParser = (pattern: string | undefined): ((name: string) => TunnelId | undefined) => {
  if (pattern === undefined) return parseTunnelName
  const re = new RegExp(pattern)
  return (name) => {
    const g = re.exec(name)?.groups
    if (g?.local === undefined || g.remote === undefined || g.family === undefined) return undefined
    const local = Number(g.local)
    const remote = Number(g.remote)
    const family = Number(g.family)
    if (!Number.isInteger(local) || !Number.isInteger(remote) || local < 0 || remote < 0 || local === remote)
      return undefined
    if (family !== 4 && family !== 6) return undefined
    return { local, remote, family } as TunnelId
  }
}

/** Pure reconciliation of the three sources (exported for property tests). */
export const reconcile = (
  parse: (name: string) => TunnelId | undefined,
  sources: Sources,
  admin: { readonly disabled: ReadonlySet<string>; readonly generations: ReadonlyMap<string, number> },
): ReadonlyMap<string, DiscoveredTunnel> => {
  const links = new Map(sources.links.map((l) => [l.name, l]))
  const wg = new Map(sources.wg.filter((w) => links.has(w.name)).map((w) => [w.name, w]))
  const confs = new Map(sources.confs.map((c) => [c.interfaceName, c]))
  const names = [...new Set([...links.keys(), ...confs.keys()])].sort()
  const out = new Map<string, DiscoveredTunnel>()
  for (const name of names) {
    const id = parse(name)
    if (id === undefined) continue
    const link = links.get(name) ?? null
    const disabled = admin.disabled.has(name)
    out.set(name, {
      name,
      id,
      key: tunnelKey(id),
      link,
      wg: wg.get(name) ?? null,
      conf: confs.get(name) ?? null,
      disabled,
      generation: admin.generations.get(name) ?? 0,
      active: (link?.up ?? false) && !disabled,
    })
  }
  return out
}

interface Sources {
  readonly links: ReadonlyArray<LiveLink>
  readonly wg: ReadonlyArray<WgInterfaceState>
  readonly confs: ReadonlyArray<WgConf>
}

export interface DiscoveryService {
  /** Current tunnel table by interface name; subscribe to `changes` to follow it. */
  readonly tunnels: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, DiscoveredTunnel>>
  readonly confErrors: Effect.Effect<ReadonlyArray<WgConfError>>
  /** Rescans now (debounced with other triggers) and waits for the result. */
  readonly rescan: Effect.Effect<void>
  /** WGADD: (re-)enables a tunnel and rescans. */
  readonly add: (name: string) => Effect.Effect<DiscoveredTunnel | undefined, InvalidTunnelName>
  /** WGDEL: stops measuring a tunnel until the next WGADD. */
  readonly remove: (name: string) => Effect.Effect<void, InvalidTunnelName>
  /** WGRESTART: restarts a tunnel's worker. */
  readonly restart: (name: string) => Effect.Effect<void, InvalidTunnelName>
}

export class Discovery extends Context.Tag("net-perf/Discovery")<Discovery, DiscoveryService>() {}

export const makeDiscovery = (
  config: DiscoveryConfig,
): Effect.Effect<DiscoveryService, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const parse = makeTunnelNameParser(config.namePattern)
    const tunnels = yield* SubscriptionRef.make<ReadonlyMap<string, DiscoveredTunnel>>(new Map())
    const confErrors = yield* Ref.make<ReadonlyArray<WgConfError>>([])
    const disabled = new Set<string>()
    const generations = new Map<string, number>()
    const lastSources = yield* Ref.make<Sources>({ links: [], wg: [], confs: [] })
    const lock = yield* Effect.makeSemaphore(1)

    const scanOnce = Effect.gen(function* () {
      const previous = yield* Ref.get(lastSources)
      const loaded = yield* loadWgConfs(config.confDir).pipe(
        Effect.tapError((e) => Effect.logWarning(`discovery: cannot read ${e.dir}`, e.cause)),
        Effect.orElseSucceed(() => ({ confs: previous.confs, errors: [] as ReadonlyArray<WgConfError> })),
      )
      for (const e of loaded.errors) {
        metrics.discoveryErrors.labels({ source: "wg-conf" }).inc()
        yield* Effect.logWarning(`discovery: skipping bad WireGuard conf ${e.message}`)
      }
      yield* Ref.set(confErrors, loaded.errors)
      const links = yield* readLiveLinks(config.commands, config.ipSession).pipe(
        Effect.tapError((e) => {
          metrics.discoveryErrors.labels({ source: "ip" }).inc()
          return Effect.logWarning("discovery: ip link/addr failed, keeping the previous view", e)
        }),
        Effect.orElseSucceed(() => previous.links),
      )
      const wg = yield* readWgState(config.commands, new Set(links.map((l) => l.name))).pipe(
        Effect.tapError((e) => {
          metrics.discoveryErrors.labels({ source: "wg" }).inc()
          return Effect.logDebug("discovery: wg show failed", e)
        }),
        Effect.orElseSucceed(() => previous.wg),
      )
      const sources = { links, wg, confs: loaded.confs }
      yield* Ref.set(lastSources, sources)
      yield* publish(sources)
    })

    const publish = (sources: Sources) =>
      SubscriptionRef.set(tunnels, reconcile(parse, sources, { disabled, generations }))

    const republish = Effect.flatMap(Ref.get(lastSources), publish)

    const rescan = lock.withPermits(1)(scanOnce)

    const signals = yield* Queue.sliding<void>(1)
    yield* Queue.take(signals).pipe(
      Effect.zipRight(Effect.sleep(Duration.millis(config.debounceMillis))),
      Effect.zipRight(Queue.takeAll(signals)),
      Effect.zipRight(rescan),
      Effect.forever,
      Effect.forkScoped,
    )
    yield* rescan
    // Event-driven while `ip monitor` runs (each event: a debounced rescan of all three sources),
    // with a slow safety rescan; polling at `rescanIntervalMillis` only while it does not run. A
    // change of the monitor's state restarts the wait with the other interval.
    const monitorRunning = yield* SubscriptionRef.make(false)
    const safetyMillis = config.monitorRescanIntervalMillis ?? Math.max(60_000, config.rescanIntervalMillis)
    yield* Effect.gen(function* () {
      const running = yield* SubscriptionRef.get(monitorRunning)
      const slept = yield* Effect.raceFirst(
        Effect.as(Effect.sleep(Duration.millis(running ? safetyMillis : config.rescanIntervalMillis)), true),
        Effect.as(
          monitorRunning.changes.pipe(
            Stream.filter((r) => r !== running),
            Stream.runHead,
          ),
          false,
        ),
      )
      if (slept) yield* Queue.offer(signals, undefined)
    }).pipe(Effect.forever, Effect.forkScoped)
    if (config.monitor) {
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* Effect.acquireRelease(SubscriptionRef.set(monitorRunning, true), () =>
            SubscriptionRef.set(monitorRunning, false),
          )
          // Changes while the monitor was down (restarts) were seen by no one: rescan once now.
          yield* Queue.offer(signals, undefined)
          yield* Stream.runForEach(monitorLinks(config.commands), () => Queue.offer(signals, undefined))
        }),
      ).pipe(
        Effect.tapError((e) => Effect.logWarning("discovery: ip monitor stopped; restarting", e)),
        Effect.zipRight(Effect.fail("ip monitor ended" as const)),
        Effect.retry(Schedule.spaced(Duration.seconds(5))),
        Effect.forkScoped,
      )
    }

    const checkName = (name: string) => {
      if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(name)) {
        return Effect.fail(
          new InvalidTunnelName({ name, reason: "not a valid interface name (1-15 of [A-Za-z0-9_=+.-])" }),
        )
      }
      if (parse(name) === undefined) {
        return Effect.fail(new InvalidTunnelName({ name, reason: "does not match the tunnel name pattern" }))
      }
      return Effect.void
    }

    return {
      tunnels,
      confErrors: Ref.get(confErrors),
      rescan,
      add: (name) =>
        Effect.gen(function* () {
          yield* checkName(name)
          disabled.delete(name)
          yield* rescan
          return (yield* SubscriptionRef.get(tunnels)).get(name)
        }),
      remove: (name) =>
        Effect.gen(function* () {
          yield* checkName(name)
          disabled.add(name)
          yield* lock.withPermits(1)(republish)
        }),
      restart: (name) =>
        Effect.gen(function* () {
          yield* checkName(name)
          generations.set(name, (generations.get(name) ?? 0) + 1)
          yield* lock.withPermits(1)(republish)
        }),
    }
  })

export const DiscoveryLive = (config: DiscoveryConfig) => Layer.scoped(Discovery, makeDiscovery(config))
