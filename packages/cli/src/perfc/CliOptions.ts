/**
 * Options and helpers shared by perfc's commands (and perfe): which daemons to talk to, the TLS
 * files for their gRPC port, and the error that carries a non-zero exit code out of a run.
 */
import { Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Data, Effect, Option } from "effect"
import type { ClientTls } from "./ManagementClient.js"
import { defaultManagementPort } from "./Targets.js"

/** Raised to carry a non-zero exit code out of a run that printed its output. */
export class PerfcExit extends Data.TaggedError("PerfcExit")<{ readonly code: number }> {}

export const siteOptions = {
  sites: Options.text("sites").pipe(
    Options.optional,
    Options.withDescription("site ids to query at 10.201.X.1:<port>, e.g. 0,1,2 or 0-5"),
  ),
  mesh: Options.file("mesh", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("mesh file (net-perf-mesh format): every site, its router address and gRPC port"),
  ),
  targets: Options.text("target").pipe(
    Options.repeated,
    Options.withDescription("site=host:port, overrides a site's address or adds a site (repeatable)"),
  ),
  port: Options.integer("port").pipe(
    Options.withDefault(defaultManagementPort),
    Options.withDescription("management gRPC port for sites named by --sites"),
  ),
  tlsCa: Options.file("tls-ca", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM CA of the daemons' gRPC certificates (enables TLS; default plaintext)"),
  ),
  tlsCert: Options.file("tls-cert", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM client certificate, for daemons that require one (with --tls-key)"),
  ),
  tlsKey: Options.file("tls-key", { exists: "yes" }).pipe(
    Options.optional,
    Options.withDescription("PEM key of --tls-cert"),
  ),
  timeoutMillis: Options.integer("timeout").pipe(
    Options.withDefault(3000),
    Options.withDescription("deadline of one site's queries in milliseconds"),
  ),
}

export class InvalidTlsOptions extends Data.TaggedError("InvalidTlsOptions")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Reads the TLS files named by the flags; none given: plaintext. */
export const loadClientTls = (flags: {
  readonly tlsCa: Option.Option<string>
  readonly tlsCert: Option.Option<string>
  readonly tlsKey: Option.Option<string>
}) =>
  Effect.gen(function* () {
    if (Option.isNone(flags.tlsCa)) {
      if (Option.isSome(flags.tlsCert) || Option.isSome(flags.tlsKey)) {
        return yield* new InvalidTlsOptions({ message: "--tls-cert/--tls-key need --tls-ca" })
      }
      return undefined
    }
    if (Option.isSome(flags.tlsCert) !== Option.isSome(flags.tlsKey)) {
      return yield* new InvalidTlsOptions({ message: "--tls-cert and --tls-key go together" })
    }
    const fs = yield* FileSystem.FileSystem
    const read = (path: string) =>
      fs.readFile(path).pipe(
        Effect.map((bytes) => Buffer.from(bytes)),
        Effect.mapError((cause) => new InvalidTlsOptions({ message: `cannot read ${path}`, cause })),
      )
    return {
      ca: yield* read(flags.tlsCa.value),
      cert: Option.isSome(flags.tlsCert) ? yield* read(flags.tlsCert.value) : undefined,
      key: Option.isSome(flags.tlsKey) ? yield* read(flags.tlsKey.value) : undefined,
    } satisfies ClientTls
  })
