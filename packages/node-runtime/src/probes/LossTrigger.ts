/**
 * Suspicion-triggered loss bursts: the loss test where and when it is needed.
 *
 * The echo (1/s) and ICMP (0.5/s) cannot tell 5 % loss from 0 % within 10 s (≈ 15 probes), and
 * the scheduled loss test is too rare to react (every 20 min). A continuous fast loss test would
 * see it but costs ≈ 40 datagrams/s on every tunnel, lossless or not. Here a tunnel pays only
 * once it shows a symptom: when an up tunnel loses an echo or ICMP probe, or the peer's regular
 * echo request does not come, a short burst (default 200 × 64 B in 0.8 s) measures the loss at
 * once; a burst that found loss is confirmed 2 s later, and while the loss (the burst's, or the
 * engine's estimate) stays above a small level the burst repeats every `minGapMillis`, so a
 * repair is seen as quickly as the loss was. A first burst that finds loss also suspects the
 * other family's tunnel to the same peer (`onLossFound`, wired by the measurement plane). The engine
 * (Aggregation's loss change-point) lets one such burst move the estimate at once.
 *
 * Budget (ProbeConfig `lossTrigger`): a token bucket per tunnel, one token per burst, refilled
 * one per `minGapMillis` (10 s) up to `burstTokens` (2): at most one burst per 10 s in the long
 * run whatever happens, two in a row when a first burst's loss is confirmed. No probe lost, no
 * burst; a tunnel that is dead (or dies within `graceMillis` of the lost probe) gets none; a
 * failed burst (no FINAL) blocks bursts for `minGapMillis`, doubling with each further failure up
 * to `failureBackoffMillis`. A burst never overlaps the tunnel's scheduled loss test (one lock),
 * and at most `maxConcurrentBursts` run at once per daemon: a host starved of CPU loses probes on
 * every tunnel at once, and 24 simultaneous bursts through a userspace WireGuard made it worse.
 *
 * The decisions are a pure state machine (`TriggerState`, property-tested); `runLossTrigger` is
 * the fiber that follows it.
 */
import type { LossTestSample, RttSample, TunnelId } from "@net-perf/engine"
import { Duration, Effect, Either, Queue, type Scope } from "effect"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import { recordLossSample, runLossTest } from "./LossTester.js"
import type { LossTestConfig, LossTriggerConfig } from "./ProbeConfig.js"

/** The trigger's decision state; all times on the caller's clock (ms). */
export interface TriggerState {
  /** When the next burst is due; null: none planned (idle, or a burst is running). */
  readonly dueAtMillis: number | null
  /** Start of the last burst (−∞: none yet). */
  readonly lastStartMillis: number
  /** Burst tokens as of `tokensAtMillis` (one per burst; refilled one per `minGapMillis`, up to `burstTokens`). */
  readonly tokens: number
  readonly tokensAtMillis: number
  /** Bursts of the current series so far (0: idle). */
  readonly seriesBursts: number
  /** No burst before this (after a failed one). */
  readonly blockedUntilMillis: number
  /** Consecutive failed bursts (the back-off doubles with each, from minGap to failureBackoff). */
  readonly failures: number
}

type Policy = Pick<
  LossTriggerConfig,
  | "graceMillis"
  | "minGapMillis"
  | "burstTokens"
  | "confirmAfterMillis"
  | "continueAboveRatio"
  | "maxSeriesBursts"
  | "failureBackoffMillis"
>

export const idleTrigger = (p: Pick<Policy, "burstTokens">): TriggerState => ({
  dueAtMillis: null,
  lastStartMillis: Number.NEGATIVE_INFINITY,
  tokens: p.burstTokens,
  tokensAtMillis: 0,
  seriesBursts: 0,
  blockedUntilMillis: Number.NEGATIVE_INFINITY,
  failures: 0,
})

const tokensAt = (s: TriggerState, atMillis: number, p: Policy): number =>
  Math.min(p.burstTokens, s.tokens + Math.max(0, atMillis - s.tokensAtMillis) / p.minGapMillis)

/** The first instant a token is available (tokens only grow between bursts). */
const tokenReadyAt = (s: TriggerState, p: Policy): number =>
  s.tokens >= 1 ? Number.NEGATIVE_INFINITY : s.tokensAtMillis + (1 - s.tokens) * p.minGapMillis

/** A probe was lost (or a peer request missed) at `nowMillis`: plan a burst unless one is planned. */
export const onSuspicion = (s: TriggerState, nowMillis: number, p: Policy): TriggerState =>
  s.dueAtMillis !== null
    ? s
    : {
        ...s,
        seriesBursts: 0,
        dueAtMillis: Math.max(nowMillis + p.graceMillis, tokenReadyAt(s, p), s.blockedUntilMillis),
      }

