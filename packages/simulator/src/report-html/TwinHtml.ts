/**
 * A twin run report (`TwinReport`, as `netlab run --report` writes it) as one self-contained HTML
 * page: summary, per-event convergence (beside a baseline run when given), RTT of every watched
 * pair over time against the injected best path, next-hop swimlanes, loops and blackholes.
 *
 * Decision: the page shows only what the report recorded. The raw series (ping samples, next-hop
 * change points) come from the optional `timeline`; a report without it still gets every chart
 * that its windows and events allow, and a note says what is missing instead of inventing it.
 */
import type { AnomalyEpisode, EventConvergence, PairFlaps } from "../analysis/Timeline.js"
import type { EventPathQuality } from "../twin/PathQuality.js"
import type { PairRttWindow, TwinReport, TwinTimeline } from "../twin/Report.js"
import {
  barChart,
  type EventMarker,
  type Lane,
  type LineSeries,
  lineChart,
  type ShadedInterval,
  swimlaneChart,
} from "./Charts.js"
import {
  type Cell,
  escapeHtml,
  facts,
  figure,
  fmtMs,
  fmtNum,
  fmtPct,
  note,
  okabeIto,
  page,
  section,
  table,
  wide,
} from "./Html.js"

/**
 * What the renderer reads: the twin's report as saved by any version so far — `timeline`,
 * `routing` and the per-event path quality arrived later, so they are optional here.
 */
export type TwinReportInput = Omit<TwinReport, "timeline" | "events" | "routing"> & {
  readonly timeline?: TwinTimeline
  readonly routing?: string
  readonly events: ReadonlyArray<
    EventConvergence &
      Partial<EventPathQuality> & { readonly atSeconds: number; readonly error?: string; readonly note?: string }
  >
}

export interface TwinHtmlOptions {
  readonly title?: string
  /** Name of this run in comparisons (default: the report's `routing`, else "this run"). */
  readonly label?: string
  /** A run of the same scenario to compare with (e.g. plain BIRD, the baseline). */
  readonly baseline?: TwinReportInput
  readonly baselineLabel?: string
}

/** Epoch ms of the timeline's start: recorded, or derived from the first event's schedule. */
const t0Of = (r: TwinReportInput): number | undefined => {
  if (r.timeline !== undefined) return r.timeline.t0Millis
  const first = r.events[0]
  return first === undefined ? undefined : first.atMillis - first.atSeconds * 1000
}

const secondsOf = (t0: number, atMillis: number) => Math.round(((atMillis - t0) / 1000) * 1000) / 1000

const sumOf = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

const eventMarkers = (r: TwinReportInput): ReadonlyArray<EventMarker> =>
  r.events.map((e, i) => ({ atSeconds: e.atSeconds, tag: `E${i + 1}` }))

const eventKey = (r: TwinReportInput): string =>
  r.events.map((e, i) => `E${i + 1} t=${e.atSeconds} s: ${e.label}`).join("; ")

const anomalyBands = (
  r: TwinReportInput,
  keep: (a: AnomalyEpisode) => boolean = () => true,
): ReadonlyArray<ShadedInterval> => {
  const t0 = t0Of(r)
  if (t0 === undefined) return []
  return r.anomalies.filter(keep).map((a) => ({
    kind: a.kind,
    fromSeconds: secondsOf(t0, a.firstSeenMillis),
    toSeconds: secondsOf(t0, a.lastSeenMillis),
  }))
}

const pairsOf = (r: TwinReportInput): ReadonlyArray<readonly [number, number]> => {
  const seen = new Map<string, readonly [number, number]>()
  for (const w of r.rtt) seen.set(`${w.a}-${w.b}`, [w.a, w.b])
  for (const p of r.timeline?.rtt ?? []) seen.set(`${p.a}-${p.b}`, [p.a, p.b])
  return [...seen.values()]
}

/** Windows of one pair in report order: "start", then one per event. */
const windowsOf = (r: TwinReportInput, a: number, b: number): ReadonlyArray<PairRttWindow & { fromSeconds: number }> =>
  r.rtt
    .filter((w) => w.a === a && w.b === b)
    .map((w, i) => ({ ...w, fromSeconds: i === 0 ? 0 : (r.events[i - 1]?.atSeconds ?? 0) }))

