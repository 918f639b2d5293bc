#!/usr/bin/env node
/**
 * `report-html <report.json> <out.html>`: any saved report as a self-contained HTML page — a twin
 * report (`netlab run --report`), a model run or labelled runs (`{ runs: [{ label, report }] }`),
 * a side-by-side twin comparison (`netlab run --compare --report`), or the model bench's `--json` document. The kind is recognised from the JSON's fields.
 * Exit codes: 0 written, 1 unreadable/unwritable file, 2 not a report this tool knows.
 */
import { readFile, writeFile } from "node:fs/promises"
import { gunzipSync } from "node:zlib"
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Data, Effect, Option } from "effect"
import { type ModelReportInput, renderModelReportHtml } from "./ModelHtml.js"
import {
  renderTwinComparisonHtml,
  renderTwinReportHtml,
  type TwinComparisonInput,
  type TwinReportInput,
} from "./TwinHtml.js"

class NotAReport extends Data.TaggedError("NotAReport")<{ readonly file: string; readonly reason: string }> {}
class ReportFileFailed extends Data.TaggedError("ReportFileFailed")<{
  readonly file: string
  readonly cause: unknown
}> {}

type Kind =
  | { readonly _tag: "twin"; readonly report: TwinReportInput }
  | { readonly _tag: "twin-comparison"; readonly report: TwinComparisonInput }
  | { readonly _tag: "model"; readonly report: ModelReportInput }

/** Twin reports have a run prefix and flaps; model inputs have runs, run figures, or bench sections. */
export const reportKindOf = (json: unknown): Kind | undefined => {
  if (typeof json !== "object" || json === null) return undefined
  const o = json as Record<string, unknown>
  if (reportKindOf(o.baseline)?._tag === "twin" && reportKindOf(o.netPerf)?._tag === "twin")
    return { _tag: "twin-comparison", report: json as TwinComparisonInput }
  if (typeof o.prefix === "string" && Array.isArray(o.flaps) && Array.isArray(o.events))
    return { _tag: "twin", report: json as TwinReportInput }
  if (
    Array.isArray(o.runs) ||
    ("hardFailures" in o && "stretch" in o) ||
    "scale" in o ||
    "adversarial" in o ||
    "goals" in o
  )
    return { _tag: "model", report: json as ModelReportInput }
  return undefined
}

/** `.gz` files are gunzipped first (the test fixtures are stored that way). */
const readJson = (file: string) =>
  Effect.tryPromise({
    try: async () => {
      const bytes = await readFile(file)
      return (file.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8")
    },
    catch: (cause) => new ReportFileFailed({ file, cause }),
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (cause) => new NotAReport({ file, reason: `not JSON: ${String(cause)}` }),
      }),
    ),
  )

const readReport = (file: string) =>
  Effect.flatMap(readJson(file), (json) => {
    const kind = reportKindOf(json)
    return kind === undefined
      ? Effect.fail(new NotAReport({ file, reason: "neither a twin report, a model run/runs, nor a bench document" }))
      : Effect.succeed(kind)
  })

const command = Command.make(
  "report-html",
  {
    input: Args.text({ name: "report.json" }).pipe(Args.withDescription("a saved JSON report")),
    output: Args.text({ name: "out.html" }).pipe(Args.withDescription("where to write the HTML page")),
    baseline: Options.text("baseline").pipe(
      Options.optional,
      Options.withDescription("twin only: a report of the same scenario to compare with (e.g. plain BIRD)"),
    ),
    label: Options.text("label").pipe(Options.optional, Options.withDescription("twin only: name of this run")),
    baselineLabel: Options.text("baseline-label").pipe(
      Options.optional,
      Options.withDescription("twin only: name of the baseline"),
    ),
  },
  (o) =>
    Effect.gen(function* () {
      const kind = yield* readReport(o.input)
      let html: string
      if (kind._tag === "twin") {
        const baseline = Option.isSome(o.baseline) ? yield* readReport(o.baseline.value) : undefined
        if (baseline !== undefined && baseline._tag !== "twin")
          return yield* Effect.fail(
            new NotAReport({
              file: Option.getOrElse(o.baseline, () => ""),
              reason: "the baseline must be a twin report",
            }),
          )
        html = renderTwinReportHtml(kind.report, {
          ...(baseline === undefined ? {} : { baseline: baseline.report }),
          ...Option.match(o.label, { onNone: () => ({}), onSome: (label) => ({ label }) }),
          ...Option.match(o.baselineLabel, { onNone: () => ({}), onSome: (baselineLabel) => ({ baselineLabel }) }),
        })
      } else if (kind._tag === "twin-comparison") html = renderTwinComparisonHtml(kind.report)
      else html = renderModelReportHtml(kind.report)
      yield* Effect.tryPromise({
        try: () => writeFile(o.output, html),
        catch: (cause) => new ReportFileFailed({ file: o.output, cause }),
      })
      yield* Console.error(`${kind._tag} report → ${o.output} (${(html.length / 1024).toFixed(0)} KiB)`)
      yield* Console.log(o.output)
    }),
).pipe(Command.withDescription("Render a saved twin or model-simulator report as one self-contained HTML page."))

const cli = Command.run(command, { name: "report-html", version: "0.1.0" })

const exitWith = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

if (process.argv[1] !== undefined && /report-html[\\/]main\.(js|ts)$/.test(process.argv[1]))
  NodeRuntime.runMain(
    cli(process.argv).pipe(
      Effect.catchTags({
        NotAReport: (e) => Console.error(`report-html: ${e.file}: ${e.reason}`).pipe(Effect.zipRight(exitWith(2))),
        ReportFileFailed: (e) =>
          Console.error(`report-html: ${e.file}: ${String(e.cause)}`).pipe(Effect.zipRight(exitWith(1))),
      }),
      Effect.catchAll(() => exitWith(2)),
      Effect.provide(NodeContext.layer),
    ),
    { disableErrorReporting: true },
  )