/** The planned burst is due: start it only on a tunnel that is up (a dead one drops the series). */
export const onDue = (
  s: TriggerState,
  nowMillis: number,
  tunnelUp: boolean,
  p: Policy,
): { readonly start: boolean; readonly state: TriggerState } =>
  tunnelUp
    ? {
        start: true,
        state: {
          ...s,
          dueAtMillis: null,
          lastStartMillis: nowMillis,
          tokens: tokensAt(s, nowMillis, p) - 1,
          tokensAtMillis: nowMillis,
        },
      }
    : { start: false, state: { ...s, dueAtMillis: null, seriesBursts: 0 } }

/**
 * A burst ended at `nowMillis` with `burstLossRatio` (null: it failed) while the engine's loss
 * estimate reads `estimateRatio`: repeat while either is above `continueAboveRatio`, the second
 * burst `confirmAfterMillis` after a first one that found loss (one burst of 200 at 5 % reads
 * 2.5 % or less one time in 16, too little to beat a detour: the confirmation keeps the move prompt), later ones
 * `minGapMillis` apart.
 */
export const onBurstDone = (
  s: TriggerState,
  nowMillis: number,
  burstLossRatio: number | null,
  estimateRatio: number,
  p: Policy,
): TriggerState => {
  if (burstLossRatio === null) {
    // A burst can fail once on a loaded host (no FINAL in time); a peer without a loss server fails always.
    const backoffMillis = Math.min(p.failureBackoffMillis, p.minGapMillis * 2 ** s.failures)
    return {
      ...s,
      dueAtMillis: null,
      seriesBursts: 0,
      failures: s.failures + 1,
      blockedUntilMillis: nowMillis + backoffMillis,
    }
  }
  const seriesBursts = s.seriesBursts + 1
  const burstLossy = burstLossRatio > p.continueAboveRatio
  const lossy = burstLossy || estimateRatio > p.continueAboveRatio
  if (!lossy || seriesBursts >= p.maxSeriesBursts) return { ...s, failures: 0, seriesBursts: 0, dueAtMillis: null }
  const wantedAt =
    seriesBursts === 1 && burstLossy ? nowMillis + p.confirmAfterMillis : s.lastStartMillis + p.minGapMillis
  return { ...s, failures: 0, seriesBursts, dueAtMillis: Math.max(nowMillis, wantedAt, tokenReadyAt(s, p)) }
}

/** What the trigger reads about its tunnel (from the measurement plane's worker). */
export interface LossTriggerView {
  /** The tunnel is up and not being declared dead (engine state up, echo not dead). */
  readonly isUp: () => boolean
  /** The engine's current loss estimate (0..1). */
  readonly lossRatio: () => number
  /** The echo prober's count of missed peer requests (monotonic; 0 without an echo). */
  readonly peerSilences: () => number
  /**
   * The echo prober's count of missed peer requests that came after all, late (monotonic). A
   * silence explained this way within the grace time is no evidence of loss.
   */
  readonly peerLateRequests?: () => number
}

export interface LossTrigger {
  /** Every RTT sample of the tunnel (cheap: called for each one). A lost one is a suspicion. */
  readonly observe: (sample: RttSample) => void
  /**
   * A suspicion from outside (e.g. the sibling tunnel of the other family to the same peer found
   * loss: in the twin both cross one link, and the route moves only once both cost more).
   */
  readonly suspect: (reason: string) => void
  readonly stats: () => {
    readonly suspicions: number
    /** Lost probes ignored because the tunnel was not up. */
    readonly ignoredDown: number
    readonly bursts: number
    readonly failed: number
    /** Series dropped because the tunnel was not up when its burst was due. */
    readonly droppedDead: number
    /**
     * Series dropped because every symptom turned out to be lateness by the time the burst was
     * due: each lost echo probe's reply and each missed peer request arrived late.
     */
    readonly explainedLate: number
  }
}

