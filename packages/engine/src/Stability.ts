/**
 * Hysteresis for every choice the engine makes (tunnel family per peer, route per destination).
 *
 * Decision a reader must know: the incumbent is kept unless a candidate beats it by more than
 * max(absolute margin, relative margin × incumbent cost, k × measured noise) AND the dwell time
 * since the last switch has passed; an incumbent whose cost is +Infinity (dead, gone) is left
 * at once, dwell or not. Ties never depend on map order: equal costs prefer the incumbent, then
 * the earlier candidate in the caller's order.
 *
 * The dwell bounds the switch RATE; the margin is what keeps near-equal paths from flapping.
 * Hence:
 * - the initial choice is not a switch: it starts no dwell (its `sinceMillis` is −Infinity), so
 *   a degradation right after start-up is acted on as soon as it is measured;
 * - an urgent gain, more than `urgentGainFactor` × the threshold (a link that became far worse,
 *   not noise: the threshold already holds 1.5σ_sample of it), waits only `urgentDwellMillis` since the
 *   last switch. Two paths can then alternate faster than the dwell only if their cost
 *   difference swings by more than 2 × urgentGainFactor thresholds (≥ 30 ms, ≥ 4.5σ) each way,
 *   and never more than once per urgentDwellMillis.
 */
import { Equal } from "effect"

export interface StabilityConfig {
  /**
   * A switch must gain more than this many ms (default 2). It was 5: the model simulator's N = 200
   * partial meshes (paths of tens of ms, where 5 ms was the binding term) kept routes 1.054× the
   * best path on average; 2 ms gives 1.035, and the twin's near-equal paths with 1 ms σ jitter kept
   * 0 switches in 600 s with it (the relative margin and the noise term hold those).
   */
  readonly absoluteMarginMs: number
  /** ... and more than this share of the incumbent's cost (default 0.1 = 10 %). */
  readonly relativeMargin: number
  /**
   * ... and more than this many standard deviations of the measured noise (default 1.5). The noise
   * is a SAMPLE's σ (a link's RFC 3550 jitter), while the compared costs are smoothed means: at the
   * daemon's ICMP cadence (0.5 Hz, 10 s half-life) a mean holds ≈ 14 samples, so 1.5 σ_sample
   * ≈ 5.7 σ of the compared means (≈ 2.6 σ right after a level shift restarted the mean at 3
   * samples). It was 3: at load 4–8 in the twin (ICMP jitter 1–2 ms per link) that kept a route
   * on a two-hop 20 ms detour when the 10 ms direct link was back (gain 10 < 3·√3·2 ms).
   */
  readonly noiseFactor: number
  /** Minimum time between two switches, except when leaving a dead choice (default 30 s). */
  readonly dwellMillis: number
  /** A gain above this many thresholds is urgent (default 3; +Infinity = never). */
  readonly urgentGainFactor?: number
  /** Minimum time between a switch and an urgent one (default 5 s; capped by dwellMillis). */
  readonly urgentDwellMillis?: number
}

export const defaultStabilityConfig: Required<StabilityConfig> = {
  absoluteMarginMs: 2,
  relativeMargin: 0.1,
  noiseFactor: 1.5,
  dwellMillis: 30_000,
  urgentGainFactor: 3,
  urgentDwellMillis: 5_000,
}

/** One option with its current cost (ms-equivalent, +Infinity = unusable). */
export interface Candidate<K> {
  readonly key: K
  readonly cost: number
  /**
   * Standard deviation of this candidate's cost in ms (0 if unknown). For a link the RFC 3550
   * jitter is a fair stand-in (for Gaussian noise E|D| = 2σ/√π ≈ 1.13σ); for a path combine
   * its links' with `combineNoise`.
   */
  readonly noiseMs?: number
}

/**
 * What is chosen now, and since when: the time of the last switch, −Infinity for an initial
 * choice (no switch yet, so no dwell to wait out).
 */
export interface Choice<K> {
  readonly key: K
  readonly sinceMillis: number
}

export type DecisionReason =
  /** No previous choice: the best candidate is taken. */
  | "initial"
  /** The incumbent was dead or missing and a usable candidate exists. */
  | "left-dead"
  /** A candidate beat the incumbent by more than the threshold after the dwell time. */
  | "better"
  /** A candidate beat the incumbent by more than urgentGainFactor thresholds after the urgent dwell. */
  | "urgent"
  /** The incumbent is (one of) the best. */
  | "incumbent-best"
  /** A better candidate exists but its gain is within the threshold. */
  | "within-margin"
  /** A better candidate beats the threshold but the dwell time has not passed. */
  | "dwell"
  /** Nothing is usable; the incumbent is kept (its cost is +Infinity). */
  | "all-dead"
  /** No candidates at all. */
  | "no-candidates"

export interface Decision<K> {
  /** undefined only when there are no candidates and no previous choice. */
  readonly choice: Choice<K> | undefined
  /** Cost of the chosen key now (+Infinity when unusable or missing). */
  readonly cost: number
  readonly switched: boolean
  readonly reason: DecisionReason
  /** Best candidate and the threshold its gain had to exceed (for reports). */
  readonly best: Candidate<K> | undefined
  readonly thresholdMs: number
}

