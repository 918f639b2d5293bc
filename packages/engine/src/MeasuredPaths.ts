/**
 * Measured-fastest support: the store of pathping results per forward path, and the choice of
 * which candidate paths to verify next within a probe budget.
 *
 * Decision a reader must know: there is no leader. Each node verifies its own top-k candidate
 * paths (Yen over the measured mesh) per destination, a few per call, destinations taken
 * least-recently-verified first, with a deterministic jitter derived from a seed, so nodes
 * started together do not probe in lock-step and a run can be replayed. A probe is a
 * palindromic cycle [self, …, D, …, self] (out and back over the same tunnels), so every
 * candidate's round trip is measured the same way and the costs compare.
 */

import type { MeasuredPath } from "./Algorithms.js"
import { cost as linkCostFromInputs } from "./Cost.js"
import type { Family, PathSample, SiteId } from "./Domain.js"
import { kShortestPaths, type MeshGraph } from "./Graph.js"

/** One path the node should verify by pathping now (or from `notBeforeMillis`). */
export interface PathProbeRequest {
  readonly destination: SiteId
  /** The cycle to send: [self, …, destination, …, self]. */
  readonly path: ReadonlyArray<SiteId>
  /** Underlay family of each hop of `path` (length path.length − 1); 0 = follow routing. */
  readonly families: ReadonlyArray<0 | 4 | 6>
  /** Start no earlier than this (seeded jitter). */
  readonly notBeforeMillis: number
}

export interface MeasuredConfig {
  /** Candidate paths per destination (Yen's k). */
  readonly k: number
  /** Paths requested per `pathProbeRequests` call. */
  readonly probeBudget: number
  /** Samples older than this are forgotten. */
  readonly sampleMaxAgeMillis: number
  /** A path verified more recently than this is not requested again. */
  readonly reverifyAfterMillis: number
  /** Requests are spread over [now, now + jitterMillis). */
  readonly jitterMillis: number
  /** Seed of the jitter and of the tie-break between equally stale destinations. */
  readonly seed: number
  /** Samples kept per path. */
  readonly samplesPerPath: number
}

export const defaultMeasuredConfig: MeasuredConfig = {
  k: 3,
  probeBudget: 4,
  sampleMaxAgeMillis: 300_000,
  reverifyAfterMillis: 60_000,
  jitterMillis: 2_000,
  seed: 0,
  samplesPerPath: 5,
}

/** FNV-1a over 32-bit words: a deterministic, seedable hash (no Math.random in the engine). */
export const hash32 = (...words: ReadonlyArray<number>): number => {
  let h = 0x811c9dc5
  for (const w of words) {
    let x = w | 0
    for (let i = 0; i < 4; i++) {
      h ^= x & 0xff
      h = Math.imul(h, 0x01000193)
      x >>>= 8
    }
  }
  return h >>> 0
}

interface StoredSample {
  readonly atMillis: number
  readonly rttMs: number | null
  readonly sent: number
  readonly received: number
}

/** The forward half of a palindromic cycle starting at `self`, or undefined. */
export const forwardOfCycle = (self: SiteId, path: ReadonlyArray<SiteId>): ReadonlyArray<SiteId> | undefined => {
  const n = path.length
  if (n < 3 || n % 2 === 0 || path[0] !== self) return undefined
  for (let i = 0; i < n; i++) if (path[i] !== path[n - 1 - i]) return undefined
  const forward = path.slice(0, (n + 1) / 2)
  if (new Set(forward).size !== forward.length) return undefined
  return forward
}

export class MeasuredPathStore {
  private readonly byPath = new Map<string, { forward: ReadonlyArray<SiteId>; samples: Array<StoredSample> }>()
  /** The same entries grouped by destination (the forward path's last site). */
  private readonly byDestination = new Map<
    number,
    Array<{ forward: ReadonlyArray<SiteId>; samples: Array<StoredSample> }>
  >()
  private readonly lastRequested = new Map<number, number>()
  private readonly pathRequestedAt = new Map<string, number>()

  constructor(
    readonly self: SiteId,
    readonly config: MeasuredConfig = defaultMeasuredConfig,
  ) {}

