/**
 * The relay process: `node main.js --control <unix-socket-path>`, run by the twin inside the
 * underlay namespace. It serves the control protocol until SIGTERM/SIGINT, a `shutdown`
 * request, the death of its parent process, or the removal of its control socket (or the
 * socket's directory); every exit path closes the relay sockets and unlinks the control socket.
 * Prints one JSON line on stdout when ready; logs go to stderr.
 */
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { setPriority } from "node:os"
import { dirname } from "node:path"
import { Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Deferred, Duration, Effect, Schedule } from "effect"
import { serveControl } from "./ControlServer.js"
import { makeLinkEmulator } from "./LinkEmulator.js"

const control = Options.text("control").pipe(Options.withDescription("unix socket path for the control protocol"))
const seed = Options.integer("seed").pipe(
  Options.withDefault(1),
  Options.withDescription("seed of loss and jitter draws"),
)
const timer = Options.choice("timer", ["worker", "spin", "coarse"]).pipe(
  Options.withDefault("worker" as const),
  Options.withDescription("how delayed datagrams are woken (see Releaser.ts)"),
)

const priority = Options.choice("priority", ["normal", "high", "realtime"]).pipe(
  Options.withDefault("normal" as const),
  Options.withDescription("high: nice -10; realtime: SCHED_FIFO 10 (root; recommended on a loaded machine)"),
)

/**
 * Raises this thread's priority before the timer worker exists, so the worker inherits it
 * (threads inherit nice and scheduling policy at creation). Same effect as `chrt -f 10 node …`.
 */
const raisePriority = (level: "normal" | "high" | "realtime") =>
  Effect.sync(() => {
    if (level === "normal") return
    try {
      if (level === "high") setPriority(-10)
      else execFileSync("chrt", ["-f", "-p", "10", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] })
    } catch (cause) {
      console.error(`linkemu: cannot raise priority to ${level} (running at normal priority)`, String(cause))
    }
  })

const linkemu = Command.make("linkemu", { control, seed, timer, priority }, ({ control, seed, timer, priority }) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* raisePriority(priority)
      const emulator = yield* makeLinkEmulator({ seed, timer: { mode: timer } })
      const stop = yield* Deferred.make<string>()
      yield* serveControl(emulator, control, () => Deferred.unsafeDone(stop, Effect.succeed("shutdown request")))
      const parentPid = process.ppid
      const socketDir = dirname(control)
      yield* Effect.sync(() => {
        if (process.ppid !== parentPid) Deferred.unsafeDone(stop, Effect.succeed("parent process exited"))
        else if (!existsSync(socketDir)) Deferred.unsafeDone(stop, Effect.succeed(`${socketDir} removed`))
        else if (!existsSync(control)) Deferred.unsafeDone(stop, Effect.succeed(`${control} removed`))
      }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(500))), Effect.forkScoped)
      process.stdout.write(`${JSON.stringify({ ready: true, control, pid: process.pid })}\n`)
      const why = yield* Deferred.await(stop)
      console.error(`linkemu: stopping (${why})`)
    }),
  ),
)

const cli = Command.run(linkemu, { name: "linkemu", version: "0.1.0" })

cli(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
