/**
 * Conversion between the engine's `LinkStateMessage` and its protobuf form.
 *
 * Decision a reader must know: the protobuf side is never trusted. A received message is turned
 * back into the engine's shape and validated with exactly the checks of the engine's Schema, so a
 * malformed message (bad family, negative RTT, loss above 1, ...) becomes a typed error and is
 * counted, never a value downstream code must re-check. +Infinity/no-route travels as an absent
 * field.
 *
 * The checks run by hand first (`fastFromWire`): Schema's generic decode cost 0.5–0.8 ms of the
 * daemon's CPU per message, a cost that grows with the mesh. Anything the hand-written checks do not
 * accept goes through the Schema (`schemaFromWire`, the reference), which then decides and names
 * the bad field, so the accepted set and the errors are the Schema's (test/linkstate/Wire.test.ts
 * compares both over generated and mutated messages).
 */
import {
  type DistanceAdvert,
  decodeLinkStateMessage,
  encodeLinkStateMessage,
  type LinkStateDecodeError,
  LinkStateMessage,
  type LinkStats,
  type SiteId,
  type TunnelAdvert,
} from "@net-perf/engine"
import { Effect, Either } from "effect"
import type * as pb from "../gen/netperf/linkstate/v1/linkstate.js"

const optional = (v: number | null): number | undefined => (v === null || !Number.isFinite(v) ? undefined : v)

/** Engine message → protobuf message. */
export const toWire = (message: LinkStateMessage): pb.LinkStateMessage => {
  const encoded = encodeLinkStateMessage(message)
  return {
    origin: encoded.origin,
    incarnation: encoded.incarnation,
    seq: encoded.seq,
    generatedAtMillis: encoded.generatedAtMillis,
    tunnels: encoded.tunnels.map((t) => ({
      remote: t.remote,
      family: t.family,
      stats: {
        state: t.stats.state,
        rttMs: optional(t.stats.rttMs),
        jitterMs: t.stats.jitterMs,
        lossRatio: t.stats.lossRatio,
        availability: t.stats.availability,
        lastSampleAtMillis: optional(t.stats.lastSampleAtMillis),
        lastReplyAtMillis: optional(t.stats.lastReplyAtMillis),
      },
      costMs: optional(t.costMs),
      selected: t.selected,
      suspect: t.suspect === true,
    })),
    distances: encoded.distances.map((d) => ({
      destination: d.destination,
      seqno: d.seqno,
      distanceMs: optional(d.distanceMs),
      nextHop: d.nextHop ?? undefined,
    })),
    requests: encoded.requests.map((r) => ({ destination: r.destination, seqno: r.seqno })),
  }
}

/**
 * Protobuf message → engine message through the engine's Schema alone: the reference the fast path
 * must agree with, and the path that produces the error when a message is malformed.
 */
export const schemaFromWire = (wire: pb.LinkStateMessage): Effect.Effect<LinkStateMessage, LinkStateDecodeError> => {
  const candidate = {
    _tag: "LinkStateMessage",
    origin: wire.origin,
    incarnation: wire.incarnation,
    seq: wire.seq,
    generatedAtMillis: wire.generatedAtMillis,
    tunnels: wire.tunnels.map((t) => ({
      remote: t.remote,
      family: t.family,
      stats: {
        tunnel: { local: wire.origin, remote: t.remote, family: t.family },
        state: t.stats?.state,
        rttMs: t.stats?.rttMs ?? null,
        jitterMs: t.stats?.jitterMs,
        lossRatio: t.stats?.lossRatio,
        availability: t.stats?.availability,
        lastSampleAtMillis: t.stats?.lastSampleAtMillis ?? null,
        lastReplyAtMillis: t.stats?.lastReplyAtMillis ?? null,
      },
      costMs: t.costMs ?? null,
      selected: t.selected,
      // proto3 cannot tell false from absent; the engine's message leaves it out when false.
      ...(t.suspect ? { suspect: true } : {}),
    })),
    distances: wire.distances.map((d) => ({
      destination: d.destination,
      seqno: d.seqno,
      distanceMs: d.distanceMs ?? null,
      nextHop: d.nextHop ?? null,
    })),
    requests: wire.requests.map((r) => ({ destination: r.destination, seqno: r.seqno })),
  }
  return decodeLinkStateMessage(candidate)
}

