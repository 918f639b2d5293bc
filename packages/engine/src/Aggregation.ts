/**
 * Per-tunnel aggregation of probe samples into `LinkStats`.
 *
 * Decision a reader must know: every average is a decaying-memory mean over sample TIMESTAMPS
 * (Σ w·x / Σ w with w = 2^(−age/halfLife)), not a per-sample EWMA. A burst of samples with one
 * timestamp counts each sample equally, a late (out-of-order) sample enters with its age's weight,
 * and the first sample is taken exactly. Pure and deterministic: time only comes from samples and
 * from the `nowMillis` argument.
 *
 * Health is a small state machine, separate from the averages:
 *   unknown ──(reviveAfterReplies consecutive replies)──▶ up
 *   unknown/up ──(deadAfterMisses consecutive lost fast probes)──▶ dead
 *   dead ──(reviveAfterReplies consecutive replies)──▶ up
 *   up ──(no sample for staleAfterMillis)──▶ dead (reported at once; a later reply must revive it)
 * A lost fast probe (udp-echo by default) counts towards death; a lost probe of another kind only
 * breaks a reply streak; a reply of any RTT kind counts towards revival.
 *
 * Loss ratio = max(slow mean, fast mean − z·σ): the slow mean (half-life 10 min) remembers and
 * fades; the fast mean (half-life 30 s), discounted by its own sampling error, makes a new loss
 * visible within a minute without letting one unlucky probe out of forty look like 2 % loss.
 * Probes are counted for loss only while the tunnel is up: outages are priced by availability,
 * and the prober's faster probing while a tunnel is down must not be counted twice.
 * Availability is the time-weighted share of time up, counted from the first time the tunnel
 * was up (a tunnel still coming up at start-up is not punished for it), judged over two memories
 * and reported as the worse of the two: a fast one (half-life 10 s) that prices the outage just
 * over and forgets it within a minute or so, and a slow one (half-life 10 min) that remembers
 * repeated outages. One short outage therefore costs little once the tunnel has stayed up for
 * ~45 s (a 15 s outage: +3.5 ms of cost left from the slow memory), while a tunnel that keeps
 * failing stays expensive as long as it keeps failing and for minutes after (engine README,
 * "Recovery after a failure").
 */
import type { LinkStats, LossTestSample, RttProbeKind, RttSample, Sample, TunnelId, TunnelState } from "./Domain.js"
import { tunnelKey } from "./Domain.js"

