/**
 * A model-simulator report as one self-contained HTML page. Three inputs are accepted, as the
 * simulator produces them: one run's report (`toJson(runScenario(…))`), several labelled runs of
 * the same scenario side by side (`{ runs: [{ label, report }] }`, e.g. net-perf vs the legacy
 * configuration), or the bench's `--json` document (aggregate rows per section, goals).
 *
 * Decision: the legacy configuration is the model's baseline (as plain BIRD is the twin's): it
 * is always drawn in orange next to net-perf's configurations in blue.
 */
import type { AggregateReport, RunReport } from "../model/Report.js"
import { type BarSeries, barChart } from "./Charts.js"
import { type Cell, facts, figure, fmtNum, note, okabeIto, page, section, table, wide } from "./Html.js"

export type ModelRunReportJson = Omit<RunReport, "stretchHistogram">

export interface ModelRunsInput {
  readonly title?: string
  readonly runs: ReadonlyArray<{ readonly label: string; readonly report: ModelRunReportJson }>
}

export interface ModelBenchRow {
  readonly section: string
  readonly aggregate: AggregateReport
  readonly scenariosPerSecond: number
  readonly realSecondsPerScenario: number
  readonly cpuSecondsPerScenario: number
  readonly simulatedSecondsPerScenario: number
}

/** The bench's `--json` output (`npm run bench:model -- --json`). */
export interface ModelBenchDocument {
  readonly machine?: { readonly cpus?: number; readonly node?: string }
  readonly parameters?: Readonly<Record<string, unknown>>
  readonly scale?: ReadonlyArray<ModelBenchRow>
  readonly adversarial?: ReadonlyArray<ModelBenchRow>
  readonly loops?: {
    readonly scenarios: number
    readonly loops: number
    readonly loopPairSeconds: number
    readonly unresolvedHardFailures: number
    readonly scenariosPerSecond: number
  }
  readonly goals?: ReadonlyArray<{ readonly goal: string; readonly value: string; readonly met: boolean }>
}

export type ModelReportInput = ModelRunReportJson | ModelRunsInput | ModelBenchDocument

const isLegacy = (label: string) => label.toLowerCase().includes("legacy")
const colourOf = (label: string, i: number) =>
  isLegacy(label)
    ? okabeIto.orange
    : ([okabeIto.blue, okabeIto.green, okabeIto.purple, okabeIto.sky, "#555555"][i % 5] as string)
const secs = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000)
const num = (x: number | null | undefined, digits = 2): Cell =>
  x === null || x === undefined ? null : fmtNum(x, digits)

// ---- one or more runs ---------------------------------------------------------------------------

const runsSummary = (runs: ModelRunsInput["runs"]): string => {
  const rows: ReadonlyArray<readonly [string, (r: ModelRunReportJson) => Cell]> = [
    ["sites / directed links", (r) => `${r.sites} / ${r.directedLinks}`],
    ["seed", (r) => String(r.seed)],
    ["measured (simulated s)", (r) => num(r.measuredSeconds, 0)],
    ["hard failures (unresolved)", (r) => `${r.hardFailures.count} (${r.hardFailures.unresolved})`],
    ["hard reaction p50 / p95 / max (s)", (r) => reactionCell(r.hardFailures.reactionMillis)],
    ["soft events (unresolved)", (r) => `${r.softEvents.count} (${r.softEvents.unresolved})`],
    ["soft reaction p50 / p95 / max (s)", (r) => reactionCell(r.softEvents.reactionMillis)],
    ["time on dead paths (pair·s)", (r) => num(r.deadPathPairSeconds, 1)],
    ["loops: count / pair·s", (r) => `${r.loops.count} / ${fmtNum(r.loops.pairSeconds, 1)}`],
    ["blackholes: count / pair·s", (r) => `${r.blackholes.count} / ${fmtNum(r.blackholes.pairSeconds, 1)}`],
    ["route switches per pair per hour", (r) => num(r.switches.perPairPerHour, 3)],
    ["stretch mean / p95 (×)", (r) => `${fmtNum(r.stretch.mean, 4)} / ${fmtNum(r.stretch.p95, 4)}`],
    ["probes per site per s", (r) => num(r.overhead.probesPerSitePerSecond, 1)],
    ["link-state msgs sent per site per s", (r) => num(r.overhead.messagesSentPerSitePerSecond, 2)],
  ]
  return table(
    ["figure", ...runs.map((r) => r.label)],
    rows.map(([name, pick]) => [name, ...runs.map((r) => pick(r.report))]),
  )
}

const reactionCell = (d: RunReport["hardFailures"]["reactionMillis"]): Cell =>
  d.count === 0 ? null : `${fmtNum(secs(d.p50), 2)} / ${fmtNum(secs(d.p95), 2)} / ${fmtNum(secs(d.max), 2)}`

