/**
 * The truth of one directed link (one direction of one tunnel) over simulated time: one-way
 * latency, jitter, loss and up/down. A timeline is a base profile plus effects: step changes,
 * hard failures and recoveries, a bounded random walk, a diurnal swing and periodic flapping.
 * Config (`LinkTimelineSpec`, plain data) is kept apart from the runtime evaluator (`LinkTruth`),
 * whose random walk advances lazily (O(1) memory plus a ring of recent steps) and answers by time alone.
 */
import { Prng } from "./Prng.js"

export interface LinkProfile {
  /** Mean one-way delay in ms. */
  readonly latencyMs: number
  /** Standard deviation of the one-way delay in ms. */
  readonly jitterMs: number
  /** Probability that one packet is dropped, 0..1. */
  readonly lossRatio: number
}

export type LinkEffect =
  /** From `atMillis` on, the given fields replace the base profile's. */
  | {
      readonly kind: "step"
      readonly atMillis: number
      readonly latencyMs?: number
      readonly jitterMs?: number
      readonly lossRatio?: number
    }
  /** The link stops carrying anything at `atMillis` (until a later recovery). */
  | { readonly kind: "failure"; readonly atMillis: number }
  | { readonly kind: "recovery"; readonly atMillis: number }
  /** Latency wanders by ±sigmaMs per step, reflected inside ±maxDeviationMs around the base. */
  | {
      readonly kind: "random-walk"
      readonly stepMillis: number
      readonly sigmaMs: number
      readonly maxDeviationMs: number
    }
  /** Latency + amplitudeMs·sin(2π(t + phase)/period): the daily swing, or any slow oscillation. */
  | {
      readonly kind: "diurnal"
      readonly periodMillis: number
      readonly amplitudeMs: number
      readonly phaseMillis: number
    }
  /** Between from and until the link is down for the first `downMillis` of every period. */
  | {
      readonly kind: "flapping"
      readonly fromMillis: number
      readonly untilMillis: number
      readonly periodMillis: number
      readonly downMillis: number
    }

export interface LinkTimelineSpec {
  readonly base: LinkProfile
  readonly effects: ReadonlyArray<LinkEffect>
}

/** A moment at which a link's truth changes discontinuously (what reaction times are measured from). */
export interface ChangePoint {
  readonly atMillis: number
  readonly kind: "down" | "up" | "step"
}

type Step = Extract<LinkEffect, { kind: "step" }>
type Walk = Extract<LinkEffect, { kind: "random-walk" }>
type Diurnal = Extract<LinkEffect, { kind: "diurnal" }>
type Flapping = Extract<LinkEffect, { kind: "flapping" }>

const MIN_LATENCY_MS = 0.05
/** Walk deviations kept for queries back in time (steps; ≥ the probes' look-back at any step length in use). */
const WALK_RING = 256

/** Runtime evaluator of a LinkTimelineSpec: the answer depends on the queried time only, not on earlier queries. */
export class LinkTruth {
  private readonly steps: ReadonlyArray<Step>
  private readonly downSwitches: ReadonlyArray<{ atMillis: number; down: boolean }>
  private readonly walks: ReadonlyArray<Walk>
  private readonly diurnals: ReadonlyArray<Diurnal>
  private readonly flappings: ReadonlyArray<Flapping>
  private readonly walkPrng: Prng
  private readonly walkSeed: number
  /** Walk steps taken, the deviation after them, and the last WALK_RING deviations by step. */
  private walkIndex = 0
  private walkHead = 0
  private readonly walkRing = new Float64Array(WALK_RING)
  /** Deviation at the last queried time. */
  private walkDeviationMs = 0
  /** profiles[k]: the base with the first k steps applied. */
  private readonly profiles: ReadonlyArray<LinkProfile>
  private stepCursor = 0
  private current: LinkProfile
  private downCursor = 0
  private downNow = false
  private lastQueryMillis = Number.NaN

  constructor(
    readonly spec: LinkTimelineSpec,
    seed: number,
  ) {
    const effects = spec.effects
    this.steps = effects.filter((e): e is Step => e.kind === "step").sort((a, b) => a.atMillis - b.atMillis)
    this.downSwitches = effects
      .flatMap((e) =>
        e.kind === "failure"
          ? [{ atMillis: e.atMillis, down: true }]
          : e.kind === "recovery"
            ? [{ atMillis: e.atMillis, down: false }]
            : [],
      )
      .sort((a, b) => a.atMillis - b.atMillis)
    this.walks = effects.filter((e): e is Walk => e.kind === "random-walk")
    this.diurnals = effects.filter((e): e is Diurnal => e.kind === "diurnal")
    this.flappings = effects.filter((e): e is Flapping => e.kind === "flapping")
    this.walkPrng = new Prng(seed)
    this.walkSeed = seed
    const profiles: LinkProfile[] = [spec.base]
    for (const st of this.steps) {
      const c = profiles[profiles.length - 1] as LinkProfile
      profiles.push({
        latencyMs: st.latencyMs ?? c.latencyMs,
        jitterMs: st.jitterMs ?? c.jitterMs,
        lossRatio: st.lossRatio ?? c.lossRatio,
      })
    }
    this.profiles = profiles
    this.current = spec.base
  }

