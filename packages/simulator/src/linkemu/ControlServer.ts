/**
 * Serves a LinkEmulator over the control socket (protocol in Protocol.ts). Requests on one
 * connection are answered strictly in order; a malformed line gets an error line and the
 * connection stays usable. The socket file is removed when the scope closes.
 */
import { existsSync, unlinkSync } from "node:fs"
import { createServer, type Server, type Socket } from "node:net"
import { Data, Effect, Runtime, Schema, type Scope } from "effect"
import type { LinkEmulatorService } from "./LinkEmulator.js"
import {
  EmptyRequest,
  Envelope,
  formatParseError,
  RemovePairRequest,
  SetImpairmentRequest,
  StatsRequest,
} from "./Protocol.js"

export class LinkEmuControlListenFailed extends Data.TaggedError("LinkEmuControlListenFailed")<{
  readonly socketPath: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot listen on control socket ${this.socketPath}: ${String(this.cause)}`
  }
}

/** Longest request line accepted; longer input is answered with an error and dropped. */
const maxLineBytes = 64 * 1024

const decodeBody = <A, I>(schema: Schema.Schema<A, I>, body: unknown) =>
  Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(body).pipe(
    Effect.mapError(formatParseError),
  )

const errorText = (e: unknown): string =>
  typeof e === "string"
    ? e
    : e instanceof Error || (typeof e === "object" && e !== null && "message" in e)
      ? String((e as { message: unknown }).message)
      : String(e)

/** Answers one request line; never fails. */
export const answerLine = (
  emulator: LinkEmulatorService,
  line: string,
  onShutdown: () => void,
): Effect.Effect<Record<string, unknown>> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch (cause) {
    return Effect.succeed({ ok: false, error: `invalid JSON: ${errorText(cause)}` })
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return Effect.succeed({ ok: false, error: "a request must be a JSON object" })
  }
  const rawTag = (parsed as { tag?: unknown }).tag
  const echo = typeof rawTag === "string" || typeof rawTag === "number" ? { tag: rawTag } : {}
  const { op: _op, tag: _tag, ...body } = parsed as Record<string, unknown>
  const handle = Effect.gen(function* () {
    const envelope = yield* Schema.decodeUnknown(Envelope)(parsed).pipe(Effect.mapError(formatParseError))
    switch (envelope.op) {
      case "ping":
        yield* decodeBody(EmptyRequest, body)
        return { pid: process.pid }
      case "addPair": {
        const added = yield* emulator.addPair(body as never)
        return { id: added.id, listen: added.listen }
      }
      case "removePair": {
        const req = yield* decodeBody(RemovePairRequest, body)
        yield* emulator.removePair(req.id)
        return {}
      }
      case "setImpairment": {
        const req = yield* decodeBody(SetImpairmentRequest, body)
        const impairments = yield* emulator.setImpairment(
          req.id,
          req.direction,
          Schema.encodeSync(SetImpairmentRequest.fields.impairment)(req.impairment),
        )
        return { impairments }
      }
      case "stats": {
        const req = yield* decodeBody(StatsRequest, body)
        const pairs = yield* emulator.stats(req.id)
        return { pairs }
      }
      case "shutdown":
        yield* decodeBody(EmptyRequest, body)
        onShutdown()
        return {}
    }
  })
  return handle.pipe(
    Effect.map((fields): Record<string, unknown> => ({ ok: true, ...echo, ...fields })),
    Effect.catchAll((e) => Effect.succeed({ ok: false, ...echo, error: errorText(e) })),
  )
}

/**
 * Listens on `socketPath` (replacing a stale file) and answers requests until the scope closes.
 * `onShutdown` runs after a `shutdown` request has been answered.
 */
export const serveControl = (
  emulator: LinkEmulatorService,
  socketPath: string,
  onShutdown: () => void,
): Effect.Effect<Server, LinkEmuControlListenFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runPromise(runtime)
    const connections = new Set<Socket>()
    const serve = (conn: Socket): void => {
      connections.add(conn)
      conn.setEncoding("utf8")
      let buffered = ""
      let queue: Promise<void> = Promise.resolve()
      let shutdownAfterFlush = false
      const enqueue = (line: string) => {
        queue = queue.then(async () => {
          const answer = await run(
            answerLine(emulator, line, () => {
              shutdownAfterFlush = true
            }),
          )
          if (!conn.destroyed) conn.write(`${JSON.stringify(answer)}\n`)
          if (shutdownAfterFlush) {
            shutdownAfterFlush = false
            conn.end(() => onShutdown())
          }
        })
      }
      conn.on("data", (chunk: string) => {
        buffered += chunk
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const line = buffered.slice(0, nl).trim()
          buffered = buffered.slice(nl + 1)
          if (line.length > 0) enqueue(line)
        }
        if (buffered.length > maxLineBytes) {
          buffered = ""
          queue = queue.then(() => {
            if (!conn.destroyed)
              conn.write(`${JSON.stringify({ ok: false, error: `request line longer than ${maxLineBytes} bytes` })}\n`)
          })
        }
      })
      conn.on("error", () => conn.destroy())
      conn.on("close", () => connections.delete(conn))
    }
    return yield* Effect.acquireRelease(
      Effect.async<Server, LinkEmuControlListenFailed>((resume) => {
        try {
          if (existsSync(socketPath)) unlinkSync(socketPath)
        } catch (cause) {
          resume(Effect.fail(new LinkEmuControlListenFailed({ socketPath, cause })))
          return
        }
        const server = createServer(serve)
        server.once("error", (cause) => resume(Effect.fail(new LinkEmuControlListenFailed({ socketPath, cause }))))
        server.listen(socketPath, () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.async<void>((resume) => {
          for (const conn of connections) conn.destroy()
          server.close(() => {
            try {
              if (existsSync(socketPath)) unlinkSync(socketPath)
            } catch {
              // already gone (e.g. its directory was removed): nothing left to clean
            }
            resume(Effect.void)
          })
        }),
    )
  })