const runsEvents = (runs: ModelRunsInput["runs"]): string => {
  const withEvents = runs.filter((r) => r.report.events !== undefined && r.report.events.length > 0)
  if (withEvents.length === 0)
    return note(
      "These reports keep no per-event details (run with keepEventDetails to chart each event's reaction time).",
    )
  // Same scenario → same event instants: line the runs up by event time.
  const instants = [...new Set(withEvents.flatMap((r) => (r.report.events ?? []).map((e) => e.atMillis)))].sort(
    (a, b) => a - b,
  )
  const kindAt = new Map<number, boolean>()
  for (const r of withEvents) for (const e of r.report.events ?? []) kindAt.set(e.atMillis, e.hard)
  const series: BarSeries[] = withEvents.map((r, i) => ({
    name: r.label,
    colour: colourOf(r.label, i),
    values: instants.map((t) => secs(r.report.events?.find((e) => e.atMillis === t)?.reactionMillis ?? null)),
  }))
  const categories = instants.map(
    (t, i) => `E${i + 1} ${kindAt.get(t) === true ? "hard" : "soft"} @${(t / 1000).toFixed(0)} s`,
  )
  const chart = figure(
    barChart({
      categories,
      xName: "event (hard = link failure, soft = latency step/recovery)",
      yName: "reaction time (s, simulated)",
      series,
      valueDigits: 2,
    }),
    "Reaction time per event: until every affected pair forwards on a good path again (missing bar = never within the run, or no pair affected).",
    {
      kind: "reaction",
      series: series.map((s) => s.name).join("|"),
      events: categories.map((_, i) => `E${i + 1}`).join("|"),
    },
  )
  const rows = instants.map(
    (t, i): ReadonlyArray<Cell> => [
      `E${i + 1}`,
      num(t / 1000, 1),
      kindAt.get(t) === true ? "hard" : "soft",
      ...withEvents.flatMap((r) => {
        const e = r.report.events?.find((x) => x.atMillis === t)
        return [
          e?.affected ?? null,
          e === undefined ? null : e.reactionMillis === null ? "never" : fmtNum(e.reactionMillis / 1000, 2),
        ]
      }),
    ],
  )
  return `${chart}${table(
    [
      "",
      "t (simulated s)",
      "kind",
      ...withEvents.flatMap((r) => [`${r.label}: pairs affected`, `${r.label}: reaction (s)`]),
    ],
    rows,
  )}`
}

const runsComparison = (runs: ModelRunsInput["runs"]): string => {
  const metric = (name: string, yName: string, pick: (r: ModelRunReportJson) => number | null, digits: number) =>
    figure(
      barChart({
        categories: runs.map((r) => r.label),
        xName: "configuration",
        yName,
        series: [{ name, values: runs.map((r) => pick(r.report)), colours: runs.map((r, i) => colourOf(r.label, i)) }],
        valueDigits: digits,
        legend: false,
        widthPx: 560,
        heightPx: 300,
      }),
      name,
      { kind: "metric", metric: name, series: runs.map((r) => r.label).join("|") },
    )
  return `<div class="grid charts">${[
    metric("hard-failure reaction p95", "reaction p95 (s)", (r) => secs(r.hardFailures.reactionMillis.p95), 2),
    metric("time on dead paths", "dead path (pair·s)", (r) => r.deadPathPairSeconds, 1),
    metric("route switches", "switches per pair per hour", (r) => r.switches.perPairPerHour, 3),
    metric("mean path stretch vs oracle", "stretch (× oracle)", (r) => r.stretch.mean, 4),
  ].join("")}</div>`
}

const runsLoops = (runs: ModelRunsInput["runs"]): string => {
  const rows = runs.flatMap((r) =>
    r.report.loopSamples.map((l): ReadonlyArray<Cell> => [r.label, num(l.atMillis / 1000, 3), l.destination, l.cycle]),
  )
  return rows.length === 0
    ? '<p><span class="ok">No forwarding loop</span> in any run.</p>'
    : table(["configuration", "t (simulated s)", "destination", "cycle"], rows, { caption: "First loops seen" })
}

const renderRuns = (input: ModelRunsInput): string => {
  const first = input.runs[0]?.report
  return page({
    title: input.title ?? `Model run: ${first?.name ?? "(empty)"}`,
    subtitle:
      first === undefined
        ? "no runs"
        : `${first.sites} sites · seed ${first.seed} · ${fmtNum(first.measuredSeconds, 0)} s simulated · ${input.runs.length} configuration(s)`,
    body: [
      section("Summary", runsSummary(input.runs), "summary"),
      section("Reaction time per event", runsEvents(input.runs), "events"),
      section("Configurations side by side", runsComparison(input.runs), "comparison"),
      section("Forwarding loops", runsLoops(input.runs), "loops"),
    ].join("\n"),
    generator: "net-perf model simulator",
  })
}

// ---- bench document -----------------------------------------------------------------------------

