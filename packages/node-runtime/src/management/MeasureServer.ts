/**
 * gRPC MeasureService.PathPing: on-demand pathping of a source-routed round trip from this site
 * (perfc pathping, benches, the path analyser), on the daemon's gRPC server next to
 * ManagementService and under the same TLS policy.
 *
 * Decision a reader must know: a request is decoded with Schema into a `PathPingOrder` before
 * any probe leaves; every rule (path 3..16 sites starting and ending here, known sites, families,
 * bounded count and interval) fails with INVALID_ARGUMENT and a message naming the field. Each
 * caller (peer address) gets a token bucket and a concurrency cap, and the whole service a
 * concurrency cap, so the API cannot turn the 5124/udp relays into a flood: at the defaults a
 * caller sustains one run every 2 s (burst 10) and 2 at once, the daemon 4 at once; beyond that
 * RESOURCE_EXHAUSTED. On-demand paths would each add their own `netperf_path_*` series, so the
 * series of the on-demand paths beyond the last `keptPathSeries` distinct ones are removed.
 */
import * as grpc from "@grpc/grpc-js"
import { Data, Duration, Effect, Either, ParseResult, Runtime, Schema } from "effect"
import { Counter, type Registry } from "prom-client"
import type * as pb from "../gen/netperf/measure/v1/measure.js"
import type { InvalidPath, PathFamily, PathRelayUnavailable, PathResult } from "../probes/PathPinger.js"
import { makeRateLimiter } from "../servers/Guard.js"

/** What the handler needs from the daemon: its site, the sites it knows and the measurement. */
export interface PathPingSource {
  readonly site: number
  /** This site, its tunnels' remote sites and every site of the routing graph (link state). */
  readonly knownSites: Effect.Effect<ReadonlySet<number>>
  /** The daemon's configured pathping settings: defaults for count and interval, and the reply wait. */
  readonly defaults: { readonly count: number; readonly intervalMillis: number; readonly timeoutMillis: number }
  readonly measurePath: (
    path: ReadonlyArray<number>,
    families: ReadonlyArray<PathFamily>,
    config: { readonly count: number; readonly intervalMillis: number },
  ) => Effect.Effect<PathResult, InvalidPath | PathRelayUnavailable>
}

export interface PathPingLimits {
  /** Sustained runs per second per caller (token bucket refill). */
  readonly requestsPerSecond: number
  /** Runs a caller may start back to back. */
  readonly burst: number
  readonly concurrentPerCaller: number
  readonly concurrentTotal: number
  /** On-demand paths whose `netperf_path_*` series stay exported (least recently measured dropped first). */
  readonly keptPathSeries: number
}

export const defaultPathPingLimits: PathPingLimits = {
  requestsPerSecond: 0.5,
  burst: 10,
  concurrentPerCaller: 2,
  concurrentTotal: 4,
  keptPathSeries: 32,
}

/** Bounds of a request; a run must end within 5 s (the issue's pathping budget). */
export const pathPingBounds = {
  minPathSites: 3,
  maxPathSites: 16,
  maxCount: 50,
  minIntervalMillis: 20,
  maxIntervalMillis: 1000,
  maxRunMillis: 5000,
} as const

/** A validated request: per-node families as PathPinger takes them (index 0, the origin, is 0). */
export interface PathPingOrder {
  readonly path: ReadonlyArray<number>
  readonly families: ReadonlyArray<PathFamily>
  readonly count: number
  readonly intervalMillis: number
}

