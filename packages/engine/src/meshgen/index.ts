/**
 * Mesh config generator (pure): one mesh file + secrets → every site's WireGuard confs, BIRD
 * configs and net-perf daemon config. No I/O here; the CLI (`net-perf-mesh`) and the digital twin
 * both call `generateMesh`, so what the twin tests is what operators deploy.
 */
import { Either, ParseResult, Schema } from "effect"
import { Mesh, Secrets } from "./MeshFile.js"

export * from "./BirdConf.js"
export * from "./DaemonConf.js"
export * from "./Drift.js"
export * from "./Generate.js"
export * from "./MeshFile.js"
export * from "./Plan.js"
export * from "./Secrets.js"
export * from "./WireGuardConf.js"

/** Decodes a mesh file's parsed JSON/YAML; the error text names each bad path and value. */
export const decodeMesh = (input: unknown): Either.Either<Mesh, string> =>
  Schema.decodeUnknownEither(Mesh, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft((e) => ParseResult.TreeFormatter.formatErrorSync(e)),
  )

/** Decodes a secrets file's parsed JSON. */
export const decodeSecrets = (input: unknown): Either.Either<Secrets, string> =>
  Schema.decodeUnknownEither(Secrets, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft((e) => ParseResult.TreeFormatter.formatErrorSync(e)),
  )