export interface AggregationConfig {
  /** Half-life of the smoothed RTT (default 10 s). */
  readonly rttHalfLifeMillis: number
  /** Half-life of the slow loss memory (default 10 min). */
  readonly lossHalfLifeMillis: number
  /** Half-life of the fast loss estimate (default 30 s). */
  readonly fastLossHalfLifeMillis: number
  /** Standard errors subtracted from the fast loss estimate (default 1). */
  readonly fastLossConfidence: number
  /** Half-life of the slow availability memory (default 10 min). */
  readonly availabilityHalfLifeMillis: number
  /**
   * Up time credited to the slow memory when a tunnel first comes up (default one half-life),
   * decaying like the rest: without it, one early outage in a short history reads as a very low
   * availability (15 s down after 60 s up = 0.8) and keeps a recovered tunnel unused for many minutes.
   */
  readonly availabilityPriorMillis: number
  /**
   * Half-life of the fast availability memory (default 10 s; its prior is one half-life). The
   * reported availability is min(fast, slow); 0 turns the fast memory off.
   */
  readonly fastAvailabilityHalfLifeMillis: number
  /** Consecutive lost fast probes that make a tunnel dead (default 3). */
  readonly deadAfterMisses: number
  /** Consecutive replies that bring a tunnel up (from unknown or dead; default 2). */
  readonly reviveAfterReplies: number
  /** No sample for longer than this: the tunnel is dead (default 30 s). */
  readonly staleAfterMillis: number
  /** Probe kinds whose losses count towards death (default udp-echo). */
  readonly fastProbeKinds: ReadonlyArray<RttProbeKind>
  /**
   * Probe kinds whose replies feed the smoothed RTT and jitter (default all). A daemon on a busy
   * host may keep only `icmp`: ping timestamps in its own process (and the kernel), while a
   * probe timed inside a busy event loop carries that loop's scheduling delay.
   */
  readonly rttProbeKinds: ReadonlyArray<RttProbeKind>
  /** Probe kinds whose losses feed the loss ratio (default all; loss-test bursts always count). */
  readonly lossProbeKinds: ReadonlyArray<RttProbeKind>
  /**
   * Level-shift detection: this many consecutive timed RTTs all above (or all below) the smoothed
   * RTT by more than max(`levelShiftMinMs`, `levelShiftSigmas` × jitter) restart the smoothed RTT
   * at their mean (default 3; 0 = off). A latency step (a link made slow, or repaired) then shows in
   * three samples instead of the 4–5 half-lives an EWMA needs to forget a 150 ms step, while
   * ordinary noise (three same-side 3σ outliers in a row: p ≈ 2·10⁻⁹) never triggers it.
   * A sample beyond the threshold that no run confirms is an outlier: it enters the smoothed RTT
   * at the threshold, and a difference between consecutive samples counts towards the jitter at
   * most as the threshold, so one late probe on a busy host neither drags the mean nor raises
   * the jitter (and with it this threshold and the stability margins) for the next minute.
   */
  readonly levelShiftSamples: number
  readonly levelShiftMinMs: number
  readonly levelShiftSigmas: number
  /**
   * Witnesses of a level shift (default none): probe kinds NOT in `rttProbeKinds` whose replies
   * run their own level-shift test (their own mean, jitter and threshold, the rule above). A step
   * a witness confirmed within `levelShiftWitnessMillis` confirms a timed run on the same side
   * after ONE timed sample instead of `levelShiftSamples`, and the mean restarts at the timed
   * samples (a witness never sets the value). For the daemon, which times ICMP only: the echo
   * (1/s) sees a +50 ms step within ≈ 3 s, so the first ping beyond the threshold carries it,
   * and ICMP can run every 4 s instead of 2 s (its three samples took 8–12 s at 4 s). A witness
   * alone moves nothing: a busy event loop that inflates the echo does not touch ICMP's mean.
   */
  readonly levelShiftWitnessKinds: ReadonlyArray<RttProbeKind>
  readonly levelShiftWitnessMillis: number
  /**
   * Loss change-point: consecutive loss-test bursts (each ≥ `lossShiftMinPackets`) on one side of
   * the fast mean by at least `lossShiftMinRatio`, whose pooled loss is improbable (binomial tail
   * below `lossShiftAlpha`) even against the fast mean from before the run widened by its own
   * `fastLossConfidence` standard errors, restart BOTH loss memories at the run's pooled loss
   * (defaults 50 packets, 1 %, 0.01; alpha 0 = off; a run older than two fast half-lives starts
   * over), so the reported loss is then the run's own, not discounted by 1σ: it passed the test.
   * A burst is a few hundred packets of fresh evidence in one second; averaged into the 30 s
   * memory it moved the estimate only as fast as the memory forgot (23.5 s in the twin with a
   * burst every 5 s), and averaged into the 10 min memory the bursts of a 30 s lossy episode kept
   * a repaired link priced for minutes. The RTT level-shift rule for loss: a level that clearly
   * moved restarts the mean; a run (not only one burst) because each clean burst averaged in
   * weakens the contrast the next one is judged by.
   */
  readonly lossShiftAlpha: number
  readonly lossShiftMinRatio: number
  readonly lossShiftMinPackets: number
}

export const defaultAggregationConfig: AggregationConfig = {
  rttHalfLifeMillis: 10_000,
  lossHalfLifeMillis: 600_000,
  fastLossHalfLifeMillis: 30_000,
  fastLossConfidence: 1,
  availabilityHalfLifeMillis: 1_800_000,
  availabilityPriorMillis: 1_800_000,
  fastAvailabilityHalfLifeMillis: 10_000,
  deadAfterMisses: 3,
  reviveAfterReplies: 2,
  staleAfterMillis: 30_000,
  fastProbeKinds: ["udp-echo"],
  rttProbeKinds: ["udp-echo", "icmp", "tcp"],
  lossProbeKinds: ["udp-echo", "icmp", "tcp"],
  levelShiftSamples: 3,
  levelShiftMinMs: 5,
  levelShiftSigmas: 3,
  levelShiftWitnessKinds: [],
  levelShiftWitnessMillis: 10_000,
  lossShiftAlpha: 0.01,
  lossShiftMinRatio: 0.01,
  lossShiftMinPackets: 50,
}

/** A decaying-memory sum: Σ w·x and Σ w, both as of `atMillis`. */
interface Decayed {
  readonly sum: number
  readonly weight: number
  readonly atMillis: number
}

const emptyDecayed: Decayed = { sum: 0, weight: 0, atMillis: Number.NEGATIVE_INFINITY }

/** Adds `weight` observations of total `sum` made at `atMillis`. */
const addDecayed = (d: Decayed, sum: number, weight: number, atMillis: number, halfLifeMillis: number): Decayed => {
  if (d.weight === 0) return { sum, weight, atMillis }
  if (atMillis >= d.atMillis) {
    const k = 2 ** (-(atMillis - d.atMillis) / halfLifeMillis)
    return { sum: d.sum * k + sum, weight: d.weight * k + weight, atMillis }
  }
  // A late sample enters with the weight its age deserves.
  const k = 2 ** (-(d.atMillis - atMillis) / halfLifeMillis)
  return { sum: d.sum + sum * k, weight: d.weight + weight * k, atMillis: d.atMillis }
}