const stepPoints = (
  windows: ReadonlyArray<PairRttWindow & { fromSeconds: number }>,
  pick: (w: PairRttWindow) => number | null,
  endSeconds: number,
): ReadonlyArray<readonly [number, number | null]> => {
  const pts: Array<readonly [number, number | null]> = windows.map((w) => [w.fromSeconds, pick(w)] as const)
  const last = windows[windows.length - 1]
  if (last !== undefined) pts.push([endSeconds, pick(last)])
  return pts
}

const summarySection = (r: TwinReportInput, o: TwinHtmlOptions): string => {
  const loops = r.anomalies.filter((a) => a.kind === "loop")
  const holes = r.anomalies.filter((a) => a.kind === "blackhole")
  const converged = r.events.map((e) => e.convergedAfterMs).filter((x): x is number => x !== null)
  const worst = converged.length === 0 ? null : Math.max(...converged)
  const run = facts([
    ["scenario", r.scenario],
    ["routing", r.routing ?? o.label ?? "plain BIRD (twin default)"],
    ["sites", r.sites],
    ["run", r.prefix],
    [
      "backends",
      Object.entries(r.backends)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join(", "),
    ],
    [
      "BIRD",
      Object.entries(r.bird)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join(", "),
    ],
  ])
  const figures = facts([
    ["bring-up", fmtMs(r.bringUpMs)],
    ["initial convergence", fmtMs(r.initialConvergenceMs)],
    ["timeline", `${(r.durationMs / 1000).toFixed(1)} s, ${r.samples} route samples`],
    ["events", r.events.length],
    ["slowest convergence", worst === null ? "—" : fmtMs(worst)],
    ["route changes (all pairs)", r.totalRouteChanges],
    [
      "loops / blackholes",
      {
        html: `<span class="${loops.length + holes.length === 0 ? "ok" : "bad"}">${loops.length} / ${holes.length}</span>`,
        numeric: false,
      },
    ],
  ])
  const compare =
    o.baseline === undefined
      ? ""
      : `<h3>Beside the baseline</h3>${table(
          ["figure", o.label ?? r.routing ?? "this run", o.baselineLabel ?? o.baseline.routing ?? "baseline"],
          [
            ["initial convergence", fmtMs(r.initialConvergenceMs), fmtMs(o.baseline.initialConvergenceMs)],
            ["route changes", r.totalRouteChanges, o.baseline.totalRouteChanges],
            ["loop episodes", loops.length, o.baseline.anomalies.filter((a) => a.kind === "loop").length],
            ["blackhole episodes", holes.length, o.baseline.anomalies.filter((a) => a.kind === "blackhole").length],
            ...r.events.map(
              (e, i): ReadonlyArray<Cell> => [
                `E${i + 1} convergence`,
                fmtMs(e.convergedAfterMs),
                fmtMs(o.baseline?.events[i]?.convergedAfterMs),
              ],
            ),
            ...r.events.flatMap((e, i): ReadonlyArray<ReadonlyArray<Cell>> => {
              const b = o.baseline?.events[i]
              return e.badPathMs === undefined && b?.badPathMs === undefined
                ? []
                : [[`E${i + 1} some pair on a dead/impaired path`, fmtMs(e.badPathMs), fmtMs(b?.badPathMs)]]
            }),
            ...(r.events.some((e) => e.badPairSeconds !== undefined)
              ? [
                  [
                    "pair-seconds on dead/impaired paths",
                    fmtNum(sumOf(r.events.map((e) => e.badPairSeconds ?? 0)), 1),
                    fmtNum(sumOf(o.baseline.events.map((e) => e.badPairSeconds ?? 0)), 1),
                  ] as ReadonlyArray<Cell>,
                ]
              : []),
          ],
        )}`
  return section("Summary", `<div class="grid">${run}${figures}</div>${compare}`, "summary")
}

/** Per event, this run and (when given) the baseline, in seconds. */
const perEventSeries = (
  r: TwinReportInput,
  o: TwinHtmlOptions,
  pick: (e: TwinReportInput["events"][number]) => number | null | undefined,
) => {
  const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000)
  return [
    { name: o.label ?? r.routing ?? "this run", values: r.events.map((e) => seconds(pick(e))), colour: okabeIto.blue },
    ...(o.baseline === undefined
      ? []
      : [
          {
            name: o.baselineLabel ?? o.baseline.routing ?? "baseline (plain BIRD)",
            values: r.events.map((_, i) => {
              const b = o.baseline?.events[i]
              return b === undefined ? null : seconds(pick(b))
            }),
            colour: okabeIto.orange,
          },
        ]),
  ]
}

