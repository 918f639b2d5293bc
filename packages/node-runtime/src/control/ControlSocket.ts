/**
 * The unix control socket (default `/opt/wg-mesh/net-perf.sock`, mode 0660): newline-terminated
 * commands, one reply line each, several commands per connection, and the connection is closed
 * after `readTimeoutMillis` without a complete line.
 *
 * ```
 * WGADD <if>        (re-)enable and measure a tunnel              -> OK
 * WGDEL <if>        stop measuring it until the next WGADD         -> OK
 * WGRESTART [<if>]  restart its worker (all workers without <if>)  -> OK
 * STATUS            tunnels and their stats                        -> one line of JSON
 * anything else                                                    -> ERROR: <why>
 * ```
 */
import { chmod, mkdir, unlink } from "node:fs/promises"
import * as net from "node:net"
import { dirname } from "node:path"
import { Data, Effect, Either, Runtime, type Scope } from "effect"

export type ControlCommand =
  | { readonly _tag: "WgAdd"; readonly name: string }
  | { readonly _tag: "WgDel"; readonly name: string }
  | { readonly _tag: "WgRestart"; readonly name: string | undefined }
  | { readonly _tag: "Status" }

export class BadCommand extends Data.TaggedError("BadCommand")<{ readonly line: string; readonly reason: string }> {}

const MAX_LINE_BYTES = 1024
const ifName = /^[A-Za-z0-9_=+.-]{1,15}$/

/** Parses one command line (without its newline). */
export const parseControlLine = (line: string): Either.Either<ControlCommand, BadCommand> => {
  const bad = (reason: string) => Either.left(new BadCommand({ line, reason }))
  const words = line
    .trim()
    .split(/\s+/)
    .filter((w) => w.length > 0)
  const [verb, arg, ...rest] = words
  if (verb === undefined) return bad("empty command")
  if (rest.length > 0) return bad(`too many arguments for ${verb}`)
  switch (verb.toUpperCase()) {
    case "WGADD":
    case "WGDEL":
      if (arg === undefined) return bad(`${verb.toUpperCase()} needs an interface name`)
      if (!ifName.test(arg)) return bad(`"${arg.slice(0, 40)}" is not an interface name`)
      return Either.right({ _tag: verb.toUpperCase() === "WGADD" ? "WgAdd" : "WgDel", name: arg })
    case "WGRESTART":
      if (arg !== undefined && !ifName.test(arg)) return bad(`"${arg.slice(0, 40)}" is not an interface name`)
      return Either.right({ _tag: "WgRestart", name: arg })
    case "STATUS":
      if (arg !== undefined) return bad("STATUS takes no argument")
      return Either.right({ _tag: "Status" })
    default:
      return bad(`unknown command "${verb.slice(0, 40)}" (expected WGADD, WGDEL, WGRESTART or STATUS)`)
  }
}

export class ControlSocketFailed extends Data.TaggedError("ControlSocketFailed")<{
  readonly path: string
  readonly cause: unknown
}> {}

export interface ControlSocketConfig {
  readonly path: string
  readonly mode: number
  readonly readTimeoutMillis: number
}

export const defaultControlSocketConfig: ControlSocketConfig = {
  path: "/opt/wg-mesh/net-perf.sock",
  mode: 0o660,
  readTimeoutMillis: 5000,
}

/** Runs a command; the error's message becomes the `ERROR:` line. */
export type ControlHandler<R> = (command: ControlCommand) => Effect.Effect<string, { readonly message: string }, R>

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ")

/** Serves the control socket for the scope's lifetime (stale socket files are replaced). */
export const serveControlSocket = <R>(
  config: ControlSocketConfig,
  handle: ControlHandler<R>,
): Effect.Effect<void, ControlSocketFailed, Scope.Scope | R> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<R>()
    const run = Runtime.runPromise(runtime)
    const reply = (line: string): Promise<string> =>
      Either.match(parseControlLine(line), {
        onLeft: (e) => Promise.resolve(`ERROR: ${oneLine(e.reason)}\n`),
        onRight: (command) =>
          run(
            handle(command).pipe(
              Effect.map((out) => `${oneLine(out)}\n`),
              Effect.catchAll((e) => Effect.succeed(`ERROR: ${oneLine(e.message)}\n`)),
              Effect.catchAllDefect((d) => Effect.succeed(`ERROR: internal error: ${oneLine(String(d))}\n`)),
            ),
          ),
      })

    const connections = new Set<net.Socket>()
    const onConnection = (socket: net.Socket) => {
      connections.add(socket)
      socket.on("close", () => connections.delete(socket))
      let buffered = ""
      let queue = Promise.resolve()
      socket.setEncoding("utf8")
      socket.setTimeout(config.readTimeoutMillis, () => {
        socket.end("ERROR: timeout waiting for a command\n")
      })
      socket.on("error", () => socket.destroy())
      socket.on("data", (chunk: string) => {
        buffered += chunk
        if (buffered.length > MAX_LINE_BYTES && !buffered.includes("\n")) {
          socket.end(`ERROR: line longer than ${MAX_LINE_BYTES} bytes\n`)
          return
        }
        let nl = buffered.indexOf("\n")
        while (nl >= 0) {
          const line = buffered.slice(0, nl).replace(/\r$/, "")
          buffered = buffered.slice(nl + 1)
          // Replies keep the order of the commands.
          queue = queue
            .then(() => reply(line))
            .then((out) => {
              if (!socket.destroyed) socket.write(out)
            })
          nl = buffered.indexOf("\n")
        }
      })
    }

    const { path } = config
    const fail = (cause: unknown) => new ControlSocketFailed({ path, cause })
    yield* Effect.tryPromise({ try: () => mkdir(dirname(path), { recursive: true }), catch: fail })
    yield* Effect.tryPromise({ try: () => unlink(path), catch: fail }).pipe(Effect.ignore)
    const server = yield* Effect.acquireRelease(
      Effect.async<net.Server, ControlSocketFailed>((resume) => {
        const s = net.createServer(onConnection)
        s.once("error", (cause) => resume(Effect.fail(fail(cause))))
        s.listen(path, () => resume(Effect.succeed(s)))
      }),
      (s) =>
        Effect.async<void>((resume) => {
          s.close(() => resume(Effect.void))
          for (const c of connections) c.destroy()
        }).pipe(Effect.zipRight(Effect.promise(() => unlink(path).catch(() => undefined)))),
    )
    server.on("error", () => {})
    yield* Effect.tryPromise({ try: () => chmod(path, config.mode), catch: fail })
  })
