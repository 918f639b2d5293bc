/**
 * The report of a twin run (pure): per event the time until every site's forwarding converged,
 * route changes per site pair, loops and blackholes seen in the sampled next-hop graphs, and
 * the measured RTT of watched pairs against the oracle (the best path the injected impairments
 * allow). JSON for machines, `formatSummary` for people.
 */
import type { Family } from "@net-perf/engine"
import { type ForwardingSnapshot, type Site, tracePath } from "../analysis/NextHopGraph.js"
import { type DirectedLinkState, oraclePath, pathDelayMs } from "../analysis/Oracle.js"
import {
  type AnomalyEpisode,
  anomalyEpisodes,
  convergencePerEvent,
  type EventConvergence,
  flapsPerPair,
  type PairFlaps,
} from "../analysis/Timeline.js"
import { type EventPathQuality, lossAwareSymmetricOracleRtt, pathQualityPerWindow } from "./PathQuality.js"
import type { RttSampleLine } from "./Sampler.js"
import type { Impairment } from "./Scenario.js"

/** Impairment in force on every directed link and family: key `a>b` → family → impairment. */
export type ImpairmentState = ReadonlyMap<string, ReadonlyMap<Family, Impairment>>

export interface AppliedEvent {
  readonly label: string
  /** Scheduled time relative to t0. */
  readonly atSeconds: number
  /** When it was actually applied (epoch ms). */
  readonly appliedAtMillis: number
  /** Impairments in force after it (for the oracle). */
  readonly impairmentsAfter: ImpairmentState
  readonly error?: string
  /** Why an event did nothing (e.g. a daemon event at a site running plain BIRD). */
  readonly note?: string
}

export interface RunData {
  readonly scenario: string
  /** Routing the sites ran ("bird", "net-perf", or "mixed"). */
  readonly routing?: string
  readonly prefix: string
  readonly sites: number
  readonly backends: Record<string, unknown>
  readonly bird: Record<string, unknown>
  readonly bringUpMs: number
  readonly initialConvergenceMs: number | null
  readonly t0Millis: number
  readonly endMillis: number
  readonly initialImpairments: ImpairmentState
  readonly events: ReadonlyArray<AppliedEvent>
  readonly snapshots: ReadonlyArray<ForwardingSnapshot>
  readonly rtt: ReadonlyArray<{ readonly a: Site; readonly b: Site; readonly samples: ReadonlyArray<RttSampleLine> }>
}

export interface PairRttWindow {
  readonly a: Site
  readonly b: Site
  readonly window: string
  readonly samples: number
  readonly measuredMedianRttMs: number | null
  readonly lossRatio: number | null
  /** Injected delay along the paths routing used at the window's end (forward + reverse). */
  readonly chosenPathRttMs: number | null
  readonly chosenForward: string
  readonly chosenReverse: string
  readonly oracleRttMs: number | null
  readonly oracleForward: string
  readonly oracleReverse: string
  /** Least RTT over paths used both ways, avoiding links losing ≥ 1 % where it can (PathQuality.lossAwareSymmetricOracleRtt). */
  readonly symmetricOracleRttMs?: number | null
}

/** Raw series of a run for plots: change points of next hops, ping samples, event times. */
export interface TwinTimeline {
  readonly t0Millis: number
  readonly endMillis: number
  /** Applied events (epoch ms), same order as `TwinReport.events`. */
  readonly events: ReadonlyArray<{ readonly label: string; readonly atMillis: number }>
  /** One entry per change of (src, dst)'s next hop (`via: null` = no route); each pair's first sample included. */
  readonly nextHops: ReadonlyArray<{
    readonly atMillis: number
    readonly src: Site
    readonly dst: Site
    readonly via: Site | null
  }>
  /** Raw ping samples of watched pairs (`rttMs: null` = lost). */
  readonly rtt: ReadonlyArray<{
    readonly a: Site
    readonly b: Site
    readonly samples: ReadonlyArray<{ readonly atMillis: number; readonly rttMs: number | null }>
  }>
}

export interface TwinReport {
  readonly scenario: string
  readonly routing?: string
  readonly prefix: string
  readonly sites: number
  readonly backends: Record<string, unknown>
  readonly bird: Record<string, unknown>
  readonly bringUpMs: number
  readonly initialConvergenceMs: number | null
  readonly durationMs: number
  readonly samples: number
  readonly events: ReadonlyArray<
    EventConvergence &
      EventPathQuality & { readonly atSeconds: number; readonly error?: string; readonly note?: string }
  >
  /** Path quality from t0 to the first event (or the end). */
  readonly startQuality?: EventPathQuality
  readonly flaps: ReadonlyArray<PairFlaps>
  readonly totalRouteChanges: number
  readonly anomalies: ReadonlyArray<AnomalyEpisode>
  readonly rtt: ReadonlyArray<PairRttWindow>
  readonly timeline: TwinTimeline
}

