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

/** `sites[1].endpoints.v6` from a Schema issue path. */
const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    "",
  ) || "(top level)"

/** One line per problem: `path: message` (messages quote the bad value). */
const formatIssues = (error: ParseResult.ParseError): string => {
  const lines = ParseResult.ArrayFormatter.formatErrorSync(error)
    // Optional fields report an extra "Expected undefined" next to the real problem.
    .filter((issue) => !/^Expected undefined, actual /.test(issue.message))
    .map((issue) => `${formatPath(issue.path)}: ${issue.message}`)
  return [...new Set(lines)].join("\n")
}

/** Decodes a mesh file's parsed JSON/YAML; the error text names each bad path and value. */
export const decodeMesh = (input: unknown): Either.Either<Mesh, string> =>
  Schema.decodeUnknownEither(Mesh, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft(formatIssues),
  )

/** Decodes a secrets file's parsed JSON; errors name paths, never key values. */
export const decodeSecrets = (input: unknown): Either.Either<Secrets, string> =>
  Schema.decodeUnknownEither(Secrets, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft(formatIssues),
  )
