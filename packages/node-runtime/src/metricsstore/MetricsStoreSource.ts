/**
 * The optional metrics-store source: every `intervalMillis` it asks Prometheus (or
 * VictoriaMetrics, same query API) for the tunnel gauges every daemon exports on :5120/metrics
 * and turns them into the engine's `LinkStats`, one per tunnel, stamped with the sample's own
 * time (`timestamp(netperf_tunnel_up)`, not the query time) so that old data can be told apart.
 *
 * Decision a reader must know: the store is a fallback, never a dependency. A failed query only
 * sets `netperf_metrics_store_up` to 0, counts `netperf_metrics_store_errors_total{reason}` and
 * keeps the previous snapshot, whose samples then age (Fallback.ts stops trusting them after
 * `maxSampleAgeMillis`). One log line when the store goes down and one when it answers again,
 * not one per failed query.
 */
import { type LinkStats, LinkStats as LinkStatsSchema, tunnelKey } from "@net-perf/engine"
import { Duration, Effect, Either, Schedule, Schema, type Scope } from "effect"
import { Counter, Gauge, Histogram, type Registry } from "prom-client"
import { type InstantSeries, type MetricsStoreError, makePromClient, type PromClient } from "./PromApi.js"

/** The gauges read (names and units as in metrics/Metrics.ts). */
export const tunnelValuesQuery =
  '{__name__=~"netperf_tunnel_(up|rtt_smoothed_seconds|jitter_seconds|loss_ratio|availability_ratio)"}'
/** When each tunnel's gauges were last scraped (they are all set together by the plane). */
export const tunnelSampleTimesQuery = "timestamp(netperf_tunnel_up)"

export interface StoreSnapshot {
  /** Tunnels as the store last saw them; `lastSampleAtMillis` is the scrape time of the sample. */
  readonly tunnels: ReadonlyArray<LinkStats>
  /** Local time of the last successful query (undefined before the first one). */
  readonly queriedAtMillis: number | undefined
  /** Series that could not be turned into LinkStats in the last successful query. */
  readonly invalidSeries: number
}

const seriesKey = (labels: Readonly<Record<string, string>>): string =>
  Object.keys(labels)
    .filter((k) => k !== "__name__")
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",")

const msOrNull = (seconds: number | undefined): number | null =>
  seconds === undefined || !Number.isFinite(seconds) ? null : seconds * 1000

/**
 * Pure: the two queries' series → one LinkStats per tunnel. Series of one scrape target
 * (same labels) form one tunnel; when several targets export the same tunnel (a daemon scraped
 * on two addresses), the newest sample wins. Up = 0 means "dead or unknown" at the origin, so it
 * becomes `unknown` (never better than what the origin knew). A series whose values do not make
 * valid LinkStats (bad labels, loss above 1, …) is skipped and counted.
 */
export const linkStatsFromSeries = (
  values: ReadonlyArray<InstantSeries>,
  sampleTimes: ReadonlyArray<InstantSeries>,
): { readonly tunnels: ReadonlyArray<LinkStats>; readonly invalid: number } => {
  const groups = new Map<string, { labels: Readonly<Record<string, string>>; gauges: Map<string, number> }>()
  for (const s of values) {
    const key = seriesKey(s.labels)
    const group = groups.get(key) ?? { labels: s.labels, gauges: new Map<string, number>() }
    group.gauges.set(s.labels.__name__ ?? "", s.value)
    groups.set(key, group)
  }
  const times = new Map(sampleTimes.map((s) => [seriesKey(s.labels), s.value * 1000] as const))
  const best = new Map<string, LinkStats>()
  let invalid = 0
  for (const [key, { labels, gauges }] of groups) {
    const up = gauges.get("netperf_tunnel_up")
    const at = times.get(key)
    if (up === undefined || at === undefined || !Number.isFinite(at)) {
      invalid++
      continue
    }
    const rttMs = msOrNull(gauges.get("netperf_tunnel_rtt_smoothed_seconds"))
    const isUp = up === 1 && rttMs !== null
    const decoded = Schema.decodeUnknownEither(LinkStatsSchema)({
      tunnel: { local: Number(labels.local), remote: Number(labels.remote), family: Number(labels.family) },
      state: isUp ? "up" : "unknown",
      rttMs,
      jitterMs: msOrNull(gauges.get("netperf_tunnel_jitter_seconds")) ?? 0,
      lossRatio: gauges.get("netperf_tunnel_loss_ratio") ?? (isUp ? 0 : 1),
      availability: gauges.get("netperf_tunnel_availability_ratio") ?? (isUp ? 1 : 0),
      lastSampleAtMillis: at,
      lastReplyAtMillis: isUp ? at : null,
    })
    if (
      Either.isLeft(decoded) ||
      labels.local === undefined ||
      labels.remote === undefined ||
      decoded.right.tunnel.local === decoded.right.tunnel.remote
    ) {
      invalid++
      continue
    }
    const stats = decoded.right
    const tKey = tunnelKey(stats.tunnel)
    const old = best.get(tKey)
    if (old === undefined || (old.lastSampleAtMillis ?? 0) < (stats.lastSampleAtMillis ?? 0)) best.set(tKey, stats)
  }
  const tunnels = [...best.values()].sort((a, b) => (tunnelKey(a.tunnel) < tunnelKey(b.tunnel) ? -1 : 1))
  return { tunnels, invalid }
}