const nextHopChangePoints = (snaps: ReadonlyArray<ForwardingSnapshot>): TwinTimeline["nextHops"] => {
  const out: Array<TwinTimeline["nextHops"][number]> = []
  const last = new Map<string, Site | null>()
  for (const s of snaps)
    for (const src of s.sites)
      for (const dst of s.sites) {
        if (src === dst) continue
        const via = s.nextHops.get(src)?.get(dst) ?? null
        const key = `${src}>${dst}`
        if (!last.has(key) || last.get(key) !== via) {
          last.set(key, via)
          out.push({ atMillis: s.atMillis, src, dst, via })
        }
      }
  return out
}

/** Directed link states for the oracle: a link is usable if any family's tunnel is. */
export const linkStates = (state: ImpairmentState): ReadonlyArray<DirectedLinkState> => {
  const out: DirectedLinkState[] = []
  for (const [key, byFamily] of state) {
    const [from, to] = key.split(">").map(Number) as [number, number]
    for (const i of byFamily.values())
      out.push({ from, to, delayMs: i.delayMs ?? 0, lossRatio: i.lossRatio ?? 0, down: i.down ?? false })
  }
  return out
}

const median = (xs: ReadonlyArray<number>): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

const round = (x: number | null, digits = 2): number | null => (x === null ? null : Number(x.toFixed(digits)))

const showTrace = (
  snap: ForwardingSnapshot | undefined,
  a: Site,
  b: Site,
): { text: string; path?: ReadonlyArray<Site> } => {
  if (snap === undefined) return { text: "?" }
  const t = tracePath(snap, a, b)
  const text = t.path.join(">")
  return t._tag === "Delivered" ? { text, path: t.path } : { text: `${text} (${t._tag.toLowerCase()})` }
}

export const buildReport = (d: RunData): TwinReport => {
  const snaps = [...d.snapshots].sort((x, y) => x.atMillis - y.atMillis)
  const initialLinks = linkStates(d.initialImpairments)
  const qualityWindows = [
    { fromMillis: d.t0Millis, links: initialLinks },
    ...d.events.map((e) => ({ fromMillis: e.appliedAtMillis, links: linkStates(e.impairmentsAfter) })),
  ].map((w, i, all) => ({ ...w, toMillis: all[i + 1]?.fromMillis ?? d.endMillis }))
  const quality = pathQualityPerWindow(snaps, initialLinks, qualityWindows, d.sites)
  const events = convergencePerEvent(
    snaps,
    d.events.map((e) => ({ atMillis: e.appliedAtMillis, label: e.label })),
    d.endMillis,
  ).map((c, i) => {
    const e = d.events[i] as AppliedEvent
    return {
      ...c,
      ...(quality[i + 1] as EventPathQuality),
      atSeconds: e.atSeconds,
      ...(e.error === undefined ? {} : { error: e.error }),
      ...(e.note === undefined ? {} : { note: e.note }),
    }
  })
  const flaps = flapsPerPair(snaps.filter((s) => s.atMillis >= d.t0Millis))
  const windows = [
    { label: "start", from: d.t0Millis, impairments: d.initialImpairments },
    ...d.events.map((e) => ({ label: e.label, from: e.appliedAtMillis, impairments: e.impairmentsAfter })),
  ]
  const rtt: PairRttWindow[] = []
  for (const pair of d.rtt)
    windows.forEach((w, i) => {
      const to = windows[i + 1]?.from ?? d.endMillis
      const conv = i === 0 ? 0 : (events[i - 1]?.convergedAfterMs ?? 0)
      // Judge the settled part of the window: after forwarding converged.
      const settledFrom = w.from + (conv ?? 0)
      const inWindow = pair.samples.filter((s) => s.atMillis >= settledFrom && s.atMillis < to)
      const replies = inWindow.flatMap((s) => (s.rttMs === null ? [] : [s.rttMs]))
      const lastSnap = [...snaps].reverse().find((s) => s.atMillis < to)
      const links = linkStates(w.impairments)
      const fwd = showTrace(lastSnap, pair.a, pair.b)
      const rev = showTrace(lastSnap, pair.b, pair.a)
      const fwdDelay = fwd.path === undefined ? undefined : pathDelayMs(links, fwd.path)
      const revDelay = rev.path === undefined ? undefined : pathDelayMs(links, rev.path)
      const of = oraclePath(links, pair.a, pair.b)
      const or = oraclePath(links, pair.b, pair.a)
      rtt.push({
        a: pair.a,
        b: pair.b,
        window: w.label,
        samples: inWindow.length,
        measuredMedianRttMs: round(median(replies)),
        lossRatio: inWindow.length === 0 ? null : round(1 - replies.length / inWindow.length, 4),
        chosenPathRttMs: fwdDelay === undefined || revDelay === undefined ? null : round(fwdDelay + revDelay),
        chosenForward: fwd.text,
        chosenReverse: rev.text,
        oracleRttMs: of === undefined || or === undefined ? null : round(of.delayMs + or.delayMs),
        oracleForward: of === undefined ? "unreachable" : of.path.join(">"),
        oracleReverse: or === undefined ? "unreachable" : or.path.join(">"),
        symmetricOracleRttMs: round(lossAwareSymmetricOracleRtt(links, d.sites)(pair.a, pair.b) ?? null),
      })
    })
  return {
    scenario: d.scenario,
    ...(d.routing === undefined ? {} : { routing: d.routing }),
    prefix: d.prefix,
    sites: d.sites,
    backends: d.backends,
    bird: d.bird,
    bringUpMs: d.bringUpMs,
    initialConvergenceMs: d.initialConvergenceMs,
    durationMs: d.endMillis - d.t0Millis,
    samples: snaps.length,
    events,
    ...(quality[0] === undefined ? {} : { startQuality: quality[0] }),
    flaps,
    totalRouteChanges: flaps.reduce((n, f) => n + f.nextHopChanges, 0),
    anomalies: anomalyEpisodes(snaps.filter((s) => s.atMillis >= d.t0Millis)),
    rtt,
    timeline: {
      t0Millis: d.t0Millis,
      endMillis: d.endMillis,
      events: d.events.map((e) => ({ label: e.label, atMillis: e.appliedAtMillis })),
      nextHops: nextHopChangePoints(snaps),
      rtt: d.rtt.map((p) => ({
        a: p.a,
        b: p.b,
        samples: p.samples.map((x) => ({ atMillis: x.atMillis, rttMs: x.rttMs })),
      })),
    },
  }
}

