/**
 * One model run: a mesh with truth timelines, one routing engine per site, simulated probes, a
 * lossy/late link-state exchange, hop-by-hop forwarding and the oracle, all under a discrete-event
 * loop in simulated milliseconds. Deterministic per seed, and the same on one or two threads:
 * every random draw comes from a stream of its own site (probes, phases) or origin (message
 * delays and losses); within a millisecond, truth changes and restarts come first, then the
 * link-state deliveries in (recipient, origin, message) order, then each site's own events in
 * scheduling order; a site reads only its own state and what is known of every site in advance
 * (restarts, link truth); and the engines read time only from the arguments we pass.
 *
 * Two halves: the sites' part (`makeSitePart`: engines, probers, exchange; it logs its installs)
 * and the observer (`makeObserver`: the whole forwarding table replayed from the logs, and every
 * figure that needs all sites at once). `runModel` runs both on this thread; `ModelThreads.ts`
 * runs two site parts on worker threads and the observer on the caller's.
 *
 * The simulator makes no routing decision of its own: each site's forwarding is exactly what its
 * engine's last `decide()` returned (next-hop site and tunnel). What the simulator adds is what the
 * world would do: carry probes and messages, follow packets, and measure against the oracle.
 * Metrics cover [warmupMillis, durationMillis); what happens before is start-up.
 */
import {
  type AdvertTriggerThresholds,
  advertMetricMoved,
  defaultAdvertTriggerThresholds,
  type Family,
  LossTestSample,
  PathSample,
  rttSample,
  type Sample,
  SiteId,
  type TunnelId,
  tunnelId,
} from "@net-perf/engine"
import { LaneQueue } from "./EventQueue.js"
import { FloodGraph } from "./Flooding.js"
import { BLACKHOLE, classifyDestination, DEAD, DELIVERED, ForwardingTable } from "./Forwarding.js"
import type { ModelMesh } from "./Mesh.js"
import { ModelNetwork } from "./ModelNetwork.js"
import { Prng } from "./Prng.js"
import { defaultProbeModelConfig, echoRttMs, lossTestReceived, type ProbeModelConfig, transitMs } from "./ProbeModel.js"
import {
  type EventRecord,
  emptyReportAccumulators,
  type ReportAccumulators,
  type RunReport,
  summarise,
} from "./Report.js"

/** One route as the simulator needs it from an engine decision. */
export interface RouteLike {
  readonly destination: number
  readonly nextHop: number | null
  readonly tunnel: { readonly family: number } | null
  /** Destination-owned sequence number (see `RunConfig.wakeOnMessage` for when a change is advertised at once). */
  readonly seqno?: number
  /** Routes exist but none is feasible: the site asked the destination for a new seqno. */
  readonly starved?: boolean
  /** Route metric (ms-equivalent), read only with `ExchangeConfig.metricTrigger`. */
  readonly metricMs?: number
}

/**
 * A decision's routes as columns (the engine's `RouteColumns`): read instead of `routes` when
 * present, so a decision needs no route objects (speed only; the same values).
 */
export interface RouteColumnsLike {
  readonly count: number
  readonly destination: ArrayLike<number>
  /** −1 = no route. */
  readonly nextHop: ArrayLike<number>
  /** 0 = no tunnel. */
  readonly family: ArrayLike<number>
  readonly seqno: ArrayLike<number>
  /** 1 = starved. */
  readonly starved: ArrayLike<number>
  /** Read only with `ExchangeConfig.metricTrigger`. */
  readonly metricMs?: ArrayLike<number>
}

/** What the simulator drives at each site: the engine's NodeRouter satisfies this structurally. */
export interface SiteRouter<M> {
  observe(sample: Sample): void
  receiveLinkState(message: M, nowMillis: number): void
  advertise(nowMillis: number): M
  decide(nowMillis: number): { readonly routes: ReadonlyArray<RouteLike>; readonly columns?: RouteColumnsLike }
  pathProbeRequests?(nowMillis: number): ReadonlyArray<{
    readonly path: ReadonlyArray<number>
    readonly families: ReadonlyArray<0 | 4 | 6>
    readonly notBeforeMillis: number
  }>
  setBgpPaths?(paths: ReadonlyArray<BgpPathLike>): void
  /** Own destination sequence number (raised by peers' requests; a change is advertised at once). */
  readonly seqno?: number
  /** Own seqno requests added so far (only grows; relayed ones not), read only with `ExchangeConfig.requestTrigger`. */
  readonly requestsAdded?: number
  /**
   * Whether a starved site waits for a new seqno of `destination` now (the engine's
   * `NodeRouter.seqnoUrgent`): a route's changed seqno is advertised at once only then, as the
   * daemon's trigger does. Absent: every changed seqno is urgent.
   */
  seqnoUrgent?(destination: number, nowMillis: number): boolean
}

/** What the simulator reads from a message (for wake-ups): the origin's route per destination. */
export interface MessageRoutes {
  readonly routes: ReadonlyArray<{
    readonly destination: number
    readonly nextHop: number | null
    readonly seqno: number
    /** When present, null = a retraction (no next hop, whatever `nextHop` says). */
    readonly distanceMs?: number | null
  }>
}

/** A site restart: its daemon is down for `downMillis` (no probes, echoes or messages; kernel routes stay), then comes back with a fresh engine. */
export interface SiteRestart {
  readonly site: number
  readonly atMillis: number
  readonly downMillis: number
}

export interface BgpPathLike {
  readonly prefix: string
  readonly prefixFamily: Family
  readonly asPath: ReadonlyArray<number>
  readonly nextHop: string
  readonly interface: string
  readonly primary: boolean
}

export interface ExchangeConfig {
  /** Period of each site's full advertisement. */
  readonly advertiseIntervalMillis: number
  /** Also advertise at once when a site's installed forwarding changed (triggered update). */
  readonly triggeredUpdates: boolean
  /** Base one-way delay of a link-state message. */
  readonly delayMillis: number
  /** Extra uniform delay in [0, jitter): more than the advertise interval reorders messages. */
  readonly delayJitterMillis: number
  readonly lossRatio: number
  /**
   * "flood": each site relays every new message to its tunnel peers (the daemon's exchange), so a
   * message travels hop by hop over tunnels that are up, delay and loss applying per hop;
   * "direct": every site gets every message straight from its origin (one delay, one loss draw).
   */
  readonly relay: "flood" | "direct"
  /**
   * The daemon's trigger (node-runtime AdvertTrigger) on top of the model's: also advertise at
   * once when a route's metric moved by more than max(absoluteMs, relative × the advertised
   * metric) or its starved flag changed since this site's last advertisement, and every
   * advertisement, triggered or periodic, restarts the periodic interval (the daemon's
   * lastAdvertMillis). Default: the daemon's thresholds (`defaultAdvertTriggerThresholds`, since
   * 27 Nov). `false`: only forwarding and seqno changes trigger and the periodic advertisement
   * keeps its own beat (the model's default before 27 Nov).
   */
  readonly metricTrigger: AdvertTriggerThresholds | false
  /**
   * Also advertise at once when the site added or renewed a seqno request of its own since its
   * last advertisement (`SiteRouter.requestsAdded`; relayed requests wait for the periodic
   * message since 28 Nov, as in the daemon): a request for a better but infeasible route
   * changes no starved flag, so without this it waits for the periodic message. Default true
   * (the daemon since 27 Nov); false before.
   */
  readonly requestTrigger: boolean
}

/**
 * The daemon's exchange since 27 Nov: a 2 s advertisement period (node-runtime
 * `routing.advertiseIntervalMillis`), its metric trigger and an advertisement at once on a new
 * seqno request. The model's earlier default: `{ advertiseIntervalMillis: 1000, metricTrigger:
 * false, requestTrigger: false }` (`legacyExchange`).
 */
