/**
 * `perfc pathping`: asks one site's daemon (MeasureService.PathPing, the gRPC port of the
 * management API) to pathping a source-routed round trip, and prints each hop's RTT and loss.
 *
 * The round trip is given (`perfc pathping 0 0,2,3,0`) or built from the routes in force
 * (`perfc pathping 0 --to 3 --via-routes`): the next hops from the site to `--to` and back, read
 * from each site's GetRoutes as perfc's Via does, each hop on the family of the tunnel its route
 * uses — so the pathping follows exactly what the kernel forwards. Input is checked here first
 * (same rules as the daemon's) so a typo fails without a round trip; the daemon re-checks.
 */
import { Args, Command, Options } from "@effect/cli"
import { ChannelCredentials, Metadata, type ServiceError, status } from "@grpc/grpc-js"
import { Measure } from "@net-perf/node-runtime"
import { Console, Data, Effect, Either, Option } from "effect"
import { loadClientTls, PerfcExit, siteOptions } from "./CliOptions.js"
import { type ClientTls, fetchSite, type SiteReplies } from "./ManagementClient.js"
import { exitCodes } from "./Perfc.js"
import { alignRows } from "./Render.js"
import { followVia } from "./Snapshot.js"
import { defaultAddress, resolveTargets, type SiteTarget } from "./Targets.js"

export class InvalidPathPing extends Data.TaggedError("InvalidPathPing")<{ readonly message: string }> {}

export class PathPingFailed extends Data.TaggedError("PathPingFailed")<{
  readonly site: number
  readonly address: string
  /** gRPC status name, e.g. INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE. */
  readonly code: string
  readonly detail: string
}> {
  override get message() {
    return `site ${this.site} (${this.address}): ${this.code}: ${this.detail}`
  }
}

const siteId = /^\d{1,5}$/

const parseSite = (text: string, what: string): Either.Either<number, InvalidPathPing> =>
  siteId.test(text.trim()) && Number(text) <= 65535
    ? Either.right(Number(text))
    : Either.left(new InvalidPathPing({ message: `${what}: "${text}" is not a site id (0..65535)` }))

/** `["0,2,3,0"]`, `["0", "2", "3", "0"]` or `["0 2 3 0"]` → [0, 2, 3, 0]; the same rules as the daemon's. */
export const parsePathArgs = (
  site: number,
  args: ReadonlyArray<string>,
): Either.Either<Array<number>, InvalidPathPing> =>
  Either.gen(function* () {
    const parts = args.flatMap((a) => a.split(/[\s,>]+/)).filter((p) => p !== "")
    const path: Array<number> = []
    for (const p of parts) path.push(yield* parseSite(p, "path"))
    const fail = (message: string) =>
      Either.left(new InvalidPathPing({ message: `path ${path.join(",")}: ${message}` }))
    if (path.length < 3) return yield* fail("needs at least 3 sites, a round trip such as 0,2,0")
    if (path.length > 16) return yield* fail("at most 16 sites")
    if (path[0] !== site || path.at(-1) !== site) return yield* fail(`must start and end at the measuring site ${site}`)
    for (let i = 1; i < path.length; i++)
      if (path[i] === path[i - 1]) return yield* fail(`site ${path[i]} follows itself`)
    return path
  })

/** `"4"` or `"4,0,6"` → families; 0 = kernel routing, 4/6 = that tunnel. */
export const parseFamilies = (text: string): Either.Either<Array<0 | 4 | 6>, InvalidPathPing> => {
  const out: Array<0 | 4 | 6> = []
  for (const part of text.split(",").map((p) => p.trim())) {
    if (part !== "0" && part !== "4" && part !== "6")
      return Either.left(new InvalidPathPing({ message: `--family: "${part}" is not 0, 4 or 6` }))
    out.push(Number(part) as 0 | 4 | 6)
  }
  return Either.right(out)
}

/** The family of a tunnel interface `wgX.Y_vZ`, else 0 (kernel routing). */
export const familyOfInterface = (name: string | null | undefined): 0 | 4 | 6 => {
  const m = /_v([46])$/.exec(name ?? "")
  return m === null ? 0 : (Number(m[1]) as 4 | 6)
}

/** What a route in force needs for the chain (a GetRoutes `Route`). */
export interface RouteInForce {
  readonly destination: number
  readonly nextHop?: number | undefined
  readonly interfaceName: string
}

/**
 * The round trip `site → … → to → … → site` along the routes in force, each hop on its route's
 * tunnel family. `routesOf(x)` returns site x's in-force routes (or undefined if it did not answer).
 */
