/**
 * `perfc` command line (@effect/cli). `--watch [seconds]` redraws the table in place (or prints
 * one JSON line per refresh with `--json`) until interrupted; `--watch` without a number means 2 s,
 * handled by `normalizePerfcArgs` because @effect/cli options take a value or none, not both.
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { algorithmNames } from "@net-perf/engine"
import { Console, Data, Duration, Effect, Option, Schedule } from "effect"
import type { ClientTls } from "./ManagementClient.js"
import { collectMeshView, exitCodeOf, filterSources } from "./Perfc.js"
import { renderJson, renderTable } from "./Render.js"
import { defaultManagementPort, parseSiteList, resolveTargets } from "./Targets.js"

/** Raised to carry a non-zero exit code out of a run that printed its output. */
export class PerfcExit extends Data.TaggedError("PerfcExit")<{ readonly code: number }> {}

export const defaultWatchSeconds = 2

export const siteOptions = {
  sites: Options.text("sites").pipe(
    Options.optional,
    Options.withDescription("site ids to query at 10.201.X.1:<port>, e.g. 0,1,2 or 0-5"),
  ),
  mesh: Options.file("mesh", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("mesh file (net-perf-mesh format): every site, its router address and gRPC port"),
  ),
  targets: Options.text("target").pipe(
    Options.repeated,
    Options.withDescription("site=host:port, overrides a site's address or adds a site (repeatable)"),
  ),
  port: Options.integer("port").pipe(
    Options.withDefault(defaultManagementPort),
    Options.withDescription("management gRPC port for sites named by --sites"),
  ),
  tlsCa: Options.file("tls-ca", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM CA of the daemons' gRPC certificates (enables TLS; default plaintext)"),
  ),
  tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM client certificate, for daemons that require one (with --tls-key)"),
  ),
  tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM key of --tls-cert"),
  ),
  timeoutMillis: Options.integer("timeout").pipe(
    Options.withDefault(3000),
    Options.withDescription("deadline of one site's queries in milliseconds"),
  ),
}

const algorithmChoices = [...algorithmNames, "all"] as const

const perfcOptions = {
  ...siteOptions,
  // Text, not Options.integer: @effect/cli 0.77.2 rejects a single repeated integer ("'0' is not a integer").
  site: Options.text("site").pipe(
    Options.repeated,
    Options.withDescription(
      "show only these source sites (repeatable, or 0,2); the others are still queried to follow Via",
    ),
  ),
  algorithm: Options.choice("algorithm", algorithmChoices).pipe(
    Options.repeated,
    Options.withDescription("show this algorithm's own choice per destination (repeatable, or `all`)"),
  ),
  json: Options.boolean("json").pipe(Options.withDescription("print JSON instead of the table")),
  watch: Options.integer("watch").pipe(
    Options.optional,
    Options.withDescription(`refresh every N seconds until interrupted (no value: ${defaultWatchSeconds})`),
  ),
}

export const perfcCommand = Command.make("perfc", perfcOptions, (flags) =>
  Effect.gen(function* () {
    const targets = yield* resolveTargets({
      sites: Option.getOrUndefined(flags.sites),
      mesh: Option.getOrUndefined(flags.mesh),
      targets: flags.targets,
      port: flags.port,
    })
    const sources = yield* parseSiteList(flags.site.join(","))
    const algorithms = flags.algorithm.includes("all") ? [...algorithmNames] : [...new Set(flags.algorithm)]
    const tls = yield* loadClientTls(flags)
    const snapshot = collectMeshView(targets, { timeoutMillis: flags.timeoutMillis, algorithms, tls }).pipe(
      Effect.map((view) => filterSources(view, sources)),
    )
    if (Option.isSome(flags.watch)) {
      const seconds = Math.max(1, flags.watch.value)
      const draw = snapshot.pipe(
        Effect.flatMap((view) =>
          flags.json
            ? Console.log(renderJson(view, false))
            : Console.log(
                `\x1b[H\x1b[2J${renderTable(view)}\nEvery ${seconds}s, ${new Date(view.atMillis).toISOString()} (Ctrl-C to stop)`,
              ),
        ),
      )
      return yield* Effect.repeat(draw, Schedule.spaced(Duration.seconds(seconds)))
    }
    const view = yield* snapshot
    yield* Console.log(flags.json ? renderJson(view, true) : renderTable(view).trimEnd())
    const code = exitCodeOf(view)
    if (code !== 0) return yield* new PerfcExit({ code })
  }),
).pipe(
  Command.withDescription(
    "Mesh-wide route overview: for every site, each destination's path, cost, measured RTT/loss and the algorithm that won.",
  ),
)

export class InvalidTlsOptions extends Data.TaggedError("InvalidTlsOptions")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Reads the TLS files named by the flags; none given: plaintext. */
export const loadClientTls = (flags: {
  readonly tlsCa: Option.Option<string>
  readonly tlsCert: Option.Option<string>
  readonly tlsKey: Option.Option<string>
}) =>
  Effect.gen(function* () {
    if (Option.isNone(flags.tlsCa)) {
      if (Option.isSome(flags.tlsCert) || Option.isSome(flags.tlsKey)) {
        return yield* new InvalidTlsOptions({ message: "--tls-cert/--tls-key need --tls-ca" })
      }
      return undefined
    }
    if (Option.isSome(flags.tlsCert) !== Option.isSome(flags.tlsKey)) {
      return yield* new InvalidTlsOptions({ message: "--tls-cert and --tls-key go together" })
    }
    const fs = yield* FileSystem.FileSystem
    const read = (path: string) =>
      fs.readFile(path).pipe(
        Effect.map((bytes) => Buffer.from(bytes)),
        Effect.mapError((cause) => new InvalidTlsOptions({ message: `cannot read ${path}`, cause })),
      )
    return {
      ca: yield* read(flags.tlsCa.value),
      cert: Option.isSome(flags.tlsCert) ? yield* read(flags.tlsCert.value) : undefined,
      key: Option.isSome(flags.tlsKey) ? yield* read(flags.tlsKey.value) : undefined,
    } satisfies ClientTls
  })

/** `--watch` with no number (last argument or followed by another flag) becomes `--watch 2`. */
export const normalizePerfcArgs = (argv: ReadonlyArray<string>): Array<string> =>
  argv.flatMap((arg, i) =>
    arg === "--watch" && (argv[i + 1] === undefined || !/^\d+$/.test(argv[i + 1] ?? ""))
      ? [arg, String(defaultWatchSeconds)]
      : [arg],
  )

export const runPerfc = Command.run(perfcCommand, { name: "perfc", version: "0.1.0" })
