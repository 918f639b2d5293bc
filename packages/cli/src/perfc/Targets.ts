/**
 * Which daemons perfc/perfe talk to. Sites come from `--sites 0,1,2`, a mesh file (`--mesh`, the
 * `net-perf-mesh` format: each site's router address and the mesh's gRPC port) or `--target
 * site=host:port` (repeated; overrides the address of a listed site or adds one). The default
 * address of site X is `10.201.X.1:<port>` (the mesh convention), never a hard-coded site list:
 * with no site given at all, the command fails and says how to name some.
 */

import { FileSystem } from "@effect/platform"
import { MeshGen } from "@net-perf/engine"
import { Data, Effect, Either } from "effect"
import { parse as parseYaml } from "yaml"

export interface SiteTarget {
  readonly site: number
  readonly name: string | undefined
  /** `host:port` for gRPC (IPv6 hosts in brackets). */
  readonly address: string
}

export class InvalidTargets extends Data.TaggedError("InvalidTargets")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export const defaultManagementPort = 5122

/** `10.201.X.1:port`: the router address of site X in the default address plan. */
export const defaultAddress = (site: number, port: number = defaultManagementPort): string => `10.201.${site}.1:${port}`

const siteIdPattern = /^\d{1,5}$/

/** `"0,1, 2"` → [0, 1, 2]; ranges `0-3` allowed. */
export const parseSiteList = (text: string): Either.Either<ReadonlyArray<number>, InvalidTargets> => {
  const ids: Array<number> = []
  for (const raw of text.split(",")) {
    const part = raw.trim()
    if (part === "") continue
    const range = /^(\d{1,5})-(\d{1,5})$/.exec(part)
    if (range !== null) {
      const from = Number(range[1])
      const to = Number(range[2])
      if (to < from) return Either.left(new InvalidTargets({ message: `empty site range "${part}"` }))
      for (let id = from; id <= to; id++) ids.push(id)
      continue
    }
    if (!siteIdPattern.test(part)) {
      return Either.left(new InvalidTargets({ message: `"${part}" is not a site id (expected e.g. 0,1,2 or 0-3)` }))
    }
    ids.push(Number(part))
  }
  return Either.right([...new Set(ids)].sort((a, b) => a - b))
}

/** `"3=127.0.0.1:5122"` or `"3=[::1]:5122"` → { site 3, address }. */
export const parseTarget = (text: string): Either.Either<{ site: number; address: string }, InvalidTargets> => {
  const match = /^(\d{1,5})=(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(text.trim())
  const port = Number(match?.[3])
  if (match === null || !(port >= 1 && port <= 65535)) {
    return Either.left(
      new InvalidTargets({
        message: `--target: "${text}" is not site=host:port (e.g. 3=10.201.3.1:5122 or 3=[::1]:5122)`,
      }),
    )
  }
  return Either.right({ site: Number(match[1]), address: `${match[2]}:${port}` })
}

/** Reads a `net-perf-mesh` mesh file: every site with its router address and the mesh's gRPC port. */
export const targetsFromMesh = (meshPath: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(meshPath)
      .pipe(Effect.mapError((cause) => new InvalidTargets({ message: `cannot read mesh file ${meshPath}`, cause })))
    const parsed = yield* Effect.try({
      try: () => (meshPath.endsWith(".json") ? JSON.parse(text) : parseYaml(text)) as unknown,
      catch: (cause) => new InvalidTargets({ message: `mesh file ${meshPath} does not parse`, cause }),
    })
    const mesh = yield* Either.match(MeshGen.decodeMesh(parsed), {
      onLeft: (issues) => Effect.fail(new InvalidTargets({ message: `mesh file ${meshPath} is invalid:\n${issues}` })),
      onRight: (m) => Effect.succeed(m),
    })
    const plan = MeshGen.planMesh(mesh)
    const port = mesh.defaults.daemon.grpcPort
    return plan.sites.map((s): SiteTarget => ({ site: s.site.id, name: s.site.name, address: `${s.router4}:${port}` }))
  })

export interface TargetFlags {
  readonly sites: string | undefined
  readonly mesh: string | undefined
  readonly targets: ReadonlyArray<string>
  readonly port: number
}

/**
 * The sites to query, sorted by id: mesh sites, then `--sites` (default addresses), then
 * `--target` overrides. Fails when none is named.
 */
export const resolveTargets = (flags: TargetFlags) =>
  Effect.gen(function* () {
    const bySite = new Map<number, SiteTarget>()
    if (flags.mesh !== undefined) {
      for (const t of yield* targetsFromMesh(flags.mesh)) bySite.set(t.site, t)
    }
    if (flags.sites !== undefined) {
      for (const site of yield* parseSiteList(flags.sites)) {
        if (!bySite.has(site)) bySite.set(site, { site, name: undefined, address: defaultAddress(site, flags.port) })
      }
    }
    for (const text of flags.targets) {
      const t = yield* parseTarget(text)
      bySite.set(t.site, { site: t.site, name: bySite.get(t.site)?.name, address: t.address })
    }
    if (bySite.size === 0) {
      return yield* new InvalidTargets({
        message: "no sites to query: give --sites 0,1,2, --mesh <mesh file> or --target site=host:port",
      })
    }
    return [...bySite.values()].sort((a, b) => a.site - b.site)
  })