export const defaultExchangeConfig: ExchangeConfig = {
  advertiseIntervalMillis: 2000,
  triggeredUpdates: true,
  delayMillis: 20,
  delayJitterMillis: 30,
  lossRatio: 0,
  relay: "flood",
  metricTrigger: defaultAdvertTriggerThresholds,
  requestTrigger: true,
}

/** The model's exchange before 27 Nov (1 s adverts, no metric or request trigger), to merge over a scenario's. */
export const legacyExchange: Partial<ExchangeConfig> = {
  advertiseIntervalMillis: 1000,
  metricTrigger: false,
  requestTrigger: false,
}

/** When a path counts as good for reaction times: delivered, and within this slack of the oracle. */
export interface GoodPathSlack {
  readonly relative: number
  readonly absoluteMs: number
}

export interface RunConfig<M> {
  readonly name: string
  readonly seed: number
  readonly mesh: ModelMesh
  /** Total simulated time, start-up included; link timelines count from 0. */
  readonly durationMillis: number
  readonly warmupMillis: number
  /** Added to simulated time when talking to engines, so they see plausible epoch milliseconds. */
  readonly epochMillis?: number
  readonly probe?: Partial<ProbeModelConfig>
  readonly exchange?: Partial<ExchangeConfig>
  /** Each site runs decide() this often (and once more right after each lost probe). */
  readonly decideIntervalMillis?: number
  readonly decideOnLoss?: boolean
  /**
   * The daemon decides at once on every message and advertises at once when a route's next hop,
   * seqno or metric changed. Doing both for every message would cost N² deliveries per change, so
   * the model decides at once (after `wakeDelayMillis`, at most every `wakeMinIntervalMillis`)
   * only on what can change its forwarding soon: a peer it forwards through (or a peer offering a
   * destination it is starved for) changed that route's next hop or seqno, or withdrew it (a new
   * seqno is the answer to a seqno request travelling back); a request raised its own seqno; the
   * first echo reply after a loss. It advertises at once when its forwarding or its own seqno
   * changed, or a route's seqno differs from the one it last advertised while the seqno is urgent
   * (`SiteRouter.seqnoUrgent`: a starved site asked for it; the daemon's trigger since session 11;
   * session 10: every route's seqno change; before: only while some site was starved for it, a
   * read of every site's state). Everything else waits for the periodic decide and advertisement.
   * Default true.
   */
  readonly wakeOnMessage?: boolean
  readonly wakeDelayMillis?: number
  readonly wakeMinIntervalMillis?: number
  /** Daemon restarts (engine state lost, new incarnation). */
  readonly restarts?: ReadonlyArray<SiteRestart>
  /** Stretch vs oracle is sampled this often (every pair, every sample). */
  readonly stretchSampleMillis?: number
  readonly goodSlack?: Partial<GoodPathSlack>
  /** `restarted`: the router replaces one that was lost in a restart (a fresh engine, new incarnation). */
  readonly makeRouter: (self: number, restarted: boolean) => SiteRouter<M>
  /** Reads a message's routes, for wake-ups on route changes (without it, only the periodic decide reads messages). */
  readonly describeMessage?: (message: M) => MessageRoutes
  /** Feed each engine BGP paths modelled on the topology (needed by the BGP algorithms). */
  readonly bgpPaths?: boolean
  /** Size of a message in bytes, for the overhead figure (sampled once per site). */
  readonly messageBytes?: (message: M) => number
  /** Keep per-event details in the report. */
  readonly keepEventDetails?: boolean
  /**
   * 1 (default) or 2: the sites split into two halves, each run by a worker thread in windows of
   * `lookaheadMillis`, the report identical to one thread's. Honoured by `runScenario` (a worker
   * rebuilds its routers from the scenario's data; `runModel` itself runs one thread).
   */
  readonly threads?: 1 | 2
}

type Ev =
  | { readonly k: 0; readonly p: number; readonly g: number; readonly burst: boolean } // prober timer
  | { readonly k: 1; readonly p: number; readonly rttMs: number; readonly sentAt: number } // echo reply
  | { readonly k: 8; readonly p: number; readonly sentAt: number } // miss timeout
  | { readonly k: 9; readonly p: number; readonly sentAt: number } // loss timeout
  | { readonly k: 2; readonly p: number } // loss test
  | { readonly k: 3; readonly s: number } // site tick: decide, install, advertise
  // (link-state deliveries: numbers in the queue's delivery lane, see LaneQueue and `queueDelivery`)
  | { readonly k: 7; readonly s: number; readonly sample: PathSample } // pathping result
  | { readonly k: 10; readonly s: number } // wake-up decide

/**
 * What happens to the whole mesh at an instant known before the run (truth change points, daemon
 * restarts): handled first in its millisecond, before any site's event, by every part of a run.
 */
interface GlobalEvent {
  readonly atMillis: number
  /** 0: truth change `i`; 1: site `i`'s daemon goes down; 2: it comes back. */
  readonly kind: 0 | 1 | 2
  readonly i: number
}

/** One advertisement as sent, shared by every delivery (one copy per thread it reaches). */
export interface Sent {
  /** Slot in the in-flight table while deliveries of it are queued, else −1. */
  id: number
  /** Deliveries of it still queued. */
  pending: number
  readonly origin: number
  /** The origin's count of messages before this one: orders deliveries of one millisecond. */
  readonly seq: number
  readonly message: unknown
  /** Destinations whose next hop (or reachability) differs from the origin's previous message. */
  readonly changedHop: Int32Array
  /** Destinations whose seqno alone differs. */
  readonly changedSeqno: Int32Array
  /**
   * The origin began or stopped offering routes (the end or the start of its start-up hold-down):
   * the engine counts a site that offers none as no transit, so every site's graph changed.
   */
  readonly transitChanged: boolean
}

interface OpenEvent {
  readonly atMillis: number
  readonly hard: boolean
  readonly kind: EventRecord["kind"]
  readonly affected: number
  readonly remaining: Set<number>
}

const prefixOf = (site: number): string => `10.201.${site}.0/24`

/**
 * BIRD's view of the topology, as the BGP algorithms need it: for each destination, one path
 * per neighbour that has a route (the neighbour's shortest AS path; paths through ourselves are
 * rejected, as BGP does). Static: BGP sessions are assumed up (their hold timers are far slower
 * than the probes, so within a run the engine's measurements, not BGP, notice failures).
 */
export const modelBgpPaths = (mesh: ModelMesh, self: number): ReadonlyArray<BgpPathLike> => {
  const n = mesh.sites
  const family = mesh.families[0] ?? 4
  const out: BgpPathLike[] = []
  for (let d = 0; d < n; d++) {
    if (d === self) continue
    // BFS from d over the topology without `self`: hop distances towards d.
    const dist = new Int32Array(n).fill(-1)
    dist[d] = 0
    const queue = [d]
    for (let qi = 0; qi < queue.length; qi++) {
      const x = queue[qi] as number
      for (const y of mesh.neighbours[x] ?? []) {
        if (y === self || dist[y] !== -1) continue
        dist[y] = (dist[x] as number) + 1
        queue.push(y)
      }
    }
    const candidates: Array<{ hops: number; path: number[]; via: number }> = []
    for (const nb of mesh.neighbours[self] ?? []) {
      if (dist[nb] === -1) continue
      const path = [nb]
      let x = nb
      while (x !== d) {
        const next = (mesh.neighbours[x] ?? []).find((y) => y !== self && dist[y] === (dist[x] as number) - 1)
        if (next === undefined) break
        path.push(next)
        x = next
      }
      candidates.push({ hops: path.length, path, via: nb })
    }
    candidates.sort((a, b) => a.hops - b.hops || a.via - b.via)
    candidates.forEach((c, i) => {
      out.push({
        prefix: prefixOf(d),
        prefixFamily: 4,
        asPath: c.path.map((s) => 64512 + s),
        nextHop: `10.201.${c.via}.1`,
        interface: `wg${self}.${c.via}_v${family}`,
        primary: i === 0,
      })
    })
  }
  return out
}

