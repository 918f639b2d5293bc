#!/usr/bin/env node
/** Entry point of `net-perf-analyse`; exit 0 ok, 1 bad input or rejected measurements. */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { runAnalyse } from "../analyse/Analyse.js"

const program = runAnalyse(process.argv).pipe(
  Effect.catchAll((error) =>
    (ValidationError.isValidationError(error)
      ? Effect.void
      : error._tag === "AnalyseInputError"
        ? Console.error(`net-perf-analyse: ${error.file}: ${error.message}`)
        : Console.error(`net-perf-analyse: ${error.message}`)
    ).pipe(
      Effect.zipRight(
        Effect.sync(() => {
          process.exitCode = 1
        }),
      ),
    ),
  ),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