// The Schema's checks, one predicate per field type (effect 3.x: `Int` is Number.isSafeInteger,
// `nonNegative` is `>= 0` (NaN fails, +Infinity passes), `between(0, 1)`, `Number` is any number
// (NaN and ±Infinity included), `Literal` is ===).

/** `SiteId` and `Seqno`: Schema.Int.pipe(Schema.nonNegative()). */
const isNonNegativeInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
const isNonNegative = (v: unknown): v is number => typeof v === "number" && v >= 0
const isRatio = (v: unknown): v is number => typeof v === "number" && v >= 0 && v <= 1
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null

/** Sentinel: the fast path does not vouch for this message (not a decoded value can be undefined). */
const notFast = undefined

/**
 * The engine's message built directly from a protobuf message whose every field passes the
 * Schema's checks, with the same shape (key order, fresh nested objects, `suspect` only when set,
 * absent optional numbers as null) and the same class as the Schema's output; `undefined` when any
 * check fails or the input is not the plain shape expected (the Schema then decides).
 */
export const fastFromWire = (wire: pb.LinkStateMessage): LinkStateMessage | undefined => {
  if (!isObject(wire)) return notFast
  const { origin, incarnation, seq, generatedAtMillis } = wire
  if (!isNonNegativeInt(origin) || typeof incarnation !== "number" || !isNonNegativeInt(seq)) return notFast
  if (typeof generatedAtMillis !== "number") return notFast
  const wireTunnels: unknown = wire.tunnels
  const wireDistances: unknown = wire.distances
  const wireRequests: unknown = wire.requests
  if (!Array.isArray(wireTunnels) || !Array.isArray(wireDistances) || !Array.isArray(wireRequests)) return notFast

  const tunnels = new Array<TunnelAdvert>(wireTunnels.length)
  for (let i = 0; i < wireTunnels.length; i++) {
    const t: unknown = wireTunnels[i]
    if (!isObject(t)) return notFast
    const { remote, family, stats, selected } = t
    if (!isNonNegativeInt(remote) || (family !== 4 && family !== 6) || typeof selected !== "boolean") return notFast
    if (!isObject(stats)) return notFast
    const { state, jitterMs, lossRatio, availability } = stats
    if (state !== "up" && state !== "dead" && state !== "unknown") return notFast
    if (!isNonNegative(jitterMs) || !isRatio(lossRatio) || !isRatio(availability)) return notFast
    // Absent (undefined) and null both become null, as in `schemaFromWire`'s candidate.
    const rttMs = stats.rttMs ?? null
    const lastSampleAtMillis = stats.lastSampleAtMillis ?? null
    const lastReplyAtMillis = stats.lastReplyAtMillis ?? null
    const costMs = t.costMs ?? null
    if (rttMs !== null && !isNonNegative(rttMs)) return notFast
    if (lastSampleAtMillis !== null && typeof lastSampleAtMillis !== "number") return notFast
    if (lastReplyAtMillis !== null && typeof lastReplyAtMillis !== "number") return notFast
    if (costMs !== null && !isNonNegative(costMs)) return notFast
    const linkStats: LinkStats = {
      tunnel: { local: origin as SiteId, remote: remote as SiteId, family },
      state,
      rttMs,
      jitterMs,
      lossRatio,
      availability,
      lastSampleAtMillis,
      lastReplyAtMillis,
    }
    // proto3 cannot tell false from absent; the engine's message leaves it out when false.
    tunnels[i] = t.suspect
      ? { remote: remote as SiteId, family, stats: linkStats, costMs, selected, suspect: true }
      : { remote: remote as SiteId, family, stats: linkStats, costMs, selected }
  }

  const distances = new Array<DistanceAdvert>(wireDistances.length)
  for (let i = 0; i < wireDistances.length; i++) {
    const d: unknown = wireDistances[i]
    if (!isObject(d)) return notFast
    const { destination, seqno } = d
    const distanceMs = d.distanceMs ?? null
    const nextHop = d.nextHop ?? null
    if (!isNonNegativeInt(destination) || !isNonNegativeInt(seqno)) return notFast
    if (distanceMs !== null && !isNonNegative(distanceMs)) return notFast
    if (nextHop !== null && !isNonNegativeInt(nextHop)) return notFast
    distances[i] = { destination: destination as SiteId, seqno, distanceMs, nextHop: nextHop as SiteId | null }
  }

  const requests = new Array<{ readonly destination: SiteId; readonly seqno: number }>(wireRequests.length)
  for (let i = 0; i < wireRequests.length; i++) {
    const r: unknown = wireRequests[i]
    if (!isObject(r)) return notFast
    const { destination, seqno } = r
    if (!isNonNegativeInt(destination) || !isNonNegativeInt(seqno)) return notFast
    requests[i] = { destination: destination as SiteId, seqno }
  }

  // What the Schema's decode does last (`new this(i, true)`): the class, validation already done.
  return new LinkStateMessage(
    { origin: origin as SiteId, incarnation, seq, generatedAtMillis, tunnels, distances, requests },
    true,
  )
}