/** A run's settings with the defaults filled in. */
interface Resolved {
  readonly probe: ProbeModelConfig
  readonly exchange: ExchangeConfig
  readonly decideIntervalMillis: number
  readonly epoch: number
  readonly warmup: number
  readonly end: number
}

const resolve = <M>(config: RunConfig<M>): Resolved => ({
  probe: { ...defaultProbeModelConfig, ...config.probe },
  exchange: { ...defaultExchangeConfig, ...config.exchange },
  decideIntervalMillis: config.decideIntervalMillis ?? 1000,
  epoch: config.epochMillis ?? 1_800_000_000_000,
  warmup: config.warmupMillis,
  end: config.durationMillis,
})

/** A site's first instants: per prober its first echo and loss test, then its first tick (decide and advertisement). */
interface StartInstants {
  readonly echoAt: Float64Array
  readonly lossTestAt: Float64Array
  readonly tickAt: number
}

/** Draws a site's first instants from its phase stream, in this order: per prober echo then loss test, then the tick. */
const startInstants = (
  probe: ProbeModelConfig,
  decideIntervalMillis: number,
  phase: Prng,
  probers: number,
): StartInstants => {
  const echoAt = new Float64Array(probers)
  const lossTestAt = new Float64Array(probers)
  for (let j = 0; j < probers; j++) {
    echoAt[j] = phase.next() * probe.intervalMillis
    if (probe.lossTestIntervalMillis > 0) lossTestAt[j] = phase.next() * probe.lossTestIntervalMillis
  }
  return { echoAt, lossTestAt, tickAt: phase.next() * decideIntervalMillis }
}

/**
 * Each site's first tick (ms), as the run draws it: a site decides and advertises at this phase
 * of every decide interval unless woken. For splitting the sites over threads (`ModelThreads`).
 */
export const firstTicks = <M>(config: RunConfig<M>): Float64Array => {
  const { probe, decideIntervalMillis } = resolve(config)
  // One prober per directed link, at its `from` end (as `makeSitePart` makes them).
  const probers = new Int32Array(config.mesh.sites)
  for (const link of config.mesh.links) probers[link.from]!++
  return Float64Array.from(
    probers,
    (count, s) => startInstants(probe, decideIntervalMillis, Prng.derive(config.seed, "phase", s), count).tickAt,
  )
}

/**
 * How far ahead a run split over threads may run each part alone: nothing one site does reaches
 * another sooner than this (whole ms). Sites interact only through link-state messages — every
 * flooded hop, every direct message and a restart's catch-up cost at least `delayMillis` (the
 * jitter only adds) — while probes, restarts and truth changes are known to every part (restarts
 * and truth changes are scheduled before the run; an echo's far end is the link's truth and the
 * remote daemon's up/down, a function of time). 0 = the run cannot be split.
 */
export const lookaheadMillis = (exchange: Partial<ExchangeConfig> | undefined): number =>
  Math.max(0, Math.floor(exchange?.delayMillis ?? defaultExchangeConfig.delayMillis))

/**
 * The sites' side of a run: the engines, probers and the exchange of the sites a part owns. Its
 * only outputs are its installs (a log the observer replays), its counters, and the deliveries
 * it sends to sites it does not own (`remote`), which reach them ≥ `lookaheadMillis` later.
 */
export interface SitePart {
  /** Runs every event before `untilMillis` (and before the end of the run). */
  runUntil(untilMillis: number): void
  /** A delivery from another part (not before the time this part has reached). */
  inject(atMillis: number, recipient: number, sent: Sent): void
  /** Route changes since the log was last emptied: (t, site, destination, next hop or −1, family or 0) per change. */
  readonly installs: number[]
  readonly acc: ReportAccumulators
}