  /** Records a pathping result; false when it is not a palindromic cycle from self. */
  record(sample: PathSample): boolean {
    const forward = forwardOfCycle(this.self, sample.path)
    if (forward === undefined) return false
    const key = forward.join(",")
    let entry = this.byPath.get(key)
    if (entry === undefined) {
      entry = { forward, samples: [] }
      this.byPath.set(key, entry)
      const destination = forward[forward.length - 1]!
      const list = this.byDestination.get(destination) ?? []
      list.push(entry)
      this.byDestination.set(destination, list)
    }
    entry.samples.push({ atMillis: sample.atMillis, rttMs: sample.rttMs, sent: sample.sent, received: sample.received })
    entry.samples.sort((a, b) => a.atMillis - b.atMillis)
    if (entry.samples.length > this.config.samplesPerPath)
      entry.samples.splice(0, entry.samples.length - this.config.samplesPerPath)
    return true
  }

  /** Fresh measurements of forward paths to `destination` (paths with no reply are left out). */
  measured(destination: SiteId, nowMillis: number): ReadonlyArray<MeasuredPath> {
    const out: Array<MeasuredPath> = []
    for (const { forward, samples } of this.byDestination.get(destination) ?? []) {
      const fresh = samples.filter((s) => nowMillis - s.atMillis <= this.config.sampleMaxAgeMillis)
      if (fresh.length === 0) continue
      const rtts = fresh.flatMap((s) => (s.rttMs === null ? [] : [s.rttMs])).sort((a, b) => a - b)
      if (rtts.length === 0) continue
      let sent = 0
      let received = 0
      for (const s of fresh) {
        sent += s.sent
        received += Math.min(s.sent, s.received)
      }
      const medianMs = rtts[(rtts.length - 1) >> 1]!
      const mean = rtts.reduce((a, b) => a + b, 0) / rtts.length
      const noiseMs = Math.sqrt(rtts.reduce((a, b) => a + (b - mean) ** 2, 0) / rtts.length)
      const costMs = linkCostFromInputs({
        rttMs: medianMs,
        jitterMs: 0,
        lossRatio: sent > 0 ? 1 - received / sent : 0,
        availability: 1,
      })
      out.push({ sites: forward, costMs, noiseMs, lastAtMillis: fresh[fresh.length - 1]!.atMillis })
    }
    return out
  }

  private lastVerifiedAt(key: string): number {
    const samples = this.byPath.get(key)?.samples
    return samples === undefined || samples.length === 0
      ? Number.NEGATIVE_INFINITY
      : samples[samples.length - 1]!.atMillis
  }

  /**
   * Which candidate paths to verify now. `firstHopUsable` filters candidates whose first hop
   * could not be used anyway (dead or infeasible), so the budget goes to paths that matter.
   */
  requests(
    mesh: MeshGraph,
    destinations: ReadonlyArray<SiteId>,
    nowMillis: number,
    firstHopUsable: (nextHop: SiteId, destination: SiteId) => boolean,
  ): ReadonlyArray<PathProbeRequest> {
    const { seed, probeBudget, k, reverifyAfterMillis, jitterMillis } = this.config
    const order = destinations
      .filter((d) => d !== this.self)
      .map((d) => ({ d, last: this.lastRequested.get(d) ?? Number.NEGATIVE_INFINITY, tie: hash32(seed, this.self, d) }))
      .sort((a, b) => a.last - b.last || a.tie - b.tie || a.d - b.d)
    const graph = mesh.indexed()
    const out: Array<PathProbeRequest> = []
    // Visiting a destination costs a Yen run: bound the visits so an all-fresh mesh stays cheap.
    const maxVisits = Math.max(8, 2 * probeBudget)
    let visits = 0
    for (const { d } of order) {
      if (out.length >= probeBudget || visits >= maxVisits) break
      visits++
      for (const path of kShortestPaths(graph, this.self, d, k)) {
        if (out.length >= probeBudget) break
        if (path.sites.length < 2 || !firstHopUsable(path.sites[1]!, d)) continue
        const key = path.sites.join(",")
        const verified = this.lastVerifiedAt(key)
        const requested = this.pathRequestedAt.get(key) ?? Number.NEGATIVE_INFINITY
        if (nowMillis - Math.max(verified, requested) < reverifyAfterMillis) continue
        const cycle = [...path.sites, ...path.sites.slice(0, -1).reverse()]
        const families: Array<0 | Family> = []
        for (let i = 0; i + 1 < cycle.length; i++) families.push(mesh.linkFamily(cycle[i]!, cycle[i + 1]!) ?? 0)
        const jitter = jitterMillis > 0 ? hash32(seed, this.self, d, nowMillis, out.length) % jitterMillis : 0
        out.push({ destination: d, path: cycle, families, notBeforeMillis: nowMillis + jitter })
        this.pathRequestedAt.set(key, nowMillis)
      }
      // A destination whose candidates are all fresh counts as visited too, so the round robin moves on.
      this.lastRequested.set(d, nowMillis)
    }
    return out
  }
}
