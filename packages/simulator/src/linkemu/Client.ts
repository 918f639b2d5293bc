/**
 * Typed client for a relay process's control socket, and a helper that spawns the relay
 * (optionally inside a network namespace) and ties its life to a Scope. Answers are decoded
 * with the protocol schemas; a `{"ok":false}` answer becomes `LinkEmuRequestFailed`.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { createConnection, type Socket } from "node:net"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Data, Deferred, Duration, Effect, Schedule, Schema, type Scope } from "effect"
import type {
  DirectionSelector,
  Endpoint,
  ImpairmentPatchInput,
  Impairments,
  PairSpecInput,
  PairStats,
} from "./Impairment.js"
import { AddPairAnswer, Failure, OkAnswer, type Op, PingAnswer, SetImpairmentAnswer, StatsAnswer } from "./Protocol.js"

export class LinkEmuConnectFailed extends Data.TaggedError("LinkEmuConnectFailed")<{
  readonly socketPath: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot connect to link emulator control socket ${this.socketPath}: ${String(this.cause)}`
  }
}

export class LinkEmuRequestFailed extends Data.TaggedError("LinkEmuRequestFailed")<{
  readonly op: Op
  readonly error: string
}> {
  override get message(): string {
    return `link emulator ${this.op} failed: ${this.error}`
  }
}

export class LinkEmuConnectionLost extends Data.TaggedError("LinkEmuConnectionLost")<{
  readonly socketPath: string
  readonly op: Op
  readonly cause: unknown
}> {
  override get message(): string {
    return `link emulator connection ${this.socketPath} lost during ${this.op}: ${String(this.cause)}`
  }
}

export class LinkEmuSpawnFailed extends Data.TaggedError("LinkEmuSpawnFailed")<{
  readonly command: ReadonlyArray<string>
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot start link emulator (${this.command.join(" ")}): ${String(this.cause)}`
  }
}

export type LinkEmuClientError = LinkEmuRequestFailed | LinkEmuConnectionLost

export interface LinkEmuClient {
  readonly socketPath: string
  /** The relay's pid. */
  readonly ping: Effect.Effect<number, LinkEmuClientError>
  readonly addPair: (
    spec: PairSpecInput,
  ) => Effect.Effect<{ readonly id: string; readonly listen: Endpoint }, LinkEmuClientError>
  readonly removePair: (id: string) => Effect.Effect<void, LinkEmuClientError>
  readonly setImpairment: (
    id: string,
    direction: DirectionSelector,
    patch: ImpairmentPatchInput,
  ) => Effect.Effect<Impairments, LinkEmuClientError>
  readonly stats: (id?: string) => Effect.Effect<ReadonlyArray<PairStats>, LinkEmuClientError>
  /** Asks the relay to exit (it answers first). */
  readonly shutdown: Effect.Effect<void, LinkEmuClientError>
  /** Sends one raw line and returns the raw answer line (for protocol tests). */
  readonly raw: (line: string) => Effect.Effect<string, LinkEmuConnectionLost>
}

export interface ConnectOptions {
  /** Keep retrying the connection this long (the relay may still be starting). Default 5000. */
  readonly connectTimeoutMs?: number
  /**
   * A request unanswered this long fails with LinkEmuConnectionLost, and so does every later
   * one: answers are matched by order, so the connection cannot be trusted after a miss. Default 10000.
   */
  readonly requestTimeoutMs?: number
}

const openSocket = (socketPath: string): Effect.Effect<Socket, LinkEmuConnectFailed> =>
  Effect.async<Socket, LinkEmuConnectFailed>((resume) => {
    const socket = createConnection(socketPath)
    const onError = (cause: Error) => {
      socket.destroy()
      resume(Effect.fail(new LinkEmuConnectFailed({ socketPath, cause })))
    }
    socket.once("error", onError)
    socket.once("connect", () => {
      socket.off("error", onError)
      resume(Effect.succeed(socket))
    })
    return Effect.sync(() => socket.destroy())
  })

