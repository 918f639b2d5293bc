/**
 * The I/O side of the mesh config generator: reads the mesh file (JSON or YAML) and the secrets
 * file, fills or rotates keys, calls the pure `generateMesh`, and writes `<out>/<site>/…` or, in
 * check mode, compares the tree on disk with what the mesh file implies.
 *
 * Secrets live in their own file (mode 0600, written atomically), never in the output tree's
 * logs or summaries: messages name keys, never print them. Files holding private keys are 0600.
 */
import { FileSystem, Path } from "@effect/platform"
import { MeshGen } from "@net-perf/engine"
import { Data, Effect, Either, Option } from "effect"
import YAML from "yaml"
import { nodeKeyGenerator } from "./Keys.js"

export class MeshFileInvalid extends Data.TaggedError("MeshFileInvalid")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `mesh file ${this.path} is invalid:\n${this.reason}`
  }
}

export class SecretsInvalid extends Data.TaggedError("SecretsInvalid")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `secrets file ${this.path}: ${this.reason}`
  }
}

export class FileAccessFailed extends Data.TaggedError("FileAccessFailed")<{
  readonly path: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cannot ${this.operation} ${this.path}: ${detail}`
  }
}

export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/** Check mode found differences (already reported); scripts get exit code 1. */
export class DriftFound extends Data.TaggedError("DriftFound")<{ readonly count: number }> {
  override get message(): string {
    return `${this.count} difference(s) between the mesh file and the output tree`
  }
}

export type MeshGenError = MeshFileInvalid | SecretsInvalid | FileAccessFailed | UsageError | DriftFound

export interface MeshGenOptions {
  readonly meshPath: string
  readonly outDir: string
  /** Default: beside the mesh file, `<name>.secrets.json`. */
  readonly secretsPath: Option.Option<string>
  readonly bird1: boolean
  readonly check: boolean
  /** `all`, a site id or a site name. */
  readonly rotateKeys: Option.Option<string>
  /** Progress lines (stderr in the CLI). */
  readonly progress: (line: string) => Effect.Effect<void>
}

export interface FileAction {
  readonly path: string
  readonly action: "written" | "unchanged" | "removed"
}

export interface MeshGenSummary {
  readonly mode: "generate" | "check"
  readonly meshFile: string
  readonly outDir: string
  readonly secretsFile: string
  readonly secretsCreated: boolean
  /** Names of keys added or rotated in this run (never their values). */
  readonly keysAdded: ReadonlyArray<string>
  readonly sites: ReadonlyArray<{
    readonly id: number
    readonly name: string
    readonly asn: number
    readonly tunnels: ReadonlyArray<{
      readonly name: string
      readonly listenPort: number | null
      readonly endpoint: string | null
    }>
    readonly files: ReadonlyArray<string>
  }>
  readonly skipped: ReadonlyArray<MeshGen.SkippedTunnel>
  readonly files: ReadonlyArray<FileAction>
  readonly drift: ReadonlyArray<MeshGen.Drift>
  readonly warnings: ReadonlyArray<string>
}

/** Generated files we may delete when the mesh no longer implies them. */
const ownedFile = /^(wg\d+\.\d+_v[46]\.conf|bird1\/bird6?\.conf)$/

const defaultSecretsPath = (path: Path.Path, meshPath: string): string => {
  const parsed = path.parse(meshPath)
  return path.join(parsed.dir, `${parsed.name}.secrets.json`)
}

const fail = (path: string, operation: string) => (cause: unknown) => new FileAccessFailed({ path, operation, cause })

/** Reads and decodes the mesh file (JSON when it ends in .json, YAML otherwise). */
export const readMeshFile = (meshPath: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(meshPath).pipe(Effect.mapError(fail(meshPath, "read mesh file")))
    const parsed = yield* Effect.try({
      try: () => (meshPath.endsWith(".json") ? JSON.parse(text) : YAML.parse(text)) as unknown,
      catch: (cause) =>
        new MeshFileInvalid({ path: meshPath, reason: cause instanceof Error ? cause.message : String(cause) }),
    })
    return yield* Either.match(MeshGen.decodeMesh(parsed), {
      onLeft: (reason) => Effect.fail(new MeshFileInvalid({ path: meshPath, reason })),
      onRight: Effect.succeed,
    })
  })

/** Reads the secrets file; `undefined` when it does not exist yet. Tightens a too-open mode. */
export const readSecretsFile = (secretsPath: string, warn: (line: string) => Effect.Effect<void>, tighten = true) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(secretsPath).pipe(Effect.mapError(fail(secretsPath, "check")))
    if (!exists) return undefined
    const info = yield* fs.stat(secretsPath).pipe(Effect.mapError(fail(secretsPath, "stat")))
    if ((info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8)
      if (tighten) {
        yield* fs.chmod(secretsPath, 0o600).pipe(Effect.mapError(fail(secretsPath, "chmod")))
        yield* warn(`secrets file ${secretsPath} was readable by others (mode ${mode}); set to 600`)
      } else {
        yield* warn(`secrets file ${secretsPath} is readable by others (mode ${mode}); run without --check to fix`)
      }
    }
    const text = yield* fs.readFileString(secretsPath).pipe(Effect.mapError(fail(secretsPath, "read")))
    const parsed = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      // JSON.parse messages can quote file contents: keep key material out of the error.
      catch: () => new SecretsInvalid({ path: secretsPath, reason: "not valid JSON" }),
    })
    return yield* Either.match(MeshGen.decodeSecrets(parsed), {
      onLeft: (reason) => Effect.fail(new SecretsInvalid({ path: secretsPath, reason })),
      onRight: Effect.succeed,
    })
  })

/** Writes `contents` to `target` through a temporary file and a rename, with `mode`. */
const writeAtomic = (target: string, contents: string, mode: number) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const temporary = `${target}.tmp-${process.pid}`
    yield* fs.remove(temporary, { force: true }).pipe(Effect.ignore)
    yield* fs.writeFileString(temporary, contents, { mode, flag: "wx" }).pipe(Effect.mapError(fail(temporary, "write")))
    yield* fs.chmod(temporary, mode).pipe(Effect.mapError(fail(temporary, "chmod")))
    yield* fs.rename(temporary, target).pipe(Effect.mapError(fail(target, "rename into place")))
  })

export const writeSecretsFile = (secretsPath: string, secrets: MeshGen.Secrets) =>
  writeAtomic(secretsPath, `${JSON.stringify(secrets, null, 2)}\n`, 0o600)

/** Reads every file under each site folder of `outDir` (relative paths, `/`-separated). */
export const readTree = (outDir: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const tree = new Map<string, Map<string, string>>()
    if (!(yield* fs.exists(outDir).pipe(Effect.mapError(fail(outDir, "check"))))) return tree
    const entries = (yield* fs.readDirectory(outDir).pipe(Effect.mapError(fail(outDir, "list")))).sort()
    for (const site of entries) {
      const siteDir = path.join(outDir, site)
      const info = yield* fs.stat(siteDir).pipe(Effect.mapError(fail(siteDir, "stat")))
      if (info.type !== "Directory") continue
      const files = new Map<string, string>()
      const names = yield* fs.readDirectory(siteDir, { recursive: true }).pipe(Effect.mapError(fail(siteDir, "list")))
      for (const name of names.sort()) {
        const file = path.join(siteDir, name)
        const fileInfo = yield* fs.stat(file).pipe(Effect.mapError(fail(file, "stat")))
        if (fileInfo.type !== "File") continue
        files.set(
          name.split(path.sep).join("/"),
          yield* fs.readFileString(file).pipe(Effect.mapError(fail(file, "read"))),
        )
      }
      tree.set(site, files)
    }
    return tree
  })

const resolveRotation = (mesh: MeshGen.Mesh, value: string): Either.Either<number | undefined, UsageError> => {
  if (value === "all") return Either.right(undefined)
  const site = mesh.sites.find((s) => String(s.id) === value || s.name === value)
  return site === undefined
    ? Either.left(new UsageError({ reason: `--rotate-keys: no site has id or name ${JSON.stringify(value)}` }))
    : Either.right(site.id)
}

/** The whole command: generate (or check) and return a summary; drift fails with DriftFound after reporting. */
export const runMeshGen = (options: MeshGenOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const say = options.progress
    const warnings: Array<string> = []
    const warn = (line: string) => Effect.sync(() => warnings.push(line)).pipe(Effect.zipRight(say(`warning: ${line}`)))
    if (options.check && Option.isSome(options.rotateKeys)) {
      return yield* new UsageError({ reason: "--check and --rotate-keys cannot be used together" })
    }
    const mesh = yield* readMeshFile(options.meshPath)
    const secretsPath = Option.getOrElse(options.secretsPath, () => defaultSecretsPath(path, options.meshPath))
    const existing = yield* readSecretsFile(secretsPath, warn, !options.check)
    if (existing === undefined && options.check) {
      return yield* new SecretsInvalid({
        path: secretsPath,
        reason: "does not exist (check mode never creates secrets)",
      })
    }
    let secrets = existing ?? MeshGen.emptySecrets
    let keysAdded: ReadonlyArray<string> = []
    if (!options.check) {
      const rotation = Option.isSome(options.rotateKeys) ? yield* resolveRotation(mesh, options.rotateKeys.value) : null
      const result =
        rotation === null
          ? MeshGen.fillSecrets(mesh, secrets, nodeKeyGenerator)
          : MeshGen.rotateSecrets(mesh, secrets, rotation, nodeKeyGenerator)
      keysAdded = [
        ...result.change.addedSiteKeys.map((k) => `site ${k}`),
        ...result.change.addedPresharedKeys.map((k) => `psk ${k}`),
      ]
      secrets = result.secrets
      if (existing === undefined || keysAdded.length > 0) {
        yield* writeSecretsFile(secretsPath, secrets)
        yield* say(
          existing === undefined
            ? `created secrets ${secretsPath} (mode 600, ${keysAdded.length} keys)`
            : `updated secrets ${secretsPath}: ${keysAdded.length} key(s) ${rotation === null ? "added" : "rotated"}`,
        )
      }
    }
    const generated = yield* Either.match(MeshGen.generateMesh(mesh, secrets, options.bird1 ? { bird1: true } : {}), {
      onLeft: (missing) => Effect.fail(new SecretsInvalid({ path: secretsPath, reason: missing.message })),
      onRight: Effect.succeed,
    })
    const files: Array<FileAction> = []
    let drift: ReadonlyArray<MeshGen.Drift> = []
    if (options.check) {
      const found = [...MeshGen.diffTrees(generated.files, yield* readTree(options.outDir))]
      // Content can match while the private keys are exposed: that is drift too.
      for (const [site, siteFiles] of generated.files) {
        for (const name of siteFiles.keys()) {
          const target = path.join(options.outDir, site, name)
          if (!MeshGen.isSecretFile(name) || !(yield* fs.exists(target).pipe(Effect.orElseSucceed(() => false))))
            continue
          const info = yield* fs.stat(target).pipe(Effect.mapError(fail(target, "stat")))
          if ((info.mode & 0o077) !== 0) found.push({ site, file: name, kind: "mode", lines: [] })
        }
      }
      drift = found
    } else {
      yield* fs.makeDirectory(options.outDir, { recursive: true }).pipe(Effect.mapError(fail(options.outDir, "create")))
      const present = yield* readTree(options.outDir)
      for (const [site, siteFiles] of generated.files) {
        const siteDir = path.join(options.outDir, site)
        for (const [name, contents] of siteFiles) {
          const target = path.join(siteDir, name)
          const mode = MeshGen.isSecretFile(name) ? 0o600 : 0o644
          yield* fs
            .makeDirectory(path.dirname(target), { recursive: true })
            .pipe(Effect.mapError(fail(path.dirname(target), "create")))
          if (present.get(site)?.get(name) === contents) {
            const info = yield* fs.stat(target).pipe(Effect.mapError(fail(target, "stat")))
            if ((info.mode & 0o777) !== mode) yield* fs.chmod(target, mode).pipe(Effect.mapError(fail(target, "chmod")))
            files.push({ path: `${site}/${name}`, action: "unchanged" })
            continue
          }
          yield* writeAtomic(target, contents, mode)
          files.push({ path: `${site}/${name}`, action: "written" })
          yield* say(`wrote ${site}/${name}`)
        }
        for (const name of present.get(site)?.keys() ?? []) {
          if (!siteFiles.has(name) && ownedFile.test(name)) {
            yield* fs.remove(path.join(siteDir, name)).pipe(Effect.mapError(fail(path.join(siteDir, name), "remove")))
            files.push({ path: `${site}/${name}`, action: "removed" })
            yield* say(`removed ${site}/${name} (no longer in the mesh)`)
          }
        }
      }
      for (const site of present.keys()) {
        if (!generated.files.has(site))
          yield* warn(`${path.join(options.outDir, site)} is not a site of the mesh; left as is`)
      }
    }
    const summary: MeshGenSummary = {
      mode: options.check ? "check" : "generate",
      meshFile: options.meshPath,
      outDir: options.outDir,
      secretsFile: secretsPath,
      secretsCreated: existing === undefined && !options.check,
      keysAdded,
      sites: generated.plan.sites.map((s) => ({
        id: s.site.id,
        name: s.site.name,
        asn: s.asn,
        tunnels: s.tunnels.map((t) => ({
          name: t.name,
          listenPort: t.listenPort ?? null,
          endpoint: t.endpoint ?? null,
        })),
        files: [...(generated.files.get(s.site.name)?.keys() ?? [])],
      })),
      skipped: generated.skipped,
      files,
      drift,
      warnings,
    }
    return summary
  })

/** Plain-text summary for people (the `--json` form is the summary object itself). */
export const formatSummary = (summary: MeshGenSummary): string => {
  const lines: Array<string> = []
  if (summary.mode === "check") {
    lines.push(
      summary.drift.length === 0
        ? `${summary.outDir} matches ${summary.meshFile} (${summary.sites.length} sites)`
        : `${summary.drift.length} difference(s) between ${summary.meshFile} and ${summary.outDir}:\n${MeshGen.formatDrift(summary.drift)}`,
    )
  } else {
    const count = (action: FileAction["action"]) => summary.files.filter((f) => f.action === action).length
    lines.push(
      `${summary.sites.length} sites, ${summary.sites.reduce((n, s) => n + s.tunnels.length, 0)} tunnel ends; ` +
        `${count("written")} written, ${count("unchanged")} unchanged, ${count("removed")} removed in ${summary.outDir}`,
    )
    for (const s of summary.sites)
      lines.push(`  ${s.name} (id ${s.id}, AS ${s.asn}): ${s.tunnels.map((t) => t.name).join(" ") || "no tunnels"}`)
  }
  for (const s of summary.skipped) lines.push(`  skipped ${s.sites[0]}-${s.sites[1]} IPv${s.family}: ${s.reason}`)
  return lines.join("\n")
}
