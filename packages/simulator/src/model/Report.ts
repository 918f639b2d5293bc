/**
 * Figures of a model run and their aggregation over many runs: reaction time per event, time on
 * dead paths, route switches per pair per hour, loops and blackholes, stretch vs oracle, probe and
 * message overhead; JSON-ready objects plus a readable table. Pair-time figures are in
 * pair-seconds (one ordered pair of sites spending one second in that state).
 */
import { BLACKHOLE, DEAD, LOOP } from "./Forwarding.js"

/** Histogram of stretch values (≥ 1) with 0.0005 resolution up to 5; exact mean. */
export class StretchHistogram {
  static readonly binWidth = 0.0005
  static readonly top = 5
  readonly bins = new Float64Array(Math.ceil((StretchHistogram.top - 1) / StretchHistogram.binWidth) + 1)
  count = 0
  sum = 0
  max = 0

  add(stretch: number): void {
    if (!Number.isFinite(stretch)) return
    const v = Math.max(1, stretch)
    this.count++
    this.sum += v
    if (v > this.max) this.max = v
    const i = Math.min(this.bins.length - 1, Math.floor((v - 1) / StretchHistogram.binWidth))
    this.bins[i]!++
  }

  merge(other: StretchHistogram): void {
    for (let i = 0; i < this.bins.length; i++) this.bins[i]! += other.bins[i] as number
    this.count += other.count
    this.sum += other.sum
    this.max = Math.max(this.max, other.max)
  }

  mean(): number | null {
    return this.count === 0 ? null : this.sum / this.count
  }

  quantile(q: number): number | null {
    if (this.count === 0) return null
    const target = q * this.count
    let seen = 0
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i] as number
      if (seen >= target) return Math.min(this.max, 1 + (i + 1) * StretchHistogram.binWidth)
    }
    return this.max
  }
}

export interface EventRecord {
  readonly atMillis: number
  /** Hard = a link went down (judged by delivery); soft = step or recovery (judged by cost vs oracle). */
  readonly hard: boolean
  /**
   * failure: a link went down; step: a latency step; recovery: a link came back (the engine's
   * cost model distrusts a link that was just down, so recoveries settle slowly by design).
   */
  readonly kind: "failure" | "step" | "recovery"
  /** Ordered pairs whose path stopped being good at the event. */
  readonly affected: number
  /** Until every affected pair was on a good path at once; null = never within the run. */
  readonly reactionMillis: number | null
}

export interface ReportAccumulators {
  readonly statusMillis: [number, number, number, number]
  loopEpisodes: number
  loopMaxMillis: number
  readonly loopSamples: Array<{ atMillis: number; destination: number; cycle: string }>
  blackholeEpisodes: number
  deadEpisodes: number
  switches: number
  readonly switchesPerPair: Uint32Array
  decides: number
  readonly events: EventRecord[]
  eventsWithoutImpact: number
  readonly stretch: StretchHistogram
  readonly probesSent: Float64Array
  readonly pathProbesSent: Float64Array
  readonly messagesSent: Float64Array
  readonly messagesReceived: Float64Array
  readonly messageBytesSampled: Float64Array
}

export const emptyReportAccumulators = (sites: number): ReportAccumulators => ({
  statusMillis: [0, 0, 0, 0],
  loopEpisodes: 0,
  loopMaxMillis: 0,
  loopSamples: [],
  blackholeEpisodes: 0,
  deadEpisodes: 0,
  switches: 0,
  switchesPerPair: new Uint32Array(sites * sites),
  decides: 0,
  events: [],
  eventsWithoutImpact: 0,
  stretch: new StretchHistogram(),
  probesSent: new Float64Array(sites),
  pathProbesSent: new Float64Array(sites),
  messagesSent: new Float64Array(sites),
  messagesReceived: new Float64Array(sites),
  messageBytesSampled: new Float64Array(sites),
})

export interface Distribution {
  readonly count: number
  readonly mean: number | null
  readonly p50: number | null
  readonly p95: number | null
  readonly max: number | null
}

export const distributionOf = (values: ReadonlyArray<number>): Distribution => {
  if (values.length === 0) return { count: 0, mean: null, p50: null, p95: null, max: null }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
  return {
    count: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    max: sorted[sorted.length - 1] as number,
  }
}

export interface EventSummary {
  readonly count: number
  readonly unresolved: number
  /** Reaction times of resolved events, ms of simulated time. */
  readonly reactionMillis: Distribution
}

