/**
 * Conversion between the engine's `LinkStateMessage` and its protobuf form.
 *
 * Decision a reader must know: the protobuf side is never trusted. A received message is turned
 * back into the engine's shape and then decoded with the engine's Schema, so a malformed
 * message (bad family, negative RTT, loss above 1, ...) becomes a typed error and is counted,
 * never a value downstream code must re-check. +Infinity/no-route travels as an absent field.
 */
import { decodeLinkStateMessage, encodeLinkStateMessage, type LinkStateMessage } from "@net-perf/engine"
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

/** Protobuf message → engine message, validated by the engine's Schema. */
export const fromWire = (wire: pb.LinkStateMessage) => {
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
