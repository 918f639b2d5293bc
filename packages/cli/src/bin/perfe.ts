#!/usr/bin/env node
/** Entry point of `perfe`; with --once: exit 0 all exported, 2 partial, 3 nothing, 1 bad input or ES down. */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { runPerfe } from "../perfe/Command.js"

const setExit = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

const program = runPerfe(process.argv).pipe(
  Effect.catchAll((error) => {
    if (ValidationError.isValidationError(error)) return setExit(1)
    if (error._tag === "PerfeExit") return setExit(error.code)
    return Console.error(`perfe: ${error.message}`).pipe(Effect.zipRight(setExit(1)))
  }),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