export interface RunReport {
  readonly name: string
  readonly seed: number
  readonly sites: number
  readonly directedLinks: number
  readonly measuredSeconds: number
  readonly hardFailures: EventSummary
  /** Latency steps (judged by cost vs oracle). */
  readonly softEvents: EventSummary
  readonly recoveries: EventSummary
  readonly eventsWithoutImpact: number
  readonly deadPathPairSeconds: number
  readonly deadEpisodes: number
  readonly loops: { readonly count: number; readonly pairSeconds: number; readonly maxDurationMillis: number }
  readonly blackholes: { readonly count: number; readonly pairSeconds: number }
  readonly switches: { readonly total: number; readonly perPairPerHour: number; readonly maxPerPair: number }
  readonly stretch: {
    readonly samples: number
    readonly mean: number | null
    readonly p95: number | null
    readonly max: number | null
  }
  readonly overhead: {
    readonly probesPerSitePerSecond: number
    readonly pathProbesPerSitePerSecond: number
    readonly messagesSentPerSitePerSecond: number
    readonly messagesReceivedPerSitePerSecond: number
    readonly messageBytes: number | null
    readonly decidesPerSitePerSecond: number
  }
  /** First loops seen (destination and cycle), to reproduce engine defects. */
  readonly loopSamples: ReadonlyArray<{
    readonly atMillis: number
    readonly destination: number
    readonly cycle: string
  }>
  readonly events?: ReadonlyArray<EventRecord>
  /** Raw stretch histogram, for aggregation (not serialised by `toJson`). */
  readonly stretchHistogram: StretchHistogram
}

const sumOf = (a: Float64Array) => a.reduce((x, y) => x + y, 0)

const eventSummary = (events: ReadonlyArray<EventRecord>): EventSummary => ({
  count: events.length,
  unresolved: events.filter((e) => e.reactionMillis === null).length,
  reactionMillis: distributionOf(events.flatMap((e) => (e.reactionMillis === null ? [] : [e.reactionMillis]))),
})

export const summarise = (
  acc: ReportAccumulators,
  meta: {
    readonly name: string
    readonly seed: number
    readonly sites: number
    readonly directedLinks: number
    readonly measuredMillis: number
    readonly keepEventDetails: boolean
  },
): RunReport => {
  const n = meta.sites
  const seconds = meta.measuredMillis / 1000
  const pairs = n * (n - 1)
  let maxPerPair = 0
  for (const v of acc.switchesPerPair) if (v > maxPerPair) maxPerPair = v
  const sampled = [...acc.messageBytesSampled].filter((b) => b > 0)
  const perSiteSecond = (x: number) => (seconds > 0 ? x / n / seconds : 0)
  return {
    name: meta.name,
    seed: meta.seed,
    sites: n,
    directedLinks: meta.directedLinks,
    measuredSeconds: seconds,
    hardFailures: eventSummary(acc.events.filter((e) => e.kind === "failure")),
    softEvents: eventSummary(acc.events.filter((e) => e.kind === "step")),
    recoveries: eventSummary(acc.events.filter((e) => e.kind === "recovery")),
    eventsWithoutImpact: acc.eventsWithoutImpact,
    deadPathPairSeconds: acc.statusMillis[DEAD] / 1000,
    deadEpisodes: acc.deadEpisodes,
    loops: {
      count: acc.loopEpisodes,
      pairSeconds: acc.statusMillis[LOOP] / 1000,
      maxDurationMillis: acc.loopMaxMillis,
    },
    blackholes: { count: acc.blackholeEpisodes, pairSeconds: acc.statusMillis[BLACKHOLE] / 1000 },
    switches: {
      total: acc.switches,
      perPairPerHour: seconds > 0 && pairs > 0 ? acc.switches / pairs / (seconds / 3600) : 0,
      maxPerPair,
    },
    stretch: {
      samples: acc.stretch.count,
      mean: acc.stretch.mean(),
      p95: acc.stretch.quantile(0.95),
      max: acc.stretch.count === 0 ? null : acc.stretch.max,
    },
    overhead: {
      probesPerSitePerSecond: perSiteSecond(sumOf(acc.probesSent)),
      pathProbesPerSitePerSecond: perSiteSecond(sumOf(acc.pathProbesSent)),
      messagesSentPerSitePerSecond: perSiteSecond(sumOf(acc.messagesSent)),
      messagesReceivedPerSitePerSecond: perSiteSecond(sumOf(acc.messagesReceived)),
      messageBytes: sampled.length === 0 ? null : sampled.reduce((a, b) => a + b, 0) / sampled.length,
      decidesPerSitePerSecond: perSiteSecond(acc.decides),
    },
    loopSamples: acc.loopSamples,
    ...(meta.keepEventDetails ? { events: acc.events } : {}),
    stretchHistogram: acc.stretch,
  }
}

/** The report without the raw histogram, ready for JSON.stringify. */
export const toJson = (r: RunReport): Omit<RunReport, "stretchHistogram"> => {
  const { stretchHistogram: _, ...rest } = r
  return rest
}

/** Many runs of one configuration folded into one row. */
export interface AggregateReport {
  readonly label: string
  readonly runs: number
  readonly sites: number
  readonly hardFailures: EventSummary
  readonly softEvents: EventSummary
  readonly recoveries: EventSummary
  readonly deadPathPairSeconds: number
  readonly loops: number
  readonly loopPairSeconds: number
  readonly blackholes: number
  readonly blackholePairSeconds: number
  readonly switchesPerPairPerHour: number
  readonly stretchMean: number | null
  readonly stretchP95: number | null
  readonly probesPerSitePerSecond: number
  readonly messagesSentPerSitePerSecond: number
  readonly messagesReceivedPerSitePerSecond: number
  readonly messageBytes: number | null
}

