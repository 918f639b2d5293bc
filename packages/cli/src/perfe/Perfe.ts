/**
 * perfe's export loop: a round right at start, then one every interval on a fixed schedule (the
 * original's ticker never fired after the first run). A failed round is logged and the next one
 * runs anyway; each pair's last path lives across rounds, seeded from the index at start.
 */
import type { Client } from "@elastic/elasticsearch"
import { algorithmNames } from "@net-perf/engine"
import { Console, type Duration, Effect, Ref, Schedule } from "effect"
import type { ClientTls } from "../perfc/ManagementClient.js"
import { collectMeshView } from "../perfc/Perfc.js"
import { renderTable } from "../perfc/Render.js"
import type { SiteTarget } from "../perfc/Targets.js"
import { buildDocuments, type LastPaths } from "./Documents.js"
import { type BulkReport, bulkIndex, type ElasticOptions, type RetryPolicy } from "./Elastic.js"

export interface RoundReport {
  readonly atMillis: number
  readonly sites: number
  readonly reachable: number
  readonly unreachable: ReadonlyArray<number>
  readonly documents: number
  readonly bulk: BulkReport
}

export interface RoundOptions {
  readonly targets: ReadonlyArray<SiteTarget>
  readonly timeoutMillis: number
  readonly printRoutes: boolean
  readonly retry: RetryPolicy
  readonly grpcTls: ClientTls | undefined
}

/** One export: every site's routes (and each algorithm's own path) → one document per pair. */
export const exportRound = (
  client: Client,
  elastic: ElasticOptions,
  lastPaths: Ref.Ref<LastPaths>,
  options: RoundOptions,
) =>
  Effect.gen(function* () {
    const view = yield* collectMeshView(options.targets, {
      timeoutMillis: options.timeoutMillis,
      algorithms: [...algorithmNames],
      tls: options.grpcTls,
    })
    if (options.printRoutes) yield* Console.log(renderTable(view))
    for (const site of view.sites) {
      if (!site.ok)
        yield* Console.error(
          `perfe: site ${site.site} (${site.address}) skipped: ${site.error.code}: ${site.error.message}`,
        )
    }
    const { documents, lastPaths: next } = buildDocuments(view, yield* Ref.get(lastPaths))
    const bulk =
      documents.length === 0
        ? { indexed: 0, requests: 0, retriedItems: 0, failed: [], backoffMillis: [] }
        : yield* bulkIndex(client, elastic, documents, options.retry)
    // Only pairs whose document got in count as "last" for the next round's route_changed.
    const failedIds = new Set(bulk.failed.map((f) => f.id))
    const kept = new Map(yield* Ref.get(lastPaths))
    for (const d of documents) {
      if (!failedIds.has(d.id)) kept.set(d.document.pair, next.get(d.document.pair) ?? d.document.path)
    }
    yield* Ref.set(lastPaths, kept)
    for (const f of bulk.failed)
      yield* Console.error(`perfe: document ${f.id} not indexed: ${f.status} ${f.type}: ${f.reason}`)
    return {
      atMillis: view.atMillis,
      sites: view.summary.sites,
      reachable: view.summary.reachable,
      unreachable: view.summary.unreachable,
      documents: documents.length,
      bulk,
    } satisfies RoundReport as RoundReport
  })

export const formatRound = (r: RoundReport): string =>
  `perfe: ${new Date(r.atMillis).toISOString()} indexed ${r.bulk.indexed}/${r.documents} documents from ` +
  `${r.reachable}/${r.sites} sites in ${r.bulk.requests} bulk request(s), ${r.bulk.retriedItems} item retries, ` +
  `${r.bulk.failed.length} failed`

/** Runs rounds forever every `interval` (the first at once); a failing round never stops the loop. */
export const exportLoop = (
  round: Effect.Effect<RoundReport, { readonly message: string }>,
  interval: Duration.Duration,
) =>
  round.pipe(
    Effect.tap((r) => Console.error(formatRound(r))),
    Effect.catchAll((e) => Console.error(`perfe: round failed: ${e.message}`)),
    Effect.repeat(Schedule.fixed(interval)),
  )
