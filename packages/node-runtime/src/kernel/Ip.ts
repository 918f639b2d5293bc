/**
 * The `Ip` service: every kernel command goes through iproute2 (`ip`), optionally aimed at a
 * network namespace with `ip -n <ns>`, so the installer and its tests run against namespaces
 * without entering them. JSON output (`ip -json`) is decoded with a Schema at this edge.
 *
 * `makeIpScoped` sends batches to one long-lived `ip -force -batch -` instead of a process per
 * batch: route installs sit on the failure-reaction path, and in the twin at load 8–10 a spawned
 * `ip` took 30–250 ms from the decision to the installed route (the daemon's own log).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { Context, Data, Duration, Effect, Layer, ParseResult, Schema, type Scope } from "effect"
import { execa } from "execa"

export class IpCommandError extends Data.TaggedError("IpCommandError")<{
  readonly args: ReadonlyArray<string>
  readonly exitCode: number | undefined
  readonly stderr: string
  readonly cause: unknown
}> {
  override get message() {
    return `ip ${this.args.join(" ")} failed (exit ${this.exitCode ?? "none"}): ${this.stderr.trim() || String(this.cause)}`
  }
}

export class IpOutputError extends Data.TaggedError("IpOutputError")<{
  readonly args: ReadonlyArray<string>
  readonly reason: string
  readonly cause: unknown
}> {
  override get message() {
    return `unexpected output of ip ${this.args.join(" ")}: ${this.reason}`
  }
}

/** Result of `ip -force -batch -`: which input lines (1-based) failed, and why. */
export interface BatchResult {
  readonly failures: ReadonlyArray<{ readonly line: number; readonly error: string }>
}

export interface IpService {
  /** Namespace the commands target (`undefined` = the process's own). */
  readonly namespace: string | undefined
  readonly run: (args: ReadonlyArray<string>) => Effect.Effect<string, IpCommandError>
  /** `ip -json <args>`'s output as text (for callers with their own decoder). */
  readonly jsonText: (args: ReadonlyArray<string>) => Effect.Effect<string, IpCommandError>
  readonly json: <A, I>(
    schema: Schema.Schema<A, I>,
    args: ReadonlyArray<string>,
  ) => Effect.Effect<A, IpCommandError | IpOutputError>
  /** Runs every line (`route replace …`) even if some fail (`-force`) and reports the failures. */
  readonly batch: (lines: ReadonlyArray<string>) => Effect.Effect<BatchResult, IpCommandError>
}

export interface IpOptions {
  readonly namespace?: string
  /** Path of the `ip` binary. Default `ip`. */
  readonly binary?: string
  /** Bound on one command. Default 10 s. */
  readonly timeout?: Duration.DurationInput
}

/**
 * Reads `ip -batch`'s stderr line by line: iproute2 prints a failed line's error, then "Command
 * failed -:<line>" (numbered from the process's first input line); that second line yields it.
 */
const batchFailureReader = () => {
  let errorLines: Array<string> = []
  return {
    read: (l: string): { readonly line: number; readonly error: string } | undefined => {
      const m = /^Command failed -:(\d+)/.exec(l)
      if (m === null) {
        if (l.trim() !== "") errorLines.push(l.trim())
        return undefined
      }
      const failure = { line: Number(m[1]), error: errorLines.join("; ") }
      errorLines = []
      return failure
    },
    /** Error text not yet closed by a "Command failed" line. */
    pending: () => errorLines.join("\n"),
  }
}

export class Ip extends Context.Tag("@net-perf/node-runtime/Ip")<Ip, IpService>() {
  /** A process per command (no scope needed). */
  static readonly layer = (options: IpOptions = {}): Layer.Layer<Ip> => Layer.succeed(Ip, makeIp(options))
  /** Batches through one long-lived `ip -force -batch -` (see `makeIpScoped`). */
  static readonly layerScoped = (options: IpOptions = {}): Layer.Layer<Ip> => Layer.scoped(Ip, makeIpScoped(options))
}

/** Ends each batch: an object `ip` does not know, so it always fails, harmlessly, with its line number. */
const BATCH_END = "np-batch-end"

/** `ip -json` output decoded with `schema` (empty output = no objects). */
const decodeJsonOutput = <A, I>(schema: Schema.Schema<A, I>, args: ReadonlyArray<string>, out: string) =>
  Schema.decodeUnknown(Schema.parseJson(schema))(out.trim() === "" ? "[]" : out).pipe(
    Effect.mapError(
      (cause) => new IpOutputError({ args, reason: ParseResult.TreeFormatter.formatErrorSync(cause), cause }),
    ),
  )