/** √(Σσ²): the standard deviation of a sum (or difference) of independent noisy costs. */
export const combineNoise = (...sigmasMs: ReadonlyArray<number>): number => {
  let s = 0
  for (const x of sigmasMs) s += noiseVariance(x)
  return Math.sqrt(s)
}

/** σ² of one noise figure; a missing (≤ 0 or non-finite) σ adds nothing. */
const noiseVariance = (sigmaMs: number): number => (sigmaMs > 0 && Number.isFinite(sigmaMs) ? sigmaMs * sigmaMs : 0)

/** The gain a challenger must exceed to displace an incumbent of cost `incumbentCost`. */
export const switchThresholdMs = (
  incumbentCost: number,
  noiseMs: number,
  config: StabilityConfig = defaultStabilityConfig,
): number =>
  Math.max(
    config.absoluteMarginMs,
    config.relativeMargin * incumbentCost,
    config.noiseFactor * (Number.isFinite(noiseMs) && noiseMs > 0 ? noiseMs : 0),
  )

/** combineNoise of two (no rest array: runs per destination per decision). */
const combineNoise2 = (a: number, b: number): number => Math.sqrt(noiseVariance(a) + noiseVariance(b))

// What `decide` returns on a switch / on keeping the incumbent. Module functions rather than
// closures inside `decide`, which runs per destination per decision (speed only).
const taken = <K>(
  previous: Choice<K> | undefined,
  best: Candidate<K>,
  bestCost: number,
  nowMillis: number,
  reason: DecisionReason,
  thresholdMs: number,
): Decision<K> => ({
  choice: { key: best.key, sinceMillis: reason === "initial" ? Number.NEGATIVE_INFINITY : nowMillis },
  cost: bestCost,
  switched: previous !== undefined,
  reason,
  best,
  thresholdMs,
})

const kept = <K>(
  previous: Choice<K> | undefined,
  incumbentCost: number,
  best: Candidate<K>,
  reason: DecisionReason,
  thresholdMs: number,
): Decision<K> => ({
  choice: previous,
  cost: incumbentCost,
  switched: false,
  reason,
  best,
  thresholdMs,
})

const usable = (c: number): boolean => c < Number.POSITIVE_INFINITY && !Number.isNaN(c)

/**
 * Chooses among `candidates` given the previous choice. Pure; `nowMillis` is the decision time.
 * Candidate order is the tie-break (earlier wins between equal costs, after the incumbent).
 * NaN costs are treated as +Infinity.
 */
export const decide = <K>(
  previous: Choice<K> | undefined,
  candidates: ReadonlyArray<Candidate<K>>,
  nowMillis: number,
  config: StabilityConfig = defaultStabilityConfig,
  same: (a: K, b: K) => boolean = Equal.equals,
): Decision<K> => {
  let incumbent: Candidate<K> | undefined
  let best: Candidate<K> | undefined
  let bestCost = Number.POSITIVE_INFINITY
  for (const c of candidates) {
    const isIncumbent = previous !== undefined && incumbent === undefined && same(c.key, previous.key)
    if (isIncumbent) incumbent = c
    const cc = usable(c.cost) ? c.cost : Number.POSITIVE_INFINITY
    // Strictly lower wins; on a tie the incumbent displaces an earlier equal candidate.
    if (best === undefined || cc < bestCost || (cc === bestCost && isIncumbent)) {
      best = c
      bestCost = cc
    }
  }
  const incumbentCost = incumbent !== undefined && usable(incumbent.cost) ? incumbent.cost : Number.POSITIVE_INFINITY

  if (best === undefined) {
    return {
      choice: previous,
      cost: Number.POSITIVE_INFINITY,
      switched: false,
      reason: "no-candidates",
      best: undefined,
      thresholdMs: 0,
    }
  }
  if (previous === undefined) return taken(previous, best, bestCost, nowMillis, "initial", 0)
  if (!usable(incumbentCost)) {
    // Leaving a dead choice needs no margin and no dwell; staying on a dead one beats hopping
    // between dead ones.
    return usable(bestCost)
      ? taken(previous, best, bestCost, nowMillis, "left-dead", 0)
      : kept(previous, incumbentCost, best, "all-dead", 0)
  }
  if (best === incumbent) return kept(previous, incumbentCost, best, "incumbent-best", 0)
  const noise = combineNoise2(incumbent?.noiseMs ?? 0, best.noiseMs ?? 0)
  const threshold = switchThresholdMs(incumbentCost, noise, config)
  const gain = incumbentCost - bestCost
  if (!(gain > threshold)) return kept(previous, incumbentCost, best, "within-margin", threshold)
  const sinceSwitchMillis = nowMillis - previous.sinceMillis
  if (sinceSwitchMillis >= config.dwellMillis) return taken(previous, best, bestCost, nowMillis, "better", threshold)
  const urgentGainFactor = config.urgentGainFactor ?? defaultStabilityConfig.urgentGainFactor
  const urgentDwellMillis = Math.min(
    config.dwellMillis,
    config.urgentDwellMillis ?? defaultStabilityConfig.urgentDwellMillis,
  )
  if (gain > urgentGainFactor * threshold && sinceSwitchMillis >= urgentDwellMillis)
    return taken(previous, best, bestCost, nowMillis, "urgent", threshold)
  return kept(previous, incumbentCost, best, "dwell", threshold)
}