export const roundTripViaRoutes = (
  site: number,
  to: number,
  routesOf: (x: number) => ReadonlyArray<RouteInForce> | undefined,
): Either.Either<{ path: Array<number>; families: Array<0 | 4 | 6> }, InvalidPathPing> => {
  const routeOf = (x: number, destination: number) => routesOf(x)?.find((r) => r.destination === destination)
  const nextHopOf = (x: number, destination: number) => {
    if (routesOf(x) === undefined) return undefined
    return routeOf(x, destination)?.nextHop ?? null
  }
  const path = [site]
  const families: Array<0 | 4 | 6> = []
  for (const [from, destination] of [
    [site, to],
    [to, site],
  ] as const) {
    const { via, status } = followVia(from, destination, nextHopOf)
    if (status !== "ok")
      return Either.left(
        new InvalidPathPing({
          message: `no managed route chain from ${from} to ${destination} (${status}${via.length === 0 ? "" : ` after ${[from, ...via].join(">")}`})`,
        }),
      )
    let at = from
    for (const next of via) {
      families.push(familyOfInterface(routeOf(at, destination)?.interfaceName))
      path.push(next)
      at = next
    }
  }
  return path.length > 16
    ? Either.left(new InvalidPathPing({ message: `the round trip ${path.join(">")} has more than 16 sites` }))
    : Either.right({ path, families })
}

const codeName = (code: number | undefined): string =>
  code === undefined ? "UNKNOWN" : ((status as unknown as Record<number, string>)[code] ?? `CODE_${code}`)

/** One PathPing call with a deadline; interruption cancels it (and the daemon stops probing). */
export const callPathPing = (
  target: SiteTarget,
  request: Measure.PathPingRequest,
  options: { readonly timeoutMillis: number; readonly tls?: ClientTls | undefined },
) =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new Measure.MeasureServiceClient(
            target.address,
            options.tls === undefined
              ? ChannelCredentials.createInsecure()
              : ChannelCredentials.createSsl(options.tls.ca, options.tls.key ?? null, options.tls.cert ?? null),
            { "grpc.initial_reconnect_backoff_ms": 200, "grpc.max_reconnect_backoff_ms": 1000 },
          ),
      ),
      (c) => Effect.sync(() => c.close()),
    )
    return yield* Effect.async<Measure.PathPingResponse, PathPingFailed>((resume) => {
      const pending = client.pathPing(
        request,
        new Metadata(),
        { deadline: new Date(Date.now() + options.timeoutMillis) },
        (error: ServiceError | null, response) => {
          if (error === null) return resume(Effect.succeed(response))
          resume(
            Effect.fail(
              new PathPingFailed({
                site: target.site,
                address: target.address,
                code: codeName(error.code),
                detail: (error.details || error.message).replace(/\s*Resolution note:\s*$/, "").trim(),
              }),
            ),
          )
        },
      )
      return Effect.sync(() => pending.cancel())
    })
  }).pipe(Effect.scoped)

const ms = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(2))
const lossText = (sent: number, received: number) =>
  sent === 0 ? "-" : `${(((sent - received) / sent) * 100).toFixed(0)} %`

/**
 * The network's round trip, the raw one timed at the origin, and the relays' residence between
 * them. A daemon that sends `rawRttMs` has subtracted the residence from `rttMs` already; an older
 * one sends the raw round trip as `rttMs` (residence included), so it is subtracted here.
 */
export const pathRtts = (figure: {
  readonly rttMs?: number | undefined
  readonly rawRttMs?: number | undefined
  readonly relayResidenceMs?: number | undefined
}): { rttMs: number | undefined; rawRttMs: number | undefined; relayResidenceMs: number | undefined } => {
  if (figure.rawRttMs !== undefined || figure.rttMs === undefined)
    return { rttMs: figure.rttMs, rawRttMs: figure.rawRttMs, relayResidenceMs: figure.relayResidenceMs }
  return {
    rttMs: figure.relayResidenceMs === undefined ? undefined : Math.max(0, figure.rttMs - figure.relayResidenceMs),
    rawRttMs: figure.rttMs,
    relayResidenceMs: figure.relayResidenceMs,
  }
}