const meanOf = (d: Decayed): number => (d.weight > 0 ? d.sum / d.weight : 0)

/** log P(X ≤ k) for X ~ Binomial(n, p), summed in log space (n up to 1e5: (1−p)^n underflows). */
const logBinomialLowerTail = (n: number, k: number, p: number): number => {
  if (k >= n || p <= 0) return 0
  if (k < 0 || p >= 1) return Number.NEGATIVE_INFINITY
  const logOdds = Math.log(p / (1 - p))
  let term = n * Math.log1p(-p)
  let max = term
  const terms = [term]
  for (let i = 0; i < k; i++) {
    term += Math.log((n - i) / (i + 1)) + logOdds
    terms.push(term)
    if (term > max) max = term
  }
  let sum = 0
  for (const t of terms) sum += Math.exp(t - max)
  return Math.min(0, max + Math.log(sum))
}

/** P(X ≤ k) and P(X ≥ k) for X ~ Binomial(n, p). */
export const binomialLowerTail = (n: number, k: number, p: number): number => Math.exp(logBinomialLowerTail(n, k, p))
export const binomialUpperTail = (n: number, k: number, p: number): number =>
  k <= 0 ? 1 : Math.max(0, 1 - binomialLowerTail(n, k - 1, p))

/**
 * Whether `lost` of `sent` (a loss-test burst, or a run of them) shows a loss level clearly
 * different from the fast mean `fast` (see `AggregationConfig.lossShiftAlpha`). The burst is
 * tested against the fast mean moved towards it by `fastLossConfidence` standard errors of that
 * mean, so a mean built on few probes (its own sampling error large) is not "refuted" by a burst
 * that merely adds precision.
 */
export const isLossShift = (
  fast: { readonly sum: number; readonly weight: number },
  lost: number,
  sent: number,
  config: AggregationConfig,
): boolean => {
  if (!(config.lossShiftAlpha > 0) || !(sent > 0) || !(fast.weight > 0)) return false
  const p = Math.min(1, Math.max(0, fast.sum / fast.weight))
  const burst = lost / sent
  if (Math.abs(burst - p) < config.lossShiftMinRatio) return false
  const sigma = config.fastLossConfidence * Math.sqrt((p * (1 - p)) / fast.weight)
  return burst > p
    ? binomialUpperTail(sent, lost, Math.min(1, p + sigma)) < config.lossShiftAlpha
    : binomialLowerTail(sent, lost, Math.max(0, p - sigma)) < config.lossShiftAlpha
}

/**
 * How far a loss-test sample (stamped at its burst's start) may be older than the loss memory's
 * last sample and still take part in a change-point: a 1000 × 500 B burst at 1 Mbit/s lasts 4 s,
 * and its END/FINAL exchange up to ~1 s more. Seen in the twin: a ping reply arriving during the
 * 0.4 s triggered burst made every such burst "late", and a repaired link kept its 3 % for 30 s.
 */
const LOSS_BURST_LATE_MILLIS = 10_000

/** Consecutive loss-test bursts on one side of the fast mean from before the first of them. */
interface LossRun {
  readonly side: 1 | -1
  readonly lost: number
  readonly sent: number
  readonly startMillis: number
  readonly base: Decayed
}

/**
 * A level-shift witness's own test over its kind's replies: the timed kind's rule (mean, RFC 3550
 * jitter, threshold max(min, sigmas × jitter), outliers counted at the threshold, a run of
 * `levelShiftSamples` restarts the mean), kept apart because another kind's RTTs differ
 * systematically (the echo is timed in the daemon's event loop, ICMP by ping).
 */
export interface WitnessState {
  readonly mean: Decayed
  readonly jitterMs: number
  readonly lastRttMs: number
  readonly side: number
  readonly run: number
  readonly sumMs: number
  readonly runJitterMs: number
  /** Side (+1 up, −1 down) of the last step it confirmed and not yet lent to the timed kind (0: none). */
  readonly stepSide: number
  readonly stepAtMillis: number
}

