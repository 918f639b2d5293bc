/**
 * HTTP on :5120: `/metrics` (Prometheus text from the plane's registry), `/healthz` (200 with a
 * small JSON body while the plane runs) and `/status` (the same JSON as the control socket's
 * STATUS), and optionally `/` (an HTML page). Anything else is 404; only GET/HEAD.
 */
import * as http from "node:http"
import { Data, Effect, Runtime, type Scope } from "effect"
import type { Registry } from "prom-client"

export class HttpListenFailed extends Data.TaggedError("HttpListenFailed")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {}

export interface MetricsServerConfig {
  readonly host: string
  readonly port: number
}

export const defaultMetricsServerConfig: MetricsServerConfig = { host: "0.0.0.0", port: 5120 }

export const serveMetrics = <R>(
  config: MetricsServerConfig,
  registry: Registry,
  status: Effect.Effect<unknown, never, R>,
  health: Effect.Effect<Record<string, unknown>, never, R>,
  /** Optional HTML page for `GET /` (the daemon's live mesh page) with its headers. */
  page?: { readonly html: string; readonly headers: Readonly<Record<string, string>> },
): Effect.Effect<http.Server, HttpListenFailed, Scope.Scope | R> =>
  Effect.gen(function* () {
    const run = Runtime.runPromise(yield* Effect.runtime<R>())
    const json = (res: http.ServerResponse, code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json" })
      res.end(`${JSON.stringify(body)}\n`)
    }
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const path = new URL(req.url ?? "/", "http://x").pathname
      if (req.method !== "GET" && req.method !== "HEAD") return json(res, 405, { error: "method not allowed" })
      const fail = (e: unknown) => json(res, 500, { error: String(e) })
      switch (path) {
        case "/metrics":
          registry.metrics().then((text) => {
            res.writeHead(200, { "content-type": registry.contentType })
            res.end(text)
          }, fail)
          return
        case "/healthz":
          run(health).then((h) => json(res, 200, { status: "ok", ...h }), fail)
          return
        case "/status":
          run(status).then((s) => json(res, 200, s), fail)
          return
        case "/":
          if (page === undefined) return json(res, 404, { error: `no route ${path}` })
          res.writeHead(200, page.headers)
          res.end(req.method === "HEAD" ? undefined : page.html)
          return
        default:
          return json(res, 404, { error: `no route ${path}` })
      }
    }
    return yield* Effect.acquireRelease(
      Effect.async<http.Server, HttpListenFailed>((resume) => {
        const server = http.createServer(handler)
        server.once("error", (cause) => resume(Effect.fail(new HttpListenFailed({ ...config, cause }))))
        server.listen(config.port, config.host, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }),
    )
  })
