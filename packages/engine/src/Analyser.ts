/**
 * Least-squares path analyser ("tomography"): per-link latency estimates from multi-hop RTTs.
 *
 * Decisions a reader must know:
 * - Links are UNDIRECTED and the estimate is the one-way latency in ms, assuming symmetry. A
 *   measurement is a round trip (pathping paths start and end at the origin), and adding p_b − p_a
 *   to every directed link a→b leaves every cycle's sum unchanged, so round trips cannot tell the
 *   two directions apart; a directed model would only report an arbitrary split.
 * - minimise Σ wᵢ(aᵢ·x − bᵢ)² + λ‖x‖² subject to x ≥ 0, where aᵢ counts how often measurement i
 *   crosses each link. λ is tiny (1e-8 × the mean diagonal of AᵀWA): unlike the original's unit
 *   ridge rows (REFERENCE §12) it does not pull estimates towards 0; it only picks, when the system
 *   is under-determined, the minimum-norm solution among the best fits. Links the equations cannot
 *   pin down are reported with `identifiable: false` instead of being silently guessed.
 * - Solved exactly for the non-negativity constraint by Lawson–Hanson active sets on the normal
 *   equations (dense Cholesky; fine for the ≤ a few hundred links one analysis involves).
 */
import { Data, Either } from "effect"
import type { PathSample, SiteId } from "./Domain.js"

/** One multi-hop measurement: the sites visited in order and the measured time in ms. */
export interface PathMeasurement {
  readonly path: ReadonlyArray<SiteId>
  readonly rttMs: number
  /** Relative confidence (default 1), e.g. the number of replies averaged. */
  readonly weight?: number
}

export interface AnalyserConfig {
  /** Ridge λ relative to the mean diagonal of AᵀWA (default 1e-8). */
  readonly relativeRidge: number
  /** Numerical tolerance for rank and optimality decisions (default 1e-9). */
  readonly tolerance: number
}

export const defaultAnalyserConfig: AnalyserConfig = { relativeRidge: 1e-8, tolerance: 1e-9 }

export class InvalidPathMeasurement extends Data.TaggedError("InvalidPathMeasurement")<{
  readonly index: number
  readonly measurement: PathMeasurement
  readonly reason: string
}> {}

export interface LinkEstimate {
  /** Ends of the undirected link, a < b. */
  readonly a: SiteId
  readonly b: SiteId
  /** One-way latency estimate in ms (≥ 0). */
  readonly latencyMs: number
  /** True when the measurements determine this link's latency uniquely (ignoring x ≥ 0). */
  readonly identifiable: boolean
  /** Measurements crossing this link. */
  readonly measurements: number
  /** RMS residual (ms) of the measurements crossing this link: how much they disagree with the fit. */
  readonly disagreementMs: number
}

export interface MeasurementResidual {
  readonly index: number
  readonly path: ReadonlyArray<SiteId>
  readonly measuredMs: number
  readonly fittedMs: number
  /** fitted − measured, ms. */
  readonly residualMs: number
}

export interface AnalysisResult {
  /** Every link seen in the measurements, ordered by (a, b). */
  readonly links: ReadonlyArray<LinkEstimate>
  /** One per measurement, in input order. */
  readonly residuals: ReadonlyArray<MeasurementResidual>
  /** Links ordered by disagreement, worst first. */
  readonly worstLinks: ReadonlyArray<LinkEstimate>
  /** Weighted RMS residual over all measurements, ms. */
  readonly rmsResidualMs: number
  /** Rank of the measurement matrix; < links.length means under-determined. */
  readonly rank: number
}

/** Measurements from pathping samples; lost ones (no RTT or nothing received) are dropped. */
export const fromPathSamples = (samples: Iterable<PathSample>): ReadonlyArray<PathMeasurement> => {
  const out: Array<PathMeasurement> = []
  for (const s of samples) {
    if (s.rttMs === null || s.received === 0) continue
    out.push({ path: s.path, rttMs: s.rttMs, weight: s.received })
  }
  return out
}