const eventsSection = (r: TwinReportInput, o: TwinHtmlOptions): string => {
  if (r.events.length === 0) return section("Events", note("The scenario has no timeline events."), "events")
  const quality = r.events.some((e) => e.badPathMs !== undefined)
  const rows = r.events.map(
    (e, i): ReadonlyArray<Cell> => [
      `E${i + 1}`,
      e.atSeconds,
      e.note === undefined ? e.label : `${e.label} (${e.note})`,
      e.error !== undefined
        ? { html: `<span class="bad">failed: ${escapeHtml(e.error)}</span>` }
        : e.changed
          ? fmtMs(e.convergedAfterMs)
          : "no forwarding change",
      ...(quality
        ? [
            e.badPathAtEnd === true ? "until the end" : fmtMs(e.badPathMs),
            e.offOptimumAtEnd === true ? "until the end" : fmtMs(e.offOptimumMs),
          ]
        : []),
      e.routeChanges,
      { html: e.settledDelivering ? '<span class="ok">yes</span>' : '<span class="bad">no</span>' },
      e.samplesWithLoops,
      e.samplesWithBlackholes,
    ],
  )
  const tbl = wide(
    table(
      [
        "",
        "t (s)",
        "event",
        "converged after",
        ...(quality ? ["some pair on a dead/impaired path for", "some pair off the best RTT path for"] : []),
        "next-hop changes",
        "all pairs delivered",
        "samples with loops",
        "samples with blackholes",
      ],
      rows,
    ),
  )
  const categories = r.events.map((e, i) => `E${i + 1} ${e.label}`)
  const events = r.events.map((_, i) => `E${i + 1}`).join("|")
  const series = perEventSeries(r, o, (e) => e.convergedAfterMs)
  const charts = [
    figure(
      barChart({ categories, xName: "event", yName: "convergence time (s)", series, valueDigits: 2 }),
      `Convergence time per event: from the event to the first route sample of the state that then held (0 = forwarding did not change). ${eventKey(r)}`,
      { kind: "convergence", series: series.map((s) => s.name).join("|"), events },
    ),
  ]
  if (quality) {
    const bad = perEventSeries(r, o, (e) => e.badPathMs)
    charts.push(
      figure(
        barChart({
          categories,
          xName: "event",
          yName: "time on a dead or impaired path (s)",
          series: bad,
          valueDigits: 2,
        }),
        "Reaction per event: from the event until no pair was forwarding over a dead or impaired link any more " +
          "(0 = none was; a bar reaching the next event means routing never left it).",
        { kind: "bad-path", series: bad.map((s) => s.name).join("|"), events },
      ),
    )
  }
  return section("Events and convergence", `${tbl}${charts.join("")}`, "events")
}