/** The witness after one reply of its kind (a new object; the aggregate holds it by reference). */
export const observeWitness = (
  w: WitnessState | null,
  rttMs: number,
  atMillis: number,
  config: AggregationConfig,
): WitnessState => {
  if (w === null)
    return {
      mean: { sum: rttMs, weight: 1, atMillis },
      jitterMs: 0,
      lastRttMs: rttMs,
      side: 0,
      run: 0,
      sumMs: 0,
      runJitterMs: 0,
      stepSide: 0,
      stepAtMillis: 0,
    }
  const threshold = shiftThreshold(w.run > 0 ? w.runJitterMs : w.jitterMs, config)
  const m = meanOf(w.mean)
  const side = shiftSideOf(rttMs, m, threshold)
  const extends_ = side !== 0 && side === w.side
  const run = side === 0 ? 0 : extends_ ? w.run + 1 : 1
  const sumMs = side === 0 ? 0 : extends_ ? w.sumMs + rttMs : rttMs
  const runJitterMs = extends_ ? w.runJitterMs : w.jitterMs
  const jitterMs = w.jitterMs + (Math.min(Math.abs(rttMs - w.lastRttMs), threshold) - w.jitterMs) / 16
  if (run >= config.levelShiftSamples)
    return {
      mean: { sum: sumMs / run, weight: 1, atMillis: Math.max(atMillis, w.mean.atMillis) },
      jitterMs: runJitterMs,
      lastRttMs: rttMs,
      side: 0,
      run: 0,
      sumMs: 0,
      runJitterMs,
      stepSide: side,
      stepAtMillis: atMillis,
    }
  return {
    mean: addDecayed(w.mean, side === 0 ? rttMs : m + side * threshold, 1, atMillis, config.rttHalfLifeMillis),
    jitterMs,
    lastRttMs: rttMs,
    side,
    run,
    sumMs,
    runJitterMs,
    stepSide: w.stepSide,
    stepAtMillis: w.stepAtMillis,
  }
}

/** A step the witness confirmed on `side` within the window around `atMillis`. */
const witnessAgrees = (
  w: WitnessState | undefined,
  side: number,
  atMillis: number,
  config: AggregationConfig,
): w is WitnessState =>
  w !== undefined &&
  side !== 0 &&
  w.stepSide === side &&
  Math.abs(atMillis - w.stepAtMillis) <= config.levelShiftWitnessMillis

/** Witnesses per kind: each kind keeps its own test (kinds differ systematically, like the timed ones). */
export type Witnesses = Readonly<Partial<Record<RttProbeKind, WitnessState>>>
const noWitnesses: Witnesses = {}

/** The witness kind whose step backs a timed run on `side` now (undefined: none). */
const agreeingWitness = (
  witnesses: Witnesses,
  side: number,
  atMillis: number,
  config: AggregationConfig,
): RttProbeKind | undefined => {
  for (const kind of config.levelShiftWitnessKinds)
    if (witnessAgrees(witnesses[kind], side, atMillis, config)) return kind
  return undefined
}

/** The level-shift threshold: max(min, sigmas × the jitter from before the run began). */
const shiftThreshold = (jitterMs: number, config: AggregationConfig): number =>
  Math.max(config.levelShiftMinMs, config.levelShiftSigmas * jitterMs)

/** +1 above the mean by more than the threshold, −1 below, 0 within. */
const shiftSideOf = (rttMs: number, meanMs: number, thresholdMs: number): number =>
  rttMs > meanMs + thresholdMs ? 1 : rttMs < meanMs - thresholdMs ? -1 : 0

/** Aggregated state of one tunnel. Treat as opaque; read it through `linkStats`. */
export interface TunnelAggregate {
  readonly tunnel: TunnelId
  readonly state: TunnelState
  readonly everUp: boolean
  readonly misses: number
  readonly replies: number
  readonly rtt: Decayed
  /** Consecutive timed RTTs on one side of the smoothed RTT beyond the shift threshold (+1 above, −1 below). */
  readonly shiftSide: number
  readonly shiftRun: number
  readonly shiftSumMs: number
  /** Jitter before the run began: the step itself is not jitter, so a confirmed shift restores it. */
  readonly shiftJitterMs: number
  /** Timestamp of the run's latest sample (a witness confirms only a run this recent). */
  readonly shiftAtMillis: number
  /** Each level-shift witness kind's own test (absent until it replied; see `levelShiftWitnessKinds`). */
  readonly witness: Witnesses
  readonly slowLoss: Decayed
  readonly fastLoss: Decayed
  /** The loss-test run under test for a change-point (null: none). */
  readonly lossRun: LossRun | null
  /**
   * RFC 3550 jitter (each difference capped at the level-shift threshold) and the last reply's RTT
   * per probe kind (differences only within a kind).
   */
  readonly jitterMs: number
  readonly lastEchoRttMs: number | null
  readonly lastIcmpRttMs: number | null
  readonly lastTcpRttMs: number | null
  /** Time-weighted up-time and observed time (decayed), accounted up to `accountedAtMillis`. */
  readonly upMillis: number
  readonly observedMillis: number
  /** The same over the fast availability memory. */
  readonly fastUpMillis: number
  readonly fastObservedMillis: number
  readonly accountedAtMillis: number | null
  readonly lastSampleAtMillis: number | null
  readonly lastReplyAtMillis: number | null
}

