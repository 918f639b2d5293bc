/**
 * Runs the real `net-perf` daemon (the workspace build, same binary as production) inside twin
 * sites, each with a per-site config written next to the site's other files.
 *
 * Decision a reader must know: a daemon is a child process in a Scope. Closing the scope sends
 * SIGTERM (the daemon withdraws its routes) and SIGKILL after a grace period, so a failed test
 * never leaves one behind; `kill`/`restart` exist for scenario timelines (kill -9 included).
 */
import { spawn } from "node:child_process"
import { createWriteStream } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { daemonNodeFlags } from "@net-perf/node-runtime"
import { Data, Deferred, Effect, type Scope } from "effect"
import { execa } from "execa"
import { routerV4 } from "./Addressing.js"
import { twinMetricsStoreDaemonConfig } from "./MetricsStore.js"
import type { Twin } from "./Twin.js"

export class DaemonFailed extends Data.TaggedError("DaemonFailed")<{
  readonly site: number
  readonly what: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `net-perf daemon at site ${this.site}: ${this.what}${this.cause === undefined ? "" : `: ${String(this.cause)}`}`
  }
}

/** The daemon's entry point in this workspace's build (this module runs from src/ in tests, dist/ otherwise). */
export const daemonBinary = (): string => {
  const here = fileURLToPath(import.meta.url)
  const packages = here.slice(0, here.lastIndexOf("/simulator/"))
  return resolve(packages, "node-runtime/dist/src/bin/net-perf.js")
}

/** Per-site daemon config for a twin site (the daemon's Config schema; JSON). */
export const twinDaemonConfig = (twin: Twin, site: number, overrides: Record<string, unknown> = {}) => ({
  site,
  discovery: { confDir: join(twin.siteDir(site), "wgconf"), rescanIntervalMillis: 5_000 },
  controlSocket: join(twin.siteDir(site), "net-perf.sock"),
  bird: { socket: join(twin.siteDir(site), "bird.ctl") },
  // Scenario `metricsStore`: the store's URL, and HTTP on the underlay address for its scrapes.
  ...(twin.scenario.metricsStore === undefined ? {} : twinMetricsStoreDaemonConfig(site)),
  ...overrides,
})

export interface DaemonHandle {
  readonly site: number
  readonly logFile: string
  /** pid of the current process (changes on restart). */
  readonly pid: () => number | undefined
  /** Sends a signal and waits for the process to end; resolves to its exit code or signal. */
  readonly stop: (signal?: NodeJS.Signals, timeoutMillis?: number) => Effect.Effect<string>
  readonly start: Effect.Effect<void, DaemonFailed>
}

export interface DaemonOptions {
  readonly overrides?: Record<string, unknown>
  readonly logLevel?: "debug" | "info" | "warning" | "error"
}

// cleanup: false — execa's exit hook would re-raise SIGTERM in *our* process before our own
// finalizers run (seen in the twin's residue test); the Scope stops the daemon instead.
const spawnDaemon = (argv: ReadonlyArray<string>) =>
  execa(argv[0]!, argv.slice(1), {
    reject: false,
    cleanup: false,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    buffer: false,
  })

const writeDaemonFiles = (twin: Twin, site: number, overrides: Record<string, unknown> | undefined) =>
  Effect.tryPromise({
    try: async () => {
      const dir = twin.siteDir(site)
      await writeFile(
        join(dir, "net-perf.json"),
        `${JSON.stringify(twinDaemonConfig(twin, site, overrides), null, 2)}\n`,
      )
      // Only the site's WireGuard confs (the site folder also holds bird.conf).
      await execa("sh", ["-c", `mkdir -p wgconf && cp wg*.conf wgconf/ 2>/dev/null || true`], { cwd: dir })
    },
    catch: (cause) => new DaemonFailed({ site, what: "writing its config", cause }),
  })

/** The daemon's command inside a site, as production starts it (the bin's V8 flags included). */
const daemonCommand = (twin: Twin, site: number, options: DaemonOptions): ReadonlyArray<string> =>
  twin.siteCommand(site, [
    process.execPath,
    ...daemonNodeFlags,
    daemonBinary(),
    "-c",
    join(twin.siteDir(site), "net-perf.json"),
    "--log-level",
    options.logLevel ?? "info",
  ])