const ms = (x: number | null | undefined): string => (x === null || x === undefined ? "—" : `${Math.round(x)} ms`)

export const formatSummary = (r: TwinReport): string => {
  const lines = [
    `twin report: ${r.scenario} (${r.sites} sites, routing ${r.routing ?? "bird"}, run ${r.prefix})`,
    `  backends: ${Object.entries(r.backends)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}`,
    `  bird: ${Object.entries(r.bird)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}`,
    `  bring-up ${ms(r.bringUpMs)}, initial convergence ${ms(r.initialConvergenceMs)}, timeline ${(r.durationMs / 1000).toFixed(1)} s, ${r.samples} route samples`,
    "",
    "events (convergence = event → first sample of the state that then held):",
  ]
  if (r.events.length === 0) lines.push("  (none)")
  for (const e of r.events)
    lines.push(
      `  t=${e.atSeconds}s ${e.label}: ${e.error !== undefined ? `FAILED ${e.error}` : e.changed ? `converged after ${ms(e.convergedAfterMs)}` : "no forwarding change"}` +
        `, ${e.routeChanges} next-hop changes${e.settledDelivering ? "" : ", NOT all pairs delivered"}` +
        `${e.samplesWithLoops > 0 ? `, loops in ${e.samplesWithLoops} samples` : ""}` +
        `${e.samplesWithBlackholes > 0 ? `, blackholes in ${e.samplesWithBlackholes} samples` : ""}` +
        `${e.badPathMs > 0 ? `; on a dead/impaired path ${e.badPathAtEnd ? "until the end" : `for ${ms(e.badPathMs)}`}` : ""}` +
        `${e.offOptimumMs > 0 ? `; off the best path ${e.offOptimumAtEnd ? "until the end" : `for ${ms(e.offOptimumMs)}`}` : ""}` +
        `${e.note === undefined ? "" : ` (${e.note})`}`,
    )
  const flapping = r.flaps.filter((f) => f.nextHopChanges > 0).sort((a, b) => b.nextHopChanges - a.nextHopChanges)
  lines.push("", `route changes: ${r.totalRouteChanges} in total, ${flapping.length} pairs changed`)
  for (const f of flapping.slice(0, 10))
    lines.push(`  ${f.src}→${f.dst}: ${f.nextHopChanges} next-hop changes, paths seen ${f.pathsSeen.join(" | ")}`)
  lines.push("", `loops and blackholes: ${r.anomalies.length === 0 ? "none" : ""}`)
  for (const a of r.anomalies.slice(0, 10))
    lines.push(
      `  ${a.kind} towards ${a.dst} at ${a.where.join(">")}: ${a.samples} samples, ${ms(a.lastSeenMillis - a.firstSeenMillis)} long`,
    )
  if (r.rtt.length > 0) {
    lines.push("", "RTT of watched pairs (median after convergence) vs oracle:")
    for (const p of r.rtt)
      lines.push(
        `  ${p.a}-${p.b} [${p.window}]: measured ${p.measuredMedianRttMs === null ? "—" : `${p.measuredMedianRttMs} ms`}` +
          ` (loss ${p.lossRatio === null ? "—" : `${(p.lossRatio * 100).toFixed(1)} %`}), path ${p.chosenForward}/${p.chosenReverse}` +
          ` injected ${p.chosenPathRttMs ?? "—"} ms, oracle ${p.oracleRttMs ?? "—"} ms via ${p.oracleForward}/${p.oracleReverse}`,
      )
  }
  return `${lines.join("\n")}\n`
}