/**
 * Protobuf message → engine message, validated with the engine's Schema's checks: by hand when the
 * message passes them all, through the Schema otherwise (same values, same errors).
 */
export const fromWire = (wire: pb.LinkStateMessage): Effect.Effect<LinkStateMessage, LinkStateDecodeError> => {
  const fast = fastFromWire(wire)
  return fast === undefined ? schemaFromWire(wire) : Effect.succeed(fast)
}

/**
 * `fromWire` without an Effect to run: for the gRPC receive callback, which otherwise pays a
 * `runSync` per message even when the message is good.
 */
export const fromWireEither = (wire: pb.LinkStateMessage): Either.Either<LinkStateMessage, LinkStateDecodeError> => {
  const fast = fastFromWire(wire)
  return fast === undefined ? Effect.runSync(Effect.either(schemaFromWire(wire))) : Either.right(fast)
}

/** The three fields that order an origin's messages. */
export interface Ordering {
  readonly origin: number
  readonly incarnation: number
  readonly seq: number
}

/**
 * A `LinkStateMessage`'s ordering fields (1 origin, 2 incarnation, 3 seq) read from its protobuf
 * bytes without decoding the rest: every other top-level field is skipped by its length, by the
 * generated `decode`'s rules (last occurrence wins, a field of the wrong wire type is skipped, tag 0
 * or an end-group ends the message, absent means 0) and its reader's (`@bufbuild/protobuf`: a
 * varint read as uint32 keeps its low 32 bits and may take 10 bytes, reading past the end fails).
 * `undefined` whenever the bytes do not parse that far, or hold a group (the full decode decides).
 * Hand-rolled because the library reader's `skip` copies each skipped field (a `subarray`): with
 * it, peeking cost ≈ 40 % of a full decode. Why at all: flooding brings every origin's message once
 * per neighbour, and the full decode of a stale copy (most copies) costs ≈ 20 µs at 50 sites and
 * ≈ 90 µs at 200 (bench/wireDecode.ts).
 */
export const peekOrdering = (bytes: Uint8Array): Ordering | undefined => {
  const len = bytes.length
  let pos = 0
  /** The low 32 bits of the varint at `pos` (unsigned), or -1 when it is malformed or cut off. */
  const varint32 = (): number => {
    let value = 0
    for (let i = 0; i < 10; i++) {
      if (pos >= len) return -1
      const b = bytes[pos++]!
      if (i < 4) value |= (b & 0x7f) << (7 * i)
      else if (i === 4) value |= (b & 0x0f) << 28
      if (b < 0x80) return value >>> 0
    }
    return -1
  }
  let origin = 0
  let incarnation = 0
  let seq = 0
  let view: DataView | undefined
  while (pos < len) {
    const tag = varint32()
    if (tag < 0) return undefined
    const wireType = tag & 7
    if (tag === 8 || tag === 24) {
      const v = varint32()
      if (v < 0) return undefined
      if (tag === 8) origin = v
      else seq = v
    } else if (tag === 17) {
      if (pos + 8 > len) return undefined
      view ??= new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      incarnation = view.getFloat64(pos, true)
      pos += 8
    } else if (wireType === 4 || tag === 0) break
    else if (wireType === 0) {
      if (varint32() < 0) return undefined
    } else if (wireType === 1) pos += 8
    else if (wireType === 2) {
      const n = varint32()
      if (n < 0) return undefined
      pos += n
    } else if (wireType === 5) pos += 4
    else return undefined
    if (pos > len) return undefined
  }
  return { origin, incarnation, seq }
}
