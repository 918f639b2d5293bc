#!/usr/bin/env node
/** Entry point of `perfc`; exit 0 every site answered, 2 partial, 3 none, 1 bad input. */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { normalizePerfcArgs, runPerfc } from "../perfc/Command.js"

const setExit = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

const program = runPerfc(normalizePerfcArgs(process.argv)).pipe(
  Effect.catchAll((error) => {
    // @effect/cli has already printed the problem and the usage.
    if (ValidationError.isValidationError(error)) return setExit(1)
    if (error._tag === "PerfcExit") return setExit(error.code)
    return Console.error(`perfc: ${error.message}`).pipe(Effect.zipRight(setExit(1)))
  }),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