export const makeIp = (options: IpOptions = {}): IpService => {
  const binary = options.binary ?? "ip"
  const timeoutMillis = Duration.toMillis(Duration.decode(options.timeout ?? "10 seconds"))
  const prefix = options.namespace === undefined ? [] : ["-n", options.namespace]

  const exec = (args: ReadonlyArray<string>, input?: string) =>
    Effect.tryPromise({
      try: (signal) =>
        execa(binary, [...prefix, ...args], {
          reject: false,
          timeout: timeoutMillis,
          // execa's default `cleanup` installs signal-exit handlers while a command runs; once
          // NodeRuntime.runMain's SIGTERM handler removes itself, signal-exit sees no other
          // listener and re-raises SIGTERM, killing the daemon before it withdraws its routes.
          // Commands are short and bounded by `timeout`, so they need no exit-time cleanup.
          cleanup: false,
          cancelSignal: signal,
          ...(input === undefined ? {} : { input }),
        }),
      catch: (cause) => new IpCommandError({ args, exitCode: undefined, stderr: "", cause }),
    })

  const run = (args: ReadonlyArray<string>) =>
    exec(args).pipe(
      Effect.flatMap((r) =>
        r.exitCode === 0
          ? Effect.succeed(r.stdout)
          : Effect.fail(new IpCommandError({ args, exitCode: r.exitCode, stderr: r.stderr, cause: r.shortMessage })),
      ),
    )

  const jsonText = (args: ReadonlyArray<string>) => run(["-json", ...args])
  const json = <A, I>(schema: Schema.Schema<A, I>, args: ReadonlyArray<string>) =>
    jsonText(args).pipe(Effect.flatMap((out) => decodeJsonOutput(schema, args, out)))

  const batch = (lines: ReadonlyArray<string>) =>
    lines.length === 0
      ? Effect.succeed<BatchResult>({ failures: [] })
      : exec(["-force", "-batch", "-"], `${lines.join("\n")}\n`).pipe(
          Effect.flatMap((r) => {
            if (r.exitCode === 0) return Effect.succeed<BatchResult>({ failures: [] })
            const reader = batchFailureReader()
            const failures = r.stderr.split("\n").flatMap((l) => reader.read(l) ?? [])
            return failures.length > 0
              ? Effect.succeed<BatchResult>({ failures })
              : Effect.fail(
                  new IpCommandError({
                    args: ["-batch", "-"],
                    exitCode: r.exitCode,
                    stderr: r.stderr,
                    cause: r.shortMessage,
                  }),
                )
          }),
        )

  return { namespace: options.namespace, run, jsonText, json, batch }
}

/**
 * A read that a batch line can carry: an object and its arguments, no global option (`-4`, `-json`:
 * a batch line cannot hold one) and no token that ip's line splitter would treat differently.
 */
