/**
 * Link and path cost, in milliseconds-equivalent: the delay a user would feel on average.
 *
 * Decision a reader must know: at zero jitter, zero loss and full availability a link costs
 * exactly its smoothed RTT in ms, so a path's cost (the sum of its links' costs) is comparable
 * with a measured multi-hop RTT. Penalties are additive on top, each non-negative and
 * non-decreasing in its input, so the cost is monotone in every input. `+Infinity` means
 * unusable (dead, unknown, stale, no RTT, total loss, zero availability); it is never NaN.
 *
 *   cost = rttMs + jitterWeight·jitterMs + lossPenaltyMs·p/(1−p) + unavailabilityPenaltyMs·(1−A)/A
 *
 * - p/(1−p) is the expected number of retransmissions per delivered packet; each costs about a
 *   retransmission timeout plus the stall of the sender's window, `lossPenaltyMs` (default
 *   1000 ms: 1 % loss ≈ +10 ms, 10 % ≈ +111 ms, 100 % = +∞).
 * - (1−A)/A prices a link that was recently down: it may go down again, and every outage costs
 *   a failure detection and a reroute. Default 200 ms: A = 0.99 ≈ +2 ms, A = 0.9 ≈ +22 ms (with the
 *   aggregation's availability = min(10 s memory, 30 min memory), a tunnel back from a 15 s
 *   outage is priced +170 ms at first, +6 ms 45 s later and +1.5 ms after that: used again within
 *   a minute; one that keeps failing stays priced above +5 ms while it keeps failing).
 * - Jitter (RFC 3550 mean deviation) is paid about one-for-one by delay-sensitive traffic
 *   (playout buffers), default weight 1.
 *
 * The original's formula is kept as `legacyCost` (REFERENCE §5) so reports can compare.
 */
import type { LinkStats } from "./Domain.js"

/** Weights of the cost function; every field ≥ 0. */
export interface CostWeights {
  /** ms of cost per ms of jitter. */
  readonly jitterWeight: number
  /** ms of cost per expected retransmission per delivered packet, p/(1−p). */
  readonly lossPenaltyMs: number
  /** ms of cost per unit of (1−A)/A. */
  readonly unavailabilityPenaltyMs: number
}

export const defaultCostWeights: CostWeights = {
  jitterWeight: 1,
  lossPenaltyMs: 1000,
  unavailabilityPenaltyMs: 200,
}

/** The measured quantities the cost depends on. */
export interface CostInputs {
  readonly rttMs: number
  readonly jitterMs: number
  /** 0..1 */
  readonly lossRatio: number
  /** 0..1 */
  readonly availability: number
}

const clamp01 = (x: number): number => Math.min(1, Math.max(0, x))

/**
 * The cost of a link from its measured inputs. NaN inputs, negative RTT, loss 1 and
 * availability 0 all give +Infinity.
 */
export const cost = (inputs: CostInputs, weights: CostWeights = defaultCostWeights): number => {
  const { rttMs, jitterMs } = inputs
  if (!(rttMs >= 0) || !(jitterMs >= 0) || Number.isNaN(inputs.lossRatio) || Number.isNaN(inputs.availability)) {
    return Number.POSITIVE_INFINITY
  }
  const p = clamp01(inputs.lossRatio)
  const a = clamp01(inputs.availability)
  if (p >= 1 || a <= 0) return Number.POSITIVE_INFINITY
  // Each penalty is skipped when its input is zero so that the ideal link costs exactly rttMs
  // (no 0·x rounding) and a zero weight never meets an infinite factor.
  let total = rttMs
  if (jitterMs > 0 && weights.jitterWeight > 0) total += weights.jitterWeight * jitterMs
  if (p > 0 && weights.lossPenaltyMs > 0) total += (weights.lossPenaltyMs * p) / (1 - p)
  if (a < 1 && weights.unavailabilityPenaltyMs > 0) total += (weights.unavailabilityPenaltyMs * (1 - a)) / a
  return total
}

/** "default" = `cost`; "legacy" = `legacyCost` (for before/after comparisons only). */
export type CostModel = "default" | "legacy"

/** Options for judging a link from its aggregated stats. */
export interface LinkCostOptions {
  readonly model?: CostModel
  readonly weights?: CostWeights
  /** With `staleAfterMillis`: a link whose last sample is older than this is unusable. */
  readonly nowMillis?: number
  readonly staleAfterMillis?: number
}