const rttSection = (r: TwinReportInput): string => {
  const pairs = pairsOf(r)
  if (pairs.length === 0) return section("RTT of watched pairs", note("The scenario watches no site pairs."), "rtt")
  const t0 = t0Of(r)
  const endSeconds = r.durationMs / 1000
  const parts: string[] = []
  if (r.timeline === undefined)
    parts.push(
      note(
        "This report has no raw ping series (no `timeline`): the charts show the per-window medians the report keeps. " +
          "Twin reports with a timeline also draw every probe.",
      ),
    )
  for (const [a, b] of pairs) {
    const windows = windowsOf(r, a, b)
    const series: LineSeries[] = []
    const raw = r.timeline?.rtt.find((p) => p.a === a && p.b === b)
    if (raw !== undefined && t0 !== undefined) {
      series.push({
        name: "measured RTT (ping)",
        points: raw.samples.map((s) => [secondsOf(t0, s.atMillis), s.rttMs] as const),
        colour: okabeIto.blue,
        widthPx: 1.3,
      })
      const lost = raw.samples.filter((s) => s.rttMs === null)
      if (lost.length > 0)
        series.push({
          name: "lost probe (drawn at 0)",
          points: lost.map((s) => [secondsOf(t0, s.atMillis), 0] as const),
          colour: okabeIto.vermillion,
          marks: "triangle",
        })
    } else {
      series.push({
        name: "measured median (after convergence)",
        points: stepPoints(windows, (w) => w.measuredMedianRttMs, endSeconds),
        colour: okabeIto.blue,
        step: true,
        widthPx: 2.2,
      })
    }
    series.push({
      name: "oracle (best injected path)",
      points: stepPoints(windows, (w) => w.oracleRttMs, endSeconds),
      colour: okabeIto.green,
      step: true,
      widthPx: 2,
    })
    series.push({
      name: "injected RTT of path in use",
      points: stepPoints(windows, (w) => w.chosenPathRttMs, endSeconds),
      colour: okabeIto.orange,
      step: true,
      dashed: true,
      widthPx: 2,
    })
    const shaded = anomalyBands(r, (x) => x.dst === a || x.dst === b)
    // A few scheduling spikes on a busy machine would flatten the chart: clip well above the bulk.
    const replies = (raw?.samples ?? []).flatMap((s) => (s.rttMs === null ? [] : [s.rttMs])).sort((x, y) => x - y)
    const reference = Math.max(
      0,
      ...windows.flatMap((w) => [w.oracleRttMs ?? 0, w.chosenPathRttMs ?? 0, w.measuredMedianRttMs ?? 0]),
    )
    const p90 = replies[Math.floor(replies.length * 0.9)] ?? 0
    const yMax = replies.length === 0 ? undefined : Math.ceil(Math.max(p90 * 2, reference * 1.6, 5) / 10) * 10
    const clipped = yMax === undefined ? 0 : replies.filter((x) => x > yMax).length
    parts.push(
      `<h3>Sites ${a} ↔ ${b}</h3>`,
      figure(
        lineChart({
          xName: "time since timeline start (s)",
          yName: "round-trip time (ms)",
          xMax: endSeconds,
          yMin: 0,
          ...(yMax === undefined ? {} : { yMax }),
          series,
          events: eventMarkers(r),
          shaded,
        }),
        `RTT ${a}↔${b} over time. Injected and oracle RTT are the sums of the injected one-way delays (no tunnel or ` +
          `relay overhead). Dashed verticals: ${r.events.length === 0 ? "none" : eventKey(r)}.` +
          (shaded.length > 0 ? " Shaded: loops or blackholes towards either site." : "") +
          (clipped > 0 ? ` ${clipped} of ${replies.length} replies above ${yMax} ms are cut off at the top.` : ""),
        {
          kind: "rtt",
          pair: `${a}-${b}`,
          series: series.map((s) => s.name).join("|"),
          events: r.events.map((_, i) => `E${i + 1}`).join("|"),
          shaded: shaded.map((s) => s.kind).join("|"),
        },
      ),
    )
  }
  const rows = r.rtt.map(
    (w): ReadonlyArray<Cell> => [
      `${w.a}↔${w.b}`,
      w.window,
      w.samples,
      w.measuredMedianRttMs,
      fmtPct(w.lossRatio),
      `${w.chosenForward} / ${w.chosenReverse}`,
      w.chosenPathRttMs,
      `${w.oracleForward} / ${w.oracleReverse}`,
      w.oracleRttMs,
    ],
  )
  parts.push(
    table(
      [
        "pair",
        "window",
        "samples",
        "median RTT (ms)",
        "loss",
        "path in use (fwd / rev)",
        "injected (ms)",
        "oracle path",
        "oracle (ms)",
      ],
      rows,
      { caption: "Per window, after forwarding converged" },
    ),
  )
  return section("RTT of watched pairs", parts.join("\n"), "rtt")
}

/** Next-hop colours: blue is "direct"; no black or grey, which the blackhole band and "no route" use. */
const laneColours = [
  okabeIto.orange,
  okabeIto.green,
  okabeIto.purple,
  okabeIto.sky,
  okabeIto.vermillion,
  okabeIto.yellow,
]

const laneValue = (dst: number, via: number | null): string =>
  via === null ? "no route" : via === dst ? "direct" : `via ${via}`

