/**
 * `perfe` command line: the original's flags (Elasticsearch host, port, user, password, interval,
 * print routes) plus index name, scheme/TLS options, retry policy and `--once`. The password may
 * come from ELASTIC_PASSWORD so that it stays out of `ps`.
 */
import { Command, Options } from "@effect/cli"
import { Config, Console, Data, Duration, Effect, Option, Ref } from "effect"
import { loadClientTls, siteOptions } from "../perfc/Command.js"
import { resolveTargets } from "../perfc/Targets.js"
import { defaultRetryPolicy, type ElasticOptions, ensureIndex, makeClient, seedLastPaths } from "./Elastic.js"
import { exportLoop, exportRound, formatRound } from "./Perfe.js"

export class PerfeExit extends Data.TaggedError("PerfeExit")<{ readonly code: number }> {}

const perfeOptions = {
  ...siteOptions,
  host: Options.text("elastic-host").pipe(
    Options.withDefault("localhost"),
    Options.withDescription("Elasticsearch host"),
  ),
  elasticPort: Options.integer("elastic-port").pipe(
    Options.withDefault(9200),
    Options.withDescription("Elasticsearch port"),
  ),
  scheme: Options.choice("elastic-scheme", ["https", "http"]).pipe(
    Options.withDefault("https" as const),
    Options.withDescription("https (default) or http"),
  ),
  user: Options.text("elastic-user").pipe(Options.withDefault("elastic"), Options.withDescription("basic-auth user")),
  password: Options.redacted("elastic-password").pipe(
    Options.withFallbackConfig(Config.redacted("ELASTIC_PASSWORD")),
    Options.optional,
    Options.withDescription("basic-auth password (or env ELASTIC_PASSWORD); none: no authentication"),
  ),
  caFile: Options.file("elastic-ca", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM CA certificate to verify the server with"),
  ),
  insecure: Options.boolean("elastic-insecure").pipe(
    Options.withDescription("do not verify the server's certificate (the original never did)"),
  ),
  index: Options.text("index").pipe(Options.withDefault("routing-history"), Options.withDescription("index name")),
  intervalSeconds: Options.integer("interval").pipe(
    Options.withDefault(60),
    Options.withDescription("seconds between exports (the first runs at once)"),
  ),
  printRoutes: Options.boolean("print-routes").pipe(Options.withDescription("also print the route table each round")),
  once: Options.boolean("once").pipe(Options.withDescription("export one round and exit (0 ok, 2 partial, 3 nothing)")),
  maxRetries: Options.integer("max-retries").pipe(
    Options.withDefault(defaultRetryPolicy.maxRetries),
    Options.withDescription("bulk retries of failed items (429/5xx) per round"),
  ),
  initialBackoffMillis: Options.integer("backoff").pipe(
    Options.withDefault(defaultRetryPolicy.initialBackoffMillis),
    Options.withDescription("first retry backoff in ms (doubles each retry, jittered, at most 30 s)"),
  ),
}

export const perfeCommand = Command.make("perfe", perfeOptions, (flags) =>
  Effect.gen(function* () {
    const targets = yield* resolveTargets({
      sites: Option.getOrUndefined(flags.sites),
      mesh: Option.getOrUndefined(flags.mesh),
      targets: flags.targets,
      port: flags.port,
    })
    const host = flags.host.includes(":") && !flags.host.startsWith("[") ? `[${flags.host}]` : flags.host
    const elastic: ElasticOptions = {
      node: `${flags.scheme}://${host}:${flags.elasticPort}`,
      username: flags.user,
      password: Option.getOrUndefined(flags.password),
      index: flags.index,
      caFile: Option.getOrUndefined(flags.caFile),
      insecure: flags.insecure,
      requestTimeoutMillis: 30_000,
    }
    const client = yield* makeClient(elastic)
    const created = yield* ensureIndex(client, elastic)
    if (created) yield* Console.error(`perfe: created index ${elastic.index}`)
    const lastPaths = yield* Ref.make(yield* seedLastPaths(client, elastic))
    const round = exportRound(client, elastic, lastPaths, {
      targets,
      timeoutMillis: flags.timeoutMillis,
      printRoutes: flags.printRoutes,
      grpcTls: yield* loadClientTls(flags),
      retry: { ...defaultRetryPolicy, maxRetries: flags.maxRetries, initialBackoffMillis: flags.initialBackoffMillis },
    })
    if (!flags.once) return yield* exportLoop(round, Duration.seconds(Math.max(1, flags.intervalSeconds)))
    const report = yield* round
    yield* Console.error(formatRound(report))
    const code = report.bulk.indexed === 0 ? 3 : report.unreachable.length > 0 || report.bulk.failed.length > 0 ? 2 : 0
    if (code !== 0) return yield* new PerfeExit({ code })
  }).pipe(Effect.scoped),
).pipe(
  Command.withDescription(
    "Export the mesh's route/cost matrix to Elasticsearch: one document per (source, destination, time), every interval.",
  ),
)

export const runPerfe = Command.run(perfeCommand, { name: "perfe", version: "0.1.0" })
