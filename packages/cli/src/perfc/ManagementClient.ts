/**
 * One site's view over the daemon's ManagementService (gRPC; plaintext unless TLS files are
 * given, matching the daemon's optional `grpc.tls`): routes in force and per algorithm, tunnel stats and version, fetched concurrently
 * under one deadline. Every failure becomes `SiteUnreachable` naming the site, its address and the
 * gRPC status, so callers show the other sites and say which ones failed.
 */
import { ChannelCredentials, type ClientUnaryCall, Metadata, type ServiceError, status } from "@grpc/grpc-js"
import { Management } from "@net-perf/node-runtime"
import { Data, Effect } from "effect"
import type { SiteTarget } from "./Targets.js"

export class SiteUnreachable extends Data.TaggedError("SiteUnreachable")<{
  readonly site: number
  readonly address: string
  /** gRPC status name (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …) or `INVALID_REPLY`. */
  readonly code: string
  readonly detail: string
  readonly cause: unknown
}> {
  override get message() {
    return `site ${this.site} (${this.address}): ${this.code}: ${this.detail}`
  }
}

/** Raw replies of one site; the derived view (paths, RTT along paths) is built in Snapshot.ts. */
export interface SiteReplies {
  readonly target: SiteTarget
  readonly routes: Management.GetRoutesResponse
  /** Absent when the daemon answered GetRoutes but not GetLinkStats (shown, not fatal). */
  readonly linkStats: Management.GetLinkStatsResponse | undefined
  readonly version: Management.GetVersionResponse | undefined
  readonly elapsedMillis: number
}

/** PEM contents for a TLS channel (the daemon's `grpc.tls`); absent: plaintext. */
export interface ClientTls {
  readonly ca: Buffer
  /** Client certificate and key, for daemons that require them (mutual TLS). */
  readonly cert: Buffer | undefined
  readonly key: Buffer | undefined
}

export interface FetchOptions {
  readonly timeoutMillis: number
  readonly tls?: ClientTls | undefined
  /** Empty: only the routes in force. */
  readonly algorithms: ReadonlyArray<string>
}

const codeName = (code: number | undefined): string =>
  code === undefined ? "UNKNOWN" : ((status as unknown as Record<number, string>)[code] ?? `CODE_${code}`)

const isServiceError = (e: unknown): e is ServiceError =>
  typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "number"

const credentialsOf = (tls: ClientTls | undefined): ChannelCredentials =>
  tls === undefined
    ? ChannelCredentials.createInsecure()
    : ChannelCredentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null)

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall

/** One unary call with a deadline; interruption cancels the call. */
const unary = <Req, Res>(call: Unary<Req, Res>, request: Req, deadline: Date) =>
  Effect.async<Res, unknown>((resume) => {
    const pending = call(request, new Metadata(), { deadline }, (error, response) => {
      resume(error === null ? Effect.succeed(response) : Effect.fail(error))
    })
    return Effect.sync(() => pending.cancel())
  })

/** Fetches one site's routes (required), link stats and version (optional) under one deadline. */
export const fetchSite = (target: SiteTarget, options: FetchOptions) =>
  Effect.gen(function* () {
    const startedAt = Date.now()
    const client = yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new Management.ManagementServiceClient(target.address, credentialsOf(options.tls), {
            // A down site must fail fast instead of retrying the connection until the deadline.
            "grpc.initial_reconnect_backoff_ms": 200,
            "grpc.max_reconnect_backoff_ms": 1000,
          }),
      ),
      (c) => Effect.sync(() => c.close()),
    )
    const deadline = new Date(startedAt + options.timeoutMillis)
    const fail = (cause: unknown) =>
      new SiteUnreachable({
        site: target.site,
        address: target.address,
        code: isServiceError(cause) ? codeName(cause.code) : "UNKNOWN",
        // grpc-js appends an empty "Resolution note:" to connection errors.
        detail: (isServiceError(cause) ? cause.details || cause.message : String(cause))
          .replace(/\s*Resolution note:\s*$/, "")
          .trim(),
        cause,
      })
    const [routes, linkStats, version] = yield* Effect.all(
      [
        unary(client.getRoutes.bind(client), { algorithms: [...options.algorithms] }, deadline).pipe(
          Effect.mapError(fail),
        ),
        unary(client.getLinkStats.bind(client), {}, deadline).pipe(Effect.option),
        unary(client.getVersion.bind(client), {}, deadline).pipe(Effect.option),
      ],
      { concurrency: "unbounded" },
    )
    if (routes.site !== target.site) {
      return yield* new SiteUnreachable({
        site: target.site,
        address: target.address,
        code: "INVALID_REPLY",
        detail: `the daemon at ${target.address} says it is site ${routes.site}, not ${target.site}`,
        cause: undefined,
      })
    }
    return {
      target,
      routes,
      linkStats: linkStats._tag === "Some" ? linkStats.value : undefined,
      version: version._tag === "Some" ? version.value : undefined,
      elapsedMillis: Date.now() - startedAt,
    } satisfies SiteReplies as SiteReplies
  }).pipe(Effect.scoped)