export const makeSitePart = <M>(
  config: RunConfig<M>,
  owns: Uint8Array,
  remote?: (atMillis: number, recipient: number, sent: Sent) => void,
): SitePart => {
  const { probe, exchange, decideIntervalMillis, epoch, warmup, end } = resolve(config)
  const decideOnLoss = config.decideOnLoss ?? true
  const wakeOnMessage = config.wakeOnMessage ?? true
  const wakeDelayMillis = config.wakeDelayMillis ?? 2
  const wakeMinIntervalMillis = config.wakeMinIntervalMillis ?? 100

  const net = new ModelNetwork(config.mesh, config.seed)
  const n = net.sites
  // Only this part's rows are filled (a site reads its own row; the observer keeps the whole table).
  const table = new ForwardingTable(net)
  const queue = new LaneQueue<Ev>()
  // One random stream per site (probes, phases) and per origin (the flood's delays and losses):
  // a site's draws do not depend on what other sites did, so the sites can run on several threads.
  const prngProbe: Prng[] = []
  const prngPhase: Prng[] = []
  const prngExchange: Prng[] = []
  for (let s = 0; s < n; s++) {
    prngProbe.push(Prng.derive(config.seed, "probe", s))
    prngPhase.push(Prng.derive(config.seed, "phase", s))
    prngExchange.push(Prng.derive(config.seed, "exchange", s))
  }
  const acc = emptyReportAccumulators(n)
  const installs: number[] = []

  const bgpPathsOf = (s: number): ReadonlyArray<BgpPathLike> | undefined =>
    config.bgpPaths === true ? modelBgpPaths(config.mesh, s) : undefined
  const makeRouter = (s: number, restarted: boolean): SiteRouter<M> => {
    const r = config.makeRouter(s, restarted)
    const paths = bgpPathsOf(s)
    if (paths !== undefined) r.setBgpPaths?.(paths)
    return r
  }
  const routers: Array<SiteRouter<M> | undefined> = []
  for (let s = 0; s < n; s++) routers.push(owns[s] === 1 ? makeRouter(s, false) : undefined)
  const flood = exchange.relay === "flood" ? new FloodGraph(net) : undefined

  // Probers: one per directed tunnel end (each site probes its own tunnels).
  const proberTunnel: TunnelId[] = []
  const proberLocal: number[] = []
  const proberFwd: number[] = []
  const proberRev: number[] = []
  for (let li = 0; li < net.truths.length; li++) {
    const from = net.linkFrom[li] as number
    const to = net.linkTo[li] as number
    const fam = net.linkFamily[li] as Family
    proberTunnel.push(tunnelId(from, to, fam))
    proberLocal.push(from)
    proberFwd.push(li)
    proberRev.push(net.linkIndex(to, from, fam))
  }
  const proberCount = proberTunnel.length
  const probersOf: number[][] = Array.from({ length: n }, () => [])
  for (let p = 0; p < proberCount; p++) probersOf[proberLocal[p]!]!.push(p)
  const proberRemote = Int32Array.from(proberTunnel, (t) => t.remote)
  /** The last reported sample of this prober was a loss (its next reply wakes the site, as in the daemon). */
  const lastLost = new Uint8Array(proberCount)
  // EchoProber state per prober (see ProbeModel.ts).
  const misses = new Int32Array(proberCount)
  const generation = new Int32Array(proberCount)
  const srttMs = new Float64Array(proberCount).fill(Number.NaN)
  const rttVarMs = new Float64Array(proberCount).fill(Number.NaN)
  const bursting = new Uint8Array(proberCount)
  const declaredDead = new Uint8Array(proberCount)
  const debtProbes = new Float64Array(proberCount)
  const latestRepliedSentAt = new Float64Array(proberCount).fill(Number.NEGATIVE_INFINITY)
  const nextAdvertiseAt = new Float64Array(n)
  // Restarts: a site's daemon is down (siteDown, known to every part: global events) and its
  // events from before `siteUpAt` are void.
  const siteDown = new Uint8Array(n)
  const siteUpAt = new Float64Array(n)
  const wakePending = new Uint8Array(n)
  const lastWakeAt = new Float64Array(n).fill(Number.NEGATIVE_INFINITY)
  // Per (site, destination) the seqno of the latest decision and of the last advertisement, and
  // each site's own seqno: an own change is advertised at once, a route's only while urgent (the
  // daemon's trigger compares with what it advertised last).
  const routeSeqno = new Float64Array(n * n)
  const advertisedSeqno = new Float64Array(n * n)
  const ownSeqno = new Float64Array(n)
  // Per (site, destination): starved (routes exist, none feasible).
  const starved = new Uint8Array(n * n)
  // Per (origin, destination) the route in the origin's previous message, for `Sent.changed`.
  const sentNextHop = new Int32Array(n * n).fill(-2)
  const sentSeqno = new Float64Array(n * n).fill(-1)
  // Per origin: its last message offered a route (1), none (0), no message yet (2).
  const sentOffers = new Uint8Array(n).fill(2)
  const lastSent: Array<Sent | undefined> = new Array(n).fill(undefined)
  const sentCount = new Float64Array(n)
  // metricTrigger: per (site, destination) the metric and starved flag of the latest decision and
  // of the last advertisement (NaN = never advertised, so the first decision triggers).
  const metricTrigger = exchange.metricTrigger === false ? undefined : exchange.metricTrigger
  const decidedMetric = metricTrigger === undefined ? undefined : new Float64Array(n * n).fill(Number.NaN)
  const advertisedMetric = metricTrigger === undefined ? undefined : new Float64Array(n * n).fill(Number.NaN)
  const advertisedStarved = metricTrigger === undefined ? undefined : new Uint8Array(n * n)
  // requestTrigger: per site the router's requestsAdded at its last advertisement.
  const requestTrigger = exchange.requestTrigger === true
  const advertisedRequests = new Float64Array(n)
  /** Notes site s's route to d as decided; true when the daemon's trigger would advertise it at once. */
  const noteDecidedMetric = (s: number, d: number, metricMs: number, isStarved: number): boolean => {
    if (decidedMetric === undefined || metricTrigger === undefined || d === s || d < 0 || d >= n) return false
    const i = s * n + d
    decidedMetric[i] = metricMs
    return advertMetricMoved(advertisedMetric![i]!, metricMs, metricTrigger) || advertisedStarved![i] !== isStarved
  }
  // Start: each owned site draws its probers' phases, then its tick's, from its own stream.
  for (let s = 0; s < n; s++) {
    if (owns[s] !== 1) continue
    const probers = probersOf[s]!
    const start = startInstants(probe, decideIntervalMillis, prngPhase[s]!, probers.length)
    for (let j = 0; j < probers.length; j++) {
      const p = probers[j]!
      queue.push(start.echoAt[j]!, { k: 0, p, g: 0, burst: false })
      if (probe.lossTestIntervalMillis > 0) queue.push(start.lossTestAt[j]!, { k: 2, p })
    }
    queue.push(start.tickAt, { k: 3, s })
    nextAdvertiseAt[s] = start.tickAt
  }
  const changes = net.changePoints(0, end)
  const globals = globalEventsOf(changes, config.restarts ?? [], n)
  let globalCursor = 0

  const measured = (t: number) => t >= warmup

  // Messages with queued deliveries, by slot (a delivery in the queue is `slot * n + recipient`:
  // ≈ 25 000 deliveries per simulated second at N = 200, an object each was a large share of the
  // collector's work); freed slots are reused.
  const inFlight: Array<Sent | undefined> = []
  const freeSlots: number[] = []
  const queueDelivery = (atMillis: number, recipient: number, sent: Sent): void => {
    if (owns[recipient] !== 1) {
      remote?.(atMillis, recipient, sent)
      return
    }
    if (sent.pending === 0) {
      const id = freeSlots.pop() ?? inFlight.length
      inFlight[id] = sent
      sent.id = id
    }
    sent.pending++
    queue.pushDelivery(atMillis, sent.id * n + recipient)
  }
  const takeDelivery = (id: number): Sent => {
    const sent = inFlight[id]!
    if (--sent.pending === 0) {
      inFlight[id] = undefined
      sent.id = -1
      freeSlots.push(id)
    }
    return sent
  }
  /** Same-millisecond deliveries in (recipient, origin, message) order, whichever part sent them first. */
  const deliveryOrder = (a: number, b: number): number => {
    const ia = Math.floor(a / n)
    const ib = Math.floor(b / n)
    const ra = a - ia * n
    const rb = b - ib * n
    if (ra !== rb) return ra - rb
    const sa = inFlight[ia]!
    const sb = inFlight[ib]!
    return sa.origin - sb.origin || sa.seq - sb.seq
  }
  const sortDeliveries = (ds: number[]): void => {
    for (let i = 1; i < ds.length; i++)
      if (deliveryOrder(ds[i - 1]!, ds[i]!) > 0) {
        ds.sort(deliveryOrder)
        return
      }
  }

  const noChange = new Int32Array(0)
  const sentOf = (s: number, msg: M): Sent => {
    const seq = sentCount[s]!++
    let changedHop = noChange
    let changedSeqno = noChange
    let transitChanged = false
    if (config.describeMessage !== undefined) {
      const hop: number[] = []
      const seqChanged: number[] = []
      let offers = 0
      for (const r of config.describeMessage(msg).routes) {
        const d = r.destination
        if (d < 0 || d >= n) continue
        const i = s * n + d
        const nh = r.distanceMs === null ? -1 : (r.nextHop ?? -1)
        if (d !== s && nh >= 0) offers = 1
        if (sentNextHop[i] !== -2) {
          if (sentNextHop[i] !== nh) hop.push(d)
          else if (sentSeqno[i] !== r.seqno) seqChanged.push(d)
        }
        sentNextHop[i] = nh
        sentSeqno[i] = r.seqno
      }
      if (hop.length > 0) changedHop = Int32Array.from(hop)
      if (seqChanged.length > 0) changedSeqno = Int32Array.from(seqChanged)
      transitChanged = swapTransit(s, offers)
    }
    return { id: -1, pending: 0, origin: s, seq, message: msg, changedHop, changedSeqno, transitChanged }
  }

  /** Records whether origin s offers routes now; true when that changed since its last message. */
  const swapTransit = (s: number, offers: number): boolean => {
    const before = sentOffers[s]
    sentOffers[s] = offers
    return before !== offers && before !== 2
  }

  const deliverAdvert = (s: number, t: number): void => {
    const router = routers[s]!
    const msg = router.advertise(epoch + t)
    if (requestTrigger) advertisedRequests[s] = router.requestsAdded ?? 0
    advertisedSeqno.set(routeSeqno.subarray(s * n, s * n + n), s * n)
    if (decidedMetric !== undefined) {
      advertisedMetric!.set(decidedMetric.subarray(s * n, s * n + n), s * n)
      advertisedStarved!.set(starved.subarray(s * n, s * n + n), s * n)
      nextAdvertiseAt[s] = t + exchange.advertiseIntervalMillis
    }
    if (measured(t)) {
      acc.messagesSent[s]!++
      if (config.messageBytes !== undefined && acc.messageBytesSampled[s] === 0)
        acc.messageBytesSampled[s] = config.messageBytes(msg)
    }
    const sent = sentOf(s, msg)
    lastSent[s] = sent
    const prng = prngExchange[s]!
    if (flood !== undefined) {
      const arrival = flood.arrivals(s, exchange, prng, siteDown)
      for (let r = 0; r < n; r++) {
        const delay = arrival[r] as number
        if (r !== s && delay < Number.POSITIVE_INFINITY) queueDelivery(t + delay, r, sent)
      }
      return
    }
    for (let r = 0; r < n; r++) {
      if (r === s) continue
      if (exchange.lossRatio > 0 && prng.next() < exchange.lossRatio) continue
      const delay =
        exchange.delayMillis + (exchange.delayJitterMillis > 0 ? prng.next() * exchange.delayJitterMillis : 0)
      queueDelivery(t + delay, r, sent)
    }
  }

  /** Schedules a wake-up decide of site s (coalesced; at most one per wakeMinIntervalMillis). */
  const wake = (s: number, t: number): void => {
    if (wakePending[s] === 1 || siteDown[s] === 1) return
    wakePending[s] = 1
    queue.push(Math.max(t + wakeDelayMillis, (lastWakeAt[s] as number) + wakeMinIntervalMillis), { k: 10, s })
  }

  /**
   * Does this delivery change something site r forwards on (so the daemon's decide-per-message
   * matters)? Read from r's own state only: the route's next hop at the origin changed (or a
   * seqno changed: the answer to a seqno request on its way back) for a destination r forwards
   * through the origin or is starved for; or the origin began or stopped offering routes, which
   * makes it a transit in r's graph or takes it out (the daemon decides on every message).
   */
  const concerns = (r: number, sent: Sent): boolean => {
    if (sent.transitChanged) return true
    const o = sent.origin
    for (const d of sent.changedHop) {
      if (d === r) continue
      if (table.nextHop[r * n + d] === o || starved[r * n + d] === 1) return true
    }
    for (const d of sent.changedSeqno) {
      if (d === r) continue
      if (table.nextHop[r * n + d] === o || starved[r * n + d] === 1) return true
    }
    return false
  }

  /** Decides and installs; true when something worth advertising at once changed (forwarding or a seqno). */
  const decideAndInstall = (s: number, t: number): boolean => {
    const router = routers[s]!
    const decision = router.decide(epoch + t)
    if (measured(t)) acc.decides++
    let changed = false
    const own = router.seqno ?? 0
    if (own !== ownSeqno[s]) {
      ownSeqno[s] = own
      changed = true
    }
    if (requestTrigger && (router.requestsAdded ?? 0) !== advertisedRequests[s]) changed = true
    const columns = decision.columns
    if (columns !== undefined) {
      const metrics = decidedMetric === undefined ? undefined : columns.metricMs
      for (let k = 0; k < columns.count; k++) {
        const nh = columns.nextHop[k]!
        const nextHop = nh < 0 ? null : nh
        const fam = columns.family[k]!
        if (decidedMetric !== undefined) {
          const m = metrics === undefined ? Number.NaN : metrics[k]!
          if (noteDecidedMetric(s, columns.destination[k]!, m, columns.starved[k] === 1 ? 1 : 0)) changed = true
        }
        if (
          installRoute(
            s,
            t,
            columns.destination[k]!,
            columns.starved[k] === 1,
            columns.seqno[k]!,
            nextHop,
            nextHop === null || fam === 0 ? null : fam,
            changed,
          )
        )
          changed = true
      }
      return changed
    }
    for (const route of decision.routes) {
      const family = route.nextHop === null ? null : (route.tunnel?.family ?? null)
      if (decidedMetric !== undefined) {
        const m = route.metricMs ?? Number.NaN
        if (noteDecidedMetric(s, route.destination, m, route.starved === true ? 1 : 0)) changed = true
      }
      if (
        installRoute(s, t, route.destination, route.starved === true, route.seqno ?? 0, route.nextHop, family, changed)
      )
        changed = true
    }
    return changed
  }

  /**
   * One route of site s's decision: starvation, seqno and forwarding; true when worth advertising
   * at once. A seqno that differs from the one last advertised goes out at once only while urgent
   * (`SiteRouter.seqnoUrgent`: a starved site asked for it), as the daemon's trigger does
   * (node-runtime AdvertTrigger, session 11); otherwise with the periodic advertisement. Asked only
   * when nothing else in this decision triggers already (`changedSoFar`; the answer would not
   * matter).
   */
  const installRoute = (
    s: number,
    t: number,
    d: number,
    routeStarved: boolean,
    seqno: number,
    nextHop: number | null,
    family: number | null,
    changedSoFar: boolean,
  ): boolean => {
    if (d === s || d < 0 || d >= n) return false
    let changed = false
    const i = s * n + d
    starved[i] = routeStarved ? 1 : 0
    routeSeqno[i] = seqno
    if (!changedSoFar && seqno !== advertisedSeqno[i]) {
      const router = routers[s]!
      changed = router.seqnoUrgent === undefined || router.seqnoUrgent(d, epoch + t)
    }
    if (table.install(s, d, nextHop, family)) {
      changed = true
      installs.push(t, s, d, table.nextHop[i]!, table.family[i]!)
      if (measured(t)) {
        acc.switches++
        acc.switchesPerPair[s * n + d]!++
      }
    }
    return changed
  }

  const pathProbe = (s: number, t: number): void => {
    const reqs = routers[s]!.pathProbeRequests?.(epoch + t) ?? []
    const prng = prngProbe[s]!
    for (const req of reqs) {
      const start = Math.max(t, req.notBeforeMillis - epoch)
      let received = 0
      let sumMs = 0
      for (let k = 0; k < probe.pathProbePackets; k++) {
        let total = 0
        let ok = true
        for (let h = 0; h + 1 < req.path.length && ok; h++) {
          const a = req.path[h] as number
          const b = req.path[h + 1] as number
          const fam = req.families[h] ?? 0
          let li = fam === 0 ? -1 : net.linkIndex(a, b, fam)
          if (fam === 0) {
            // Family 0 follows the kernel: the installed route to b if it goes to b, else any tunnel to b.
            if (owns[a] !== 1)
              throw new Error(
                `model: site ${s}'s path probe follows site ${a}'s installed route, which another thread holds (run with threads: 1)`,
              )
            const inst = table.link[a * n + b] as number
            li = inst >= 0 && table.nextHop[a * n + b] === b ? inst : -1
            for (const f of net.families) if (li < 0) li = net.linkIndex(a, b, f)
          }
          const hop = li < 0 ? null : transitMs(net, li, start + total, prng)
          if (hop === null) ok = false
          else total += hop
        }
        if (ok && total <= 2000) {
          received++
          sumMs += total
        }
      }
      if (measured(t)) acc.pathProbesSent[s]! += probe.pathProbePackets
      const at = start + (received > 0 ? sumMs / received : 2000)
      const sample = new PathSample(
        {
          path: req.path.map((x) => SiteId.make(x)),
          families: [...req.families],
          atMillis: epoch + Math.floor(at),
          rttMs: received > 0 ? sumMs / received : null,
          sent: probe.pathProbePackets,
          received,
        },
        true,
      )
      queue.push(at, { k: 7, s, sample })
    }
  }

  const siteTick = (s: number, t: number): void => {
    if (siteDown[s] === 1) return
    const changed = decideAndInstall(s, t)
    if (t >= (nextAdvertiseAt[s] as number) || (exchange.triggeredUpdates && changed)) {
      deliverAdvert(s, t)
      if (t >= (nextAdvertiseAt[s] as number)) nextAdvertiseAt[s] = t + exchange.advertiseIntervalMillis
    }
    pathProbe(s, t)
  }

  const missTimeoutMillis = (p: number): number => {
    const srtt = srttMs[p]!
    return Number.isNaN(srtt)
      ? probe.maxMissTimeoutMillis
      : Math.min(probe.maxMissTimeoutMillis, Math.max(probe.minMissTimeoutMillis, 1.5 * srtt + 4 * rttVarMs[p]!))
  }

  const sendEcho = (p: number, t: number): void => {
    const local = proberLocal[p]!
    // A site whose daemon is down answers no echo.
    const rtt =
      siteDown[proberRemote[p]!] === 1
        ? null
        : echoRttMs(net, proberFwd[p]!, proberRev[p]!, t, prngProbe[local]!, probe)
    if (measured(t)) acc.probesSent[local]!++
    if (rtt !== null) queue.push(t + rtt, { k: 1, p, rttMs: rtt, sentAt: t })
    const missAfter = missTimeoutMillis(p)
    // As the daemon's prober does: a probe unanswered at its miss timeout is reported lost at once
    // (a late reply is still reported when it comes, as proof of life).
    if (rtt === null || rtt > missAfter) {
      queue.push(t + missAfter, { k: 8, p, sentAt: t })
      queue.push(t + missAfter, { k: 9, p, sentAt: t })
    }
  }

  /** The prober's single timer: re-arming it cancels the pending one. */
  const scheduleProber = (p: number, t: number, burst: boolean): void => {
    generation[p]!++
    const spread =
      !burst && probe.intervalJitterRatio > 0
        ? 1 + probe.intervalJitterRatio * (2 * prngProbe[proberLocal[p]!]!.next() - 1)
        : 1
    const delay = burst ? probe.burstIntervalMillis : probe.intervalMillis * (debtProbes[p]! > 0 ? 1.5 : 1) * spread
    queue.push(t + delay, { k: 0, p, g: generation[p]!, burst })
  }

  const siteTickOnLoss = (s: number, t: number): void => {
    const changed = decideAndInstall(s, t)
    if (exchange.triggeredUpdates && changed) deliverAdvert(s, t)
  }

  /**
   * The daemon of site s comes back: a fresh engine (new incarnation), a fresh prober (on the
   * part that owns s), and the latest message of every origin from its peers' catch-up (the
   * exchange replays them on reconnect; each part sends its own origins' with the origin's
   * stream). Its kernel routes stayed installed while it was down; its first decisions (in the
   * engine's start-up hold-down) withdraw them.
   */
  const restart = (s: number, t: number): void => {
    siteDown[s] = 0
    siteUpAt[s] = t
    if (owns[s] === 1) {
      routers[s] = makeRouter(s, true)
      ownSeqno[s] = 0
      advertisedMetric?.fill(Number.NaN, s * n, s * n + n)
      advertisedRequests[s] = 0
      nextAdvertiseAt[s] = t
      for (const p of probersOf[s]!) {
        generation[p]!++
        misses[p] = 0
        srttMs[p] = Number.NaN
        rttVarMs[p] = Number.NaN
        bursting[p] = 0
        declaredDead[p] = 0
        debtProbes[p] = 0
        latestRepliedSentAt[p] = Number.NEGATIVE_INFINITY
        lastLost[p] = 0
        queue.push(t + prngPhase[s]!.next() * probe.intervalMillis, { k: 0, p, g: generation[p]!, burst: false })
      }
    }
    for (let o = 0; o < n; o++) {
      const sent = lastSent[o]
      if (o === s || owns[o] !== 1 || sent === undefined || siteDown[o] === 1) continue
      const prng = prngExchange[o]!
      const delay =
        exchange.delayMillis + (exchange.delayJitterMillis > 0 ? prng.next() * exchange.delayJitterMillis : 0)
      queueDelivery(t + delay, s, sent)
    }
  }

  const onGlobal = (g: GlobalEvent, t: number): void => {
    if (g.kind === 0) net.refreshUpOf(changes[g.i]!.links, t)
    else if (g.kind === 1) {
      siteDown[g.i] = 1
      // The prober's timers die with the process.
      if (owns[g.i] === 1) for (const p of probersOf[g.i]!) generation[p]!++
    } else restart(g.i, t)
  }

  const onEvent = (ev: Ev, t: number): void => {
    switch (ev.k) {
      case 0: {
        if (ev.g !== generation[ev.p]) break
        if (ev.burst) {
          debtProbes[ev.p]!++
          sendEcho(ev.p, t)
          scheduleProber(ev.p, t, true)
        } else {
          if (debtProbes[ev.p]! > 0) debtProbes[ev.p] = Math.max(0, debtProbes[ev.p]! - 0.5)
          sendEcho(ev.p, t)
          scheduleProber(ev.p, t, false)
        }
        break
      }
      case 1: {
        const p = ev.p
        const local = proberLocal[p]!
        if (siteDown[local] === 1 || ev.sentAt < (siteUpAt[local] as number)) break
        routers[local]!.observe(rttSample(proberTunnel[p]!, "udp-echo", epoch + ev.sentAt, ev.rttMs))
        // RFC 6298 smoothing, used only for the miss timeout (as the daemon does).
        if (Number.isNaN(srttMs[p]!)) {
          srttMs[p] = ev.rttMs
          rttVarMs[p] = ev.rttMs / 2
        } else {
          rttVarMs[p] = 0.75 * rttVarMs[p]! + 0.25 * Math.abs(srttMs[p]! - ev.rttMs)
          srttMs[p] = 0.875 * srttMs[p]! + 0.125 * ev.rttMs
        }
        if (ev.sentAt > latestRepliedSentAt[p]!) latestRepliedSentAt[p] = ev.sentAt
        if (lastLost[p] === 1) {
          lastLost[p] = 0
          if (wakeOnMessage) wake(local, t)
        }
        misses[p] = 0
        declaredDead[p] = 0
        if (bursting[p] === 1) {
          bursting[p] = 0
          scheduleProber(p, t, false)
        }
        break
      }
      case 8: {
        const p = ev.p
        if (siteDown[proberLocal[p]!] === 1 || ev.sentAt < (siteUpAt[proberLocal[p]!] as number)) break
        // A reply to this or a later probe clears the miss timer.
        if (latestRepliedSentAt[p]! >= ev.sentAt) break
        misses[p]!++
        if (misses[p]! >= probe.deadAfterMisses) {
          declaredDead[p] = 1
          if (bursting[p] === 1) {
            bursting[p] = 0
            scheduleProber(p, t, false)
          }
        } else if (bursting[p] === 0 && declaredDead[p] === 0) {
          bursting[p] = 1
          debtProbes[p]!++
          sendEcho(p, t)
          scheduleProber(p, t, true)
        }
        break
      }
      case 9: {
        const s = proberLocal[ev.p]!
        if (siteDown[s] === 1 || ev.sentAt < (siteUpAt[s] as number)) break
        lastLost[ev.p] = 1
        routers[s]!.observe(rttSample(proberTunnel[ev.p]!, "udp-echo", epoch + ev.sentAt, null))
        if (decideOnLoss) siteTickOnLoss(s, t)
        break
      }
      case 2: {
        const li = proberFwd[ev.p]!
        const local = proberLocal[ev.p]!
        const up = siteDown[local] === 0 && siteDown[proberRemote[ev.p]!] === 0
        const received = up ? lossTestReceived(net, li, t, probe.lossTestPackets, prngProbe[local]!) : 0
        if (received > 0)
          routers[local]!.observe(
            new LossTestSample(
              {
                tunnel: proberTunnel[ev.p]!,
                atMillis: epoch + t,
                sent: probe.lossTestPackets,
                received,
                reordered: 0,
                jitterMs: net.truths[li]!.jitterMs(t),
                rateBitsPerSecond: 0,
              },
              true,
            ),
          )
        queue.push(t + probe.lossTestIntervalMillis, { k: 2, p: ev.p })
        break
      }
      case 3:
        siteTick(ev.s, t)
        queue.push(t + decideIntervalMillis, { k: 3, s: ev.s })
        break
      case 7:
        if (siteDown[ev.s] === 0 && ev.sample.atMillis >= epoch + (siteUpAt[ev.s] as number))
          routers[ev.s]!.observe(ev.sample)
        break
      case 10:
        wakePending[ev.s] = 0
        if (siteDown[ev.s] === 1) break
        lastWakeAt[ev.s] = t
        siteTickOnLoss(ev.s, t)
        break
    }
  }

  let ranUntil = 0
  const runUntil = (untilMillis: number): void => {
    const stop = Math.min(untilMillis, end)
    ranUntil = Math.max(ranUntil, stop)
    for (;;) {
      const qt = queue.peekTime() ?? Number.POSITIVE_INFINITY
      const gt = globalCursor < globals.length ? globals[globalCursor]!.atMillis : Number.POSITIVE_INFINITY
      const t = Math.min(qt, gt)
      if (!(t < stop)) break
      // Global events first in their millisecond, then the deliveries, then the sites' own events.
      while (globalCursor < globals.length && globals[globalCursor]!.atMillis === t)
        onGlobal(globals[globalCursor++]!, t)
      if (qt !== t) continue
      const bucket = queue.popBucket()!
      const deliveries = bucket.deliveries
      if (deliveries.length > 1) sortDeliveries(deliveries)
      for (const ev of deliveries) {
        const id = Math.floor(ev / n)
        const r = ev - id * n
        const sent = takeDelivery(id)
        if (siteDown[r] === 1) continue
        if (measured(t)) acc.messagesReceived[r]!++
        const router = routers[r]!
        const before = router.seqno
        router.receiveLinkState(sent.message as M, epoch + t)
        if (wakeOnMessage && (router.seqno !== before || concerns(r, sent))) wake(r, t)
      }
      for (const ev of bucket.events) onEvent(ev, t)
    }
  }

  /** A delivery from another part: one into the time already run would be lost silently (a thread bug). */
  const inject = (atMillis: number, recipient: number, sent: Sent): void => {
    if (atMillis < ranUntil)
      throw new Error(`model: a delivery for ${atMillis} ms came after the part ran until ${ranUntil} ms`)
    queueDelivery(atMillis, recipient, sent)
  }

  return { runUntil, inject, installs, acc }
}