/**
 * The cost of a link from the aggregator's view: +Infinity unless the link is `up` with an RTT
 * (and, when `nowMillis` and `staleAfterMillis` are given, sampled recently). With
 * `model: "legacy"` the value is the original's (one-way ms, not comparable with RTTs).
 */
export const linkCost = (stats: LinkStats, options: LinkCostOptions = {}): number => {
  if (stats.state !== "up" || stats.rttMs === null) return Number.POSITIVE_INFINITY
  if (options.nowMillis !== undefined && options.staleAfterMillis !== undefined) {
    if (stats.lastSampleAtMillis === null || options.nowMillis - stats.lastSampleAtMillis > options.staleAfterMillis) {
      return Number.POSITIVE_INFINITY
    }
  }
  const { rttMs, jitterMs, lossRatio, availability } = stats
  const inputs = { rttMs, jitterMs, lossRatio, availability }
  return options.model === "legacy" ? legacyCost(inputs) : cost(inputs, options.weights)
}

/** Path cost: the sum of its link costs (+Infinity if any link is unusable; 0 for no links). */
export const pathCost = (linkCosts: Iterable<number>): number => {
  let total = 0
  for (const c of linkCosts) {
    if (!(c >= 0)) return Number.POSITIVE_INFINITY
    total += c
  }
  return total
}

/**
 * The original's cost (REFERENCE §5), in ms of ONE-WAY latency (it halved the RTT), with its
 * defect fixed: it used e = (1−A)·P, so loss counted only while availability was below 1; here
 * e = 1 − A·(1−p), the probability that a packet is not delivered (down or lost).
 *
 *   L = rttMs/2; L = 0 or A = 0 or e ≥ 1 → +∞;
 *   cost = L + M + 0.5·jitterMs, M = L·1e4·√e
 *
 * Kept for comparison only: its loss term multiplies latency by 1e4·√e (1 % loss ≈ ×1000),
 * so it is not an additive ms-equivalent and it is not used for routing. Unlike the original
 * it reads jitter (the original's J was always 0). L = 0 counts as "no data" as in the original.
 */
export const legacyCost = (inputs: CostInputs): number => {
  const oneWayMs = inputs.rttMs / 2
  const a = inputs.availability
  const p = inputs.lossRatio
  if (!(oneWayMs > 0) || !(a > 0) || !(p >= 0) || !(inputs.jitterMs >= 0)) return Number.POSITIVE_INFINITY
  const e = 1 - clamp01(a) * (1 - clamp01(p))
  if (e >= 1) return Number.POSITIVE_INFINITY
  const m = e > 0 ? oneWayMs * 1e4 * Math.sqrt(e) : 0
  return oneWayMs + m + 0.5 * inputs.jitterMs
}

/** One row of the calibration table. */
export interface CalibrationRow extends CostInputs {
  readonly cost: number
  readonly legacyCost: number
}

/** A representative grid of inputs with both models' costs (the README's table comes from this). */
export const calibrationTable = (weights: CostWeights = defaultCostWeights): ReadonlyArray<CalibrationRow> => {
  const grid: ReadonlyArray<CostInputs> = [
    { rttMs: 10, jitterMs: 0, lossRatio: 0, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0, availability: 1 },
    { rttMs: 50, jitterMs: 5, lossRatio: 0, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0.001, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0.01, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0.05, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0.2, availability: 1 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0, availability: 0.99 },
    { rttMs: 50, jitterMs: 0, lossRatio: 0, availability: 0.9 },
    { rttMs: 20, jitterMs: 0, lossRatio: 0.05, availability: 0.9 },
    { rttMs: 100, jitterMs: 10, lossRatio: 0.01, availability: 0.99 },
    { rttMs: 50, jitterMs: 0, lossRatio: 1, availability: 1 },
  ]
  return grid.map((inputs) => ({ ...inputs, cost: cost(inputs, weights), legacyCost: legacyCost(inputs) }))
}

const formatCost = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "+∞")

/** The calibration table as Markdown (pasted into the engine README). */
export const calibrationMarkdown = (weights: CostWeights = defaultCostWeights): string => {
  const header =
    "| RTT ms | jitter ms | loss | availability | cost (ms-eq) | legacy (one-way ms) |\n|---:|---:|---:|---:|---:|---:|"
  const rows = calibrationTable(weights).map(
    (r) =>
      `| ${r.rttMs} | ${r.jitterMs} | ${(r.lossRatio * 100).toFixed(1)} % | ${r.availability} | ${formatCost(r.cost)} | ${formatCost(r.legacyCost)} |`,
  )
  return [header, ...rows].join("\n")
}