/** Follows the trigger's state for the scope's lifetime; bursts go to `onSample` (and the metrics). */
export const runLossTrigger = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  lossTest: LossTestConfig,
  config: LossTriggerConfig,
  onSample: (sample: LossTestSample) => void,
  view: LossTriggerView,
  lock: Effect.Semaphore,
  /** Called when the first burst of a series finds loss (above `continueAboveRatio`). */
  onLossFound?: () => void,
  /** Shared by every tunnel of the daemon: at most `maxConcurrentBursts` bursts at a time. */
  siteSlots?: Effect.Semaphore,
): Effect.Effect<LossTrigger, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const burstConfig: LossTestConfig = {
      ...lossTest,
      packets: config.packets,
      packetBytes: config.packetBytes,
      rateBitsPerSecond: config.rateBitsPerSecond,
    }
    // Capacity 1: suspicions between two looks at the queue are one suspicion.
    const signals = yield* Effect.acquireRelease(Queue.sliding<number>(1), Queue.shutdown)
    const counts = { suspicions: 0, ignoredDown: 0, bursts: 0, failed: 0, droppedDead: 0, explainedLate: 0 }
    let lastReason = ""
    let lastPeerSilences = view.peerSilences()
    // The symptoms behind the next suspicion-started burst. A stalled peer (or, in a one-process
    // bench, our own stalled server) makes echo probes and peer requests late, not lost; on a
    // loaded host such false symptoms on every tunnel kept the daemon's burst slots full (a
    // 100-tunnel plane ran 142 bursts in a minute). The burst goes ahead on any unexplained one.
    const evidence = {
      /** Send times (atMillis) of echo probes reported lost and not answered since. */
      lostEcho: new Set<number>(),
      /** A symptom lateness cannot explain (ICMP/TCP loss, an outside suspicion). */
      other: false,
      silences: 0,
      lateRequestsAtStart: view.peerLateRequests?.() ?? 0,
    }
    const resetEvidence = () => {
      evidence.lostEcho.clear()
      evidence.other = false
      evidence.silences = 0
      evidence.lateRequestsAtStart = view.peerLateRequests?.() ?? 0
    }
    const explainedByLateness = () =>
      !evidence.other &&
      evidence.lostEcho.size === 0 &&
      (evidence.silences === 0 ||
        (view.peerLateRequests !== undefined &&
          view.peerLateRequests() - evidence.lateRequestsAtStart >= evidence.silences))

    const one = lock.withPermits(1)(Effect.scoped(runLossTest(tunnel, endpoints, burstConfig)))
    const burst = (siteSlots === undefined ? one : siteSlots.withPermits(1)(one)).pipe(
      Effect.tap((s) =>
        Effect.sync(() => {
          recordLossSample(metrics, s)
          onSample(s)
        }),
      ),
      Effect.either,
    )

    const loop = Effect.gen(function* () {
      let state = idleTrigger(config)
      while (true) {
        if (state.dueAtMillis === null) {
          const at = yield* Queue.take(signals)
          state = onSuspicion(state, Math.max(at, Date.now()), config)
          yield* Effect.logInfo(
            `loss suspected over ${endpoints.remoteAddress} (${lastReason}): burst in ${Math.round((state.dueAtMillis ?? 0) - Date.now())} ms`,
          )
          continue
        }
        const waitMillis = state.dueAtMillis - Date.now()
        if (waitMillis > 0) {
          yield* Effect.sleep(Duration.millis(waitMillis))
          continue
        }
        // Suspicions until now are answered by this burst.
        yield* Queue.takeAll(signals)
        if (state.seriesBursts === 0 && explainedByLateness()) {
          counts.explainedLate++
          state = { ...state, dueAtMillis: null }
          resetEvidence()
          yield* Effect.logDebug(`loss burst over ${endpoints.remoteAddress} dropped: the symptoms were late, not lost`)
          continue
        }
        resetEvidence()
        const due = onDue(state, Date.now(), view.isUp(), config)
        state = due.state
        if (!due.start) {
          counts.droppedDead++
          yield* Effect.logInfo(`loss burst over ${endpoints.remoteAddress} dropped: the tunnel is not up`)
          continue
        }
        counts.bursts++
        const result = yield* burst
        if (Either.isLeft(result)) {
          counts.failed++
          yield* Effect.logInfo(`loss burst over ${endpoints.remoteAddress} abandoned`, result.left)
        } else {
          const s = result.right
          yield* Effect.logInfo(
            `loss burst over ${endpoints.remoteAddress}: ${s.sent - s.received}/${s.sent} lost (series burst ${state.seriesBursts + 1})`,
          )
        }
        // Probes lost during the burst are what it just measured.
        yield* Queue.takeAll(signals)
        resetEvidence()
        const burstLoss = Either.isRight(result)
          ? (result.right.sent - result.right.received) / result.right.sent
          : null
        if (burstLoss !== null && burstLoss > config.continueAboveRatio && state.seriesBursts === 0) onLossFound?.()
        state = onBurstDone(state, Date.now(), burstLoss, view.lossRatio(), config)
      }
    })
    yield* Effect.forkScoped(loop)

    const suspect = (reason: string) => {
      counts.suspicions++
      lastReason = reason
      Queue.unsafeOffer(signals, Date.now())
    }
    return {
      observe: (sample) => {
        if (sample.rttMs === null) {
          // A tunnel already down is priced by availability; its lost probes are no suspicion.
          if (view.isUp()) {
            if (sample.kind === "udp-echo") evidence.lostEcho.add(sample.atMillis)
            else evidence.other = true
            suspect(`${sample.kind} probe lost`)
          } else counts.ignoredDown++
          return
        }
        if (sample.kind !== "udp-echo") return
        // A late reply carries its probe's send time: that loss was lateness.
        evidence.lostEcho.delete(sample.atMillis)
        const silences = view.peerSilences()
        if (silences > lastPeerSilences) {
          evidence.silences += silences - lastPeerSilences
          lastPeerSilences = silences
          suspect("peer echo request missing")
        }
      },
      suspect: (reason) => {
        if (view.isUp()) {
          evidence.other = true
          suspect(reason)
        }
      },
      stats: () => ({ ...counts }),
    }
  })