/** The human table: one row per hop (cumulative round trip, its step from the previous), then the path. */
export const renderPathPing = (target: SiteTarget, reply: Measure.PathPingResponse): string => {
  const fam = (f: number | undefined) => (f === 4 || f === 6 ? `v${f}` : "kernel")
  const header = `pathping ${reply.path.join(" > ")} from site ${reply.site} (${target.address}): ${reply.count} × ${reply.intervalMillis} ms`
  const rows: Array<Array<string>> = [
    ["Hop", "From > To", "Via", "RTT ms", "Step ms", "Raw ms", "Relays ms", "Sent", "Recv", "Loss"],
  ]
  let previous: number | undefined = 0
  for (const h of reply.hops) {
    const t = pathRtts(h)
    rows.push([
      String(h.index),
      `${h.from} > ${h.to}`,
      fam(reply.families[h.index]),
      ms(t.rttMs),
      t.rttMs === undefined || previous === undefined ? "-" : (t.rttMs - previous).toFixed(2),
      ms(t.rawRttMs),
      ms(t.relayResidenceMs),
      String(h.sent),
      String(h.received),
      lossText(h.sent, h.received),
    ])
    previous = t.rttMs
  }
  const all = pathRtts(reply)
  rows.push([
    "all",
    `${reply.path[0]} > … > ${reply.path.at(-1)}`,
    "",
    ms(all.rttMs),
    "",
    ms(all.rawRttMs),
    ms(all.relayResidenceMs),
    String(reply.sent),
    String(reply.received),
    lossText(reply.sent, reply.received),
  ])
  const notes = [
    "RTT = round trip from the origin to the hop's far end and back over the path's own tunnels (mtr-style), minus the time the probes spent inside the relaying daemons; Step = its increase over the previous hop.",
    "Raw = the same round trip as timed at the origin; Relays = the relays' residence (Raw − RTT).",
  ]
  return [header, ...alignRows(rows, "  ", new Set([0, 3, 4, 5, 6, 7, 8, 9])), ...notes].join("\n")
}

export const pathPingJson = (target: SiteTarget, reply: Measure.PathPingResponse, via?: string) => {
  const all = pathRtts(reply)
  return {
    site: reply.site,
    address: target.address,
    ...(via === undefined ? {} : { builtFrom: via }),
    path: reply.path,
    families: reply.families,
    count: reply.count,
    intervalMillis: reply.intervalMillis,
    atMillis: reply.atMillis,
    // the network's round trip (relays' residence subtracted); rawRttMs as timed at the origin
    rttMs: all.rttMs ?? null,
    rawRttMs: all.rawRttMs ?? null,
    sent: reply.sent,
    received: reply.received,
    lossRatio: reply.sent === 0 ? null : (reply.sent - reply.received) / reply.sent,
    relayResidenceMs: all.relayResidenceMs ?? null,
    hops: reply.hops.map((h) => {
      const t = pathRtts(h)
      return {
        index: h.index,
        from: h.from,
        to: h.to,
        family: reply.families[h.index] ?? 0,
        rttMs: t.rttMs ?? null,
        rawRttMs: t.rawRttMs ?? null,
        relayResidenceMs: t.relayResidenceMs ?? null,
        sent: h.sent,
        received: h.received,
        lossRatio: h.sent === 0 ? null : (h.sent - h.received) / h.sent,
      }
    }),
  }
}

const { sites: _sites, ...addressOptions } = siteOptions

