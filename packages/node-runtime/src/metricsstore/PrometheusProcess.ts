/**
 * Runs a real Prometheus server (the Debian `prometheus` package) for tests and the twin: a
 * config scraping the given targets, a TSDB in the given folder, stop and start again.
 *
 * Decision a reader must know: the process lives in a Scope; closing it stops Prometheus
 * (SIGTERM, SIGKILL after a grace period) and waits for the exit, so no test leaves one behind.
 * `commandPrefix` runs it elsewhere (the twin: `ip netns exec <underlay>`). VictoriaMetrics is
 * not packaged in Debian 12 (nor on npm), so only Prometheus is run here; the daemon's client
 * speaks the query API both serve.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Deferred, Duration, Effect, Schedule, type Scope } from "effect"
import { execa } from "execa"

export class PrometheusFailed extends Data.TaggedError("PrometheusFailed")<{
  readonly what: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `prometheus: ${this.what}${this.cause === undefined ? "" : `: ${String(this.cause)}`}`
  }
}

export interface PrometheusOptions {
  /** Folder for the config, the TSDB and the log (created; the caller removes it). */
  readonly dir: string
  /** `host:port` Prometheus listens on. */
  readonly listen: string
  /** `host:port` targets scraped at `/metrics` (job `netperf`). */
  readonly targets: ReadonlyArray<string>
  /** Default 1000 ms (the smallest Prometheus interval that is still sane). */
  readonly scrapeIntervalMillis?: number
  /** argv prefix, e.g. `["ip", "netns", "exec", "nl12ab-u"]`; readiness is then checked through it with curl. */
  readonly commandPrefix?: ReadonlyArray<string>
  /** How long `start` waits for `/-/ready`. Default 30 s. */
  readonly readyTimeoutMillis?: number
  readonly binary?: string
}

export interface PrometheusHandle {
  readonly url: string
  readonly logFile: string
  readonly pid: () => number | undefined
  readonly running: () => boolean
  /** Starts (if not running) and waits until Prometheus reports ready. */
  readonly start: Effect.Effect<void, PrometheusFailed>
  /** SIGTERM, SIGKILL after `timeoutMillis`; waits for the exit. */
  readonly stop: (timeoutMillis?: number) => Effect.Effect<void>
}

export const prometheusConfig = (targets: ReadonlyArray<string>, scrapeIntervalMillis: number): string =>
  [
    "global:",
    `  scrape_interval: ${scrapeIntervalMillis}ms`,
    `  scrape_timeout: ${Math.max(100, Math.floor(scrapeIntervalMillis * 0.8))}ms`,
    `  evaluation_interval: ${Math.max(1000, scrapeIntervalMillis)}ms`,
    "scrape_configs:",
    "  - job_name: netperf",
    "    static_configs:",
    `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n")

// cleanup: false — execa's exit hook would signal the child before our finalizers run; the Scope stops it.
const spawnLogged = (argv: ReadonlyArray<string>, logFile: string) =>
  execa(argv[0]!, argv.slice(1), {
    reject: false,
    cleanup: false,
    stdin: "ignore",
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
  })

/** Writes the config and starts Prometheus; the scope stops it. */
export const startPrometheus = (
  options: PrometheusOptions,
): Effect.Effect<PrometheusHandle, PrometheusFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const configFile = join(options.dir, "prometheus.yml")
    const logFile = join(options.dir, "prometheus.log")
    const url = `http://${options.listen}`
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(join(options.dir, "data"), { recursive: true })
        await writeFile(configFile, prometheusConfig(options.targets, options.scrapeIntervalMillis ?? 1000))
      },
      catch: (cause) => new PrometheusFailed({ what: `writing ${configFile}`, cause }),
    })
    const prefix = options.commandPrefix ?? []
    const argv = [
      ...prefix,
      options.binary ?? "prometheus",
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(options.dir, "data")}`,
      `--web.listen-address=${options.listen}`,
      "--log.level=warn",
    ]
    let child: ReturnType<typeof spawnLogged> | undefined
    let exited: Deferred.Deferred<void> | undefined
    const running = () => child !== undefined && child.exitCode === null && child.signalCode === null

    // With a command prefix the listen address may exist only where the prefix runs (the twin's
    // underlay namespace), so readiness is asked from there too.
    const ready = Effect.tryPromise({
      try: async (signal) => {
        if (prefix.length > 0) {
          await execa(prefix[0]!, [...prefix.slice(1), "curl", "-sf", "-m", "1", `${url}/-/ready`], {
            cancelSignal: signal,
          })
          return
        }
        const res = await fetch(`${url}/-/ready`, { signal })
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
      },
      catch: (cause) => new PrometheusFailed({ what: `not ready at ${url}`, cause }),
    }).pipe(Effect.timeout("2 seconds"))

    const start = Effect.gen(function* () {
      if (running()) return
      const done = yield* Deferred.make<void>()
      const proc = yield* Effect.try({
        try: () => spawnLogged(argv, logFile),
        catch: (cause) => new PrometheusFailed({ what: "spawning", cause }),
      })
      void proc.then(() => Effect.runSync(Deferred.succeed(done, undefined)))
      child = proc
      exited = done
      yield* ready.pipe(
        Effect.catchAll((e) =>
          running() ? Effect.fail(e) : Effect.fail(new PrometheusFailed({ what: `exited at start (see ${logFile})` })),
        ),
        Effect.retry(
          Schedule.spaced("200 millis").pipe(
            Schedule.whileInput(
              (e: PrometheusFailed | { _tag: "TimeoutException" }) =>
                e._tag !== "PrometheusFailed" || !e.what.startsWith("exited"),
            ),
            Schedule.upTo(Duration.millis(options.readyTimeoutMillis ?? 30_000)),
          ),
        ),
        Effect.mapError((e) =>
          e._tag === "PrometheusFailed" ? e : new PrometheusFailed({ what: "not ready in time" }),
        ),
      )
    })

    const stop = (timeoutMillis = 10_000) =>
      Effect.gen(function* () {
        if (child === undefined || exited === undefined || !running()) return
        child.kill("SIGTERM")
        const outcome = yield* Deferred.await(exited).pipe(Effect.timeout(`${timeoutMillis} millis`), Effect.option)
        if (outcome._tag === "Some") return
        child.kill("SIGKILL")
        yield* Deferred.await(exited)
      })

    yield* Effect.addFinalizer(() => stop())
    yield* start
    return { url, logFile, pid: () => child?.pid, running, start, stop } satisfies PrometheusHandle
  })