/** The source's metrics (get-or-create, so a second source on one registry shares them). */
export const makeMetricsStoreMetrics = (registry: Registry) => {
  const registers = [registry]
  const existing = <M>(name: string): M | undefined => registry.getSingleMetric(name) as M | undefined
  return {
    up:
      existing<Gauge>("netperf_metrics_store_up") ??
      new Gauge({
        name: "netperf_metrics_store_up",
        help: "1 when the metrics store answered its last query, 0 when not (absent when not configured)",
        registers,
      }),
    querySeconds:
      existing<Histogram>("netperf_metrics_store_query_seconds") ??
      new Histogram({
        name: "netperf_metrics_store_query_seconds",
        help: "Duration of one metrics-store refresh (its queries run in parallel), successful ones only",
        buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
    errors:
      existing<Counter>("netperf_metrics_store_errors_total") ??
      new Counter({
        name: "netperf_metrics_store_errors_total",
        help: "Failed metrics-store refreshes by reason (unreachable, timeout, http-status, bad-response, query-error)",
        labelNames: ["reason"],
        registers,
      }),
    invalidSeries:
      existing<Counter>("netperf_metrics_store_invalid_series_total") ??
      new Counter({
        name: "netperf_metrics_store_invalid_series_total",
        help: "Tunnel series from the store that did not make valid link stats",
        registers,
      }),
    fallbackLinks:
      existing<Gauge>("netperf_metrics_store_fallback_links") ??
      new Gauge({
        name: "netperf_metrics_store_fallback_links",
        help: "Links in the routing graph that come from the metrics store (origins the link-state exchange has no fresh data for)",
        registers,
      }),
  }
}
export type MetricsStoreMetrics = ReturnType<typeof makeMetricsStoreMetrics>

export interface MetricsStoreSourceOptions {
  readonly url: string
  readonly intervalMillis: number
  readonly timeoutMillis: number
  readonly registry: Registry
  /** Runs after every refresh, successful or not (the fallback applier). */
  readonly onRefresh?: (snapshot: StoreSnapshot) => Effect.Effect<void>
  readonly now?: () => number
}

export interface MetricsStoreSource {
  readonly client: PromClient
  readonly metrics: MetricsStoreMetrics
  /** The last good snapshot (its samples age while the store is down). */
  readonly latest: () => StoreSnapshot
  /** undefined before the first refresh, then whether the last one succeeded. */
  readonly up: () => boolean | undefined
  /** One refresh now (also what the schedule runs). */
  readonly refresh: Effect.Effect<void>
}

/** Starts the periodic refresh in the caller's scope (the first one at once). */
export const makeMetricsStoreSource = (
  options: MetricsStoreSourceOptions,
): Effect.Effect<MetricsStoreSource, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = options.now ?? Date.now
    const client = makePromClient({ url: options.url, timeoutMillis: options.timeoutMillis })
    const metrics = makeMetricsStoreMetrics(options.registry)
    let snapshot: StoreSnapshot = { tunnels: [], queriedAtMillis: undefined, invalidSeries: 0 }
    let up: boolean | undefined
    let downSinceMillis = 0
    let failuresWhileDown = 0

    const onSuccess = (values: ReadonlyArray<InstantSeries>, times: ReadonlyArray<InstantSeries>, ms: number) =>
      Effect.gen(function* () {
        const { tunnels, invalid } = linkStatsFromSeries(values, times)
        snapshot = { tunnels, queriedAtMillis: now(), invalidSeries: invalid }
        metrics.querySeconds.observe(ms / 1000)
        if (invalid > 0) metrics.invalidSeries.inc(invalid)
        metrics.up.set(1)
        if (up === false)
          yield* Effect.logInfo(
            `metrics store ${options.url} answers again after ${((now() - downSinceMillis) / 1000).toFixed(1)} s (${failuresWhileDown} failed refreshes); ${tunnels.length} tunnels`,
          )
        else if (up === undefined)
          yield* Effect.logInfo(`metrics store ${options.url} reachable; ${tunnels.length} tunnels`)
        up = true
      })

    const onFailure = (error: MetricsStoreError) =>
      Effect.gen(function* () {
        metrics.errors.inc({ reason: error.reason })
        metrics.up.set(0)
        if (up !== false) {
          downSinceMillis = now()
          failuresWhileDown = 0
          yield* Effect.logWarning(
            `metrics store unavailable: ${error.message}; routing continues on link-state data (retrying every ${options.intervalMillis} ms)`,
          )
        }
        failuresWhileDown++
        up = false
      })

    const refresh = Effect.all([client.query(tunnelValuesQuery), client.query(tunnelSampleTimesQuery)], {
      concurrency: 2,
    }).pipe(
      Effect.timed,
      Effect.matchEffect({
        onFailure,
        onSuccess: ([elapsed, [values, times]]) => onSuccess(values, times, Duration.toMillis(elapsed)),
      }),
      Effect.zipRight(Effect.suspend(() => options.onRefresh?.(snapshot) ?? Effect.void)),
      Effect.catchAllCause((cause) => Effect.logError("metrics store refresh failed", cause)),
    )

    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(`${options.intervalMillis} millis`)))
    return {
      client,
      metrics,
      latest: () => snapshot,
      up: () => up,
      refresh,
    } satisfies MetricsStoreSource
  })