export class InvalidPathPingRequest extends Data.TaggedError("InvalidPathPingRequest")<{
  readonly field: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.field}: ${this.reason}`
  }
}

const SiteOnWire = Schema.Int.pipe(
  Schema.between(0, 65535, { message: (issue) => `site ids are 0..65535, got ${String(issue.actual)}` }),
)
const FamilyOnWire = Schema.Number.pipe(
  Schema.filter((f) => f === 0 || f === 4 || f === 6 || `families are 0 (kernel routing), 4 or 6, got ${f}`),
)

/** The request's shape on the wire (0 = default for count and interval, as proto3 sends "unset"). */
export const PathPingRequestWire = Schema.Struct({
  path: Schema.Array(SiteOnWire).pipe(
    Schema.minItems(pathPingBounds.minPathSites, {
      message: () =>
        `needs at least ${pathPingBounds.minPathSites} sites: a round trip from this site and back, e.g. [L, R, L]`,
    }),
    Schema.maxItems(pathPingBounds.maxPathSites, {
      message: () => `at most ${pathPingBounds.maxPathSites} sites (the relay packet's limit)`,
    }),
  ),
  families: Schema.Array(FamilyOnWire),
  count: Schema.Int.pipe(
    Schema.between(0, pathPingBounds.maxCount, {
      message: (issue) => `count is 1..${pathPingBounds.maxCount} (0 = default), got ${String(issue.actual)}`,
    }),
  ),
  intervalMillis: Schema.Int.pipe(
    Schema.filter(
      (ms) =>
        ms === 0 ||
        (ms >= pathPingBounds.minIntervalMillis && ms <= pathPingBounds.maxIntervalMillis) ||
        `interval_millis is ${pathPingBounds.minIntervalMillis}..${pathPingBounds.maxIntervalMillis} (0 = default), got ${ms}`,
    ),
  ),
})

const decodeWire = Schema.decodeUnknownEither(PathPingRequestWire, { errors: "first" })

/** Field name of the first Schema issue (`path`, `families`, …) for the error message. */
const firstField = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return issue === undefined || issue.path.length === 0 ? "request" : String(issue.path[0])
}

/**
 * Decodes a PathPing request against this site, the sites it knows and its defaults; every
 * rule that fails names the field and the bad value.
 */
export const decodePathPingRequest = (
  request: unknown,
  context: {
    readonly site: number
    readonly knownSites: ReadonlySet<number>
    readonly defaults: PathPingSource["defaults"]
  },
): Either.Either<PathPingOrder, InvalidPathPingRequest> => {
  const wire = decodeWire(request)
  if (Either.isLeft(wire)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(wire.left)[0]
    return Either.left(
      new InvalidPathPingRequest({ field: firstField(wire.left), reason: issue?.message ?? "invalid" }),
    )
  }
  const { path, families, count, intervalMillis } = wire.right
  const bad = (field: string, reason: string) => Either.left(new InvalidPathPingRequest({ field, reason }))
  if (path[0] !== context.site || path[path.length - 1] !== context.site)
    return bad("path", `must start and end at this site (${context.site}), got ${path.join(",")}`)
  for (let i = 1; i < path.length; i++)
    if (path[i] === path[i - 1])
      return bad("path", `site ${path[i]} follows itself at index ${i}: a hop needs two sites`)
  const unknown = [...new Set(path)].filter((s) => !context.knownSites.has(s))
  if (unknown.length > 0)
    return bad(
      "path",
      `site(s) ${unknown.join(",")} not known here (known: ${[...context.knownSites].sort((a, b) => a - b).join(",")})`,
    )
  const hops = path.length - 1
  let perHop: ReadonlyArray<PathFamily>
  if (families.length === 0) perHop = Array.from({ length: hops }, () => 0 as const)
  else if (families.length === 1) perHop = Array.from({ length: hops }, () => families[0] as PathFamily)
  else if (families.length === hops) perHop = families as ReadonlyArray<PathFamily>
  else
    return bad(
      "families",
      `give none, one for every hop, or one per hop (${hops} for this path), got ${families.length}`,
    )
  const effectiveCount = count === 0 ? context.defaults.count : count
  const effectiveInterval = intervalMillis === 0 ? context.defaults.intervalMillis : intervalMillis
  const runMillis = effectiveCount * effectiveInterval + context.defaults.timeoutMillis
  // The configured defaults are the operator's; only explicit values are held to the 5 s budget.
  if ((count !== 0 || intervalMillis !== 0) && runMillis > pathPingBounds.maxRunMillis)
    return bad(
      "count",
      `count × interval_millis + the ${context.defaults.timeoutMillis} ms reply wait must stay ≤ ${pathPingBounds.maxRunMillis} ms, got ${effectiveCount} × ${effectiveInterval} ms`,
    )
  return Either.right({
    path,
    families: [0, ...perHop],
    count: effectiveCount,
    intervalMillis: effectiveInterval,
  })
}