export const emptyAggregate = (tunnel: TunnelId): TunnelAggregate => ({
  tunnel,
  state: "unknown",
  everUp: false,
  misses: 0,
  replies: 0,
  rtt: emptyDecayed,
  shiftSide: 0,
  shiftRun: 0,
  shiftSumMs: 0,
  shiftJitterMs: 0,
  shiftAtMillis: 0,
  witness: noWitnesses,
  slowLoss: emptyDecayed,
  fastLoss: emptyDecayed,
  lossRun: null,
  jitterMs: 0,
  lastEchoRttMs: null,
  lastIcmpRttMs: null,
  lastTcpRttMs: null,
  upMillis: 0,
  observedMillis: 0,
  fastUpMillis: 0,
  fastObservedMillis: 0,
  accountedAtMillis: null,
  lastSampleAtMillis: null,
  lastReplyAtMillis: null,
})

/** ∫ over an interval of length t ending now of 2^(−age/h) = (h/ln2)(1 − 2^(−t/h)). */
const decayedIntegral = (h: number, t: number) => (h / Math.LN2) * (1 - 2 ** (-t / h))

interface Accounts {
  upMillis: number
  observedMillis: number
  fastUpMillis: number
  fastObservedMillis: number
}

/**
 * Brings one availability memory (the slow one, or the fast one with `fast`) of `a` forward from
 * `fromMillis` to `toMillis` with the tunnel in `state`: decayed integrals of "up" and "observed".
 * An up period longer than the staleness limit counts as up only for that limit: nobody was
 * looking after that. Writes `a` in place (no garbage per sample: see `ingestInto`).
 */
const accountInto = (
  a: Accounts,
  fast: boolean,
  state: TunnelState,
  everUp: boolean,
  fromMillis: number | null,
  toMillis: number,
  halfLifeMillis: number,
  staleAfterMillis: number,
): void => {
  if (fromMillis === null || toMillis <= fromMillis || !(halfLifeMillis > 0)) return
  const upMillis = fast ? a.fastUpMillis : a.upMillis
  const observedMillis = fast ? a.fastObservedMillis : a.observedMillis
  const h = halfLifeMillis
  const dt = toMillis - fromMillis
  const decayAll = 2 ** (-dt / h)
  let up: number
  let observed: number
  if (state === "unknown" || (state === "dead" && !everUp)) {
    up = upMillis * decayAll
    observed = observedMillis * decayAll
  } else {
    observed = observedMillis * decayAll + decayedIntegral(h, dt)
    if (state === "dead") up = upMillis * decayAll
    else {
      const upSpan = Math.min(dt, staleAfterMillis)
      // Up during the first upSpan of the interval, then (if stale) down until toMillis.
      up = upMillis * decayAll + decayedIntegral(h, upSpan) * 2 ** (-(dt - upSpan) / h)
    }
  }
  if (fast) {
    a.fastUpMillis = up
    a.fastObservedMillis = observed
  } else {
    a.upMillis = up
    a.observedMillis = observed
  }
}

/** Both availability memories of `a` brought forward from `fromMillis` to `toMillis`, in place. */
const accountBothInto = (
  a: Accounts,
  state: TunnelState,
  everUp: boolean,
  fromMillis: number | null,
  toMillis: number,
  config: AggregationConfig,
): void => {
  accountInto(a, false, state, everUp, fromMillis, toMillis, config.availabilityHalfLifeMillis, config.staleAfterMillis)
  accountInto(
    a,
    true,
    state,
    everUp,
    fromMillis,
    toMillis,
    config.fastAvailabilityHalfLifeMillis,
    config.staleAfterMillis,
  )
}

type MutableAggregate = { -readonly [K in keyof TunnelAggregate]: TunnelAggregate[K] }

/** Folds one sample into a tunnel's aggregate (the sample's tunnel is not checked). */
export const ingest = (
  agg: TunnelAggregate,
  sample: RttSample | LossTestSample,
  config: AggregationConfig = defaultAggregationConfig,
): TunnelAggregate => {
  const next = { ...agg }
  ingestInto(next, sample, config)
  return next
}

/**
 * `ingest` in place: `agg` becomes what `ingest(agg, sample, config)` returns (property-tested
 * equal). For an owner that keeps no other reference to `agg` (the daemon's measurement plane,
 * one aggregate per tunnel): `ingest` allocates a new aggregate and its boxed numbers per sample
 * (≈ 1 KB: a quarter of the plane's garbage at 100 tunnels), this only the few decayed sums.
 */
