/**
 * Child-process entry for Shutdown.test.ts: runs the RouteInstaller Layer (watchdog, withdrawal
 * on close) under `NodeRuntime.runMain`, as the daemon does, against the namespace given in
 * argv, installs the desired routes given as JSON, prints READY, and waits for a signal. The
 * watchdog runs every 20 ms so that a signal nearly always lands while an `ip` command runs
 * (the case where execa's exit cleanup used to re-raise SIGTERM and kill the process).
 */
import { NodeRuntime } from "@effect/platform-node"
import type { KernelRoute } from "@net-perf/engine"
import { Effect, Layer } from "effect"
import { Ip } from "../../src/kernel/Ip.js"
import { RouteInstaller } from "../../src/kernel/RouteInstaller.js"

const [namespace, desiredJson] = process.argv.slice(2)
const desired = JSON.parse(desiredJson ?? "[]") as ReadonlyArray<KernelRoute>

const main = Effect.gen(function* () {
  const installer = yield* RouteInstaller
  const report = yield* installer.setDesired(desired)
  process.stdout.write(`READY ${report.installed.length}\n`)
  return yield* Effect.never
}).pipe(
  Effect.provide(
    RouteInstaller.layer({ watchdogInterval: "20 millis" }).pipe(
      Layer.provide(Ip.layer(namespace === undefined ? {} : { namespace })),
    ),
  ),
)

NodeRuntime.runMain(main, { disableErrorReporting: false })
