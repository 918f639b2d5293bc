/**
 * The `Ip` service: every kernel command goes through iproute2 (`ip`), optionally aimed at a
 * network namespace with `ip -n <ns>`, so the installer and its tests run against namespaces
 * without entering them. JSON output (`ip -json`) is decoded with a Schema at this edge.
 */
import { Context, Data, Duration, Effect, Layer, ParseResult, Schema } from "effect"
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

export class Ip extends Context.Tag("@net-perf/node-runtime/Ip")<Ip, IpService>() {
  static readonly layer = (options: IpOptions = {}): Layer.Layer<Ip> => Layer.succeed(Ip, makeIp(options))
}

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

  const json = <A, I>(schema: Schema.Schema<A, I>, args: ReadonlyArray<string>) =>
    run(["-json", ...args]).pipe(
      Effect.flatMap((out) =>
        Schema.decodeUnknown(Schema.parseJson(schema))(out.trim() === "" ? "[]" : out).pipe(
          Effect.mapError(
            (cause) => new IpOutputError({ args, reason: ParseResult.TreeFormatter.formatErrorSync(cause), cause }),
          ),
        ),
      ),
    )

  const batch = (lines: ReadonlyArray<string>) =>
    lines.length === 0
      ? Effect.succeed<BatchResult>({ failures: [] })
      : exec(["-force", "-batch", "-"], `${lines.join("\n")}\n`).pipe(
          Effect.flatMap((r) => {
            if (r.exitCode === 0) return Effect.succeed<BatchResult>({ failures: [] })
            // iproute2 prints the error, then "Command failed -:<line>".
            const failures: Array<{ line: number; error: string }> = []
            let last: Array<string> = []
            for (const l of r.stderr.split("\n")) {
              const m = /^Command failed -:(\d+)/.exec(l)
              if (m === null) {
                if (l.trim() !== "") last.push(l.trim())
                continue
              }
              failures.push({ line: Number(m[1]), error: last.join("; ") })
              last = []
            }
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

  return { namespace: options.namespace, run, json, batch }
}