export const ingestInto = (
  agg: TunnelAggregate,
  sample: RttSample | LossTestSample,
  config: AggregationConfig = defaultAggregationConfig,
): void => {
  // Every read of `agg` below happens before the writes at the end, except the availability
  // accounts, which only accountBothInto reads and writes (in the order `ingest` always had).
  const out = agg as MutableAggregate
  const at = sample.atMillis
  let state = agg.state
  let replies = agg.replies
  let accountedAtMillis = agg.accountedAtMillis
  // A silence longer than the staleness limit killed the tunnel even if nobody noticed.
  if (state === "up" && agg.lastSampleAtMillis !== null && at - agg.lastSampleAtMillis > config.staleAfterMillis) {
    accountBothInto(out, "up", agg.everUp, accountedAtMillis, at, config)
    accountedAtMillis = at
    state = "dead"
    replies = 0
  }
  if (accountedAtMillis === null || at >= accountedAtMillis) {
    accountBothInto(out, state, agg.everUp, accountedAtMillis, at, config)
    accountedAtMillis = at
  }
  const lastSampleAtMillis = agg.lastSampleAtMillis === null ? at : Math.max(agg.lastSampleAtMillis, at)
  const countLoss = state === "up" && (sample._tag === "LossTestSample" || config.lossProbeKinds.includes(sample.kind))
  let misses = agg.misses
  let everUp = agg.everUp
  let lastReplyAtMillis = agg.lastReplyAtMillis
  let rtt = agg.rtt
  let shiftSide = agg.shiftSide
  let shiftRun = agg.shiftRun
  let shiftSumMs = agg.shiftSumMs
  let shiftJitterMs = agg.shiftJitterMs
  let shiftAtMillis = agg.shiftAtMillis
  let witness = agg.witness
  let jitterMs = agg.jitterMs
  let lastEchoRttMs = agg.lastEchoRttMs
  let lastIcmpRttMs = agg.lastIcmpRttMs
  let lastTcpRttMs = agg.lastTcpRttMs
  let lostNow: number
  let sentNow: number
  /** The sample as the smoothed RTT takes it (clipped to the level-shift threshold when beyond it). */
  let countedRttMs: number | null = null
  /** A difference between consecutive samples beyond this is a step or an outlier, not jitter. */
  let jitterCapMs = Number.POSITIVE_INFINITY

  if (sample._tag === "LossTestSample") {
    sentNow = sample.sent
    lostNow = Math.max(0, sentNow - Math.min(sentNow, sample.received))
  } else if (sample.rttMs === null) {
    sentNow = 1
    lostNow = 1
    replies = 0
    if (config.fastProbeKinds.includes(sample.kind)) misses += 1
    if (misses >= config.deadAfterMisses) state = "dead"
  } else {
    sentNow = 1
    lostNow = 0
    const rttMs = sample.rttMs
    const kind = sample.kind
    const timesRtt = config.rttProbeKinds.includes(kind)
    const previousRtt = kind === "udp-echo" ? lastEchoRttMs : kind === "icmp" ? lastIcmpRttMs : lastTcpRttMs
    if (timesRtt && config.levelShiftSamples > 0 && rtt.weight > 0) {
      // Judged against the jitter from before the run began: the step's own differences inflate
      // the jitter, and a noisy new level (a queue behind the slowed link) must not raise the bar
      // for its own detection (seen in the twin: +50 ms never detected at 8 ms of jitter).
      const baseJitterMs = shiftRun > 0 ? shiftJitterMs : jitterMs
      const threshold = shiftThreshold(baseJitterMs, config)
      const mean = meanOf(rtt)
      const side = shiftSideOf(rttMs, mean, threshold)
      // Beyond the threshold a sample is the start of a step or an outlier (a late ping on a
      // busy host): it counts only as far as the threshold until the run confirms a step (the
      // mean then restarts at the run's own samples). Counted in full, one 40 ms hiccup on a
      // 12 ms link raised the RFC 3550 jitter by ~4 ms, which decays by 1/16 per sample: at the
      // 2 s ICMP cadence 3σ then hid a +50 ms step from this test for a minute (seen in the
      // twin right after start-up: the step moved the route only after 20 s, by EWMA creep).
      countedRttMs = side === 0 ? rttMs : mean + side * threshold
      jitterCapMs = threshold
      if (side !== 0 && side === shiftSide) {
        shiftRun += 1
        shiftSumMs += rttMs
      } else {
        shiftSide = side
        shiftRun = side === 0 ? 0 : 1
        shiftSumMs = side === 0 ? 0 : rttMs
        shiftJitterMs = jitterMs
      }
      if (side !== 0) shiftAtMillis = at
    }
    /** The timed run is a step now: its own length, or one sample that a witness's step backs. */
    let confirmed = false
    if (timesRtt && config.levelShiftSamples > 0 && shiftRun > 0) {
      confirmed = shiftRun >= config.levelShiftSamples
      const lender = confirmed ? undefined : agreeingWitness(witness, shiftSide, at, config)
      if (lender !== undefined) {
        confirmed = true
        witness = { ...witness, [lender]: { ...witness[lender], stepSide: 0 } }
      }
    } else if (
      !timesRtt &&
      config.levelShiftSamples > 0 &&
      config.levelShiftWitnessKinds.length > 0 &&
      config.levelShiftWitnessKinds.includes(kind)
    ) {
      const w = observeWitness(witness[kind] ?? null, rttMs, at, config)
      // The witness just confirmed a step on the side of a recent timed run: that run is the step.
      const lends =
        w.stepAtMillis === at &&
        shiftRun > 0 &&
        Math.abs(at - shiftAtMillis) <= config.levelShiftWitnessMillis &&
        witnessAgrees(w, shiftSide, at, config)
      if (lends) confirmed = true
      witness = { ...witness, [kind]: lends ? { ...w, stepSide: 0 } : w }
    }
    // RFC 3550 §6.4.1: J += (|D| − J)/16, D the difference between consecutive samples, with |D|
    // capped at the level-shift threshold (above).
    if (timesRtt && previousRtt !== null)
      jitterMs += (Math.min(Math.abs(rttMs - previousRtt), jitterCapMs) - jitterMs) / 16
    if (kind === "udp-echo") lastEchoRttMs = rttMs
    else if (kind === "icmp") lastIcmpRttMs = rttMs
    else lastTcpRttMs = rttMs
    replies += 1
    misses = 0
    if (state !== "up" && replies >= config.reviveAfterReplies) state = "up"
    if (!everUp && state === "up") {
      out.upMillis += config.availabilityPriorMillis
      out.observedMillis += config.availabilityPriorMillis
      out.fastUpMillis += config.fastAvailabilityHalfLifeMillis
      out.fastObservedMillis += config.fastAvailabilityHalfLifeMillis
    }
    everUp = everUp || state === "up"
    lastReplyAtMillis = lastReplyAtMillis === null ? at : Math.max(lastReplyAtMillis, at)
    if (confirmed) {
      // The level moved: restart the smoothed RTT at the run's mean.
      rtt = { sum: shiftSumMs / shiftRun, weight: 1, atMillis: Math.max(at, rtt.atMillis) }
      jitterMs = shiftJitterMs
      shiftSide = 0
      shiftRun = 0
      shiftSumMs = 0
    } else if (timesRtt) rtt = addDecayed(rtt, countedRttMs ?? rttMs, 1, at, config.rttHalfLifeMillis)
  }
  // A run of bursts that clearly moved the loss level restarts both memories at it: the reported
  // loss is then the run's own loss, not discounted (it passed a significance test). A burst is stamped with its start and other probes' samples arrive
  // while it runs, so "late" by up to LOSS_BURST_LATE_MILLIS is normal; an older one neither joins
  // a run nor restarts anything.
  let lossRun = agg.lossRun
  /** +1: the level rose, −1: it fell (both memories restart at the run), 0: no change-point. */
  let lossShift = 0
  let restarted: Decayed = emptyDecayed
  if (
    countLoss &&
    sample._tag === "LossTestSample" &&
    config.lossShiftAlpha > 0 &&
    sentNow >= config.lossShiftMinPackets &&
    agg.fastLoss.weight > 0 &&
    at >= agg.fastLoss.atMillis - LOSS_BURST_LATE_MILLIS
  ) {
    if (lossRun !== null && at - lossRun.startMillis > 2 * config.fastLossHalfLifeMillis) lossRun = null
    const pNow = lostNow / sentNow
    const sideOf = (base: Decayed) => {
      const pBase = meanOf(base)
      return pNow >= pBase + config.lossShiftMinRatio ? 1 : pNow <= pBase - config.lossShiftMinRatio ? -1 : 0
    }
    // A burst on the run's side of the mean as it is now (the run's bursts averaged in), and
    // within lossShiftMinRatio of the run's own loss, extends the run, still judged against the
    // mean from before it; any other burst starts over (a run pooling a 4 % and a 0 % burst would
    // restart the memories at 2 %).
    const side = sideOf(agg.fastLoss)
    if (side === 0) lossRun = null
    else if (
      lossRun !== null &&
      lossRun.side === side &&
      Math.abs(pNow - lossRun.lost / lossRun.sent) < config.lossShiftMinRatio
    )
      lossRun = { ...lossRun, lost: lossRun.lost + lostNow, sent: lossRun.sent + sentNow }
    else lossRun = { side, lost: lostNow, sent: sentNow, startMillis: at, base: agg.fastLoss }
    if (lossRun !== null && isLossShift(lossRun.base, lossRun.lost, lossRun.sent, config)) {
      lossShift = lossRun.side
      restarted = { sum: lossRun.lost, weight: lossRun.sent, atMillis: Math.max(at, agg.fastLoss.atMillis) }
      lossRun = null
    }
  }
  const slowLoss =
    lossShift !== 0
      ? restarted
      : countLoss
        ? addDecayed(agg.slowLoss, lostNow, sentNow, at, config.lossHalfLifeMillis)
        : agg.slowLoss
  const fastLoss =
    lossShift !== 0
      ? restarted
      : countLoss
        ? addDecayed(agg.fastLoss, lostNow, sentNow, at, config.fastLossHalfLifeMillis)
        : agg.fastLoss
  out.state = state
  out.everUp = everUp
  out.misses = misses
  out.replies = replies
  out.rtt = rtt
  out.shiftSide = shiftSide
  out.shiftRun = shiftRun
  out.shiftSumMs = shiftSumMs
  out.shiftJitterMs = shiftJitterMs
  out.shiftAtMillis = shiftAtMillis
  out.witness = witness
  out.lossRun = lossRun
  out.slowLoss = slowLoss
  out.fastLoss = fastLoss
  out.jitterMs = jitterMs
  out.lastEchoRttMs = lastEchoRttMs
  out.lastIcmpRttMs = lastIcmpRttMs
  out.lastTcpRttMs = lastTcpRttMs
  out.accountedAtMillis = accountedAtMillis
  out.lastSampleAtMillis = lastSampleAtMillis
  out.lastReplyAtMillis = lastReplyAtMillis
}

