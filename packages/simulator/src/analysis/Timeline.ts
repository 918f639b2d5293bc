/**
 * Computations over a run's sampled forwarding snapshots: convergence time per event, route
 * changes (flaps) per site pair, and loop/blackhole episodes. Pure: samples and event times in,
 * figures out. A window runs from one event to the next (or the end of the run); the forwarding
 * state in force when an event happens is the last sample before it.
 */
import {
  type ForwardingSnapshot,
  findBlackholes,
  findLoops,
  isFullyDelivering,
  nextHopOf,
  type Site,
  sameForwarding,
  tracePath,
} from "./NextHopGraph.js"

export interface TimelineEvent {
  readonly atMillis: number
  readonly label: string
}

export interface EventConvergence {
  readonly label: string
  readonly atMillis: number
  /** Time from the event to the first sample of the state that held until the window's end; 0 if nothing changed; null if no sample in the window. */
  readonly convergedAfterMs: number | null
  /** Whether forwarding changed at all in the window. */
  readonly changed: boolean
  /** Next-hop changes, summed over every (src, dst), within the window. */
  readonly routeChanges: number
  /** Whether the settled state delivers every ordered pair. */
  readonly settledDelivering: boolean
  /** How long the settled state was observed before the window ended (small = maybe not settled). */
  readonly settledForMs: number
  readonly samplesWithLoops: number
  readonly samplesWithBlackholes: number
}

/** Samples strictly sorted by time are assumed; callers sort. `endMillis` closes the last window. */
export const convergencePerEvent = (
  samples: ReadonlyArray<ForwardingSnapshot>,
  events: ReadonlyArray<TimelineEvent>,
  endMillis: number,
): ReadonlyArray<EventConvergence> => {
  const sorted = [...events].sort((a, b) => a.atMillis - b.atMillis)
  return sorted.map((ev, i) => {
    const windowEnd = sorted[i + 1]?.atMillis ?? endMillis
    const before = lastBefore(samples, ev.atMillis)
    const inWindow = samples.filter((s) => s.atMillis >= ev.atMillis && s.atMillis < windowEnd)
    if (inWindow.length === 0)
      return {
        label: ev.label,
        atMillis: ev.atMillis,
        convergedAfterMs: null,
        changed: false,
        routeChanges: 0,
        settledDelivering: before !== undefined && isFullyDelivering(before),
        settledForMs: 0,
        samplesWithLoops: 0,
        samplesWithBlackholes: 0,
      }
    let prev = before
    let settledIndex = 0
    let routeChanges = 0
    inWindow.forEach((s, k) => {
      if (prev !== undefined && !sameForwarding(prev, s)) {
        settledIndex = k
        routeChanges += countNextHopChanges(prev, s)
      }
      prev = s
    })
    const settled = inWindow[settledIndex] as ForwardingSnapshot
    const last = inWindow[inWindow.length - 1] as ForwardingSnapshot
    const changed = routeChanges > 0
    return {
      label: ev.label,
      atMillis: ev.atMillis,
      convergedAfterMs: changed ? settled.atMillis - ev.atMillis : 0,
      changed,
      routeChanges,
      settledDelivering: isFullyDelivering(settled),
      settledForMs: last.atMillis - settled.atMillis,
      samplesWithLoops: inWindow.filter((s) => findLoops(s).length > 0).length,
      samplesWithBlackholes: inWindow.filter((s) => findBlackholes(s).length > 0).length,
    }
  })
}

const lastBefore = (samples: ReadonlyArray<ForwardingSnapshot>, atMillis: number): ForwardingSnapshot | undefined => {
  let found: ForwardingSnapshot | undefined
  for (const s of samples) if (s.atMillis < atMillis) found = s
  return found
}

/** Number of (src, dst) whose next hop differs between a and b (a route appearing or vanishing counts). */
export const countNextHopChanges = (a: ForwardingSnapshot, b: ForwardingSnapshot): number => {
  const sites = new Set([...a.sites, ...b.sites])
  let n = 0
  for (const src of sites)
    for (const dst of sites) if (src !== dst && nextHopOf(a, src, dst) !== nextHopOf(b, src, dst)) n++
  return n
}

export interface PairFlaps {
  readonly src: Site
  readonly dst: Site
  /** Times src's next hop towards dst changed between consecutive samples. */
  readonly nextHopChanges: number
  /** Times the traced end-to-end path (or its outcome) changed. */
  readonly pathChanges: number
  /** Distinct end-to-end paths seen, as "0>2>1" (loops and blackholes marked). */
  readonly pathsSeen: ReadonlyArray<string>
}

const traceKey = (snap: ForwardingSnapshot, src: Site, dst: Site): string => {
  const t = tracePath(snap, src, dst)
  const p = t.path.join(">")
  return t._tag === "Delivered" ? p : t._tag === "Loop" ? `${p} (loop)` : `${p} (blackhole)`
}

/** Route changes per ordered pair across the whole run (pairs with no change included). */
export const flapsPerPair = (samples: ReadonlyArray<ForwardingSnapshot>): ReadonlyArray<PairFlaps> => {
  const first = samples[0]
  if (first === undefined) return []
  const sites = [...new Set(samples.flatMap((s) => s.sites))].sort((a, b) => a - b)
  const out: PairFlaps[] = []
  for (const src of sites)
    for (const dst of sites) {
      if (src === dst) continue
      let nextHopChanges = 0
      let pathChanges = 0
      const seen: string[] = []
      let prevHop: Site | undefined
      let prevPath: string | undefined
      samples.forEach((s, i) => {
        const hop = nextHopOf(s, src, dst)
        const path = traceKey(s, src, dst)
        if (i > 0 && hop !== prevHop) nextHopChanges++
        if (i > 0 && path !== prevPath) pathChanges++
        if (!seen.includes(path)) seen.push(path)
        prevHop = hop
        prevPath = path
      })
      out.push({ src, dst, nextHopChanges, pathChanges, pathsSeen: seen })
    }
  return out
}

export interface AnomalyEpisode {
  readonly kind: "loop" | "blackhole"
  /** For loops the canonical cycle; for blackholes [src, at]. */
  readonly where: ReadonlyArray<Site>
  readonly dst: Site
  readonly firstSeenMillis: number
  readonly lastSeenMillis: number
  readonly samples: number
}

/** Loops and blackholes seen over the run, merged across samples by (kind, dst, where). */
export const anomalyEpisodes = (samples: ReadonlyArray<ForwardingSnapshot>): ReadonlyArray<AnomalyEpisode> => {
  const byKey = new Map<string, { -readonly [K in keyof AnomalyEpisode]: AnomalyEpisode[K] }>()
  const note = (kind: "loop" | "blackhole", dst: Site, where: ReadonlyArray<Site>, at: number) => {
    const key = `${kind}:${dst}:${where.join(",")}`
    const e = byKey.get(key)
    if (e === undefined) byKey.set(key, { kind, where, dst, firstSeenMillis: at, lastSeenMillis: at, samples: 1 })
    else {
      e.lastSeenMillis = at
      e.samples++
    }
  }
  for (const s of samples) {
    for (const l of findLoops(s)) note("loop", l.dst, l.cycle, s.atMillis)
    for (const b of findBlackholes(s)) note("blackhole", b.dst, [b.src, b.at], s.atMillis)
  }
  return [...byKey.values()]
}
