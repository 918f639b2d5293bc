/**
 * Side by side: the same scenario (same topology, same impairment timeline) run twice, first with
 * plain BIRD everywhere (the baseline), then with the net-perf daemon at every site. Each run gets
 * a fresh twin, so neither inherits the other's state. Pure formatting apart from `runComparison`.
 */
import { Effect } from "effect"
import type { TwinReport } from "./Report.js"
import { type RunOptions, runScenario } from "./Runner.js"
import { type RoutingMode, type Scenario, withRouting } from "./Scenario.js"
import type { TwinError } from "./Twin.js"

export interface ComparisonReport {
  readonly scenario: string
  readonly baseline: TwinReport
  readonly netPerf: TwinReport
}

/** Runs the baseline (`bird`) and then `net-perf` on fresh twins. */
export const runComparison = (
  scenario: Scenario,
  options: RunOptions = {},
): Effect.Effect<ComparisonReport, TwinError> =>
  Effect.gen(function* () {
    const progress = options.onProgress ?? (() => {})
    const runAs = (routing: RoutingMode) =>
      Effect.suspend(() => {
        progress(`--- ${scenario.name}: run with routing ${routing} ---`)
        return runScenario(withRouting(scenario, routing), options)
      })
    const baseline = yield* runAs("bird")
    const netPerf = yield* runAs("net-perf")
    return { scenario: scenario.name, baseline, netPerf }
  })

const ms = (x: number | null | undefined): string =>
  x === null || x === undefined ? "—" : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>): string =>
  cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string[] => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  return [
    pad(header, widths),
    pad(
      widths.map((w) => "-".repeat(w)),
      widths,
    ),
    ...rows.map((r) => pad(r, widths)),
  ].map((l) => `  ${l.trimEnd()}`)
}

type ReportEvent = TwinReport["events"][number]

const convergence = (e: ReportEvent | undefined): string =>
  e === undefined
    ? "—"
    : e.error !== undefined
      ? "FAILED"
      : e.note !== undefined
        ? "n/a"
        : e.changed
          ? ms(e.convergedAfterMs)
          : "no change"

const window = (value: number, atEnd: boolean): string => (atEnd ? "whole window" : value === 0 ? "0" : ms(value))

const longest = (r: TwinReport, kind: "loop" | "blackhole"): string => {
  const eps = r.anomalies.filter((a) => a.kind === kind)
  if (eps.length === 0) return "0"
  const maxMs = Math.max(...eps.map((a) => a.lastSeenMillis - a.firstSeenMillis))
  return `${eps.length} (longest ${ms(maxMs)})`
}

/** The readable side-by-side summary. */
export const formatComparison = (c: ComparisonReport): string => {
  const b = c.baseline
  const n = c.netPerf
  const lines = [
    `side-by-side: ${c.scenario} (${n.sites} sites) — plain BIRD (baseline, run ${b.prefix}) vs net-perf (run ${n.prefix})`,
    `  backends: ${Object.entries(n.backends)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}; BIRD: ${Object.entries(n.bird)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}`,
    "",
    "per event: convergence (event → forwarding settled) · time some pair stayed on a dead/impaired path ·",
    "time some pair stayed off the best RTT path (symmetric oracle, +10 %)",
  ]
  lines.push(
    ...table(
      ["t", "event", "converged BIRD", "net-perf", "bad path BIRD", "net-perf", "off best BIRD", "net-perf"],
      n.events.map((e, i) => {
        const be = b.events[i]
        return [
          `${e.atSeconds}s`,
          e.label,
          convergence(be),
          convergence(e),
          be === undefined ? "—" : window(be.badPathMs, be.badPathAtEnd),
          window(e.badPathMs, e.badPathAtEnd),
          be === undefined ? "—" : window(be.offOptimumMs, be.offOptimumAtEnd),
          window(e.offOptimumMs, e.offOptimumAtEnd),
        ]
      }),
    ),
  )
  lines.push("", "whole run:")
  lines.push(
    ...table(
      ["figure", "BIRD", "net-perf"],
      [
        ["initial convergence", ms(b.initialConvergenceMs), ms(n.initialConvergenceMs)],
        ["route changes (next hops)", String(b.totalRouteChanges), String(n.totalRouteChanges)],
        [
          "route changes before the first event",
          String(b.startQuality === undefined ? "—" : countBefore(b)),
          String(n.startQuality === undefined ? "—" : countBefore(n)),
        ],
        ["forwarding loops", longest(b, "loop"), longest(n, "loop")],
        ["blackholes", longest(b, "blackhole"), longest(n, "blackhole")],
        ["pair-seconds on dead/impaired paths", String(sumBad(b).toFixed(1)), String(sumBad(n).toFixed(1))],
      ],
    ),
  )
  if (n.rtt.length > 0) {
    lines.push("", "RTT of watched pairs, settled part of each window: measured median (path's injected RTT) / oracle")
    lines.push(
      ...table(
        ["pair", "window", "BIRD", "net-perf", "oracle"],
        n.rtt.map((p) => {
          const bp = b.rtt.find((x) => x.a === p.a && x.b === p.b && x.window === p.window)
          const cell = (x: typeof p | undefined) =>
            x === undefined
              ? "—"
              : `${x.measuredMedianRttMs ?? "—"} ms (${x.chosenPathRttMs ?? "—"}) ${x.chosenForward}/${x.chosenReverse}`
          return [
            `${p.a}-${p.b}`,
            p.window,
            cell(bp),
            cell(p),
            `${p.oracleRttMs ?? "—"} ms (symmetric ${p.symmetricOracleRttMs ?? "—"} ms)`,
          ]
        }),
      ),
    )
  }
  return `${lines.join("\n")}\n`
}

const sumBad = (r: TwinReport): number =>
  r.events.reduce((s, e) => s + e.badPairSeconds, r.startQuality?.badPairSeconds ?? 0)

/** Next-hop changes between t0 and the first event (the quiet period: flaps show up here). */
const countBefore = (r: TwinReport): number => {
  const firstEvent = r.timeline.events[0]?.atMillis ?? r.timeline.endMillis
  const seen = new Set<string>()
  let changes = 0
  for (const h of r.timeline.nextHops) {
    const key = `${h.src}>${h.dst}`
    if (!seen.has(key)) {
      seen.add(key)
      continue
    }
    if (h.atMillis > r.timeline.t0Millis && h.atMillis < firstEvent) changes++
  }
  return changes
}
