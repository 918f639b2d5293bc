/**
 * How good the forwarding was after each event (pure): how long some pair stayed on a dead or
 * impaired path, and how long some pair stayed off the best path a routing that measures
 * round-trip times can know. Each event is judged on what it changed (see pathQualityPerWindow).
 *
 * Decision a reader must know: the yardstick is the *symmetric* oracle — the least RTT over
 * paths used both ways (a link's weight is its delay a→b plus b→a). A daemon probing RTTs cannot
 * see that a +50 ms delay is one way only, so it moves both directions; the one-way oracle
 * (Oracle.ts, shown in the RTT table) would count that as a loss against a bar nothing that
 * measures RTT could meet. "Impaired" is judged against the scenario's initial state: a link is
 * impaired when down, losing ≥ 1 %, or slower than at t0 by more than max(2 ms, 20 %).
 */
import { type ForwardingSnapshot, type Site, tracePath } from "../analysis/NextHopGraph.js"
import { type DirectedLinkState, pathDelayMs } from "../analysis/Oracle.js"

/** Loss at or above this makes a link impaired. */
export const impairedLossRatio = 0.01
/** A pair is off the optimum when its RTT exceeds the symmetric oracle's by more than this. */
export const offOptimumRelative = 0.1
export const offOptimumAbsoluteMs = 1

const usable = (l: DirectedLinkState): boolean => !l.down && l.lossRatio < 1 && Number.isFinite(l.delayMs)

/** Least one-way delay a→b over usable links (parallel links collapse to the faster). */
const linkDelay = (links: ReadonlyArray<DirectedLinkState>): Map<string, number> => {
  const out = new Map<string, number>()
  for (const l of links) {
    if (!usable(l)) continue
    const k = `${l.from}>${l.to}`
    const prev = out.get(k)
    if (prev === undefined || l.delayMs < prev) out.set(k, l.delayMs)
  }
  return out
}

/** All-pairs least RTT over symmetric paths (Floyd–Warshall on link RTTs; sites are few). */
export const symmetricOracleRtt = (
  links: ReadonlyArray<DirectedLinkState>,
  sites: number,
): ((a: Site, b: Site) => number | undefined) => {
  const d = linkDelay(links)
  const rtt: number[][] = Array.from({ length: sites }, (_, i) =>
    Array.from({ length: sites }, (_, j) => (i === j ? 0 : Number.POSITIVE_INFINITY)),
  )
  for (let a = 0; a < sites; a++)
    for (let b = 0; b < sites; b++) {
      const f = d.get(`${a}>${b}`)
      const r = d.get(`${b}>${a}`)
      if (a !== b && f !== undefined && r !== undefined) (rtt[a] as number[])[b] = f + r
    }
  for (let k = 0; k < sites; k++)
    for (let i = 0; i < sites; i++)
      for (let j = 0; j < sites; j++) {
        const via = (rtt[i]?.[k] as number) + (rtt[k]?.[j] as number)
        if (via < (rtt[i]?.[j] as number)) (rtt[i] as number[])[j] = via
      }
  return (a, b) => {
    const x = rtt[a]?.[b]
    return x === undefined || !Number.isFinite(x) ? undefined : x
  }
}

/**
 * The symmetric oracle a user wants when some links lose packets: the least RTT over links losing
 * < 1 % (`impairedLossRatio`), and only for a pair those cannot connect the least RTT over every
 * usable link. (The RTT-only oracle keeps a pair on a link losing 5 %, and then counts moving off
 * it — the point of reacting to loss — as a path twice as slow as the best.)
 */
export const lossAwareSymmetricOracleRtt = (
  links: ReadonlyArray<DirectedLinkState>,
  sites: number,
): ((a: Site, b: Site) => number | undefined) => {
  const lossless = symmetricOracleRtt(
    links.filter((l) => l.lossRatio < impairedLossRatio),
    sites,
  )
  const any = symmetricOracleRtt(links, sites)
  return (a, b) => lossless(a, b) ?? any(a, b)
}

/** Directed links that are impaired now compared with t0. */
export const impairedLinks = (
  initial: ReadonlyArray<DirectedLinkState>,
  current: ReadonlyArray<DirectedLinkState>,
): Set<string> => {
  const base = linkDelay(initial)
  const out = new Set<string>()
  const now = linkDelay(current)
  for (const l of current) {
    const k = `${l.from}>${l.to}`
    if (l.down || l.lossRatio >= impairedLossRatio) out.add(k)
  }
  for (const [k, b] of base) {
    const n = now.get(k)
    if (n === undefined || n > b + Math.max(2, 0.2 * b)) out.add(k)
  }
  return out
}

export interface SampleQuality {
  /** Ordered pairs not delivered (loop or blackhole) or crossing an impaired link. */
  readonly onBadPath: number
  /** Unordered pairs whose RTT (forward + reverse path) is off the symmetric oracle. */
  readonly offOptimum: number
}

