#!/usr/bin/env node
/** Entry point of `net-perf-mesh`; exit 0 ok, 1 drift (--check), 2 bad input or I/O failure. */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { normalizeArgs, runMeshCommand } from "../meshgen/Command.js"

const program = runMeshCommand(normalizeArgs(process.argv)).pipe(
  Effect.catchAll((error) => {
    if (ValidationError.isValidationError(error)) {
      // @effect/cli has already printed the problem and the usage.
      return Effect.sync(() => {
        process.exitCode = 2
      })
    }
    if (error._tag === "DriftFound") {
      return Effect.sync(() => {
        process.exitCode = 1
      })
    }
    return Console.error(`net-perf-mesh: ${error.message}`).pipe(
      Effect.zipRight(
        Effect.sync(() => {
          process.exitCode = 2
        }),
      ),
    )
  }),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
