/**
 * The relay's control protocol: JSON lines over a unix stream socket, one answer line per
 * request, in order. Requests carry `op` (and an optional `tag` echoed back); answers are
 * `{"ok":true,...}` or `{"ok":false,"error":"..."}`. Every request is decoded with these
 * schemas, and unknown fields are errors so a typo never silently does nothing.
 */
import { ParseResult, Schema } from "effect"
import { DirectionSelector, Endpoint, ImpairmentPatch, Impairments, PairStats } from "./Impairment.js"

export const Op = Schema.Literal("ping", "addPair", "removePair", "setImpairment", "stats", "shutdown")
export type Op = typeof Op.Type

export const RequestTag = Schema.Union(Schema.String, Schema.Number)

/** Read first, so even a request with bad fields gets its tag back. */
export const Envelope = Schema.Struct({
  op: Op,
  tag: Schema.optionalWith(RequestTag, { exact: true }),
})

// Schema.Struct({}) accepts any object; a record of nothing rejects every field.
export const EmptyRequest = Schema.Record({ key: Schema.String, value: Schema.Never })
export const RemovePairRequest = Schema.Struct({ id: Schema.String })
export const SetImpairmentRequest = Schema.Struct({
  id: Schema.String,
  direction: DirectionSelector,
  impairment: ImpairmentPatch,
})
export const StatsRequest = Schema.Struct({ id: Schema.optionalWith(Schema.String, { exact: true }) })
// addPair's body is a PairSpec (Impairment.ts).

export const Failure = Schema.Struct({ ok: Schema.Literal(false), error: Schema.String })
export const PingAnswer = Schema.Struct({ ok: Schema.Literal(true), pid: Schema.Number })
export const AddPairAnswer = Schema.Struct({ ok: Schema.Literal(true), id: Schema.String, listen: Endpoint })
export const OkAnswer = Schema.Struct({ ok: Schema.Literal(true) })
export const SetImpairmentAnswer = Schema.Struct({ ok: Schema.Literal(true), impairments: Impairments })
export const StatsAnswer = Schema.Struct({ ok: Schema.Literal(true), pairs: Schema.Array(PairStats) })

/** One line per problem, naming the field: `impairment.delayMs: Expected a non-negative number, actual -1`. */
export const formatParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ")