const batchable = (args: ReadonlyArray<string>): boolean =>
  args.length > 0 && !args[0]!.startsWith("-") && args.every((a) => a !== "" && !/[\s"'#\\]/.test(a))

/**
 * `makeIp` whose `batch` and `json` go to one long-lived `ip -json -force -batch -` instead of a
 * process per command. Each request ends with a line that always fails (BATCH_END): its "Command
 * failed -:N" on stderr says every line before it ran (ip runs its input in order), and the
 * failures reported in between are this request's. A read (`json`) is one line: ip writes its
 * answer as one JSON line on stdout and flushes it before the next line runs, so once BATCH_END
 * is reported the answer is in the pipe (or the read failed, reported on stderr). Started at first
 * use; a process that dies or overruns the timeout is killed and the request fails (the
 * installer's full pass repeats it); the next request starts a new one. One request at a time.
 * Why: route installs sit on the failure-reaction path (in the twin at load 8–10 a spawned `ip`
 * took 30–250 ms from the decision to the installed route), and the installer's watchdog reads
 * the routes and links every 5 s: three spawns of the daemon's ≈ 150 MB process each time were
 * ≈ 18 % of an idle daemon's CPU in the twin (its profile, 27 Nov).
 */
export const makeIpScoped = (options: IpOptions = {}): Effect.Effect<IpService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const base = makeIp(options)
    const binary = options.binary ?? "ip"
    const timeoutMillis = Duration.toMillis(Duration.decode(options.timeout ?? "10 seconds"))
    const args = [
      ...(options.namespace === undefined ? [] : ["-n", options.namespace]),
      "-json",
      "-force",
      "-batch",
      "-",
    ]
    const lock = yield* Effect.makeSemaphore(1)
    interface Session {
      readonly child: ChildProcess
      /** Lines written so far (ip numbers them from 1). */
      written: number
      readonly stderr: ReturnType<typeof batchFailureReader>
      failures: Array<{ readonly line: number; readonly error: string }>
      waiting: { readonly endLine: number; readonly done: (outcome: BatchResult | string) => void } | undefined
      /** stdout lines not yet taken by a read, and who waits for one. */
      readonly output: Array<string>
      onOutput: (() => void) | undefined
      exited: string | undefined
    }
    let session: Session | undefined

    const stop = (s: Session) => {
      if (session === s) session = undefined
      s.child.stdin?.destroy()
      s.child.kill("SIGKILL")
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => session !== undefined && stop(session)))

    const start = (): Session => {
      const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"] })
      const s: Session = {
        child,
        written: 0,
        stderr: batchFailureReader(),
        failures: [],
        waiting: undefined,
        output: [],
        onOutput: undefined,
        exited: undefined,
      }
      const fail = (why: string) => {
        s.exited ??= why
        if (session === s) session = undefined
        const w = s.waiting
        s.waiting = undefined
        w?.done(why)
      }
      child.on("error", (e) => fail(`ip could not run: ${e.message}`))
      child.on("exit", (code, signal) => fail(`ip exited (${signal ?? `code ${code}`})`))
      child.stdin?.on("error", (e) => fail(`writing to ip failed: ${e.message}`))
      if (child.stdout !== null)
        createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (l) => {
          s.output.push(l)
          s.onOutput?.()
        })
      if (child.stderr !== null)
        createInterface({ input: child.stderr }).on("line", (l) => {
          const failure = s.stderr.read(l)
          if (failure === undefined) return
          const w = s.waiting
          if (w !== undefined && failure.line === w.endLine) {
            const failures = s.failures
            s.failures = []
            s.waiting = undefined
            w.done({ failures })
            return
          }
          s.failures.push(failure)
        })
      return s
    }

    /**
     * Writes `lines` and BATCH_END; `settle` gets the failures of this request (lines renumbered from
     * 1) once BATCH_END is reported, or a reason the process failed.
     */
    const request = <A>(
      lines: ReadonlyArray<string>,
      settle: (
        s: Session,
        outcome: BatchResult | string,
        resume: (effect: Effect.Effect<A, IpCommandError>) => void,
      ) => void,
      /** A read's late answer would reach the next read: its process goes when it is interrupted. */
      replaceOnInterrupt: boolean,
    ) =>
      Effect.async<A, IpCommandError>((resume) => {
        const s = session ?? start()
        session = s
        const firstLine = s.written + 1
        const endLine = s.written + lines.length + 1
        s.written = endLine
        // A read's line that came after its reader gave up (killed with its process) never lands
        // here; a write prints nothing. Whatever is left over is not this request's.
        s.output.length = 0
        let settled = false
        const done = (effect: Effect.Effect<A, IpCommandError>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          s.onOutput = undefined
          resume(effect)
        }
        const timer = setTimeout(() => {
          s.waiting = undefined
          stop(s)
          done(
            Effect.fail(
              new IpCommandError({
                args,
                exitCode: undefined,
                stderr: s.stderr.pending(),
                cause: `no answer in ${timeoutMillis} ms`,
              }),
            ),
          )
        }, timeoutMillis)
        s.waiting = {
          endLine,
          done: (outcome) =>
            settle(
              s,
              typeof outcome === "string"
                ? outcome
                : {
                    failures: outcome.failures
                      .filter((f) => f.line >= firstLine) // an interrupted request's are not ours
                      .map((f) => ({ line: f.line - firstLine + 1, error: f.error })),
                  },
              done,
            ),
        }
        if (s.exited !== undefined) return s.waiting.done(s.exited)
        s.child.stdin?.write(`${lines.join("\n")}\n${BATCH_END}\n`)
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
          s.onOutput = undefined
          if (s.waiting?.endLine === endLine) s.waiting = undefined
          // An interrupted batch runs on (ip's line count stays right, it prints nothing); an
          // interrupted read's answer may still come: a fresh process keeps stdout in step.
          if (replaceOnInterrupt) stop(s)
        })
      })

    const processFailed = (s: Session, why: string) =>
      Effect.fail(new IpCommandError({ args, exitCode: undefined, stderr: s.stderr.pending(), cause: why }))

    const batch = (lines: ReadonlyArray<string>) =>
      lines.length === 0
        ? Effect.succeed<BatchResult>({ failures: [] })
        : lock.withPermits(1)(
            request<BatchResult>(
              lines,
              (s, outcome, done) =>
                done(typeof outcome === "string" ? processFailed(s, outcome) : Effect.succeed(outcome)),
              false,
            ),
          )

    /** One read through the session: its stdout line, or its error line from stderr. */
    const read = (line: string, readArgs: ReadonlyArray<string>) =>
      lock.withPermits(1)(
        request<string>(
          [line],
          (s, outcome, done) => {
            if (typeof outcome === "string") return done(processFailed(s, outcome))
            const failure = outcome.failures[0]
            if (failure !== undefined)
              return done(
                Effect.fail(
                  new IpCommandError({ args: readArgs, exitCode: 1, stderr: failure.error, cause: "command failed" }),
                ),
              )
            // BATCH_END was reported after the answer was flushed; the stdout pipe may trail stderr.
            const take = () => {
              const out = s.output.shift()
              if (out !== undefined) done(Effect.succeed(out))
            }
            s.onOutput = take
            take()
          },
          true,
        ),
      )

    const jsonText = (jsonArgs: ReadonlyArray<string>) =>
      batchable(jsonArgs) ? read(jsonArgs.join(" "), jsonArgs) : base.jsonText(jsonArgs)
    const json = <A, I>(schema: Schema.Schema<A, I>, jsonArgs: ReadonlyArray<string>) =>
      jsonText(jsonArgs).pipe(Effect.flatMap((out) => decodeJsonOutput(schema, jsonArgs, out)))

    return { ...base, batch, jsonText, json }
  })
