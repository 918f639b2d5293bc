/**
 * The truth of one directed link (one direction of one tunnel) over simulated time: one-way
 * latency, jitter, loss and up/down. A timeline is a base profile plus effects: step changes,
 * hard failures and recoveries, a bounded random walk, a diurnal swing and periodic flapping.
 * Config (`LinkTimelineSpec`, plain data) is kept apart from the runtime evaluator (`LinkTruth`),
 * which is queried with non-decreasing times so the random walk can advance lazily in O(1) memory.
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

/** Runtime evaluator of a LinkTimelineSpec. Query times must not decrease (the walk only moves forward). */
export class LinkTruth {
  private readonly steps: ReadonlyArray<Step>
  private readonly downSwitches: ReadonlyArray<{ atMillis: number; down: boolean }>
  private readonly walks: ReadonlyArray<Walk>
  private readonly diurnals: ReadonlyArray<Diurnal>
  private readonly flappings: ReadonlyArray<Flapping>
  private readonly walkPrng: Prng
  private walkIndex = 0
  private walkDeviationMs = 0
  private stepCursor = 0
  private current: LinkProfile
  private downCursor = 0
  private downNow = false

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
    this.current = spec.base
  }

  private advanceTo(tMillis: number): void {
    while (this.stepCursor < this.steps.length && (this.steps[this.stepCursor] as Step).atMillis <= tMillis) {
      const s = this.steps[this.stepCursor] as Step
      this.current = {
        latencyMs: s.latencyMs ?? this.current.latencyMs,
        jitterMs: s.jitterMs ?? this.current.jitterMs,
        lossRatio: s.lossRatio ?? this.current.lossRatio,
      }
      this.stepCursor++
    }
    while (
      this.downCursor < this.downSwitches.length &&
      (this.downSwitches[this.downCursor] as { atMillis: number }).atMillis <= tMillis
    ) {
      this.downNow = (this.downSwitches[this.downCursor] as { down: boolean }).down
      this.downCursor++
    }
    for (const w of this.walks) {
      const target = Math.floor(tMillis / w.stepMillis)
      // One walk per link is the norm; several walks share one deviation, each adding its steps.
      while (this.walkIndex < target) {
        let d = this.walkDeviationMs + w.sigmaMs * this.walkPrng.normal()
        if (d > w.maxDeviationMs) d = 2 * w.maxDeviationMs - d
        if (d < -w.maxDeviationMs) d = -2 * w.maxDeviationMs - d
        this.walkDeviationMs = Math.max(-w.maxDeviationMs, Math.min(w.maxDeviationMs, d))
        this.walkIndex++
      }
    }
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