/**
 * Starts the daemon at one site detached from this process (for `netlab up`, whose twin outlives
 * the command): no handle; `netlab down` stops it with the rest of the site's processes.
 */
export const startDetachedDaemon = (
  twin: Twin,
  site: number,
  options: DaemonOptions = {},
): Effect.Effect<void, DaemonFailed> =>
  Effect.gen(function* () {
    const dir = twin.siteDir(site)
    yield* writeDaemonFiles(twin, site, options.overrides)
    const argv = daemonCommand(twin, site, options)
    yield* Effect.try({
      try: () => {
        const child = spawn("sh", ["-c", '"$@" >>"$0" 2>&1 </dev/null', join(dir, "net-perf.log"), ...argv], {
          detached: true,
          stdio: "ignore",
        })
        child.unref()
      },
      catch: (cause) => new DaemonFailed({ site, what: "spawning", cause }),
    })
  })

/** Starts the daemon at one site; the scope stops it (SIGTERM, then SIGKILL after 10 s). */
export const startDaemon = (
  twin: Twin,
  site: number,
  options: DaemonOptions = {},
): Effect.Effect<DaemonHandle, DaemonFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = twin.siteDir(site)
    const logFile = join(dir, "net-perf.log")
    yield* writeDaemonFiles(twin, site, options.overrides)
    const log = createWriteStream(logFile, { flags: "a" })
    yield* Effect.addFinalizer(() => Effect.sync(() => log.end()))
    let child: ReturnType<typeof spawnDaemon> | undefined
    let exited: Deferred.Deferred<string> | undefined

    const start = Effect.gen(function* () {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) return
      const done = yield* Deferred.make<string>()
      const proc = yield* Effect.try({
        try: () => spawnDaemon(daemonCommand(twin, site, options)),
        catch: (cause) => new DaemonFailed({ site, what: "spawning", cause }),
      })
      proc.stdout?.pipe(log, { end: false })
      proc.stderr?.pipe(log, { end: false })
      void proc.then((r) => Effect.runSync(Deferred.succeed(done, r.signal ?? `exit ${r.exitCode}`)))
      child = proc
      exited = done
    })

    const stop = (signal: NodeJS.Signals = "SIGTERM", timeoutMillis = 10_000) =>
      Effect.gen(function* () {
        if (child === undefined || exited === undefined) return "not running"
        // The wrapper (unshare + ip netns exec) execs into node, so the pid is the daemon's.
        child.kill(signal)
        const outcome = yield* Deferred.await(exited).pipe(Effect.timeout(`${timeoutMillis} millis`), Effect.option)
        if (outcome._tag === "Some") return outcome.value
        child.kill("SIGKILL")
        return yield* Deferred.await(exited)
      })

    yield* start
    yield* Effect.addFinalizer(() => stop("SIGTERM"))
    return { site, logFile, pid: () => child?.pid, stop, start } satisfies DaemonHandle
  })

/** The daemon's Prometheus text at a site (its HTTP server binds the site's overlay router address). */
export const scrapeDaemonMetrics = (twin: Twin, site: number, port = 5120): Effect.Effect<string, DaemonFailed> =>
  Effect.tryPromise({
    try: async () =>
      (
        await execa("ip", [
          "netns",
          "exec",
          twin.siteNs(site),
          "curl",
          "-sf",
          "-m",
          "5",
          `http://${routerV4(site)}:${port}/metrics`,
        ])
      ).stdout,
    catch: (cause) => new DaemonFailed({ site, what: "scraping /metrics", cause }),
  })

/** Sum of a counter's samples whose labels include every given label (Prometheus text format). */
export const sumCounter = (
  metricsText: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number => {
  let total = 0
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const m = /^[^{\s]+(?:\{([^}]*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const have = new Map(
      [...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1] as string, x[2] as string]),
    )
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(m[2])
  }
  return total
}