export const aggregate = (label: string, reports: ReadonlyArray<RunReport>): AggregateReport => {
  const hist = new StretchHistogram()
  for (const r of reports) hist.merge(r.stretchHistogram)
  const mean = (f: (r: RunReport) => number) =>
    reports.length === 0 ? 0 : reports.reduce((a, r) => a + f(r), 0) / reports.length
  const events = (pick: (r: RunReport) => EventSummary, kind: EventRecord["kind"]): EventSummary => {
    // Reaction distributions are recomputed from per-event data when kept, else merged approximately.
    const detailed = reports.every((r) => r.events !== undefined)
    if (detailed) return eventSummary(reports.flatMap((r) => (r.events ?? []).filter((e) => e.kind === kind)))
    const parts = reports.map(pick)
    const count = parts.reduce((a, p) => a + p.count, 0)
    const resolved = parts.filter((p) => p.reactionMillis.count > 0)
    return {
      count,
      unresolved: parts.reduce((a, p) => a + p.unresolved, 0),
      reactionMillis: {
        count: resolved.reduce((a, p) => a + p.reactionMillis.count, 0),
        mean:
          resolved.length === 0
            ? null
            : resolved.reduce((a, p) => a + (p.reactionMillis.mean ?? 0), 0) / resolved.length,
        p50: null,
        p95: resolved.length === 0 ? null : Math.max(...resolved.map((p) => p.reactionMillis.p95 ?? 0)),
        max: resolved.length === 0 ? null : Math.max(...resolved.map((p) => p.reactionMillis.max ?? 0)),
      },
    }
  }
  const bytes = reports.flatMap((r) => (r.overhead.messageBytes === null ? [] : [r.overhead.messageBytes]))
  return {
    label,
    runs: reports.length,
    sites: reports[0]?.sites ?? 0,
    hardFailures: events((r) => r.hardFailures, "failure"),
    softEvents: events((r) => r.softEvents, "step"),
    recoveries: events((r) => r.recoveries, "recovery"),
    deadPathPairSeconds: reports.reduce((a, r) => a + r.deadPathPairSeconds, 0),
    loops: reports.reduce((a, r) => a + r.loops.count, 0),
    loopPairSeconds: reports.reduce((a, r) => a + r.loops.pairSeconds, 0),
    blackholes: reports.reduce((a, r) => a + r.blackholes.count, 0),
    blackholePairSeconds: reports.reduce((a, r) => a + r.blackholes.pairSeconds, 0),
    switchesPerPairPerHour: mean((r) => r.switches.perPairPerHour),
    stretchMean: hist.mean(),
    stretchP95: hist.quantile(0.95),
    probesPerSitePerSecond: mean((r) => r.overhead.probesPerSitePerSecond),
    messagesSentPerSitePerSecond: mean((r) => r.overhead.messagesSentPerSitePerSecond),
    messagesReceivedPerSitePerSecond: mean((r) => r.overhead.messagesReceivedPerSitePerSecond),
    messageBytes: bytes.length === 0 ? null : bytes.reduce((a, b) => a + b, 0) / bytes.length,
  }
}

const fmt = (v: number | null | undefined, digits = 2): string =>
  v === null || v === undefined ? "-" : v.toFixed(digits)
const secs = (ms: number | null | undefined): string => (ms === null || ms === undefined ? "-" : (ms / 1000).toFixed(2))

/** A fixed-width table, one aggregate per row. */
export const formatTable = (rows: ReadonlyArray<AggregateReport>): string => {
  const header = [
    "configuration",
    "N",
    "runs",
    "hard ev",
    "react p50 s",
    "react p95 s",
    "react max s",
    "unres",
    "step p95 s",
    "recov p95 s",
    "dead pair·s",
    "loops",
    "loop pair·s",
    "blackh pair·s",
    "switch/pair/h",
    "stretch mean",
    "stretch p95",
    "probes/site/s",
    "msgs/site/s",
  ]
  const body = rows.map((r) => [
    r.label,
    String(r.sites),
    String(r.runs),
    String(r.hardFailures.count),
    secs(r.hardFailures.reactionMillis.p50),
    secs(r.hardFailures.reactionMillis.p95),
    secs(r.hardFailures.reactionMillis.max),
    String(r.hardFailures.unresolved + r.softEvents.unresolved + r.recoveries.unresolved),
    secs(r.softEvents.reactionMillis.p95),
    secs(r.recoveries.reactionMillis.p95),
    fmt(r.deadPathPairSeconds, 1),
    String(r.loops),
    fmt(r.loopPairSeconds, 1),
    fmt(r.blackholePairSeconds, 1),
    fmt(r.switchesPerPairPerHour, 3),
    fmt(r.stretchMean, 4),
    fmt(r.stretchP95, 4),
    fmt(r.probesPerSitePerSecond, 1),
    fmt(r.messagesSentPerSitePerSecond + r.messagesReceivedPerSitePerSecond, 1),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}
