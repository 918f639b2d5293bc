/**
 * Runs one measurement plane as its own process (for tests and benches that need it inside a
 * network namespace): `node agent.mjs '<config json>'`. SIGTERM closes the plane's scope, so its
 * ping processes, sockets and control socket are released before exit.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { decodeMeasurementPlaneConfig, MeasurementPlaneLive } from "../../src/MeasurementPlane.js"

const main = Effect.gen(function* () {
  const config = yield* decodeMeasurementPlaneConfig(JSON.parse(process.argv[2] ?? "{}"))
  return yield* Layer.launch(MeasurementPlaneLive(config))
})

NodeRuntime.runMain(main)
