/**
 * The bulk-API-checking server as its own process, for tests that need it inside a network
 * namespace (run the compiled `dist/test/perfe/bulkServerProcess.js` with `ip netns exec`).
 * Prints `{"port":N}` once listening; when its stdin closes, prints `{"violations":[...],
 * "documents":[...],"bulkRequests":N}` and exits.
 */
import { Effect, Exit, Scope } from "effect"
import { startBulkApiServer } from "./BulkApiServer.js"

const main = Effect.gen(function* () {
  const scope = yield* Scope.make()
  const api = yield* startBulkApiServer().pipe(Scope.extend(scope))
  process.stdout.write(`${JSON.stringify({ port: api.port })}\n`)
  yield* Effect.async<void>((resume) => {
    process.stdin.on("end", () => resume(Effect.void))
    process.stdin.on("close", () => resume(Effect.void))
    process.stdin.resume()
  })
  process.stdout.write(
    `${JSON.stringify({
      violations: api.violations,
      documents: [...api.documents.values()],
      bulkRequests: api.bulkRequests.length,
    })}\n`,
  )
  yield* Scope.close(scope, Exit.void)
})

Effect.runPromise(main).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bulkServerProcess: ${String(e)}\n`)
    process.exit(1)
  },
)