const pathPingOptions = {
  ...addressOptions,
  timeoutMillis: Options.integer("timeout").pipe(
    Options.withDefault(10_000),
    Options.withDescription("deadline of the whole call in milliseconds (a run takes count × interval + 1 s)"),
  ),
  to: Options.text("to").pipe(
    Options.optional,
    Options.withDescription("with --via-routes: the far end of the round trip"),
  ),
  viaRoutes: Options.boolean("via-routes").pipe(
    Options.withDescription(
      "build the round trip site > … > --to > … > site from the routes in force (each site's GetRoutes), on each route's tunnel family",
    ),
  ),
  family: Options.text("family").pipe(
    Options.optional,
    Options.withDescription(
      "0 (kernel routing), 4 or 6 for every hop, or one per hop (4,0,6); default 0, with --via-routes each route's tunnel",
    ),
  ),
  count: Options.integer("count").pipe(
    Options.optional,
    Options.withDescription("probes per hop, 1..50 (default: the daemon's, 10)"),
  ),
  intervalMillis: Options.integer("interval").pipe(
    Options.optional,
    Options.withDescription("milliseconds between rounds, 20..1000 (default: the daemon's, 100)"),
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print JSON instead of the table")),
}

const pathPingArgs = {
  site: Args.text({ name: "site" }).pipe(
    Args.withDescription("the site whose daemon measures (first and last of the path)"),
  ),
  path: Args.text({ name: "path" }).pipe(
    Args.repeated,
    Args.withDescription("the round trip, e.g. 0,2,3,0 (or 0 2 3 0); omit with --to/--via-routes"),
  ),
}

/** The address of a site: from --mesh/--target when given, else the default plan at --port. */
const addressBook = (flags: {
  readonly mesh: Option.Option<string>
  readonly targets: ReadonlyArray<string>
  readonly port: number
}) =>
  Effect.map(
    flags.targets.length === 0 && Option.isNone(flags.mesh)
      ? Effect.succeed<ReadonlyArray<SiteTarget>>([])
      : resolveTargets({
          sites: undefined,
          mesh: Option.getOrUndefined(flags.mesh),
          targets: flags.targets,
          port: flags.port,
        }),
    (known) => {
      const bySite = new Map(known.map((t) => [t.site, t]))
      return (site: number): SiteTarget =>
        bySite.get(site) ?? { site, name: undefined, address: defaultAddress(site, flags.port) }
    },
  )

export const pathPingCommand = Command.make("pathping", { ...pathPingArgs, ...pathPingOptions }, (flags) =>
  Effect.gen(function* () {
    const usage = (e: { readonly message: string }) =>
      Console.error(`perfc pathping: ${e.message}`).pipe(Effect.zipRight(new PerfcExit({ code: exitCodes.usage })))
    const site = yield* parseSite(flags.site, "site").pipe(Effect.catchAll(usage))
    const tls = yield* loadClientTls(flags)
    const targetOf = yield* addressBook(flags)
    let path: Array<number>
    let families: Array<0 | 4 | 6> = []
    let builtFrom: string | undefined
    if (flags.viaRoutes || Option.isSome(flags.to)) {
      if (!flags.viaRoutes || Option.isNone(flags.to) || flags.path.length > 0)
        return yield* usage({ message: "give either a path, or --to <site> --via-routes" })
      const to = yield* parseSite(flags.to.value, "--to").pipe(Effect.catchAll(usage))
      if (to === site) return yield* usage({ message: "--to must differ from the measuring site" })
      // Routes of each site on the way, fetched as the chain reaches it.
      const replies = new Map<number, SiteReplies | undefined>()
      const fetchRoutes = (x: number) =>
        fetchSite(targetOf(x), { timeoutMillis: 3000, tls, algorithms: [] }).pipe(
          Effect.tapError((e) => Console.error(`perfc pathping: ${e.message}`)),
          Effect.option,
          Effect.map((r) => replies.set(x, Option.getOrUndefined(r))),
        )
      yield* Effect.forEach([site, to], fetchRoutes, { concurrency: 2 })
      for (let round = 0; round < 16; round++) {
        // Walk the chain as far as the routes fetched so far go; the sites it asked for and we
        // have not fetched are the next to fetch.
        const missing = new Set<number>()
        roundTripViaRoutes(site, to, (x) => {
          if (!replies.has(x)) missing.add(x)
          return replies.get(x)?.routes.routes
        })
        if (missing.size === 0) break
        yield* Effect.forEach(missing, fetchRoutes, { concurrency: "unbounded" })
      }
      const trip = yield* roundTripViaRoutes(site, to, (x) => replies.get(x)?.routes.routes).pipe(
        Effect.catchAll((e) =>
          // A site on the way that did not answer is "no daemon", not bad input.
          [...replies.values()].some((r) => r === undefined)
            ? Console.error(`perfc pathping: ${e.message}`).pipe(
                Effect.zipRight(new PerfcExit({ code: exitCodes.none })),
              )
            : usage(e),
        ),
      )
      path = trip.path
      families = trip.families
      builtFrom = `routes in force ${site}>${to}>${site}`
    } else {
      path = yield* parsePathArgs(site, flags.path).pipe(Effect.catchAll(usage))
    }
    if (Option.isSome(flags.family)) {
      families = yield* parseFamilies(flags.family.value).pipe(Effect.catchAll(usage))
      if (families.length !== 1 && families.length !== path.length - 1)
        return yield* usage({
          message: `--family: one value or one per hop (${path.length - 1} for ${path.join(",")}), got ${families.length}`,
        })
    }
    const target = targetOf(site)
    const reply = yield* callPathPing(
      target,
      {
        path,
        families,
        count: Option.getOrElse(flags.count, () => 0),
        intervalMillis: Option.getOrElse(flags.intervalMillis, () => 0),
      },
      { timeoutMillis: flags.timeoutMillis, tls },
    ).pipe(
      Effect.catchAll((e) =>
        Console.error(`perfc pathping: ${e.message}`).pipe(
          Effect.zipRight(new PerfcExit({ code: e.code === "INVALID_ARGUMENT" ? exitCodes.usage : exitCodes.none })),
        ),
      ),
    )
    yield* Console.log(
      flags.json ? JSON.stringify(pathPingJson(target, reply, builtFrom), null, 2) : renderPathPing(target, reply),
    )
    // Every probe lost: the daemon answered, the path did not.
    if (reply.received === 0) return yield* new PerfcExit({ code: exitCodes.partial })
  }),
).pipe(
  Command.withDescription(
    "pathping a round trip from a site's daemon (MeasureService.PathPing): per-hop RTT and loss. Exit 0 measured, 1 bad input, 2 every probe lost, 3 the daemon did not answer.",
  ),
)