  /**
   * Positions the cursors at tMillis. Queries may go back in time (a probe's return leg is read at
   * its arrival, the far end's own probe a little earlier): steps and downs are re-read from the
   * sorted lists and the walk's recent deviations are kept in a ring, so the answer depends on the
   * time alone, not on which site asked first (the model's two-thread runs need that). A walk
   * step older than the ring is recomputed from the seed (never seen in practice).
   */
  private advanceTo(tMillis: number): void {
    if (tMillis !== this.lastQueryMillis) this.seek(tMillis)
  }

  private seek(tMillis: number): void {
    this.lastQueryMillis = tMillis
    while (this.stepCursor < this.steps.length && (this.steps[this.stepCursor] as Step).atMillis <= tMillis)
      this.stepCursor++
    while (this.stepCursor > 0 && (this.steps[this.stepCursor - 1] as Step).atMillis > tMillis) this.stepCursor--
    this.current = this.profiles[this.stepCursor] as LinkProfile
    while (
      this.downCursor < this.downSwitches.length &&
      (this.downSwitches[this.downCursor] as { atMillis: number }).atMillis <= tMillis
    )
      this.downCursor++
    while (this.downCursor > 0 && (this.downSwitches[this.downCursor - 1] as { atMillis: number }).atMillis > tMillis)
      this.downCursor--
    this.downNow = this.downCursor > 0 && (this.downSwitches[this.downCursor - 1] as { down: boolean }).down
    const w = this.walks[0]
    if (w === undefined) return
    // Walks share one deviation and one step counter (one walk per link is the norm), counted by the first's step.
    const target = Math.floor(tMillis / w.stepMillis)
    while (this.walkIndex < target) {
      for (const walk of this.walks) {
        let d = this.walkHead + walk.sigmaMs * this.walkPrng.normal()
        if (d > walk.maxDeviationMs) d = 2 * walk.maxDeviationMs - d
        if (d < -walk.maxDeviationMs) d = -2 * walk.maxDeviationMs - d
        this.walkHead = Math.max(-walk.maxDeviationMs, Math.min(walk.maxDeviationMs, d))
      }
      this.walkIndex++
      this.walkRing[this.walkIndex % WALK_RING] = this.walkHead
    }
    if (target >= this.walkIndex) this.walkDeviationMs = this.walkHead
    else if (this.walkIndex - target < WALK_RING) this.walkDeviationMs = this.walkRing[target % WALK_RING] as number
    else this.walkDeviationMs = this.walkReplay(target)
  }

  /** The walk's deviation after `target` steps, replayed from the seed (queries far in the past only). */
  private walkReplay(target: number): number {
    const prng = new Prng(this.walkSeed)
    let head = 0
    for (let i = 0; i < target; i++)
      for (const walk of this.walks) {
        let d = head + walk.sigmaMs * prng.normal()
        if (d > walk.maxDeviationMs) d = 2 * walk.maxDeviationMs - d
        if (d < -walk.maxDeviationMs) d = -2 * walk.maxDeviationMs - d
        head = Math.max(-walk.maxDeviationMs, Math.min(walk.maxDeviationMs, d))
      }
    return head
  }

  isUp(tMillis: number): boolean {
    this.advanceTo(tMillis)
    if (this.downNow) return false
    for (const f of this.flappings) {
      if (
        tMillis >= f.fromMillis &&
        tMillis < f.untilMillis &&
        (tMillis - f.fromMillis) % f.periodMillis < f.downMillis
      )
        return false
    }
    return true
  }

  latencyMs(tMillis: number): number {
    this.advanceTo(tMillis)
    let l = this.current.latencyMs + this.walkDeviationMs
    for (const d of this.diurnals)
      l += d.amplitudeMs * Math.sin((2 * Math.PI * (tMillis + d.phaseMillis)) / d.periodMillis)
    return Math.max(MIN_LATENCY_MS, l)
  }

  jitterMs(tMillis: number): number {
    this.advanceTo(tMillis)
    return this.current.jitterMs
  }

  lossRatio(tMillis: number): number {
    this.advanceTo(tMillis)
    return this.current.lossRatio
  }

  /** Every discontinuity of this timeline inside [from, until), sorted. */
  changePoints(fromMillis: number, untilMillis: number): ReadonlyArray<ChangePoint> {
    const out: ChangePoint[] = []
    for (const s of this.steps)
      if (s.atMillis >= fromMillis && s.atMillis < untilMillis) out.push({ atMillis: s.atMillis, kind: "step" })
    for (const d of this.downSwitches)
      if (d.atMillis >= fromMillis && d.atMillis < untilMillis)
        out.push({ atMillis: d.atMillis, kind: d.down ? "down" : "up" })
    for (const f of this.flappings) {
      const end = Math.min(f.untilMillis, untilMillis)
      for (let t = f.fromMillis; t < end; t += f.periodMillis) {
        if (t >= fromMillis) out.push({ atMillis: t, kind: "down" })
        const upAt = t + f.downMillis
        if (upAt >= fromMillis && upAt < untilMillis) out.push({ atMillis: Math.min(upAt, f.untilMillis), kind: "up" })
      }
    }
    return out.sort((a, b) => a.atMillis - b.atMillis)
  }
}