/** Connects to a relay's control socket; the connection closes with the scope. */
export const connectLinkEmuClient = (
  socketPath: string,
  options: ConnectOptions = {},
): Effect.Effect<LinkEmuClient, LinkEmuConnectFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const timeoutMs = options.connectTimeoutMs ?? 5000
    const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
    const socket = yield* Effect.acquireRelease(
      openSocket(socketPath).pipe(
        Effect.retry(Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.millis(timeoutMs)))),
      ),
      (s) => Effect.sync(() => s.destroy()),
    )
    socket.setEncoding("utf8")
    // Answers come back in request order, so a FIFO of waiters is enough.
    const waiters: Array<Deferred.Deferred<string, LinkEmuConnectionLost>> = []
    const waiterOps: Op[] = []
    let buffered = ""
    let lost: unknown
    socket.on("data", (chunk: string) => {
      buffered += chunk
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        waiterOps.shift()
        const waiter = waiters.shift()
        if (waiter !== undefined) Deferred.unsafeDone(waiter, Effect.succeed(line))
      }
    })
    const failAll = (cause: unknown) => {
      lost ??= cause
      while (waiters.length > 0) {
        const op = waiterOps.shift() ?? "ping"
        Deferred.unsafeDone(waiters.shift()!, Effect.fail(new LinkEmuConnectionLost({ socketPath, op, cause })))
      }
    }
    socket.on("error", failAll)
    socket.on("close", () => failAll(new Error("connection closed")))
    const lock = yield* Effect.makeSemaphore(1)

    const exchange = (op: Op, line: string): Effect.Effect<string, LinkEmuConnectionLost> =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          if (lost !== undefined) return yield* new LinkEmuConnectionLost({ socketPath, op, cause: lost })
          const waiter = yield* Deferred.make<string, LinkEmuConnectionLost>()
          waiters.push(waiter)
          waiterOps.push(op)
          socket.write(`${line}\n`)
          return yield* Deferred.await(waiter).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(requestTimeoutMs),
              onTimeout: () => {
                const cause = new Error(`no answer to ${op} within ${requestTimeoutMs} ms`)
                failAll(cause)
                socket.destroy()
                return new LinkEmuConnectionLost({ socketPath, op, cause })
              },
            }),
          )
        }),
      )

    const request = <A, I>(op: Op, body: Record<string, unknown>, answer: Schema.Schema<A, I>) =>
      Effect.gen(function* () {
        const line = yield* exchange(op, JSON.stringify({ op, ...body }))
        const json = yield* Effect.try({
          try: () => JSON.parse(line) as unknown,
          catch: () => new LinkEmuRequestFailed({ op, error: `answer is not JSON: ${line}` }),
        })
        const failure = Schema.decodeUnknownOption(Failure)(json)
        if (failure._tag === "Some") return yield* new LinkEmuRequestFailed({ op, error: failure.value.error })
        return yield* Schema.decodeUnknown(answer)(json).pipe(
          Effect.mapError((e) => new LinkEmuRequestFailed({ op, error: `unexpected answer: ${e.message}` })),
        )
      })

    return {
      socketPath,
      ping: request("ping", {}, PingAnswer).pipe(Effect.map((a) => a.pid)),
      addPair: (spec) =>
        request("addPair", { ...spec }, AddPairAnswer).pipe(Effect.map((a) => ({ id: a.id, listen: a.listen }))),
      removePair: (id) => request("removePair", { id }, OkAnswer).pipe(Effect.asVoid),
      setImpairment: (id, direction, impairment) =>
        request("setImpairment", { id, direction, impairment }, SetImpairmentAnswer).pipe(
          Effect.map((a) => a.impairments),
        ),
      stats: (id) => request("stats", id === undefined ? {} : { id }, StatsAnswer).pipe(Effect.map((a) => a.pairs)),
      shutdown: request("shutdown", {}, OkAnswer).pipe(Effect.asVoid),
      raw: (line) => exchange("ping", line),
    } satisfies LinkEmuClient
  })