/** Judges one forwarding snapshot against the links in force. */
export const judgeSnapshot = (
  snap: ForwardingSnapshot,
  links: ReadonlyArray<DirectedLinkState>,
  impaired: ReadonlySet<string>,
  oracle: (a: Site, b: Site) => number | undefined,
  pairJudged: (a: Site, b: Site) => boolean = () => true,
): SampleQuality => {
  let onBadPath = 0
  let offOptimum = 0
  const delivered = new Map<string, ReadonlyArray<Site>>()
  for (const src of snap.sites)
    for (const dst of snap.sites) {
      if (src === dst) continue
      const t = tracePath(snap, src, dst)
      if (t._tag !== "Delivered") {
        onBadPath++
        continue
      }
      delivered.set(`${src}>${dst}`, t.path)
      let bad = false
      for (let i = 0; i + 1 < t.path.length; i++) if (impaired.has(`${t.path[i]}>${t.path[i + 1]}`)) bad = true
      if (bad) onBadPath++
    }
  for (const a of snap.sites)
    for (const b of snap.sites) {
      if (b <= a || !pairJudged(a, b)) continue
      const best = oracle(a, b)
      if (best === undefined) continue
      const fwd = delivered.get(`${a}>${b}`)
      const rev = delivered.get(`${b}>${a}`)
      const f = fwd === undefined ? undefined : pathDelayMs(links, fwd)
      const r = rev === undefined ? undefined : pathDelayMs(links, rev)
      if (f === undefined || r === undefined || f + r > best * (1 + offOptimumRelative) + offOptimumAbsoluteMs)
        offOptimum++
    }
  return { onBadPath, offOptimum }
}

export interface EventPathQuality {
  /** Event → first sample after the last one (before the next event) with some pair on a dead/impaired path; 0 if none. */
  readonly badPathMs: number
  /** Some pair was still on a bad path at the window's last sample (the routing never left it). */
  readonly badPathAtEnd: boolean
  /** Event → first sample after the last one with some pair off the symmetric optimum; 0 if none. */
  readonly offOptimumMs: number
  readonly offOptimumAtEnd: boolean
  /** Pair-seconds spent on bad paths in the window (ordered pairs × sample periods). */
  readonly badPairSeconds: number
}

export interface QualityWindow {
  readonly fromMillis: number
  readonly toMillis: number
  readonly links: ReadonlyArray<DirectedLinkState>
}

/**
 * Path quality per window (one per event; windows end at the next event or the run's end). Each
 * window judges only what its event changed, so an impairment left in force by an earlier event
 * is not charged again: links newly impaired by it, and pairs whose best RTT it changed. The
 * first window (t0) judges everything.
 */
export const pathQualityPerWindow = (
  snaps: ReadonlyArray<ForwardingSnapshot>,
  initial: ReadonlyArray<DirectedLinkState>,
  windows: ReadonlyArray<QualityWindow>,
  sites: number,
): ReadonlyArray<EventPathQuality> =>
  windows.map((w, wi) => {
    const previous = wi === 0 ? undefined : (windows[wi - 1] as QualityWindow).links
    const impairedNow = impairedLinks(initial, w.links)
    const impairedBefore = previous === undefined ? new Set<string>() : impairedLinks(initial, previous)
    const impaired = new Set([...impairedNow].filter((k) => !impairedBefore.has(k)))
    const oracle = symmetricOracleRtt(w.links, sites)
    const oracleBefore = previous === undefined ? undefined : symmetricOracleRtt(previous, sites)
    const pairJudged = (a: Site, b: Site): boolean => {
      if (oracleBefore === undefined) return true
      const x = oracle(a, b)
      const y = oracleBefore(a, b)
      return x === undefined || y === undefined ? x !== y : Math.abs(x - y) > 0.5
    }
    const inside = snaps.filter((s) => s.atMillis >= w.fromMillis && s.atMillis < w.toMillis)
    let lastBad: number | undefined
    let lastOff: number | undefined
    let badPairSeconds = 0
    let badAtEnd = false
    let offAtEnd = false
    inside.forEach((s, i) => {
      const q = judgeSnapshot(s, w.links, impaired, oracle, pairJudged)
      const next = inside[i + 1]?.atMillis ?? w.toMillis
      badPairSeconds += (q.onBadPath * (next - s.atMillis)) / 1000
      // Counted up to the next sample: the first one seen good.
      if (q.onBadPath > 0) lastBad = next
      if (q.offOptimum > 0) lastOff = next
      if (i === inside.length - 1) {
        badAtEnd = q.onBadPath > 0
        offAtEnd = q.offOptimum > 0
      }
    })
    return {
      badPathMs: lastBad === undefined ? 0 : lastBad - w.fromMillis,
      badPathAtEnd: badAtEnd,
      offOptimumMs: lastOff === undefined ? 0 : lastOff - w.fromMillis,
      offOptimumAtEnd: offAtEnd,
      badPairSeconds: Number(badPairSeconds.toFixed(2)),
    }
  })
