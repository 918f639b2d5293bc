/**
 * One connection to one BIRD control socket. Requests are serialised (BIRD's CLI answers one
 * command at a time, in order), each bounded by a timeout; any failure other than BIRD's own
 * error reply drops the connection, because a half-read reply would desynchronise the stream.
 * The next request reconnects, retrying the connect on a backoff `Schedule`. A request on a
 * reused connection that finds it closed (BIRD restarted while we were idle) is retried once on
 * a fresh connection, so a restart costs one reconnect, not one failed request.
 */
import { connect, type Socket } from "node:net"
import { Duration, Effect, Exit, Queue, Schedule, type Scope } from "effect"
import { BirdParseError, BirdReplyError, BirdTimeout, BirdUnavailable } from "./Errors.js"
import { type BirdReply, isErrorCode, ReplyAssembler } from "./Protocol.js"

export interface BirdSocketOptions {
  readonly socket: string
  /** Bound on one request, connect included. Default 10 s (the original's deadline). */
  readonly requestTimeout?: Duration.DurationInput
  /** How connect attempts are retried within a request. Default: 50 ms doubling, 5 retries. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown>
  /** A reply larger than this is refused (and the connection dropped). Default 64 MiB. */
  readonly maxReplyBytes?: number
}

export interface BirdSocket {
  readonly socket: string
  /** Sends one command, returns its complete reply. */
  readonly request: (
    command: string,
  ) => Effect.Effect<BirdReply, BirdUnavailable | BirdTimeout | BirdReplyError | BirdParseError>
  /** BIRD's version from the last welcome banner (`2.0.12`), if connected once. */
  readonly version: Effect.Effect<string | undefined>
  /** Connections opened so far (a restart shows up as one more). */
  readonly connections: Effect.Effect<number>
}

type Event = { readonly _tag: "Line"; readonly line: string } | { readonly _tag: "Closed"; readonly cause: unknown }

interface Connection {
  readonly sock: Socket
  readonly events: Queue.Queue<Event>
  closed: boolean
}

const defaultReconnect = Schedule.exponential("50 millis", 2).pipe(Schedule.intersect(Schedule.recurs(5)))

const open = (path: string) =>
  Effect.gen(function* () {
    const events = yield* Queue.unbounded<Event>()
    return yield* Effect.async<Connection, BirdUnavailable>((resume) => {
      const sock = connect(path)
      sock.setEncoding("utf8")
      const conn: Connection = { sock, events, closed: false }
      let buffer = ""
      let lastError: unknown
      const onConnectError = (cause: Error) => {
        sock.destroy()
        resume(Effect.fail(new BirdUnavailable({ socket: path, cause })))
      }
      sock.once("error", onConnectError)
      sock.once("connect", () => {
        sock.off("error", onConnectError)
        sock.on("error", (cause) => {
          lastError = cause
        })
        resume(Effect.succeed(conn))
      })
      sock.on("data", (chunk: string) => {
        buffer += chunk
        let nl = buffer.indexOf("\n")
        while (nl >= 0) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          Queue.unsafeOffer(events, { _tag: "Line", line: line.endsWith("\r") ? line.slice(0, -1) : line })
          nl = buffer.indexOf("\n")
        }
      })
      sock.on("close", () => {
        conn.closed = true
        Queue.unsafeOffer(events, { _tag: "Closed", cause: lastError ?? new Error("connection closed by BIRD") })
      })
      return Effect.sync(() => sock.destroy())
    })
  })

const readReply = (path: string, conn: Connection, command: string, maxReplyBytes: number) =>
  Effect.gen(function* () {
    const assembler = new ReplyAssembler()
    let bytes = 0
    for (;;) {
      const event = yield* Queue.take(conn.events)
      if (event._tag === "Closed") return yield* new BirdUnavailable({ socket: path, cause: event.cause })
      bytes += event.line.length + 1
      if (bytes > maxReplyBytes)
        return yield* new BirdParseError({
          command,
          line: event.line,
          reason: `reply larger than ${maxReplyBytes} bytes`,
        })
      const reply = assembler.push(event.line)
      if (reply === undefined) continue
      if (assembler.invalid.length > 0)
        return yield* new BirdParseError({
          command,
          line: assembler.invalid[0]!,
          reason: `${assembler.invalid.length} line(s) outside BIRD's reply format`,
        })
      if (isErrorCode(reply.code))
        return yield* new BirdReplyError({ socket: path, command, code: reply.code, text: reply.text })
      return reply
    }
  })

const write = (path: string, conn: Connection, data: string) =>
  Effect.async<void, BirdUnavailable>((resume) => {
    conn.sock.write(data, (err) =>
      resume(err ? Effect.fail(new BirdUnavailable({ socket: path, cause: err })) : Effect.void),
    )
  })

/** Opens (lazily) a serialised, self-healing client for one control socket. */
export const makeBirdSocket = (options: BirdSocketOptions): Effect.Effect<BirdSocket, never, Scope.Scope> =>
  Effect.gen(function* () {
    const path = options.socket
    const timeout = Duration.decode(options.requestTimeout ?? "10 seconds")
    const reconnect = options.reconnect ?? defaultReconnect
    const maxReplyBytes = options.maxReplyBytes ?? 64 * 1024 * 1024
    const lock = yield* Effect.makeSemaphore(1)
    let current: Connection | undefined
    let version: string | undefined
    let connections = 0

    const drop = Effect.sync(() => {
      current?.sock.destroy()
      current = undefined
    })
    yield* Effect.addFinalizer(() => drop)

    const fresh = Effect.gen(function* () {
      yield* drop
      const conn = yield* open(path).pipe(Effect.retry(reconnect))
      current = conn
      connections++
      const welcome = yield* readReply(path, conn, "(welcome)", maxReplyBytes)
      version = /BIRD\s+(\S+)/.exec(welcome.text)?.[1]
      yield* (connections === 1 ? Effect.logDebug : Effect.logInfo)(
        `connected to BIRD ${version ?? "?"} on ${path} (connection ${connections})`,
      )
      return conn
    })

    const attempt = (command: string, reuse: boolean) =>
      Effect.gen(function* () {
        const conn = reuse && current !== undefined && !current.closed ? current : yield* fresh
        yield* write(path, conn, `${command}\n`)
        return yield* readReply(path, conn, command, maxReplyBytes)
      })

    const request = (command: string) =>
      /[\r\n]/.test(command)
        ? Effect.fail(new BirdParseError({ command, line: command, reason: "a command must be one line" }))
        : lock.withPermits(1)(
            Effect.suspend(() => {
              const reused = current !== undefined && !current.closed
              return attempt(command, true).pipe(
                // BIRD restarted while we were idle: the old connection is dead, try once anew.
                Effect.catchTag("BirdUnavailable", (e) =>
                  reused
                    ? Effect.logInfo(`BIRD connection on ${path} was closed; reconnecting`).pipe(
                        Effect.zipRight(attempt(command, false)),
                      )
                    : Effect.fail(e),
                ),
              )
            }).pipe(
              Effect.timeoutFail({
                duration: timeout,
                onTimeout: () => new BirdTimeout({ socket: path, command, timeoutMillis: Duration.toMillis(timeout) }),
              }),
              Effect.onExit((exit) =>
                Exit.isFailure(exit) && !(exit.cause._tag === "Fail" && exit.cause.error instanceof BirdReplyError)
                  ? drop
                  : Effect.void,
              ),
            ),
          )

    return {
      socket: path,
      request,
      version: Effect.sync(() => version),
      connections: Effect.sync(() => connections),
    } satisfies BirdSocket
  })
