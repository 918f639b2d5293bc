/**
 * A fake BIRD: a real unix-socket server that speaks BIRD's control protocol from a script
 * (usually replies captured from real BIRD, see test/bird/fixtures). It can also misbehave on
 * purpose — split replies into chunks, stall, hang, hang up mid-reply, go down and come back —
 * so clients can be tested against the protocol's edge cases without a daemon.
 */
import { rm } from "node:fs/promises"
import { createServer, type Server, type Socket } from "node:net"
import { Effect, type Scope } from "effect"

export type FakeReply =
  /** A raw reply, written at once (must end with a `NNNN ` line to complete). */
  | string
  /** A raw reply split into chunks, with a pause before each chunk. */
  | { readonly _tag: "Chunked"; readonly chunks: ReadonlyArray<string>; readonly delayMillis: number }
  /** Never answers (the connection stays open). */
  | { readonly _tag: "Hang" }
  /** Writes `partial` (maybe nothing) and hangs up. */
  | { readonly _tag: "HangUp"; readonly partial: string }

export interface FakeBirdOptions {
  readonly path: string
  /** Banner sent on connect. Default `0001 BIRD 2.0.12 ready.` */
  readonly welcome?: string
  /** Reply per command; commands it does not know get BIRD's `9001 syntax error`. */
  readonly replies: Readonly<Record<string, FakeReply>> | ((command: string) => FakeReply | undefined)
}

export interface FakeBird {
  readonly path: string
  /** Every command received, in order, over all connections. */
  readonly commands: ReadonlyArray<string>
  readonly connectionsAccepted: () => number
  /** Most commands ever outstanding on one connection (1 = the client never pipelined). */
  readonly maxInFlight: () => number
  /** Replaces the reply script (e.g. the routes change). */
  readonly setReplies: (replies: FakeBirdOptions["replies"]) => void
  /** BIRD goes down: the listener closes and every connection is cut. */
  readonly stop: Effect.Effect<void>
  /** BIRD comes back on the same path. */
  readonly start: Effect.Effect<void, Error>
}

export const makeFakeBird = (options: FakeBirdOptions): Effect.Effect<FakeBird, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const welcome = options.welcome ?? "0001 BIRD 2.0.12 ready.\n"
    let replies = options.replies
    const commands: Array<string> = []
    const sockets = new Set<Socket>()
    let accepted = 0
    let maxInFlight = 0
    let server: Server | undefined

    const lookup = (command: string): FakeReply =>
      (typeof replies === "function" ? replies(command) : replies[command]) ?? "9001 syntax error\n"

    const serve = async (sock: Socket) => {
      accepted++
      sockets.add(sock)
      sock.on("close", () => sockets.delete(sock))
      sock.on("error", () => sock.destroy())
      sock.write(welcome)
      let buffer = ""
      // Commands are answered strictly in order, like BIRD's CLI.
      let queue = Promise.resolve()
      let inFlight = 0
      sock.on("data", (chunk) => {
        buffer += chunk.toString("utf8")
        let nl = buffer.indexOf("\n")
        while (nl >= 0) {
          const command = buffer.slice(0, nl).trim()
          buffer = buffer.slice(nl + 1)
          commands.push(command)
          const reply = lookup(command)
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          queue = queue
            .then(() => answer(sock, reply))
            .then(() => {
              inFlight--
            })
          nl = buffer.indexOf("\n")
        }
      })
    }

    const answer = async (sock: Socket, reply: FakeReply): Promise<void> => {
      if (sock.destroyed) return
      if (typeof reply === "string") {
        sock.write(reply)
        return
      }
      switch (reply._tag) {
        case "Chunked":
          for (const chunk of reply.chunks) {
            await new Promise((r) => setTimeout(r, reply.delayMillis))
            if (sock.destroyed) return
            sock.write(chunk)
          }
          return
        case "Hang":
          await new Promise<void>((r) => sock.once("close", () => r()))
          return
        case "HangUp":
          sock.end(reply.partial)
          return
      }
    }

    const start = Effect.tryPromise({
      try: async () => {
        await rm(options.path, { force: true })
        const s = createServer((sock) => void serve(sock))
        await new Promise<void>((resolve, reject) => {
          s.once("error", reject)
          s.listen(options.path, () => resolve())
        })
        server = s
      },
      catch: (cause) => new Error(`fake BIRD cannot listen on ${options.path}: ${String(cause)}`),
    })

    const stop = Effect.promise(async () => {
      const s = server
      server = undefined
      for (const sock of sockets) sock.destroy()
      if (s !== undefined) await new Promise<void>((r) => s.close(() => r()))
      await rm(options.path, { force: true })
    })

    yield* Effect.acquireRelease(start, () => stop)
    return {
      path: options.path,
      commands,
      connectionsAccepted: () => accepted,
      maxInFlight: () => maxInFlight,
      setReplies: (r) => {
        replies = r
      },
      stop,
      start,
    } satisfies FakeBird
  })