/** Truth change points and restarts in (time, kind) order: what every part and the observer agree on. */
const globalEventsOf = (
  changes: ReadonlyArray<{ readonly atMillis: number }>,
  restarts: ReadonlyArray<SiteRestart>,
  n: number,
): GlobalEvent[] => {
  const out: GlobalEvent[] = changes.map((c, i) => ({ atMillis: Math.floor(c.atMillis), kind: 0, i }))
  for (const r of restarts) {
    if (r.site < 0 || r.site >= n) continue
    out.push({ atMillis: Math.floor(r.atMillis), kind: 1, i: r.site })
    out.push({ atMillis: Math.floor(r.atMillis + r.downMillis), kind: 2, i: r.site })
  }
  // Stable: at one millisecond, truth changes first, then restarts in the configured order.
  return out.sort((a, b) => a.atMillis - b.atMillis)
}

/**
 * The observer of a run: the whole forwarding table, rebuilt from the parts' install logs, and
 * every figure that needs all sites at once — forwarding classes, loops, blackholes, reaction to
 * truth changes, stretch. At each millisecond: truth changes and stretch samples first (as the
 * parts handle truth changes first), then that millisecond's installs, then the re-classification
 * of the destinations they touched.
 */
export interface RunObserver {
  /** Replays installs (each log time-ordered, all before `untilMillis`) and the observer's own events up to there. */
  advance(untilMillis: number, logs: ReadonlyArray<ArrayLike<number>>): void
  /** Closes the books; `parts` are the sites' counters (added into the report). */
  finish(parts: ReadonlyArray<ReportAccumulators>): RunReport
}