/** The reply message for a finished run. */
export const pathResultToWire = (site: number, order: PathPingOrder, result: PathResult): pb.PathPingResponse => ({
  path: [...result.sample.path],
  rttMs: result.sample.rttMs ?? undefined,
  sent: result.sample.sent,
  received: result.sample.received,
  hops: result.hops.map((h) => ({
    from: order.path[h.index - 1] ?? site,
    to: h.site,
    rttMs: h.rttMs ?? undefined,
    sent: h.sent,
    received: h.received,
    index: h.index,
    rawRttMs: h.rawRttMs ?? undefined,
    relayResidenceMs: h.relayResidenceMs ?? undefined,
  })),
  site,
  families: [...result.sample.families],
  relayResidenceMs: result.relayResidenceMs ?? undefined,
  atMillis: result.sample.atMillis,
  count: order.count,
  intervalMillis: order.intervalMillis,
  rawRttMs: result.rawRttMs ?? undefined,
})

type Outcome = "ok" | "invalid" | "rate_limited" | "unavailable" | "cancelled" | "failed"

const grpcError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() })

/** `ipv4:10.201.0.1:40522` → `10.201.0.1`: the caller is its address, whatever port it used. */
export const callerOf = (peer: string): string => {
  const withoutScheme = peer.replace(/^(ipv4|ipv6|unix):/, "")
  const bracketed = /^\[([^\]]+)\]/.exec(withoutScheme)
  if (bracketed !== null) return bracketed[1] ?? withoutScheme
  const lastColon = withoutScheme.lastIndexOf(":")
  return lastColon > 0 && withoutScheme.indexOf(":") === lastColon ? withoutScheme.slice(0, lastColon) : withoutScheme
}

/** The label PathPinger gives a path's `netperf_path_*` series (kept in step with probes/PathPinger.ts). */
const pathSeriesLabel = (path: ReadonlyArray<number>, families: ReadonlyArray<number>) =>
  path.map((s, i) => (i === 0 ? String(s) : `${s}v${families[i]}`)).join("-")

export interface MeasureHandlerOptions {
  readonly limits?: Partial<PathPingLimits>
  /** Registers `netperf_pathping_requests_total{outcome}` there. */
  readonly registry?: Registry
  /** The plane's path gauges, whose on-demand series are bounded by `keptPathSeries`. */
  readonly pathGauges?: ReadonlyArray<{ readonly remove: (labels: { path: string; hop: string }) => void }>
}

