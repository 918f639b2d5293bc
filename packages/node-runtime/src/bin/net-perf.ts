#!/usr/bin/env -S node --min-semi-space-size=8 --no-memory-reducer --heap-growing-percent=25
/**
 * `net-perf`: the daemon's command line. One config file (JSON or YAML) + flags + environment
 * (`NETPERF_*`), validated before anything starts; `--check-config` validates and prints the
 * effective configuration without starting.
 * The `#!` line carries `daemonNodeFlags` (daemon/NodeFlags.ts: a test keeps the two equal): run as
 * `net-perf` (or `./net-perf.js`) the process has them; run as `node net-perf.js` pass them yourself.
 */
import { readFile } from "node:fs/promises"
import { Command, Options } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { algorithmNames } from "@net-perf/engine"
import { Console, Effect, Logger, LogLevel, Option } from "effect"
import { loadConfig } from "../daemon/Config.js"
import { daemonProgram } from "../daemon/Daemon.js"
import { missingNodeFlags } from "../daemon/NodeFlags.js"
import { daemonVersion } from "../daemon/Version.js"

const configFile = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withDescription("Config file (JSON or YAML); flags and NETPERF_* variables override it"),
  Options.optional,
)
const site = Options.integer("site").pipe(Options.withDescription("This site's id (X in wgX.Y_vZ)"), Options.optional)
const algorithm = Options.choice("algorithm", algorithmNames).pipe(
  Options.withDescription("Routing algorithm (the others are the fallback chain)"),
  Options.optional,
)
const grpcPort = Options.integer("grpc-port").pipe(
  Options.withDescription("gRPC port (default 5122)"),
  Options.optional,
)
const httpPort = Options.integer("http-port").pipe(
  Options.withDescription("HTTP port for /metrics, /healthz, /status (default 5120)"),
  Options.optional,
)
const logLevel = Options.choice("log-level", ["debug", "info", "warning", "error"] as const).pipe(Options.optional)
const checkConfig = Options.boolean("check-config").pipe(
  Options.withDescription("Validate the configuration, print it as JSON and exit"),
)

const levels = { debug: LogLevel.Debug, info: LogLevel.Info, warning: LogLevel.Warning, error: LogLevel.Error }

const command = Command.make(
  "net-perf",
  { configFile, site, algorithm, grpcPort, httpPort, logLevel, checkConfig },
  (args) =>
    Effect.gen(function* () {
      const flags: Record<string, unknown> = {}
      if (Option.isSome(args.site)) flags.site = args.site.value
      if (Option.isSome(args.algorithm)) flags.routing = { algorithm: args.algorithm.value }
      if (Option.isSome(args.grpcPort)) flags.grpc = { port: args.grpcPort.value }
      if (Option.isSome(args.httpPort)) flags.http = { port: args.httpPort.value }
      if (Option.isSome(args.logLevel)) flags.logLevel = args.logLevel.value
      const config = yield* loadConfig({
        file: Option.getOrUndefined(args.configFile),
        readFile: (path) => Effect.tryPromise(() => readFile(path, "utf8")),
        flags,
        env: process.env,
      })
      if (args.checkConfig) {
        yield* Console.log(JSON.stringify(config, null, 2))
        return
      }
      const missing = missingNodeFlags(process.execArgv)
      if (missing.length > 0)
        yield* Effect.logWarning(
          `node started without ${missing.join(" ")}: the measurement plane's garbage collection costs more CPU (start the daemon as \`net-perf\` or \`node ${missing.join(" ")} net-perf.js\`)`,
        )
      yield* daemonProgram(config, { version: daemonVersion }).pipe(Logger.withMinimumLogLevel(levels[config.logLevel]))
    }),
).pipe(
  Command.withDescription("net-perf daemon: measures every WireGuard tunnel and steers routing onto the best paths"),
)

const cli = Command.run(command, { name: "net-perf", version: daemonVersion })

cli(process.argv).pipe(
  Effect.catchTag("ConfigError", (e) =>
    Effect.zipRight(
      Console.error(e.message),
      Effect.sync(() => {
        process.exitCode = 2
      }),
    ),
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain,
)