export const makeObserver = <M>(config: RunConfig<M>): RunObserver => {
  const { warmup, end } = resolve(config)
  const stretchSampleMillis = config.stretchSampleMillis ?? 10_000
  const slack: GoodPathSlack = { relative: 0.15, absoluteMs: 5, ...config.goodSlack }
  const net = new ModelNetwork(config.mesh, config.seed)
  const n = net.sites
  const table = new ForwardingTable(net)
  const acc = emptyReportAccumulators(n)
  const changes = net.changePoints(0, end)
  // Own events: truth changes, then stretch samples, by millisecond (k 0: change i; k 1: sample).
  const own: Array<{ readonly atMillis: number; readonly k: 0 | 1; readonly i: number }> = changes.map((c, i) => ({
    atMillis: Math.floor(c.atMillis),
    k: 0,
    i,
  }))
  for (let t = warmup; t < end; t += stretchSampleMillis) own.push({ atMillis: Math.floor(t), k: 1, i: 0 })
  own.sort((a, b) => a.atMillis - b.atMillis)
  let ownCursor = 0

  // Per pair (s * n + d) forwarding status at the last evaluation, and since when.
  const pairStatus = new Uint8Array(n * n).fill(BLACKHOLE)
  const pairSince = new Float64Array(n * n)
  for (let d = 0; d < n; d++) pairStatus[d * n + d] = DELIVERED
  const dirty = new Uint8Array(n).fill(1)
  let anyDirty = true
  const cyclesByDest: Array<Map<string, number>> = Array.from({ length: n }, () => new Map())
  const statusScratch = new Uint8Array(n)
  const pathLatency = new Float64Array(n)
  let openEvents: OpenEvent[] = []
  // Truth snapshot used to judge "good" for soft events: latencies and lazily computed oracles.
  let snapshotLatency: Float64Array | undefined
  let snapshotOracle: Array<Float64Array | undefined> = []
  const oracleOf = (d: number): Float64Array => {
    let o = snapshotOracle[d]
    if (o === undefined) {
      o = net.oracleTo(d, snapshotLatency as Float64Array)
      snapshotOracle[d] = o
    }
    return o
  }
  const takeSnapshot = (t: number): void => {
    snapshotLatency = net.latencies(t, snapshotLatency)
    snapshotOracle = []
  }
  const isGood = (s: number, d: number, hard: boolean): boolean => {
    const st = pairStatus[s * n + d]
    if (st !== DELIVERED) return false
    if (hard || snapshotLatency === undefined) return true
    const best = oracleOf(d)[s] as number
    const actual = pathLatency[s] as number
    return !(actual > best * (1 + slack.relative) && actual > best + slack.absoluteMs)
  }

  const measured = (t: number) => t >= warmup
  const account = (pair: number, until: number): void => {
    const from = Math.max(pairSince[pair] as number, warmup)
    if (until > from) acc.statusMillis[pairStatus[pair] as number]! += until - from
  }

  /** Re-classifies every source towards d; updates status time, loop episodes and open events. */
  const evaluate = (d: number, t: number, withLatency: boolean): void => {
    const { cycles } = classifyDestination(
      table,
      d,
      statusScratch,
      withLatency ? snapshotLatency : undefined,
      withLatency ? pathLatency : undefined,
    )
    for (let s = 0; s < n; s++) {
      const pair = s * n + d
      const st = statusScratch[s] as number
      if (st !== pairStatus[pair]) {
        account(pair, t)
        if (measured(t)) {
          if (st === BLACKHOLE) acc.blackholeEpisodes++
          if (st === DEAD) acc.deadEpisodes++
        }
        pairStatus[pair] = st
        pairSince[pair] = t
      }
    }
    const known = cyclesByDest[d] as Map<string, number>
    for (const c of cycles)
      if (!known.has(c)) {
        known.set(c, t)
        if (measured(t)) {
          acc.loopEpisodes++
          if (acc.loopSamples.length < 20) acc.loopSamples.push({ atMillis: t, destination: d, cycle: c })
        }
      }
    if (known.size > cycles.length)
      for (const [c, since] of known)
        if (!cycles.includes(c)) {
          known.delete(c)
          if (measured(t)) acc.loopMaxMillis = Math.max(acc.loopMaxMillis, t - Math.max(since, warmup))
        }
    if (openEvents.length > 0) {
      if (!withLatency && openEvents.some((e) => !e.hard)) {
        // Soft events need path latencies: redo this destination with the snapshot.
        classifyDestination(table, d, statusScratch, snapshotLatency, pathLatency)
      }
      let closed = false
      for (const e of openEvents) {
        for (const pair of e.remaining) {
          if (pair % n !== d) continue
          if (isGood(Math.floor(pair / n), d, e.hard)) e.remaining.delete(pair)
        }
        if (e.remaining.size === 0) {
          acc.events.push({
            atMillis: e.atMillis,
            hard: e.hard,
            kind: e.kind,
            affected: e.affected,
            reactionMillis: t - e.atMillis,
          })
          closed = true
        }
      }
      if (closed) openEvents = openEvents.filter((e) => e.remaining.size > 0)
    }
  }

  const evaluateDirty = (t: number): void => {
    if (!anyDirty) return
    for (let d = 0; d < n; d++)
      if (dirty[d] === 1) {
        dirty[d] = 0
        evaluate(d, t, false)
      }
    anyDirty = false
  }

  const onTruthChange = (c: number, t: number): void => {
    const change = changes[c]!
    evaluateDirty(t)
    const wasDelivered = measured(t) ? pairStatus.slice() : undefined
    const flipped = net.refreshUpOf(change.links, t)
    const hard = flipped.length > 0 && change.kinds.includes("down")
    // A hard failure is judged by delivery alone; steps and recoveries by cost against the oracle.
    const soft = !hard && change.kinds.some((k) => k === "step" || k === "up")
    if (soft) takeSnapshot(t)
    if (flipped.length > 0 || soft) {
      for (let d = 0; d < n; d++) evaluate(d, t, soft)
      dirty.fill(0)
      anyDirty = false
    }
    if (wasDelivered === undefined || (!soft && !hard)) return
    const remaining = new Set<number>()
    for (let d = 0; d < n; d++) {
      if (soft) classifyDestination(table, d, statusScratch, snapshotLatency, pathLatency)
      for (let s = 0; s < n; s++) {
        if (s === d) continue
        const pair = s * n + d
        if (wasDelivered[pair] !== DELIVERED) continue
        if (!isGood(s, d, hard)) remaining.add(pair)
      }
    }
    if (remaining.size === 0) acc.eventsWithoutImpact++
    else {
      const kind = hard ? "failure" : change.kinds.includes("step") ? "step" : "recovery"
      openEvents.push({ atMillis: t, hard, kind, affected: remaining.size, remaining })
    }
  }

  const stretchSample = (t: number): void => {
    evaluateDirty(t)
    takeSnapshot(t)
    for (let d = 0; d < n; d++) {
      evaluate(d, t, true)
      const oracle = oracleOf(d)
      for (let s = 0; s < n; s++) {
        if (s === d || pairStatus[s * n + d] !== DELIVERED) continue
        const best = oracle[s] as number
        if (!(best > 0 && Number.isFinite(best))) continue
        acc.stretch.add((pathLatency[s] as number) / best)
      }
    }
  }

  const cursors: number[] = []
  const advance = (untilMillis: number, logs: ReadonlyArray<ArrayLike<number>>): void => {
    const stop = Math.min(untilMillis, end)
    cursors.length = logs.length
    cursors.fill(0)
    for (;;) {
      let t = ownCursor < own.length ? own[ownCursor]!.atMillis : Number.POSITIVE_INFINITY
      for (let k = 0; k < logs.length; k++) {
        const log = logs[k]!
        if (cursors[k]! < log.length) t = Math.min(t, log[cursors[k]!]!)
      }
      if (!(t < stop)) break
      while (ownCursor < own.length && own[ownCursor]!.atMillis === t) {
        const e = own[ownCursor++]!
        if (e.k === 0) onTruthChange(e.i, t)
        else stretchSample(t)
      }
      for (let k = 0; k < logs.length; k++) {
        const log = logs[k]!
        let c = cursors[k]!
        while (c < log.length && log[c] === t) {
          const d = log[c + 2]!
          const nh = log[c + 3]!
          table.install(log[c + 1]!, d, nh < 0 ? null : nh, nh < 0 ? null : log[c + 4]!)
          dirty[d] = 1
          anyDirty = true
          c += 5
        }
        cursors[k] = c
      }
      evaluateDirty(t)
    }
  }

  const finish = (parts: ReadonlyArray<ReportAccumulators>): RunReport => {
    for (const p of parts) {
      acc.switches += p.switches
      acc.decides += p.decides
      for (let i = 0; i < n * n; i++) acc.switchesPerPair[i]! += p.switchesPerPair[i]!
      for (let s = 0; s < n; s++) {
        acc.probesSent[s]! += p.probesSent[s]!
        acc.pathProbesSent[s]! += p.pathProbesSent[s]!
        acc.messagesSent[s]! += p.messagesSent[s]!
        acc.messagesReceived[s]! += p.messagesReceived[s]!
        acc.messageBytesSampled[s]! += p.messageBytesSampled[s]!
      }
    }
    // Close the books at the end of the run.
    for (let pair = 0; pair < n * n; pair++) account(pair, end)
    for (const known of cyclesByDest)
      for (const since of known.values()) acc.loopMaxMillis = Math.max(acc.loopMaxMillis, end - Math.max(since, warmup))
    for (const e of openEvents)
      acc.events.push({ atMillis: e.atMillis, hard: e.hard, kind: e.kind, affected: e.affected, reactionMillis: null })
    return summarise(acc, {
      name: config.name,
      seed: config.seed,
      sites: n,
      directedLinks: net.truths.length,
      measuredMillis: end - warmup,
      keepEventDetails: config.keepEventDetails ?? false,
    })
  }

  return { advance, finish }
}

/**
 * Runs one scenario to the end on this thread and returns its report: one part with every site,
 * its install log replayed by the observer every simulated second. (Two threads: `runScenario`
 * with `threads: 2`, which rebuilds the routers in each worker from the scenario's data.)
 */
export const runModel = <M>(config: RunConfig<M>): RunReport => {
  if ((config.threads ?? 1) !== 1)
    throw new Error("runModel runs on one thread; two threads need runScenario (routers rebuilt from data)")
  const owns = new Uint8Array(config.mesh.sites).fill(1)
  const part = makeSitePart(config, owns)
  const observer = makeObserver(config)
  const end = config.durationMillis
  for (let t = 0; t < end; ) {
    t = Math.min(end, t + 1000)
    part.runUntil(t)
    observer.advance(t, [part.installs])
    part.installs.length = 0
  }
  return observer.finish([part.acc])
}
