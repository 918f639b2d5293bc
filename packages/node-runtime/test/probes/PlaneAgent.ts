/**
 * Runs one measurement plane as its own process (for tests and benches that need it inside a
 * network namespace): `node agent.mjs '<config json>' [--samples]`. With `--samples` every sample
 * and every echo health change is printed on stdout as one JSON line. SIGTERM closes the plane's
 * scope, so its ping processes, sockets and control socket are released before exit.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Sample } from "@net-perf/engine"
import { Effect, Schema, Stream } from "effect"
import { decodeMeasurementPlaneConfig, MeasurementPlane, MeasurementPlaneLive } from "../../src/MeasurementPlane.js"

const encodeSample = Schema.encodeSync(Sample)

const main = Effect.gen(function* () {
  const config = yield* decodeMeasurementPlaneConfig(JSON.parse(process.argv[2] ?? "{}"))
  const printSamples = process.argv.includes("--samples")
  return yield* Effect.gen(function* () {
    const plane = yield* MeasurementPlane
    if (printSamples) {
      yield* plane.samples.pipe(
        Stream.runForEach((s) => Effect.sync(() => process.stdout.write(`${JSON.stringify(encodeSample(s))}\n`))),
        Effect.forkScoped,
      )
      yield* plane.healthChanges.pipe(
        Stream.runForEach((h) =>
          Effect.sync(() => process.stdout.write(`${JSON.stringify({ _tag: "Health", ...h })}\n`)),
        ),
        Effect.forkScoped,
      )
    }
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(MeasurementPlaneLive(config)))
})

NodeRuntime.runMain(main)