export const makeMeasureHandler = (
  source: PathPingSource,
  options: MeasureHandlerOptions = {},
): Effect.Effect<pb.MeasureServiceServer> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const limits = { ...defaultPathPingLimits, ...options.limits }
    const admit = makeRateLimiter({ packetsPerSecond: limits.requestsPerSecond, burstPackets: limits.burst })
    const running = new Map<string, number>()
    let runningTotal = 0
    const requests =
      options.registry === undefined
        ? undefined
        : new Counter({
            name: "netperf_pathping_requests_total",
            help: "MeasureService.PathPing requests by outcome (invalid, rate_limited, unavailable, cancelled, failed, ok)",
            labelNames: ["outcome"],
            registers: [options.registry],
          })
    const count = (outcome: Outcome) => requests?.inc({ outcome })
    // Insertion order = least recently measured first.
    const recentPaths = new Map<string, ReadonlyArray<{ path: string; hop: string }>>()
    const keepSeries = (order: PathPingOrder, result: PathResult) => {
      const gauges = options.pathGauges ?? []
      if (gauges.length === 0) return
      const path = pathSeriesLabel(order.path, order.families)
      const series = [...result.hops.map((h) => ({ path, hop: `${h.site}@${h.index}` })), { path, hop: "all" }]
      recentPaths.delete(path)
      recentPaths.set(path, series)
      while (recentPaths.size > limits.keptPathSeries) {
        const [oldest, labels] = recentPaths.entries().next().value as [string, typeof series]
        recentPaths.delete(oldest)
        for (const g of gauges) for (const l of labels) g.remove(l)
      }
    }

    const pathPing: pb.MeasureServiceServer["pathPing"] = (call, callback) => {
      const reply = (outcome: Outcome, error: grpc.ServiceError | null, response?: pb.PathPingResponse) => {
        count(outcome)
        callback(error, response)
      }
      const caller = callerOf(call.getPeer())
      const program = Effect.gen(function* () {
        const knownSites = yield* source.knownSites
        const order = decodePathPingRequest(call.request, {
          site: source.site,
          knownSites,
          defaults: source.defaults,
        })
        if (Either.isLeft(order)) {
          return reply("invalid", grpcError(grpc.status.INVALID_ARGUMENT, order.left.message))
        }
        // Check and take a slot in one synchronous, uninterruptible step (acquire), so concurrent
        // calls cannot both pass and an interrupted call always gives its slot back (release).
        const takeSlot = Effect.sync(() => {
          const mine = running.get(caller) ?? 0
          if (mine >= limits.concurrentPerCaller)
            return `${caller} already runs ${mine} pathping(s) here (at most ${limits.concurrentPerCaller} at once)`
          if (runningTotal >= limits.concurrentTotal)
            return `${runningTotal} pathpings already running here (at most ${limits.concurrentTotal} at once)`
          if (!admit(caller))
            return `${caller} asked too often: ${limits.requestsPerSecond} pathping(s)/s sustained, bursts of ${limits.burst}`
          running.set(caller, mine + 1)
          runningTotal++
          return undefined
        })
        const giveSlot = (refusal: string | undefined) =>
          Effect.sync(() => {
            if (refusal !== undefined) return
            const left = (running.get(caller) ?? 1) - 1
            if (left === 0) running.delete(caller)
            else running.set(caller, left)
            runningTotal--
          })
        const { path, families } = order.right
        // A safety net for a relay that never comes up (a client without a deadline would hold its
        // slot forever), not a measurement limit: at load 30 a 2 s run was seen taking over 5 s.
        const budget = Duration.millis(
          3 * (order.right.count * order.right.intervalMillis + source.defaults.timeoutMillis) + 5000,
        )
        type Failure = InvalidPath | PathRelayUnavailable | { _tag: "Timeout" } | { _tag: "Refused"; refusal: string }
        const result = yield* Effect.acquireUseRelease(
          takeSlot,
          (refusal): Effect.Effect<Either.Either<PathResult, Failure>> =>
            refusal !== undefined
              ? Effect.succeed(Either.left({ _tag: "Refused" as const, refusal }))
              : source
                  .measurePath(path, families, order.right)
                  .pipe(
                    Effect.timeoutFail({ duration: budget, onTimeout: () => ({ _tag: "Timeout" as const }) }),
                    Effect.either,
                  ),
          giveSlot,
        )
        if (Either.isRight(result)) {
          keepSeries(order.right, result.right)
          return reply("ok", null, pathResultToWire(source.site, order.right, result.right))
        }
        const e = result.left
        if (e._tag === "Refused") return reply("rate_limited", grpcError(grpc.status.RESOURCE_EXHAUSTED, e.refusal))
        if (e._tag === "Timeout")
          return reply(
            "unavailable",
            grpcError(grpc.status.UNAVAILABLE, `the pathping run did not finish within ${Duration.format(budget)}`),
          )
        if (e._tag === "PathRelayUnavailable")
          return reply("unavailable", grpcError(grpc.status.UNAVAILABLE, `pathping relay: ${e.reason}`))
        return reply("invalid", grpcError(grpc.status.INVALID_ARGUMENT, `path ${e.path.join(",")}: ${e.reason}`))
      })
      const cancel = Runtime.runCallback(runtime)(program, {
        onExit: (exit) => {
          if (exit._tag === "Success") return
          if (call.cancelled) return count("cancelled")
          reply("failed", grpcError(grpc.status.INTERNAL, "pathping failed"))
        },
      })
      // A client that gives up (deadline, Ctrl-C) stops the probes.
      call.on("cancelled", () => cancel())
    }
    return { pathPing } satisfies pb.MeasureServiceServer
  })

/** The source over the daemon's measurement plane; `graphSites` are the routing graph's sites. */
export const planePathPingSource = (
  plane: {
    readonly status: Effect.Effect<{ readonly tunnels: ReadonlyArray<{ readonly remote: number }> }>
    readonly measurePath: PathPingSource["measurePath"]
  },
  site: number,
  graphSites: () => ReadonlyArray<number>,
  defaults: PathPingSource["defaults"],
): PathPingSource => ({
  site,
  knownSites: Effect.map(
    plane.status,
    (s) => new Set<number>([site, ...s.tunnels.map((t) => t.remote), ...graphSites()]),
  ),
  defaults,
  measurePath: (path, families, config) => plane.measurePath(path, families, config),
})