/** The compiled relay entry point (dist), also when this module runs from its TypeScript source. */
export const defaultMainPath = (): string => {
  const here = fileURLToPath(import.meta.url)
  const dir = dirname(here)
  return here.endsWith(".ts") ? resolve(dir, "../../dist/src/linkemu/main.js") : resolve(dir, "main.js")
}

export interface SpawnOptions {
  readonly controlPath: string
  /** Run inside this network namespace (`ip netns exec <netns> node …`). */
  readonly netns?: string
  readonly seed?: number
  readonly timer?: "worker" | "spin" | "coarse"
  readonly mainPath?: string
  /**
   * Scheduling priority of the relay (`--priority`): "high" is nice -10, "realtime" SCHED_FIFO 10
   * for the threads that release datagrams (only with the default "worker" timer, which never
   * spins). Both need root. On a loaded machine they keep delay errors small; default "normal".
   */
  readonly priority?: "normal" | "high" | "realtime"
  /** How long to wait for the ready line. Default 10000. */
  readonly readyTimeoutMs?: number
}

export interface SpawnedLinkEmulator {
  readonly pid: number
  readonly client: LinkEmuClient
}

/**
 * Starts the relay process and connects to it. Closing the scope asks it to shut down, then
 * sends SIGTERM and finally SIGKILL, and waits for the exit (so its socket file is gone).
 */
export const spawnLinkEmulator = (
  options: SpawnOptions,
): Effect.Effect<SpawnedLinkEmulator, LinkEmuSpawnFailed | LinkEmuConnectFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const mainPath = options.mainPath ?? defaultMainPath()
    const args = [mainPath, "--control", options.controlPath]
    if (options.seed !== undefined) args.push("--seed", String(options.seed))
    if (options.timer !== undefined) args.push("--timer", options.timer)
    if (options.priority !== undefined) args.push("--priority", options.priority)
    const node = [process.execPath, ...args]
    const command = options.netns === undefined ? node : ["ip", "netns", "exec", options.netns, ...node]
    if (!existsSync(mainPath)) {
      return yield* new LinkEmuSpawnFailed({
        command,
        cause: new Error(`${mainPath} not found: run \`npx tsc -b packages/simulator\``),
      })
    }
    const child = yield* Effect.acquireRelease(
      Effect.try({
        try: () => spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "inherit"] }),
        catch: (cause) => new LinkEmuSpawnFailed({ command, cause }),
      }),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          const timers: NodeJS.Timeout[] = []
          child.once("exit", () => {
            for (const t of timers) clearTimeout(t)
            resume(Effect.void)
          })
          child.kill("SIGTERM")
          timers.push(setTimeout(() => child.kill("SIGKILL"), 3000))
        }),
    )
    const exited = yield* Deferred.make<never, LinkEmuSpawnFailed>()
    child.once("exit", (code, signal) =>
      Deferred.unsafeDone(
        exited,
        Effect.fail(
          new LinkEmuSpawnFailed({ command, cause: new Error(`exited early (code ${code}, signal ${signal})`) }),
        ),
      ),
    )
    child.once("error", (cause) => Deferred.unsafeDone(exited, Effect.fail(new LinkEmuSpawnFailed({ command, cause }))))
    const ready = Effect.async<void>((resume) => {
      let out = ""
      const onData = (chunk: Buffer) => {
        out += chunk.toString("utf8")
        if (out.includes("\n")) {
          child.stdout?.off("data", onData)
          resume(Effect.void)
        }
      }
      child.stdout?.on("data", onData)
    })
    yield* Effect.raceFirst(ready, Deferred.await(exited)).pipe(
      Effect.timeoutFail({
        duration: Duration.millis(options.readyTimeoutMs ?? 10_000),
        onTimeout: () => new LinkEmuSpawnFailed({ command, cause: new Error("no ready line") }),
      }),
    )
    child.stdout?.resume()
    const client = yield* connectLinkEmuClient(options.controlPath)
    return { pid: child.pid ?? -1, client }
  })