const benchTable = (rows: ReadonlyArray<ModelBenchRow>): string =>
  wide(
    table(
      [
        "configuration",
        "N",
        "runs",
        "hard events",
        "reaction p50 (s)",
        "p95 (s)",
        "max (s)",
        "unresolved",
        "dead (pair·s)",
        "loops",
        "blackholes (pair·s)",
        "switches /pair/h",
        "stretch mean",
        "stretch p95",
        "probes /site/s",
        "scenarios/s",
      ],
      rows.map((r) => {
        const a = r.aggregate
        return [
          shortLabel(r.section, a.label),
          a.sites,
          a.runs,
          a.hardFailures.count,
          num(secs(a.hardFailures.reactionMillis.p50)),
          num(secs(a.hardFailures.reactionMillis.p95)),
          num(secs(a.hardFailures.reactionMillis.max)),
          a.hardFailures.unresolved + a.softEvents.unresolved,
          num(a.deadPathPairSeconds, 1),
          a.loops,
          num(a.blackholePairSeconds, 1),
          num(a.switchesPerPairPerHour, 3),
          num(a.stretchMean, 4),
          num(a.stretchP95, 4),
          num(a.probesPerSitePerSecond, 1),
          num(r.scenariosPerSecond, 3),
        ]
      }),
    ),
  )

/** Bench labels repeat the section ("near-equal paths: graph-least-cost") and size (" N=50"): drop both. */
const shortLabel = (section: string, label: string): string => label.replace(`${section}: `, "").replace(/ N=\d+$/, "")

const benchCharts = (title: string, rows: ReadonlyArray<ModelBenchRow>): string => {
  const labels = rows.map((r) => shortLabel(r.section, r.aggregate.label))
  const metric = (name: string, yName: string, pick: (a: AggregateReport) => number | null, digits: number) => {
    const values = rows.map((r) => pick(r.aggregate))
    if (values.every((v) => v === null))
      return `<div>${note(`${title}: ${name}: no data (no such events in this section).`)}</div>`
    return figure(
      barChart({
        categories: labels,
        xName: "configuration",
        yName,
        series: [{ name, values, colours: labels.map((l, i) => colourOf(l, i)) }],
        valueDigits: digits,
        legend: false,
        widthPx: 560,
        heightPx: 330,
      }),
      `${title}: ${name}`,
      { kind: "metric", metric: name, series: labels.join("|") },
    )
  }
  return `<div class="grid charts">${[
    metric(
      "hard-failure reaction p95",
      "reaction p95 (s, simulated)",
      (a) => secs(a.hardFailures.reactionMillis.p95),
      2,
    ),
    metric("mean path stretch", "stretch (× oracle)", (a) => a.stretchMean, 4),
    metric("route switches", "switches per pair per hour", (a) => a.switchesPerPairPerHour, 3),
    metric("forwarding loops", "loop episodes (count)", (a) => a.loops, 0),
  ].join("")}</div>`
}

const renderBench = (doc: ModelBenchDocument): string => {
  const parts: string[] = []
  if (doc.goals !== undefined && doc.goals.length > 0)
    parts.push(
      section(
        "Goals",
        table(
          ["", "goal", "value"],
          doc.goals.map((g) => [
            { html: g.met ? '<span class="ok">met</span>' : '<span class="bad">NOT met</span>' },
            g.goal,
            g.value,
          ]),
        ),
        "goals",
      ),
    )
  const grouped = new Map<string, ModelBenchRow[]>()
  for (const r of [...(doc.scale ?? []), ...(doc.adversarial ?? [])]) {
    const list = grouped.get(r.section) ?? []
    list.push(r)
    grouped.set(r.section, list)
  }
  for (const [name, rows] of grouped)
    parts.push(
      section(name, `${benchTable(rows)}${benchCharts(name, rows)}`, `section-${name.replace(/[^a-z0-9]+/gi, "-")}`),
    )
  if (doc.loops !== undefined)
    parts.push(
      section(
        "Loop freedom",
        facts([
          ["random small scenarios", doc.loops.scenarios],
          [
            "forwarding loops",
            { html: `<span class="${doc.loops.loops === 0 ? "ok" : "bad"}">${doc.loops.loops}</span>` },
          ],
          ["loop pair·s", fmtNum(doc.loops.loopPairSeconds, 1)],
          ["unresolved hard failures", doc.loops.unresolvedHardFailures],
          ["scenarios per second", fmtNum(doc.loops.scenariosPerSecond, 1)],
        ]),
        "loops",
      ),
    )
  const params = doc.parameters === undefined ? "" : JSON.stringify(doc.parameters)
  return page({
    title: "Model simulator bench",
    subtitle: `${doc.machine?.cpus ?? "?"} CPUs · Node ${doc.machine?.node ?? "?"} · parameters ${params}`,
    body: parts.length === 0 ? note("The bench document has no sections.") : parts.join("\n"),
    generator: "net-perf model simulator bench (bench:model --json)",
  })
}

const isRuns = (x: ModelReportInput): x is ModelRunsInput => "runs" in x && Array.isArray((x as ModelRunsInput).runs)
const isRun = (x: ModelReportInput): x is ModelRunReportJson => "hardFailures" in x && "stretch" in x

/** One page for a model run, labelled runs side by side, or a bench document. */
export const renderModelReportHtml = (input: ModelReportInput): string =>
  isRuns(input)
    ? renderRuns(input)
    : isRun(input)
      ? renderRuns({ runs: [{ label: "this run", report: input }] })
      : renderBench(input)