const pairKey = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`)

/** Solves Q·z = c for SPD Q (row-major n×n) by Cholesky; undefined when not positive definite. */
const choleskySolve = (q: Float64Array, c: Float64Array, n: number): Float64Array | undefined => {
  const l = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = q[i * n + j]!
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!
      if (i === j) {
        if (!(s > 0)) return undefined
        l[i * n + i] = Math.sqrt(s)
      } else {
        l[i * n + j] = s / l[j * n + j]!
      }
    }
  }
  const y = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let s = c[i]!
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!
    y[i] = s / l[i * n + i]!
  }
  const z = new Float64Array(n)
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * z[k]!
    z[i] = s / l[i * n + i]!
  }
  return z
}

/** Solves Q_PP z_P = c_P for the passive set; zero elsewhere. */
const solvePassive = (q: Float64Array, c: Float64Array, n: number, passive: ReadonlyArray<number>): Float64Array => {
  const m = passive.length
  const qp = new Float64Array(m * m)
  const cp = new Float64Array(m)
  for (let i = 0; i < m; i++) {
    cp[i] = c[passive[i]!]!
    for (let j = 0; j < m; j++) qp[i * m + j] = q[passive[i]! * n + passive[j]!]!
  }
  const zp = choleskySolve(qp, cp, m) ?? new Float64Array(m)
  const z = new Float64Array(n)
  for (let i = 0; i < m; i++) z[passive[i]!] = zp[i]!
  return z
}

/**
 * min ½xᵀQx − cᵀx subject to x ≥ 0, Q symmetric positive definite (Lawson–Hanson active set).
 * Exported for tests.
 */
export const nonNegativeQuadratic = (q: Float64Array, c: Float64Array, n: number, tolerance = 1e-9): Float64Array => {
  // Fast path: the unconstrained optimum is often feasible already (exact or near-exact data).
  const all = Array.from({ length: n }, (_, i) => i)
  const free = solvePassive(q, c, n, all)
  if (free.every((v) => v >= 0)) return free
  const scale = Math.max(1, ...Array.from(c, Math.abs))
  const tol = tolerance * scale
  let x: Float64Array = new Float64Array(n)
  const inPassive = new Uint8Array(n)
  const gradient = () => {
    const w = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      let s = c[i]!
      for (let j = 0; j < n; j++) s -= q[i * n + j]! * x[j]!
      w[i] = s
    }
    return w
  }
  for (let outer = 0; outer < 3 * n + 10; outer++) {
    const w = gradient()
    let best = -1
    let bestW = tol
    for (let i = 0; i < n; i++) {
      if (!inPassive[i] && w[i]! > bestW) {
        best = i
        bestW = w[i]!
      }
    }
    if (best < 0) break
    inPassive[best] = 1
    for (let inner = 0; inner < 3 * n + 10; inner++) {
      const passive = all.filter((i) => inPassive[i])
      const z = solvePassive(q, c, n, passive)
      const bad = passive.filter((i) => z[i]! <= 0)
      if (bad.length === 0) {
        x = z
        break
      }
      let alpha = 1
      for (const i of bad) {
        const d = x[i]! - z[i]!
        if (d > 0) alpha = Math.min(alpha, x[i]! / d)
      }
      const next = new Float64Array(n)
      for (let i = 0; i < n; i++) next[i] = x[i]! + alpha * (z[i]! - x[i]!)
      x = next
      for (const i of passive) {
        if (x[i]! <= tol * 1e-3) {
          inPassive[i] = 0
          x[i] = 0
        }
      }
    }
  }
  for (let i = 0; i < n; i++) if (x[i]! < 0) x[i] = 0
  return x
}

/**
 * Rank of the row space of `rows` (each a dense vector of length n) and, per column, whether
 * the unit vector eⱼ lies in it (the column's value is determined by the equations).
 */
const identifiability = (
  rows: ReadonlyArray<Float64Array>,
  n: number,
  tolerance: number,
): { rank: number; identifiable: ReadonlyArray<boolean> } => {
  const m = rows.map((r) => Float64Array.from(r))
  const pivotRowOfColumn = new Int32Array(n).fill(-1)
  let rank = 0
  for (let col = 0; col < n && rank < m.length; col++) {
    let pivot = -1
    let best = tolerance
    for (let r = rank; r < m.length; r++) {
      const v = Math.abs(m[r]![col]!)
      if (v > best) {
        best = v
        pivot = r
      }
    }
    if (pivot < 0) continue
    ;[m[rank], m[pivot]] = [m[pivot]!, m[rank]!]
    const pr = m[rank]!
    const pv = pr[col]!
    for (let j = 0; j < n; j++) pr[j] = pr[j]! / pv
    for (let r = 0; r < m.length; r++) {
      if (r === rank) continue
      const row = m[r]!
      const f = row[col]!
      if (f !== 0) for (let j = 0; j < n; j++) row[j] = row[j]! - f * pr[j]!
    }
    pivotRowOfColumn[col] = rank
    rank++
  }
  // eⱼ is in the row space iff j is a pivot column whose reduced row has no free-column entries.
  const identifiable = Array.from({ length: n }, (_, col) => {
    const r = pivotRowOfColumn[col]!
    if (r < 0) return false
    const row = m[r]!
    for (let j = 0; j < n; j++) if (j !== col && pivotRowOfColumn[j]! < 0 && Math.abs(row[j]!) > 1e-7) return false
    return true
  })
  return { rank, identifiable }
}

/** Estimates per-link one-way latencies from multi-hop measurements. */
export const analysePaths = (
  measurements: ReadonlyArray<PathMeasurement>,
  config: AnalyserConfig = defaultAnalyserConfig,
): Either.Either<AnalysisResult, InvalidPathMeasurement> => {
  const index = new Map<string, number>()
  const ends: Array<[SiteId, SiteId]> = []
  for (const [i, meas] of measurements.entries()) {
    const bad = (reason: string) => Either.left(new InvalidPathMeasurement({ index: i, measurement: meas, reason }))
    if (meas.path.length < 2) return bad("a path needs at least two sites")
    if (!(Number.isFinite(meas.rttMs) && meas.rttMs >= 0)) return bad(`RTT must be finite and ≥ 0, got ${meas.rttMs}`)
    if (meas.weight !== undefined && !(Number.isFinite(meas.weight) && meas.weight > 0)) {
      return bad(`weight must be finite and > 0, got ${meas.weight}`)
    }
    for (let h = 1; h < meas.path.length; h++) {
      const a = meas.path[h - 1]!
      const b = meas.path[h]!
      if (a === b) return bad(`hop ${h} stays at site ${a}`)
      const k = pairKey(a, b)
      if (!index.has(k)) {
        index.set(k, -1)
        ends.push(a < b ? [a, b] : [b, a])
      }
    }
  }
  ends.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  for (const [i, [a, b]] of ends.entries()) index.set(pairKey(a, b), i)
  const n = ends.length

  const rows = measurements.map((meas) => {
    const row = new Float64Array(n)
    for (let h = 1; h < meas.path.length; h++) row[index.get(pairKey(meas.path[h - 1]!, meas.path[h]!))!]! += 1
    return row
  })
  const weights = measurements.map((m) => m.weight ?? 1)

  // Normal equations Q = AᵀWA + λI, c = AᵀWb.
  const q = new Float64Array(n * n)
  const c = new Float64Array(n)
  for (const [i, row] of rows.entries()) {
    const w = weights[i]!
    const b = measurements[i]!.rttMs
    const nz: Array<number> = []
    for (let j = 0; j < n; j++) if (row[j] !== 0) nz.push(j)
    for (const j of nz) {
      c[j] = c[j]! + w * row[j]! * b
      for (const k of nz) q[j * n + k] = q[j * n + k]! + w * row[j]! * row[k]!
    }
  }
  let trace = 0
  for (let j = 0; j < n; j++) trace += q[j * n + j]!
  const lambda = config.relativeRidge * (n > 0 ? trace / n : 1)
  for (let j = 0; j < n; j++) q[j * n + j] = q[j * n + j]! + lambda
  const x = n > 0 ? nonNegativeQuadratic(q, c, n, config.tolerance) : new Float64Array(0)

  const residuals: Array<MeasurementResidual> = measurements.map((meas, i) => {
    const row = rows[i]!
    let fitted = 0
    for (let j = 0; j < n; j++) fitted += row[j]! * x[j]!
    return { index: i, path: meas.path, measuredMs: meas.rttMs, fittedMs: fitted, residualMs: fitted - meas.rttMs }
  })
  const sq = new Float64Array(n)
  const count = new Float64Array(n)
  let totalSq = 0
  let totalW = 0
  for (const [i, r] of residuals.entries()) {
    totalSq += weights[i]! * r.residualMs ** 2
    totalW += weights[i]!
    const row = rows[i]!
    for (let j = 0; j < n; j++) {
      if (row[j] === 0) continue
      sq[j] = sq[j]! + r.residualMs ** 2
      count[j] = count[j]! + 1
    }
  }
  const { rank, identifiable } = identifiability(rows, n, config.tolerance)
  const links: Array<LinkEstimate> = ends.map(([a, b], j) => ({
    a,
    b,
    latencyMs: x[j]!,
    identifiable: identifiable[j]!,
    measurements: count[j]!,
    disagreementMs: count[j]! > 0 ? Math.sqrt(sq[j]! / count[j]!) : 0,
  }))
  const worstLinks = [...links].sort((p, r) => r.disagreementMs - p.disagreementMs || p.a - r.a || p.b - r.b)
  return Either.right({
    links,
    residuals,
    worstLinks,
    rmsResidualMs: totalW > 0 ? Math.sqrt(totalSq / totalW) : 0,
    rank,
  })
}
