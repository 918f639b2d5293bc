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
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Deferred, Duration, Effect, type Scope } from "effect"
import { execa } from "execa"
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

const spawnLogged = (argv: ReadonlyArray<string>, logFile: string) =>
  execa(argv[0]!, argv.slice(1), {
    reject: false,
    // The Scope stops it; execa's exit hook would signal it before our finalizers run.
    cleanup: false,
    stdin: "ignore",
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
  })

/** Starts the twin's Prometheus (once per twin) in the caller's scope, which stops it. */
export const startTwinMetricsStore = (
  twin: Twin,
): Effect.Effect<TwinMetricsStore, TwinMetricsStoreFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const existing = stores.get(twin)
    if (existing !== undefined) return existing
    const s = twin.scenario
    const dir = join(twin.dir, "prometheus")
    const configFile = join(dir, "prometheus.yml")
    const logFile = join(dir, "prometheus.log")
    const targets = Array.from({ length: s.sites }, (_, x) => x)
      .filter((x) => routingOf(s, x) === "net-perf")
      .map((x) => `${underlayV4(x)}:${daemonHttpPort}`)
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(join(dir, "data"), { recursive: true })
        await writeFile(
          configFile,
          [
            "global:",
            "  scrape_interval: 1s",
            "  scrape_timeout: 800ms",
            "scrape_configs:",
            "  - job_name: netperf",
            "    static_configs:",
            `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
            "",
          ].join("\n"),
        )
      },
      catch: (cause) => new TwinMetricsStoreFailed({ what: `writing ${configFile}`, cause }),
    })
    const argv = [
      "ip",
      "netns",
      "exec",
      underlayNs(twin.prefix),
      "prometheus",
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=${underlayHub.v4}:${twinMetricsStorePort}`,
      "--log.level=warn",
    ]
    let child: ReturnType<typeof spawnLogged> | undefined
    let exited: Deferred.Deferred<void> | undefined
    const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

    // Readiness from inside the underlay namespace (the hub address exists only there).
    const ready = Effect.tryPromise({
      try: () =>
        execa("ip", [
          "netns",
          "exec",
          underlayNs(twin.prefix),
          "curl",
          "-sf",
          "-m",
          "1",
          `${twinMetricsStoreUrl}/-/ready`,
        ]),
      catch: (cause) => new TwinMetricsStoreFailed({ what: "not ready", cause }),
    })

    const start = Effect.gen(function* () {
      if (running()) return
      const done = yield* Deferred.make<void>()
      const proc = yield* Effect.try({
        try: () => spawnLogged(argv, logFile),
        catch: (cause) => new TwinMetricsStoreFailed({ what: "spawning", cause }),
      })
      void proc.then(() => Effect.runSync(Deferred.succeed(done, undefined)))
      child = proc
      exited = done
      const deadline = Date.now() + 30_000
      while (true) {
        const ok = yield* Effect.either(ready)
        if (ok._tag === "Right") return
        if (!running()) return yield* new TwinMetricsStoreFailed({ what: `exited at start (see ${logFile})` })
        if (Date.now() > deadline) return yield* new TwinMetricsStoreFailed({ what: "not ready within 30 s" })
        yield* Effect.sleep(Duration.millis(200))
      }
    })

    const stop = Effect.gen(function* () {
      if (child === undefined || exited === undefined || !running()) return
      child.kill("SIGTERM")
      const outcome = yield* Deferred.await(exited).pipe(Effect.timeout("10 seconds"), Effect.option)
      if (outcome._tag === "Some") return
      child.kill("SIGKILL")
      yield* Deferred.await(exited)
    })

    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        stop,
        Effect.sync(() => stores.delete(twin)),
      ),
    )
    yield* start
    const store: TwinMetricsStore = { url: twinMetricsStoreUrl, logFile, pid: () => child?.pid, running, start, stop }
    stores.set(twin, store)
    return store
  })
