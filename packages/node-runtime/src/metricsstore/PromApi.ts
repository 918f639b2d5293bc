/**
 * A client for the Prometheus HTTP query API (`GET /api/v1/query`, an instant query), which
 * VictoriaMetrics serves as well: the only call the metrics-store source needs.
 *
 * Decision a reader must know: nothing from the store is trusted. The body is parsed as JSON and
 * decoded with Schema into an instant vector (sample values become numbers, `+Inf`/`-Inf`/`NaN`
 * included); anything else is a typed `MetricsStoreError` whose `reason` names what failed
 * (unreachable, timeout, http-status, bad-response, query-error). Every request has a timeout.
 */
import { Data, Effect, Either, ParseResult, Schema } from "effect"

/** Why a query failed; also the `reason` label of `netperf_metrics_store_errors_total`. */
export type MetricsStoreErrorReason = "unreachable" | "timeout" | "http-status" | "bad-response" | "query-error"

export class MetricsStoreError extends Data.TaggedError("MetricsStoreError")<{
  readonly reason: MetricsStoreErrorReason
  /** The store's base URL and the query. */
  readonly url: string
  readonly query: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `metrics store ${this.url}: ${this.reason} for query ${JSON.stringify(this.query)}: ${this.detail}`
  }
}

/** A Prometheus sample value: a decimal string, or `+Inf`, `-Inf`, `NaN`. */
export const SampleValue = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _options, ast) => {
    if (s === "+Inf" || s === "Inf") return ParseResult.succeed(Number.POSITIVE_INFINITY)
    if (s === "-Inf") return ParseResult.succeed(Number.NEGATIVE_INFINITY)
    if (s === "NaN") return ParseResult.succeed(Number.NaN)
    const n = s.trim() === "" ? Number.NaN : Number(s)
    return Number.isNaN(n)
      ? ParseResult.fail(new ParseResult.Type(ast, s, "not a sample value"))
      : ParseResult.succeed(n)
  },
  encode: (n) =>
    ParseResult.succeed(
      Number.isNaN(n)
        ? "NaN"
        : n === Number.POSITIVE_INFINITY
          ? "+Inf"
          : n === Number.NEGATIVE_INFINITY
            ? "-Inf"
            : String(n),
    ),
})

/** `[unix seconds (float), "value"]`, decoded to epoch milliseconds and a number. */
export const InstantSample = Schema.Tuple(Schema.Number.pipe(Schema.finite()), SampleValue)

export const VectorEntry = Schema.Struct({
  metric: Schema.Record({ key: Schema.String, value: Schema.String }),
  value: InstantSample,
})

export const SuccessResponse = Schema.Struct({
  status: Schema.Literal("success"),
  data: Schema.Struct({
    resultType: Schema.Literal("vector"),
    result: Schema.Array(VectorEntry),
  }),
  warnings: Schema.optional(Schema.Array(Schema.String)),
})

export const ErrorResponse = Schema.Struct({
  status: Schema.Literal("error"),
  errorType: Schema.String,
  error: Schema.String,
})

export const QueryResponse = Schema.Union(SuccessResponse, ErrorResponse)
export type QueryResponse = typeof QueryResponse.Type

/** One series of an instant vector. */
export interface InstantSeries {
  readonly labels: Readonly<Record<string, string>>
  /** Evaluation time for plain selectors; the sample's own time only for `timestamp(…)`. */
  readonly atMillis: number
  readonly value: number
}

/**
 * Decodes a response body (text) into series or a typed error. Pure; `url`/`query` only name
 * the request in the error. HTTP status is the caller's: Prometheus sends an error body with
 * 400/422/503, and that body says more than the status.
 */
export const decodeQueryResponse = (
  body: string,
  request: { readonly url: string; readonly query: string },
): Either.Either<ReadonlyArray<InstantSeries>, MetricsStoreError> => {
  const fail = (reason: MetricsStoreErrorReason, detail: string, cause?: unknown) =>
    Either.left(new MetricsStoreError({ ...request, reason, detail, ...(cause === undefined ? {} : { cause }) }))
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch (cause) {
    return fail("bad-response", `body is not JSON (${body.slice(0, 80)})`, cause)
  }
  const decoded = Schema.decodeUnknownEither(QueryResponse)(json)
  if (Either.isLeft(decoded))
    return fail("bad-response", ParseResult.TreeFormatter.formatErrorSync(decoded.left), decoded.left)
  const response = decoded.right
  if (response.status === "error") return fail("query-error", `${response.errorType}: ${response.error}`)
  return Either.right(
    response.data.result.map((e) => ({ labels: e.metric, atMillis: Math.round(e.value[0] * 1000), value: e.value[1] })),
  )
}

export interface PromClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:9090` (a path prefix such as `/prometheus` is kept). */
  readonly url: string
  readonly timeoutMillis: number
}

export interface PromClient {
  readonly url: string
  /** Instant query at the store's "now". */
  readonly query: (promql: string) => Effect.Effect<ReadonlyArray<InstantSeries>, MetricsStoreError>
}

export const queryUrl = (base: string, promql: string): string => {
  const url = new URL(`${base.replace(/\/+$/, "")}/api/v1/query`)
  url.searchParams.set("query", promql)
  return url.toString()
}

export const makePromClient = (options: PromClientOptions): PromClient => {
  const query = (promql: string) =>
    Effect.gen(function* () {
      const request = { url: options.url, query: promql }
      const fail = (reason: MetricsStoreErrorReason, detail: string, cause?: unknown) =>
        new MetricsStoreError({ ...request, reason, detail, ...(cause === undefined ? {} : { cause }) })
      const response = yield* Effect.tryPromise({
        try: async (signal) => {
          const res = await fetch(queryUrl(options.url, promql), { signal, headers: { accept: "application/json" } })
          return { status: res.status, body: await res.text() }
        },
        catch: (cause) => fail("unreachable", String((cause as { cause?: unknown })?.cause ?? cause), cause),
      }).pipe(
        Effect.timeoutFail({
          duration: `${options.timeoutMillis} millis`,
          onTimeout: () => fail("timeout", `no answer within ${options.timeoutMillis} ms`),
        }),
      )
      const series = decodeQueryResponse(response.body, request)
      // An error body explains a 4xx/5xx better than its status; any other body with one is the status.
      if (response.status !== 200 && !(Either.isLeft(series) && series.left.reason === "query-error"))
        return yield* fail("http-status", `HTTP ${response.status}: ${response.body.slice(0, 120)}`)
      return yield* series
    })
  return { url: options.url, query }
}
