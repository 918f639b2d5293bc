/**
 * HTML reports from recorded runs (fixtures written by real twin runs and model runs): one
 * self-contained document whose inline SVG charts hold the expected series, axes and event
 * markers. The browser test (Browser.test.ts) opens the same pages in Chromium.
 */
import { readFileSync } from "node:fs"
import { gunzipSync } from "node:zlib"
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { mergeIntervals, type ShadedInterval } from "../../src/report-html/Charts.js"
import { escapeHtml, table } from "../../src/report-html/Html.js"
import {
  type ModelBenchDocument,
  type ModelRunsInput,
  renderModelReportHtml,
  renderTwinComparisonHtml,
  renderTwinReportHtml,
  type TwinComparisonInput,
  type TwinReportInput,
} from "../../src/report-html/index.js"
import { reportKindOf } from "../../src/report-html/main.js"

/** Twin fixtures are gzipped (a minute of raw pings and route samples), model fixtures plain JSON. */
const fixture = <T>(name: string): T => {
  const bytes = readFileSync(new URL(`./fixtures/${name}`, import.meta.url))
  return JSON.parse((name.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8")) as T
}

interface Figure {
  readonly attrs: Record<string, string>
  readonly svg: string
  readonly texts: ReadonlyArray<string>
}

const unescapeHtml = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")

const figuresOf = (html: string): ReadonlyArray<Figure> =>
  [...html.matchAll(/<figure class="chart"([^>]*)>([\s\S]*?)<\/figure>/g)].map((m) => {
    const attrs: Record<string, string> = {}
    for (const a of (m[1] ?? "").matchAll(/data-([a-z]+)="([^"]*)"/g))
      attrs[a[1] as string] = unescapeHtml(a[2] as string)
    const svg = /<svg[\s\S]*<\/svg>/.exec(m[2] ?? "")?.[0] ?? ""
    const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => unescapeHtml(t[1] as string))
    return { attrs, svg, texts }
  })

/** Self-contained: no script, nothing fetched (the SVG namespace URI is a name, not a fetch). */
const expectSelfContained = (html: string) => {
  expect(html.startsWith("<!DOCTYPE html>")).toBe(true)
  expect(html.match(/<html/g)).toHaveLength(1)
  expect(html).toContain("</html>")
  expect(html).not.toMatch(/<script/i)
  expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/i)
  expect(html).not.toMatch(/(src|href)\s*=\s*["']?https?:/i)
  expect(html).not.toMatch(/url\(\s*["']?https?:/i)
  expect(html).toContain("@media print")
  expect((html.match(/<svg/g) ?? []).length).toBe((html.match(/<\/svg>/g) ?? []).length)
}

describe("twin report → HTML", () => {
  // Recorded by `netlab run … --report` (plain BIRD, and BIRD with BFD) on this machine.
  const six = fixture<TwinReportInput>("twin-six-site-failure.json.gz")
  const sixBfd = fixture<TwinReportInput>("twin-six-site-failure-bfd.json.gz")
  const triangle = fixture<TwinReportInput>("twin-triangle-degrade.json.gz")
  // A report saved before the twin kept its timeline and path quality.
  const { timeline: _timeline, ...sixOld } = {
    ...six,
    events: six.events.map(
      ({ badPathMs: _a, badPathAtEnd: _b, offOptimumMs: _c, offOptimumAtEnd: _d, badPairSeconds: _e, ...e }) => e,
    ),
  }

  it("summary table, events and per-event convergence bars", () => {
    const html = renderTwinReportHtml(six)
    expectSelfContained(html)
    expect(html).toContain("Twin run: six-site-failure")
    expect(html).toContain("link-down 0-3")
    const conv = figuresOf(html).find((f) => f.attrs.kind === "convergence")
    expect(conv).toBeDefined()
    expect(conv?.attrs.events).toBe("E1|E2")
    expect(conv?.texts).toContain("convergence time (s)")
    expect(conv?.texts).toContain("E1 link-down 0-3")
    // The bar label is the recorded convergence time in seconds.
    const e1 = six.events[0]?.convergedAfterMs as number
    expect(conv?.texts).toContain((e1 / 1000).toFixed(2))
  })

  it("an RTT chart per watched pair with event markers, injected and oracle RTT, axes with units", () => {
    const html = renderTwinReportHtml(sixOld)
    const rtt = figuresOf(html).filter((f) => f.attrs.kind === "rtt")
    expect(rtt.map((f) => f.attrs.pair)).toEqual(["0-3", "1-4", "0-5"])
    for (const f of rtt) {
      expect(f.texts).toContain("round-trip time (ms)")
      expect(f.texts).toContain("time since timeline start (s)")
      expect(f.texts).toEqual(expect.arrayContaining(["E1", "E2"]))
      expect(f.texts).toEqual(expect.arrayContaining(["oracle (best injected path)", "injected RTT of path in use"]))
      expect(f.svg).toContain("stroke-dasharray")
    }
    // Without a timeline the measured series is the per-window median, and the page says so.
    expect(rtt[0]?.texts).toContain("measured median (after convergence)")
    expect(html).toContain("no raw ping series")
    expect(html).toContain("next-hop timeline")
  })

  it("with the recorded timeline: every probe, next-hop swimlanes and the route change of the failure", () => {
    const html = renderTwinReportHtml(six)
    expectSelfContained(html)
    const figs = figuresOf(html)
    const rtt03 = figs.find((f) => f.attrs.kind === "rtt" && f.attrs.pair === "0-3")
    expect(rtt03?.texts).toContain("measured RTT (ping)")
    const lanes = figs.find((f) => f.attrs.kind === "swimlane")
    expect(lanes).toBeDefined()
    expect(lanes?.attrs.lanes?.split("|")).toHaveLength(6 * 5)
    expect(lanes?.texts).toEqual(expect.arrayContaining(["0 → 3", "3 → 0", "direct", "E1", "E2"]))
    // Link 0-3 fails at E1: site 0 must have used another next hop towards 3 at some point.
    const via = (six.timeline?.nextHops ?? []).filter(
      (c) => c.src === 0 && c.dst === 3 && c.via !== 3 && c.via !== null,
    )
    expect(via.length).toBeGreaterThan(0)
    expect(lanes?.attrs.values).toContain(`via ${via[0]?.via}`)
    expect(lanes?.texts).toContain(`via ${via[0]?.via}`)
  })

  it("a report as netlab writes it now (timeline and path quality inside): RTT probes, swimlanes, reaction bars", () => {
    expect(triangle.timeline).toBeDefined()
    const html = renderTwinReportHtml(triangle)
    expectSelfContained(html)
    const figs = figuresOf(html)
    expect(figs.find((f) => f.attrs.kind === "rtt" && f.attrs.pair === "0-1")?.texts).toContain("measured RTT (ping)")
    expect(figs.find((f) => f.attrs.kind === "swimlane")?.attrs.lanes?.split("|")).toHaveLength(3 * 2)
    const bad = figs.find((f) => f.attrs.kind === "bad-path")
    expect(bad?.attrs.events).toBe("E1|E2")
    expect(bad?.texts).toContain("time on a dead or impaired path (s)")
    expect(html).toContain("some pair off the best RTT path for")
  })

  it("loops and blackholes are shaded bands with a legend entry", () => {
    const t0 = six.timeline?.t0Millis as number
    const withHole: TwinReportInput = {
      ...six,
      anomalies: [
        {
          kind: "blackhole",
          where: [0, 0],
          dst: 3,
          firstSeenMillis: t0 + 10_000,
          lastSeenMillis: t0 + 12_000,
          samples: 8,
        },
      ],
    }
    const figs = figuresOf(renderTwinReportHtml(withHole))
    const rtt03 = figs.find((f) => f.attrs.kind === "rtt" && f.attrs.pair === "0-3")
    expect(rtt03?.attrs.shaded).toBe("blackhole")
    expect(rtt03?.texts).toContain("blackhole")
    // Not towards 1 or 4: no band on that pair's chart.
    expect(figs.find((f) => f.attrs.pair === "1-4")?.attrs.shaded).toBe("")
  })

  it("loops and blackholes recorded by a real run (BFD flapping under load) are shaded and listed", () => {
    expect(sixBfd.anomalies.length).toBeGreaterThan(0)
    const html = renderTwinReportHtml(sixBfd)
    const kinds = new Set(sixBfd.anomalies.map((a) => a.kind))
    const lanes = figuresOf(html).find((f) => f.attrs.kind === "swimlane")
    for (const k of kinds) expect(lanes?.texts).toContain(k)
    const towards5 = figuresOf(html).find((f) => f.attrs.kind === "rtt" && f.attrs.pair === "0-5")
    expect(towards5?.attrs.shaded?.split("|")).toEqual(
      expect.arrayContaining([
        ...new Set(sixBfd.anomalies.filter((a) => a.dst === 0 || a.dst === 5).map((a) => a.kind)),
      ]),
    )
    expect(html).toContain("<h2>Loops and blackholes</h2>")
    expect((html.match(/<td>(loop|blackhole)<\/td>/g) ?? []).length).toBe(sixBfd.anomalies.length)
  })

  it("beside a baseline run of the same scenario: two bar series per event and a comparison table", () => {
    const html = renderTwinReportHtml(sixBfd, { label: "BIRD + BFD", baseline: six, baselineLabel: "plain BIRD" })
    const figs = figuresOf(html)
    for (const kind of ["convergence", "bad-path"]) {
      const f = figs.find((x) => x.attrs.kind === kind)
      expect(f?.attrs.series).toBe("BIRD + BFD|plain BIRD")
      expect(f?.texts).toEqual(expect.arrayContaining(["BIRD + BFD", "plain BIRD"]))
    }
    const bad = figs.find((x) => x.attrs.kind === "bad-path")
    const plainE1 = (six.events[0]?.badPathMs as number) / 1000
    expect(bad?.texts).toContain(plainE1.toFixed(2))
    expect(html).toContain("Beside the baseline")
  })

  it("netlab run --compare: net-perf beside plain BIRD, both from real twins", () => {
    const c = fixture<TwinComparisonInput>("twin-six-site-failure-compare.json.gz")
    expect(c.netPerf.routing).toBe("net-perf")
    const html = renderTwinComparisonHtml(c)
    expectSelfContained(html)
    const conv = figuresOf(html).find((f) => f.attrs.kind === "convergence")
    expect(conv?.attrs.series).toBe("net-perf|plain BIRD (baseline)")
    for (const r of [c.netPerf, c.baseline]) {
      const e1 = r.events[0]?.convergedAfterMs
      if (e1 !== null && e1 !== undefined) expect(conv?.texts).toContain((e1 / 1000).toFixed(2))
    }
    expect(html).toContain("E1 some pair on a dead/impaired path")
    expect(html).toContain("net-perf beside plain BIRD")
  })

  it("text from the report cannot inject markup", () => {
    const evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    const html = renderTwinReportHtml({
      ...triangle,
      scenario: evil,
      events: triangle.events.map((e) => ({ ...e, label: evil })),
    })
    expect(html).not.toContain("<script>")
    expect(html).not.toContain("<img")
    expect(html).toContain("&lt;script&gt;")
  })
})

describe("model report → HTML", () => {
  it("labelled runs side by side: reaction time per event, net-perf beside legacy", () => {
    const input = fixture<ModelRunsInput>("model-runs.json")
    const html = renderModelReportHtml(input)
    expectSelfContained(html)
    const labels = input.runs.map((r) => r.label)
    const reaction = figuresOf(html).find((f) => f.attrs.kind === "reaction")
    expect(reaction?.attrs.series).toBe(labels.join("|"))
    expect(reaction?.texts).toEqual(expect.arrayContaining([...labels, "reaction time (s, simulated)"]))
    expect(reaction?.attrs.events?.split("|")).toHaveLength(input.runs[0]?.report.events?.length ?? -1)
    // The legacy run is drawn in Okabe–Ito orange.
    expect(reaction?.svg).toMatch(/fill="#E69F00"/i)
  })

  it("a single run report", () => {
    const input = fixture<ModelRunsInput>("model-runs.json")
    const html = renderModelReportHtml(input.runs[0]?.report as NonNullable<ModelRunsInput["runs"][0]>["report"])
    expectSelfContained(html)
    expect(html).toContain("this run")
  })

  it("the bench document: goals, a table and charts per section", () => {
    const doc = fixture<ModelBenchDocument>("model-bench.json")
    const html = renderModelReportHtml(doc)
    expectSelfContained(html)
    for (const g of doc.goals ?? []) expect(html).toContain(escapeHtml(g.goal))
    const sections = new Set([...(doc.scale ?? []), ...(doc.adversarial ?? [])].map((r) => r.section))
    for (const s of sections) expect(html).toContain(`<h2>${escapeHtml(s)}</h2>`)
    const metrics = figuresOf(html).filter((f) => f.attrs.kind === "metric")
    // Four metrics per section; one without any data (no hard failures in a section) is a note, not an empty chart.
    const noData = (html.match(/no data \(no such events in this section\)/g) ?? []).length
    expect(metrics.length + noData).toBe(4 * sections.size)
    expect(metrics.length).toBeGreaterThan(noData)
    expect(metrics[0]?.texts).toContain("reaction p95 (s, simulated)")
  })
})

describe("report-html CLI", () => {
  it("recognises each kind of saved report", () => {
    expect(reportKindOf(fixture("twin-six-site-failure.json.gz"))?._tag).toBe("twin")
    expect(reportKindOf(fixture("model-runs.json"))?._tag).toBe("model")
    expect(reportKindOf(fixture("model-bench.json"))?._tag).toBe("model")
    expect(reportKindOf((fixture<ModelRunsInput>("model-runs.json").runs[0] as { report: unknown }).report)?._tag).toBe(
      "model",
    )
    const six = fixture("twin-six-site-failure.json.gz")
    expect(reportKindOf({ scenario: "s", baseline: six, netPerf: six })?._tag).toBe("twin-comparison")
    expect(reportKindOf({ scenario: "s", baseline: six, netPerf: { name: "x" } })).toBeUndefined()
    expect(reportKindOf({ name: "x" })).toBeUndefined()
    expect(reportKindOf([1, 2])).toBeUndefined()
    expect(reportKindOf(null)).toBeUndefined()
  })
})

describe("HTML helpers", () => {
  test.prop([fc.string()])("escaped text never contains markup characters", (s) => {
    expect(escapeHtml(s)).not.toMatch(/[<>"']/)
    expect(unescapeHtml(escapeHtml(s))).toBe(s)
  })

  test.prop([
    fc.array(fc.array(fc.oneof(fc.string(), fc.integer()), { minLength: 2, maxLength: 2 }), { maxLength: 6 }),
  ])("a table has one row per input row and escapes every cell", (rows) => {
    const html = table(["a", "b"], rows)
    expect((html.match(/<tr>/g) ?? []).length).toBe(rows.length + 1)
    expect(html.replace(/<\/?(table|thead|tbody|tr|th|td)[^>]*>/g, "")).not.toMatch(/[<>]/)
  })

  const interval = fc
    .record({
      from: fc.integer({ min: 0, max: 100 }),
      len: fc.integer({ min: 0, max: 20 }),
      kind: fc.constantFrom("loop", "blackhole"),
    })
    .map(
      (x): ShadedInterval => ({
        fromSeconds: x.from,
        toSeconds: x.from + x.len,
        kind: x.kind as ShadedInterval["kind"],
      }),
    )

  test.prop([fc.array(interval, { maxLength: 30 })])(
    "merged bands are disjoint per kind and cover exactly the same instants",
    (bands) => {
      const merged = mergeIntervals(bands)
      for (const kind of ["loop", "blackhole"] as const) {
        const m = merged.filter((b) => b.kind === kind)
        for (let i = 1; i < m.length; i++) expect(m[i]?.fromSeconds).toBeGreaterThan(m[i - 1]?.toSeconds as number)
        const covered = (list: ReadonlyArray<ShadedInterval>, t: number) =>
          list.some((b) => b.fromSeconds <= t && t <= b.toSeconds)
        for (let t = 0; t <= 120; t += 0.5)
          expect(covered(m, t)).toBe(
            covered(
              bands.filter((b) => b.kind === kind),
              t,
            ),
          )
      }
    },
  )
})
