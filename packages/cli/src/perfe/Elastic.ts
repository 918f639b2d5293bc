/**
 * perfe's Elasticsearch side, over the official client (`@elastic/elasticsearch` 8.19): index
 * creation with mappings, seeding each pair's newest path, and bulk indexing that retries ONLY
 * the items Elasticsearch rejected as transient (429, 5xx), with exponential backoff and jitter.
 * Items rejected for good (e.g. 400 mapping errors) are reported, never retried. The client's own
 * retries are off so that every retry is ours and visible in the round's figures.
 */
import { readFileSync } from "node:fs"
import { Client, type estypes } from "@elastic/elasticsearch"
import { Data, Duration, Effect, Random, Redacted } from "effect"
import { type IndexedDocument, indexMappings, type LastPaths } from "./Documents.js"

export interface ElasticOptions {
  /** e.g. `https://localhost:9200` */
  readonly node: string
  readonly username: string
  /** No password: no authentication header. */
  readonly password: Redacted.Redacted | undefined
  readonly index: string
  /** PEM file of the CA that signed the server's certificate. */
  readonly caFile: string | undefined
  /** Skip certificate verification (the original always did; here it must be asked for). */
  readonly insecure: boolean
  readonly requestTimeoutMillis: number
}

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly maxRetries: number
  readonly initialBackoffMillis: number
  readonly maxBackoffMillis: number
}

export const defaultRetryPolicy: RetryPolicy = { maxRetries: 5, initialBackoffMillis: 500, maxBackoffMillis: 30_000 }

export class ElasticUnavailable extends Data.TaggedError("ElasticUnavailable")<{
  readonly operation: string
  readonly node: string
  readonly cause: unknown
}> {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Elasticsearch ${this.operation} at ${this.node} failed: ${detail}`
  }
}

export interface ItemFailure {
  readonly id: string
  readonly status: number
  readonly type: string
  readonly reason: string
}

export interface BulkReport {
  readonly indexed: number
  /** Bulk requests sent (1 when nothing needed a retry). */
  readonly requests: number
  /** Item sends beyond the first, summed over the retries. */
  readonly retriedItems: number
  /** Items that failed for good or were still failing after the last retry. */
  readonly failed: ReadonlyArray<ItemFailure>
  /** Backoff slept before each retry, in order. */
  readonly backoffMillis: ReadonlyArray<number>
}

/** Transient per-item statuses worth a retry (the bulk API's documented back-pressure and node errors). */
export const isRetryableStatus = (status: number): boolean => status === 429 || status >= 500

/** Full-jitter exponential backoff: uniform in [d/2, d] with d = min(max, initial·2^attempt). */
export const backoffMillis = (policy: RetryPolicy, attempt: number, unit: number): number => {
  const ceiling = Math.min(policy.maxBackoffMillis, policy.initialBackoffMillis * 2 ** attempt)
  return Math.round(ceiling / 2 + (ceiling / 2) * unit)
}

export const makeClient = (options: ElasticOptions) =>
  Effect.acquireRelease(
    Effect.try({
      try: () =>
        new Client({
          node: options.node,
          ...(options.password === undefined
            ? {}
            : { auth: { username: options.username, password: Redacted.value(options.password) } }),
          tls: {
            rejectUnauthorized: !options.insecure,
            ...(options.caFile === undefined ? {} : { ca: readFileSync(options.caFile) }),
          },
          maxRetries: 0,
          requestTimeout: options.requestTimeoutMillis,
        }),
      catch: (cause) => new ElasticUnavailable({ operation: "client set-up", node: options.node, cause }),
    }),
    (client) => Effect.promise(() => client.close()),
  )

const call = <A>(options: ElasticOptions, operation: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (cause) => new ElasticUnavailable({ operation, node: options.node, cause }) })

const statusOf = (cause: unknown): number | undefined =>
  typeof cause === "object" && cause !== null && "meta" in cause
    ? (cause as { meta?: { statusCode?: number } }).meta?.statusCode
    : undefined

/** Creates the index with perfe's mappings unless it exists. */
export const ensureIndex = (client: Client, options: ElasticOptions) =>
  Effect.gen(function* () {
    const exists = yield* call(options, `HEAD /${options.index}`, () => client.indices.exists({ index: options.index }))
    if (exists) return false
    yield* call(options, `create index ${options.index}`, () =>
      client.indices.create({ index: options.index, mappings: indexMappings as estypes.MappingTypeMapping }),
    ).pipe(
      // Another exporter may have created it between our check and our create.
      Effect.catchIf(
        (e) => statusOf(e.cause) === 400 && String((e.cause as Error).message).includes("resource_already_exists"),
        () => Effect.void,
      ),
    )
    return true
  })

/** Each pair's newest path in the index (collapse on `pair`, newest first); empty when the index is new. */
export const seedLastPaths = (client: Client, options: ElasticOptions) =>
  call(options, `search ${options.index}`, () =>
    client.search<{ pair?: string; path?: Array<number> }>({
      index: options.index,
      size: 10_000,
      collapse: { field: "pair" },
      sort: [{ "@timestamp": { order: "desc" } }],
      _source: ["pair", "path"],
    }),
  ).pipe(
    Effect.map((response): LastPaths => {
      const paths = new Map<string, ReadonlyArray<number>>()
      for (const hit of response.hits.hits) {
        const source = hit._source
        if (source?.pair !== undefined && Array.isArray(source.path) && !paths.has(source.pair)) {
          paths.set(source.pair, source.path)
        }
      }
      return paths
    }),
    Effect.catchIf(
      (e) => statusOf(e.cause) === 404,
      () => Effect.succeed<LastPaths>(new Map()),
    ),
  )

/**
 * Bulk-indexes the documents; after each response only the items that failed with a retryable
 * status are sent again. A request that fails as a whole (connection refused, 5xx, timeout) is
 * retried with the same backoff; after the last retry the error is returned.
 */
export const bulkIndex = (
  client: Client,
  options: ElasticOptions,
  documents: ReadonlyArray<IndexedDocument>,
  policy: RetryPolicy = defaultRetryPolicy,
) =>
  Effect.gen(function* () {
    let pending = documents
    let requests = 0
    let retriedItems = 0
    let indexed = 0
    const failed: Array<ItemFailure> = []
    const backoffs: Array<number> = []
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        const delay = backoffMillis(policy, attempt - 1, yield* Random.next)
        backoffs.push(delay)
        yield* Effect.sleep(Duration.millis(delay))
        retriedItems += pending.length
      }
      requests++
      const last = attempt >= policy.maxRetries
      const response = yield* call(options, "bulk", () =>
        client.bulk({
          operations: pending.flatMap((d) => [{ index: { _index: options.index, _id: d.id } }, d.document]),
        }),
      ).pipe(Effect.either)
      if (response._tag === "Left") {
        const status = statusOf(response.left.cause)
        if (last || (status !== undefined && !isRetryableStatus(status))) return yield* response.left
        continue
      }
      const retry: Array<IndexedDocument> = []
      for (const [i, item] of response.right.items.entries()) {
        const document = pending[i]
        const result = item.index ?? item.create ?? item.update ?? item.delete
        if (document === undefined || result === undefined) continue
        if (result.status < 300) {
          indexed++
          continue
        }
        const failure = {
          id: document.id,
          status: result.status,
          type: result.error?.type ?? "unknown",
          reason: result.error?.reason ?? "",
        }
        if (isRetryableStatus(result.status) && !last) retry.push(document)
        else failed.push(failure)
      }
      pending = retry
    }
    return { indexed, requests, retriedItems, failed, backoffMillis: backoffs } satisfies BulkReport as BulkReport
  })
