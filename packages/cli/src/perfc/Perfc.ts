/**
 * perfc: queries every named site's daemon concurrently and builds the mesh view. An unreachable
 * site never hides the others; the exit code tells a complete view (0) from a partial one (2)
 * and from none at all (3).
 */
import { Effect } from "effect"
import { type ClientTls, fetchSite } from "./ManagementClient.js"
import { buildMeshView, type MeshView, type SiteResult } from "./Snapshot.js"
import type { SiteTarget } from "./Targets.js"

export const exitCodes = { complete: 0, usage: 1, partial: 2, none: 3 } as const

export interface CollectOptions {
  readonly timeoutMillis: number
  readonly algorithms: ReadonlyArray<string>
  readonly tls?: ClientTls | undefined
}

/** Every site's replies, or its error; never fails. */
export const collectResults = (targets: ReadonlyArray<SiteTarget>, options: CollectOptions) =>
  Effect.forEach(
    targets,
    (target) =>
      fetchSite(target, options).pipe(
        Effect.match({
          onSuccess: (replies): SiteResult => ({ _tag: "ok", replies }),
          onFailure: (error): SiteResult => ({ _tag: "failed", target, error }),
        }),
      ),
    { concurrency: "unbounded" },
  )

/** The mesh view at this moment. */
export const collectMeshView = (targets: ReadonlyArray<SiteTarget>, options: CollectOptions) =>
  Effect.map(collectResults(targets, options), (results): MeshView => buildMeshView(results, Date.now()))

/** Keeps only the sources named by `--site` (all when empty); the summary follows. */
export const filterSources = (view: MeshView, sources: ReadonlyArray<number>): MeshView => {
  if (sources.length === 0) return view
  const wanted = new Set(sources)
  const sites = view.sites.filter((s) => wanted.has(s.site))
  const unreachable = sites.filter((s) => !s.ok).map((s) => s.site)
  return { ...view, sites, summary: { sites: sites.length, reachable: sites.length - unreachable.length, unreachable } }
}

export const exitCodeOf = (view: MeshView): number =>
  view.summary.unreachable.length === 0
    ? exitCodes.complete
    : view.summary.reachable === 0
      ? exitCodes.none
      : exitCodes.partial