const swimlaneSection = (r: TwinReportInput): string => {
  const tl = r.timeline
  const flapTable = flapsTable(r.flaps)
  if (tl === undefined)
    return section(
      "Next hop in use",
      `${note(
        "This report has no next-hop timeline, so the swimlanes cannot be drawn; the paths each pair used are listed instead.",
      )}${flapTable}`,
      "next-hops",
    )
  const endSeconds = r.durationMs / 1000
  const byPair = new Map<string, Array<{ atMillis: number; via: number | null }>>()
  for (const c of [...tl.nextHops].sort((x, y) => x.atMillis - y.atMillis)) {
    const k = `${c.src}>${c.dst}`
    const list = byPair.get(k) ?? []
    list.push({ atMillis: c.atMillis, via: c.via })
    byPair.set(k, list)
  }
  const colours = new Map<string, string>([["direct", okabeIto.blue]])
  const lanes: Lane[] = []
  for (let src = 0; src < r.sites; src++)
    for (let dst = 0; dst < r.sites; dst++) {
      if (src === dst) continue
      const changes = byPair.get(`${src}>${dst}`) ?? []
      const segments = changes
        .map((c, i) => ({
          fromSeconds: Math.max(0, secondsOf(tl.t0Millis, c.atMillis)),
          toSeconds: Math.min(endSeconds, secondsOf(tl.t0Millis, changes[i + 1]?.atMillis ?? tl.endMillis)),
          value: laneValue(dst, c.via),
        }))
        .filter((s) => s.toSeconds > s.fromSeconds)
      for (const s of segments)
        if (!colours.has(s.value))
          colours.set(
            s.value,
            s.value === "no route" ? "#c4c4c4" : (laneColours[(colours.size - 1) % laneColours.length] as string),
          )
      lanes.push({ label: `${src} → ${dst}`, segments })
    }
  const chart = figure(
    swimlaneChart({
      lanes,
      valueColours: colours,
      xName: "time since timeline start (s)",
      xMax: endSeconds,
      events: eventMarkers(r),
      shaded: anomalyBands(r),
    }),
    `Next hop each site used towards each destination (lane "src → dst"). A change of colour is a route change. ${eventKey(r)}`,
    { kind: "swimlane", lanes: lanes.map((l) => l.label).join("|"), values: [...colours.keys()].join("|") },
  )
  return section("Next hop in use", `${chart}${flapsTable(r.flaps, true)}`, "next-hops")
}

/** With swimlanes above, only the pairs that changed are listed; without them, every pair. */
const flapsTable = (flaps: ReadonlyArray<PairFlaps>, onlyChanged = false): string => {
  const sorted = [...flaps].sort((x, y) => y.nextHopChanges - x.nextHopChanges || x.src - y.src || x.dst - y.dst)
  const shown = onlyChanged ? sorted.filter((f) => f.nextHopChanges > 0 || f.pathChanges > 0) : sorted
  const rest = sorted.length - shown.length
  return `${table(
    ["pair", "next-hop changes", "path changes", "paths seen"],
    shown.map((f) => [`${f.src} → ${f.dst}`, f.nextHopChanges, f.pathChanges, f.pathsSeen.join(" | ")]),
    {
      caption: onlyChanged
        ? "Pairs whose route changed (most changes first)"
        : "Route changes per ordered pair (most first)",
    },
  )}${rest > 0 ? note(`The other ${rest} ordered pairs kept one path throughout.`) : ""}`
}

const anomaliesSection = (r: TwinReportInput): string => {
  if (r.anomalies.length === 0)
    return section("Loops and blackholes", '<p><span class="ok">None seen</span> in any route sample.</p>', "anomalies")
  const t0 = t0Of(r)
  return section(
    "Loops and blackholes",
    table(
      ["kind", "towards", "where", "from (s)", "duration", "samples"],
      r.anomalies.map((a) => [
        a.kind,
        a.dst,
        a.where.join(" → "),
        t0 === undefined ? null : secondsOf(t0, a.firstSeenMillis),
        fmtMs(a.lastSeenMillis - a.firstSeenMillis),
        a.samples,
      ]),
    ),
    "anomalies",
  )
}

/** The whole page for one twin report (and optionally its baseline). */
export const renderTwinReportHtml = (report: TwinReportInput, options: TwinHtmlOptions = {}): string =>
  page({
    title: options.title ?? `Twin run: ${report.scenario}`,
    subtitle: `${report.sites} sites · run ${report.prefix} · ${(report.durationMs / 1000).toFixed(0)} s timeline · ${report.events.length} events`,
    body: [
      summarySection(report, options),
      eventsSection(report, options),
      rttSection(report),
      swimlaneSection(report),
      anomaliesSection(report),
    ].join("\n"),
    generator: "net-perf digital twin (netlab run)",
  })

/** `netlab run --compare` saves both runs of a scenario: plain BIRD (the baseline) and net-perf. */
export interface TwinComparisonInput {
  readonly scenario: string
  readonly baseline: TwinReportInput
  readonly netPerf: TwinReportInput
}

export const renderTwinComparisonHtml = (
  c: TwinComparisonInput,
  options: Omit<TwinHtmlOptions, "baseline"> = {},
): string =>
  renderTwinReportHtml(c.netPerf, {
    title: `Twin run: ${c.scenario} — net-perf beside plain BIRD`,
    label: "net-perf",
    baselineLabel: "plain BIRD (baseline)",
    ...options,
    baseline: c.baseline,
  })
