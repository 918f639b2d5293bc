// The query client's failure modes against real loopback servers: a server that never answers
// (timeout, bounded by timeoutMillis), a non-JSON 500 (http-status), a Prometheus error body with
// 400 (query-error), a closed port (unreachable), and a well-formed answer.
import * as http from "node:http"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makePromClient } from "../../src/metricsstore/PromApi.js"

const serve = (handler: http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<http.Server>((resume) => {
      const server = http.createServer(handler)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }),
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as { port: number }).port}`))

describe("makePromClient", () => {
  it.scopedLive("times out on a server that never answers, within the timeout", () =>
    Effect.gen(function* () {
      const url = yield* serve(() => {}) // accepts, never responds
      const client = makePromClient({ url, timeoutMillis: 300 })
      const started = Date.now()
      const error = yield* Effect.flip(client.query("up"))
      const elapsed = Date.now() - started
      expect(error.reason).toBe("timeout")
      expect(elapsed).toBeGreaterThanOrEqual(290)
      expect(elapsed).toBeLessThan(2_000)
    }),
  )

  it.scopedLive("names the HTTP status of a non-Prometheus answer, and Prometheus' own error", () =>
    Effect.gen(function* () {
      const url = yield* serve((req, res) => {
        if (req.url?.includes("bad")) {
          res.writeHead(400, { "content-type": "application/json" })
          res.end(JSON.stringify({ status: "error", errorType: "bad_data", error: "1:4: parse error" }))
          return
        }
        res.writeHead(500, { "content-type": "text/html" })
        res.end("<html>proxy error</html>")
      })
      const client = makePromClient({ url, timeoutMillis: 2_000 })
      const status = yield* Effect.flip(client.query("up"))
      expect(status.reason).toBe("http-status")
      expect(status.detail).toContain("HTTP 500")
      const query = yield* Effect.flip(client.query("bad{"))
      expect(query.reason).toBe("query-error")
      expect(query.detail).toContain("bad_data")
    }),
  )

  it.scopedLive("reports a closed port as unreachable and decodes a good answer", () =>
    Effect.gen(function* () {
      const url = yield* serve((req, res) => {
        const q = new URL(req.url ?? "/", "http://x").searchParams.get("query")
        res.writeHead(200, { "content-type": "application/json" })
        res.end(
          JSON.stringify({
            status: "success",
            data: { resultType: "vector", result: [{ metric: { q: q ?? "" }, value: [1700000000.5, "+Inf"] }] },
          }),
        )
      })
      const good = yield* makePromClient({ url: `${url}/`, timeoutMillis: 2_000 }).query('up{job="x"}')
      expect(good).toEqual([
        { labels: { q: 'up{job="x"}' }, atMillis: 1_700_000_000_500, value: Number.POSITIVE_INFINITY },
      ])
      // Port 1 on loopback: nothing listens there (connection refused).
      const unreachable = yield* Effect.flip(
        makePromClient({ url: "http://127.0.0.1:1", timeoutMillis: 2_000 }).query("up"),
      )
      expect(unreachable.reason).toBe("unreachable")
    }),
  )
})