/** The state the tunnel is in at `nowMillis` (stale → dead). */
export const stateAt = (
  agg: TunnelAggregate,
  nowMillis: number,
  config: AggregationConfig = defaultAggregationConfig,
): TunnelState =>
  agg.state === "up" &&
  (agg.lastSampleAtMillis === null || nowMillis - agg.lastSampleAtMillis > config.staleAfterMillis)
    ? "dead"
    : agg.state

/** Loss ratio 0..1 as of the last sample: max(slow mean, fast mean − z·σ). */
const lossRatioOf = (agg: TunnelAggregate, config: AggregationConfig): number => {
  const slow = meanOf(agg.slowLoss)
  const w = agg.fastLoss.weight
  if (w <= 0) return Math.min(1, slow)
  const p = agg.fastLoss.sum / w
  const fast = p - config.fastLossConfidence * Math.sqrt((p * (1 - p)) / w)
  return Math.min(1, Math.max(0, slow, fast))
}

/** What the aggregate says about its tunnel at `nowMillis`. */
export const linkStats = (
  agg: TunnelAggregate,
  nowMillis: number,
  config: AggregationConfig = defaultAggregationConfig,
): LinkStats => {
  const a: Accounts = {
    upMillis: agg.upMillis,
    observedMillis: agg.observedMillis,
    fastUpMillis: agg.fastUpMillis,
    fastObservedMillis: agg.fastObservedMillis,
  }
  accountBothInto(a, agg.state, agg.everUp, agg.accountedAtMillis, nowMillis, config)
  const state = stateAt(agg, nowMillis, config)
  const share = (up: number, observed: number) => (observed > 0 ? Math.min(1, Math.max(0, up / observed)) : 1)
  const availability =
    a.observedMillis > 0 || a.fastObservedMillis > 0
      ? Math.min(share(a.upMillis, a.observedMillis), share(a.fastUpMillis, a.fastObservedMillis))
      : state === "up"
        ? 1
        : 0
  return {
    tunnel: agg.tunnel,
    state,
    rttMs: agg.rtt.weight > 0 ? meanOf(agg.rtt) : null,
    jitterMs: agg.jitterMs,
    lossRatio: lossRatioOf(agg, config),
    availability,
    lastSampleAtMillis: agg.lastSampleAtMillis,
    lastReplyAtMillis: agg.lastReplyAtMillis,
  }
}

/** Aggregates of many tunnels, keyed by `tunnelKey`. */
export type AggregateTable = ReadonlyMap<string, TunnelAggregate>

/**
 * Folds a batch of samples into a table (one copy of the table per batch, not per sample).
 * `PathSample`s are skipped: they describe paths, not tunnels (see `Analyser`).
 */
export const ingestSamples = (
  table: AggregateTable,
  samples: Iterable<Sample>,
  config: AggregationConfig = defaultAggregationConfig,
): AggregateTable => {
  const next = new Map(table)
  for (const s of samples) {
    if (s._tag === "PathSample") continue
    const key = tunnelKey(s.tunnel)
    next.set(key, ingest(next.get(key) ?? emptyAggregate(s.tunnel), s, config))
  }
  return next
}

/** LinkStats of every tunnel in the table at `nowMillis`, in key order. */
export const tableStats = (
  table: AggregateTable,
  nowMillis: number,
  config: AggregationConfig = defaultAggregationConfig,
): ReadonlyArray<LinkStats> =>
  [...table.keys()].sort().map((k) => linkStats(table.get(k) as TunnelAggregate, nowMillis, config))
