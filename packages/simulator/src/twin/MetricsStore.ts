/**
 * The twin's optional metrics store (scenario `metricsStore: prometheus`): one real Prometheus
 * (Debian package) scraping every daemon site's `:5120/metrics` each second, whose URL every
 * daemon gets as its `metricsStore`; timeline actions stop and start it.
 *
 * Decision a reader must know: Prometheus runs in the underlay namespace ("the internet") on the
 * underlay hub address and scrapes each site at its underlay address, which the twin adds to the
 * daemon's HTTP listen hosts (a twin-only exception to "never bind the underlay"; a real mesh
 * would scrape over the overlay or a management network). Scrapes and queries never cross the
 * tunnels, so link failures and impairments do not touch the store: only the timeline does.
 * VictoriaMetrics is not packaged in Debian 12 (nor on npm), so the twin runs Prometheus only;
 * the daemon's client speaks the query API both serve. The process lives in the run's scope and
 * in the underlay namespace, so the twin's teardown would also find it.
 */
import { join } from "node:path"
import { type PrometheusFailed, startPrometheus } from "@net-perf/node-runtime"
import { Data, Effect, type Scope } from "effect"
import { routerV4, underlayHub, underlayNs, underlayV4 } from "./Addressing.js"
import { routingOf } from "./Scenario.js"
import type { Twin } from "./Twin.js"

export class TwinMetricsStoreFailed extends Data.TaggedError("TwinMetricsStoreFailed")<{
  readonly what: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `twin metrics store (prometheus): ${this.what}${this.cause === undefined ? "" : `: ${String(this.cause)}`}`
  }
}

export const twinMetricsStorePort = 9090
export const twinMetricsStoreUrl = `http://${underlayHub.v4}:${twinMetricsStorePort}`
const daemonHttpPort = 5120

/**
 * What a daemon site's config gets when the scenario has a metrics store: its HTTP server also on
 * the site's underlay address (for the scrapes), and the store's URL with twin-scale timings.
 */
export const twinMetricsStoreDaemonConfig = (site: number) => ({
  http: { hosts: [routerV4(site), "127.0.0.1", underlayV4(site)], port: daemonHttpPort },
  metricsStore: {
    kind: "prometheus",
    url: twinMetricsStoreUrl,
    intervalMillis: 1_000,
    // Under the twin's load a query can take hundreds of ms; a timeout would count as an outage.
    timeoutMillis: 2_000,
    maxSampleAgeMillis: 10_000,
  },
})

export interface TwinMetricsStore {
  readonly url: string
  readonly logFile: string
  readonly pid: () => number | undefined
  readonly running: () => boolean
  /** Starts Prometheus if it is not running and waits until it is ready. */
  readonly start: Effect.Effect<void, TwinMetricsStoreFailed>
  /** SIGTERM (SIGKILL after 10 s) and waits for the exit. */
  readonly stop: Effect.Effect<void>
}

const stores = new WeakMap<Twin, TwinMetricsStore>()

/** The twin's running metrics store, if its scenario has one and it was started. */
export const twinMetricsStoreOf = (twin: Twin): TwinMetricsStore | undefined => stores.get(twin)

const asTwinError = (e: PrometheusFailed) => new TwinMetricsStoreFailed({ what: e.what, cause: e.cause })

/** Starts the twin's Prometheus (once per twin) in the caller's scope, which stops it. */
export const startTwinMetricsStore = (
  twin: Twin,
): Effect.Effect<TwinMetricsStore, TwinMetricsStoreFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const existing = stores.get(twin)
    if (existing !== undefined) return existing
    const s = twin.scenario
    const targets = Array.from({ length: s.sites }, (_, x) => x)
      .filter((x) => routingOf(s, x) === "net-perf")
      .map((x) => `${underlayV4(x)}:${daemonHttpPort}`)
    // The hub address exists only in the underlay namespace: Prometheus runs there, and its
    // readiness is asked from there.
    const prometheus = yield* startPrometheus({
      dir: join(twin.dir, "prometheus"),
      listen: `${underlayHub.v4}:${twinMetricsStorePort}`,
      targets,
      scrapeIntervalMillis: 1000,
      commandPrefix: ["ip", "netns", "exec", underlayNs(twin.prefix)],
    }).pipe(Effect.mapError(asTwinError))
    yield* Effect.addFinalizer(() => Effect.sync(() => stores.delete(twin)))
    const store: TwinMetricsStore = {
      url: twinMetricsStoreUrl,
      logFile: prometheus.logFile,
      pid: prometheus.pid,
      running: prometheus.running,
      start: prometheus.start.pipe(Effect.mapError(asTwinError)),
      stop: prometheus.stop(),
    }
    stores.set(twin, store)
    return store
  })
