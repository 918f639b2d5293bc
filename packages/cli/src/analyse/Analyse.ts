/**
 * `net-perf-analyse`: the engine's least-squares path analyser as a command. Reads pathping
 * measurements from a JSON file — plain `{ path, rttMs, weight? }` measurements or the daemon's
 * `PathSample`s (lost ones dropped, weight = replies) — and prints each link's estimated one-way
 * latency, each measurement's residual and the links that disagree most with the measurements.
 * The file is decoded with Schema at the edge: a bad entry is reported with its path and value.
 */
import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import {
  type AnalysisResult,
  analysePaths,
  fromPathSamples,
  type PathMeasurement,
  PathSample,
  SiteId,
} from "@net-perf/engine"
import { Console, Data, Effect, Either, ParseResult, Schema } from "effect"
import { alignRows } from "../perfc/Render.js"

export class AnalyseInputError extends Data.TaggedError("AnalyseInputError")<{
  readonly file: string
  readonly message: string
  readonly cause?: unknown
}> {}

const Measurement = Schema.Struct({
  path: Schema.Array(SiteId).pipe(Schema.minItems(2)),
  rttMs: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
  weight: Schema.optional(Schema.Number.pipe(Schema.finite(), Schema.positive())),
})

const Entry = Schema.Union(PathSample, Measurement)
const Entries = Schema.Array(Entry)

/** A bare array, or `{ measurements: [...] }` / `{ samples: [...] }`. */
export const AnalyseInput = Schema.Union(
  Entries,
  Schema.Struct({ measurements: Entries }),
  Schema.Struct({ samples: Entries }),
)

const isEntryList = (x: typeof AnalyseInput.Type): x is ReadonlyArray<typeof Entry.Type> => Array.isArray(x)

/** Measurements from decoded input entries, in input order. */
export const toMeasurements = (input: typeof AnalyseInput.Type): ReadonlyArray<PathMeasurement> => {
  const entries: ReadonlyArray<typeof Entry.Type> = isEntryList(input)
    ? input
    : "measurements" in input
      ? input.measurements
      : input.samples
  return entries.flatMap(
    (e): ReadonlyArray<PathMeasurement> =>
      e instanceof PathSample
        ? fromPathSamples([e])
        : [{ path: e.path, rttMs: e.rttMs, ...(e.weight === undefined ? {} : { weight: e.weight }) }],
  )
}

export const readMeasurements = (file: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(file)
      .pipe(Effect.mapError((cause) => new AnalyseInputError({ file, message: "cannot read the file", cause })))
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (cause) => new AnalyseInputError({ file, message: `not JSON: ${String(cause)}`, cause }),
    })
    const decoded = Schema.decodeUnknownEither(AnalyseInput, { errors: "all" })(json)
    if (Either.isLeft(decoded)) {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
        .slice(0, 8)
        .map((i) => `  ${i.path.join(".") || "(top level)"}: ${i.message}`)
      return yield* new AnalyseInputError({ file, message: `not pathping measurements:\n${issues.join("\n")}` })
    }
    return toMeasurements(decoded.right)
  })

/** Three decimals, without "-0.000" for values that round to zero. */
const ms = (x: number) => (Math.abs(x) < 0.0005 ? 0 : x).toFixed(3)
const signedMs = (x: number) => (Math.abs(x) < 0.0005 ? " 0.000" : (x > 0 ? "+" : "") + x.toFixed(3))

/** Text report: summary, link estimates, links that disagree most, residuals. */
export const renderAnalysis = (result: AnalysisResult, measurements: number, top: number): string => {
  const lines: Array<string> = []
  const undetermined = result.links.filter((l) => !l.identifiable).length
  lines.push(
    `${measurements} measurements, ${result.links.length} links, rank ${result.rank}` +
      (undetermined > 0 ? ` (${undetermined} links not determined by the measurements)` : "") +
      `, RMS residual ${ms(result.rmsResidualMs)} ms`,
    "",
    "Estimated one-way link latencies:",
    ...alignRows(
      [
        ["Link", "Latency ms", "Determined", "Measurements", "Disagreement ms"],
        ...result.links.map((l) => [
          `${l.a}-${l.b}`,
          ms(l.latencyMs),
          l.identifiable ? "yes" : "no",
          String(l.measurements),
          ms(l.disagreementMs),
        ]),
      ],
      "  ",
      new Set([1, 3, 4]),
    ),
    "",
    `Links that disagree most with the measurements (top ${Math.min(top, result.worstLinks.length)}):`,
    ...alignRows(
      [
        ["Link", "Disagreement ms", "Latency ms", "Measurements"],
        ...result.worstLinks
          .slice(0, top)
          .map((l) => [`${l.a}-${l.b}`, ms(l.disagreementMs), ms(l.latencyMs), String(l.measurements)]),
      ],
      "  ",
      new Set([1, 2, 3]),
    ),
    "",
    "Residuals (fitted − measured):",
    ...alignRows(
      [
        ["#", "Path", "Measured ms", "Fitted ms", "Residual ms"],
        ...result.residuals.map((r) => [
          String(r.index),
          r.path.join(">"),
          ms(r.measuredMs),
          ms(r.fittedMs),
          signedMs(r.residualMs),
        ]),
      ],
      "  ",
      new Set([0, 2, 3, 4]),
    ),
  )
  return lines.join("\n")
}

export const renderAnalysisJson = (result: AnalysisResult, measurements: number, top: number): string =>
  JSON.stringify(
    {
      measurements,
      rank: result.rank,
      rmsResidualMs: result.rmsResidualMs,
      links: result.links,
      worstLinks: result.worstLinks.slice(0, top),
      residuals: result.residuals,
    },
    null,
    2,
  )

export class AnalysisFailed extends Data.TaggedError("AnalysisFailed")<{
  readonly message: string
  readonly cause: unknown
}> {}

export const analyseCommand = Command.make(
  "net-perf-analyse",
  {
    file: Args.file({ name: "measurements.json", exists: "yes" }).pipe(
      Args.withDescription("JSON: [{ path, rttMs, weight? }] or the daemon's PathSamples (or { measurements: [...] })"),
    ),
    json: Options.boolean("json").pipe(Options.withDescription("print JSON instead of tables")),
    top: Options.integer("top").pipe(
      Options.withDefault(5),
      Options.withDescription("how many of the most disagreeing links to list"),
    ),
  },
  (flags) =>
    Effect.gen(function* () {
      const measurements = yield* readMeasurements(flags.file)
      if (measurements.length === 0) {
        return yield* new AnalyseInputError({ file: flags.file, message: "no usable measurements (all lost?)" })
      }
      const result = yield* Either.match(analysePaths(measurements), {
        onLeft: (e) =>
          Effect.fail(new AnalysisFailed({ message: `measurement ${e.index} rejected: ${e.reason}`, cause: e })),
        onRight: Effect.succeed,
      })
      const top = Math.max(0, flags.top)
      yield* Console.log(
        flags.json
          ? renderAnalysisJson(result, measurements.length, top)
          : renderAnalysis(result, measurements.length, top),
      )
    }),
).pipe(
  Command.withDescription(
    "Estimate per-link one-way latencies from multi-hop (pathping) RTTs by non-negative least squares; show residuals and the links that disagree most.",
  ),
)

export const runAnalyse = Command.run(analyseCommand, { name: "net-perf-analyse", version: "0.1.0" })
