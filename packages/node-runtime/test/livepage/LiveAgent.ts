/**
 * Test agent: what the daemon's metrics port will do for the live page, in one process that a
 * test starts inside a site's namespace. A real measurement plane measures the site's tunnels, a
 * real engine (`NodeRouter`) decides routes from its samples, and an HTTP server serves the page
 * at `/` and `liveStatusOf(plane status, decision)` at `/status`.
 *
 *   node live-agent.mjs '<plane config json>' <httpHost> <httpPort>
 */
import * as http from "node:http"
import { NodeRuntime } from "@effect/platform-node"
import { NodeRouter } from "@net-perf/engine"
import { Duration, Effect, Schedule, Stream } from "effect"
import { livePageHeaders, liveStatusOf, renderLivePage } from "../../src/livepage/LivePage.js"
import { decodeMeasurementPlaneConfig, MeasurementPlane, MeasurementPlaneLive } from "../../src/MeasurementPlane.js"

const main = Effect.gen(function* () {
  const config = yield* decodeMeasurementPlaneConfig(JSON.parse(process.argv[2] ?? "{}"))
  const host = process.argv[3] ?? "127.0.0.1"
  const port = Number(process.argv[4] ?? "5120")
  return yield* Effect.gen(function* () {
    const plane = yield* MeasurementPlane
    const router = NodeRouter.make({
      self: config.localSite ?? 0,
      algorithm: "graph-least-cost",
      startupHoldDownMillis: 0,
      incarnation: Date.now(),
    })
    yield* plane.samples.pipe(
      Stream.runForEach((s) => Effect.sync(() => router.observe(s))),
      Effect.forkScoped,
    )
    yield* Effect.sync(() => router.decide(Date.now())).pipe(
      Effect.repeat(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped,
    )
    const page = renderLivePage()
    const server = http.createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname
      if (path === "/") {
        res.writeHead(200, livePageHeaders)
        return res.end(page)
      }
      if (path === "/status")
        return void Effect.runPromise(plane.status).then((s) => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(
            JSON.stringify(liveStatusOf(s, { decision: router.lastDecision, configuredAlgorithm: "graph-least-cost" })),
          )
        })
      res.writeHead(404, { "content-type": "application/json" })
      res.end('{"error":"not found"}')
    })
    yield* Effect.acquireRelease(
      Effect.async<void>((resume) => {
        server.listen(port, host, () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }),
    )
    process.stdout.write("listening\n")
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(MeasurementPlaneLive(config)))
})

NodeRuntime.runMain(main)
