/**
 * `perfc` command line (@effect/cli). `--watch [seconds]` redraws the table in place (or prints
 * one JSON line per refresh with `--json`) until interrupted; `--watch` without a number means 2 s,
 * handled by `normalizePerfcArgs` because @effect/cli options take a value or none, not both.
 */
import { Command, Options } from "@effect/cli"
import { algorithmNames } from "@net-perf/engine"
import { Console, Duration, Effect, Option, Schedule } from "effect"
import { loadClientTls, PerfcExit, siteOptions } from "./CliOptions.js"
import { pathPingCommand } from "./PathPing.js"
import { collectMeshView, exitCodeOf, filterSources } from "./Perfc.js"
import { renderJson, renderTable } from "./Render.js"
import { parseSiteList, resolveTargets } from "./Targets.js"

export { InvalidTlsOptions, loadClientTls, PerfcExit, siteOptions } from "./CliOptions.js"

export const defaultWatchSeconds = 2

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
  Command.withSubcommands([pathPingCommand]),
)

/** `--watch` with no number (last argument or followed by another flag) becomes `--watch 2`. */
export const normalizePerfcArgs = (argv: ReadonlyArray<string>): Array<string> =>
  argv.flatMap((arg, i) =>
    arg === "--watch" && (argv[i + 1] === undefined || !/^\d+$/.test(argv[i + 1] ?? ""))
      ? [arg, String(defaultWatchSeconds)]
      : [arg],
  )

export const runPerfc = Command.run(perfcCommand, { name: "perfc", version: "0.1.0" })
