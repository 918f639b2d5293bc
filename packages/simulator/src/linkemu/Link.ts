/**
 * One directed link as a pure decision: given a datagram's size and arrival time, drop it
 * (and why) or say when it must leave. No sockets, no clock; times are milliseconds on the
 * caller's monotonic clock. Order per datagram, as netem: down -> queue limit -> loss ->
 * serialisation at the rate (a busy-until horizon, i.e. a token bucket with a one-packet
 * bucket) -> propagation delay plus jitter. A change of impairment affects only datagrams
 * admitted after it.
 */
import type { Impairment } from "./Impairment.js"
import type { Rng } from "./Rng.js"

export interface LinkState {
  impairment: Impairment
  readonly rng: Rng
  /** When the serialiser is free again (ms). */
  busyUntilMs: number
  /** Latest due time handed out, for FIFO (reorder: false). */
  lastDueMs: number
}

export type Admission =
  | { readonly _tag: "Send"; readonly dueMs: number }
  | { readonly _tag: "Drop"; readonly reason: "down" | "loss" | "queue" }

export const makeLinkState = (impairment: Impairment, rng: Rng): LinkState => ({
  impairment,
  rng,
  busyUntilMs: Number.NEGATIVE_INFINITY,
  lastDueMs: Number.NEGATIVE_INFINITY,
})

/** Bytes an IP packet carrying `payloadBytes` of UDP adds on the wire: IP + UDP headers. */
export const ipUdpOverheadBytes = (family: 4 | 6): number => (family === 4 ? 28 : 48)

const sampleDelayMs = (imp: Impairment, rng: Rng): number => {
  if (imp.jitterMs === 0) return imp.delayMs
  const offset =
    imp.jitterDistribution === "uniform" ? (rng.next() * 2 - 1) * imp.jitterMs : rng.normal() * imp.jitterMs
  return Math.max(0, imp.delayMs + offset)
}

/**
 * Decides the fate of one datagram of `wireBytes` (IP packet size) arriving at `nowMs` while the
 * direction already holds `heldPackets` datagrams. Mutates `state` only when the datagram is admitted
 * (and the loss draw), so a dropped datagram does not occupy the serialiser.
 */
export const admit = (state: LinkState, wireBytes: number, nowMs: number, heldPackets: number): Admission => {
  const imp = state.impairment
  if (imp.down) return { _tag: "Drop", reason: "down" }
  if (heldPackets >= imp.queueLimitPackets) return { _tag: "Drop", reason: "queue" }
  if (imp.lossRatio > 0 && state.rng.next() < imp.lossRatio) return { _tag: "Drop", reason: "loss" }
  let departMs = nowMs
  if (imp.rateBitsPerSecond > 0) {
    const start = Math.max(nowMs, state.busyUntilMs)
    departMs = start + (wireBytes * 8 * 1000) / imp.rateBitsPerSecond
    state.busyUntilMs = departMs
  }
  let dueMs = departMs + sampleDelayMs(imp, state.rng)
  if (!imp.reorder) dueMs = Math.max(dueMs, state.lastDueMs)
  state.lastDueMs = Math.max(state.lastDueMs, dueMs)
  return { _tag: "Send", dueMs }
}
