/**
 * Charts as SVG strings, rendered in-process by Apache ECharts' server-side SVG renderer
 * (`ssr: true` + `renderToSVGString`): no DOM, no browser, no script in the output. Every chart
 * names its axes with units; events are vertical dashed lines labelled E1, E2, … (the caption
 * says what each one was); loop and blackhole intervals are shaded bands with a legend entry.
 */
import * as echarts from "echarts"
import { okabeIto, seriesPalette } from "./Html.js"

// biome-ignore lint/suspicious/noExplicitAny: ECharts' option union is too wide to build piecewise with its own types.
type Option = Record<string, any>

export interface EventMarker {
  readonly atSeconds: number
  /** Short tag drawn on the chart (E1, E2, …). */
  readonly tag: string
}

export interface ShadedInterval {
  readonly fromSeconds: number
  readonly toSeconds: number
  readonly kind: "loop" | "blackhole"
}

export const shadeColour = { loop: "rgba(213, 94, 0, 0.22)", blackhole: "rgba(0, 0, 0, 0.16)" } as const

const baseText = { fontFamily: "DejaVu Sans, Arial, sans-serif", fontSize: 13, color: "#1b1b1b" }

/** Renders one option to an SVG string; the chart instance lives only for this call. */
export const renderSvg = (option: Option, widthPx: number, heightPx: number): string => {
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: widthPx, height: heightPx })
  try {
    chart.setOption({ animation: false, textStyle: baseText, ...option })
    return chart.renderToSVGString()
  } finally {
    chart.dispose()
  }
}

const valueAxis = (name: string, extra: Option = {}): Option => ({
  type: "value",
  name,
  nameLocation: "middle",
  nameTextStyle: { fontSize: 13, color: "#1b1b1b" },
  axisLabel: { fontSize: 12, color: "#333" },
  axisLine: { show: true, lineStyle: { color: "#666" } },
  splitLine: { lineStyle: { color: "#e3e6ea" } },
  ...extra,
})

/** Overlapping intervals of one kind become one band: stacked translucent bands would turn black. */
export const mergeIntervals = (bands: ReadonlyArray<ShadedInterval>): ReadonlyArray<ShadedInterval> => {
  const out: ShadedInterval[] = []
  for (const kind of ["loop", "blackhole"] as const) {
    const sorted = bands.filter((b) => b.kind === kind).sort((a, b) => a.fromSeconds - b.fromSeconds)
    let cur: ShadedInterval | undefined
    for (const b of sorted) {
      if (cur !== undefined && b.fromSeconds <= cur.toSeconds) {
        cur = { ...cur, toSeconds: Math.max(cur.toSeconds, b.toSeconds) }
        continue
      }
      if (cur !== undefined) out.push(cur)
      cur = b
    }
    if (cur !== undefined) out.push(cur)
  }
  return out
}

/** Room above the plot for the legend: one row holds about this many characters at 960 px. */
const legendTop = (names: ReadonlyArray<string>, widthPx: number): number => {
  const chars = names.reduce((n, s) => n + s.length + 8, 0)
  const rows = Math.max(1, Math.ceil((chars * 7.6) / (widthPx - 80)))
  return 20 + rows * 24
}

/** Marker lines and shaded bands hang off an invisible helper series so they exist without data. */
const overlaySeries = (
  events: ReadonlyArray<EventMarker>,
  shadedIn: ReadonlyArray<ShadedInterval>,
  labelPosition: "start" | "end" = "end",
): Option[] => {
  const shaded = mergeIntervals(shadedIn)
  const out: Option[] = []
  if (events.length > 0)
    out.push({
      type: "line",
      name: "events",
      data: [],
      silent: true,
      markLine: {
        symbol: ["none", "none"],
        silent: true,
        lineStyle: { color: okabeIto.black, type: "dashed", width: 1.2 },
        label: { position: labelPosition, formatter: "{b}", fontSize: 12, color: "#1b1b1b" },
        data: events.map((e) => ({ name: e.tag, xAxis: e.atSeconds })),
      },
    })
  for (const kind of ["loop", "blackhole"] as const) {
    const bands = shaded.filter((s) => s.kind === kind)
    if (bands.length === 0) continue
    out.push({
      type: "line",
      name: kind === "loop" ? "loop" : "blackhole",
      data: [],
      color: shadeColour[kind],
      silent: true,
      markArea: {
        silent: true,
        itemStyle: { color: shadeColour[kind] },
        data: bands.map((b) => [{ xAxis: b.fromSeconds }, { xAxis: Math.max(b.toSeconds, b.fromSeconds + 0.25) }]),
      },
    })
  }
  return out
}

export interface LineSeries {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number | null]>
  readonly colour?: string
  /** Draw as a step function (values in force from a point until the next). */
  readonly step?: boolean
  readonly dashed?: boolean
  /** Scatter marks instead of a line (e.g. lost probes). */
  readonly marks?: "circle" | "triangle" | "diamond"
  readonly widthPx?: number
}

export const lineChart = (o: {
  readonly xName: string
  readonly yName: string
  readonly xMax?: number
  readonly yMin?: number
  /** Clip the y axis here (outliers beyond it are cut off; say so in the caption). */
  readonly yMax?: number
  readonly series: ReadonlyArray<LineSeries>
  readonly events?: ReadonlyArray<EventMarker>
  readonly shaded?: ReadonlyArray<ShadedInterval>
  readonly widthPx?: number
  readonly heightPx?: number
}): string => {
  const series: Option[] = o.series.map((s, i) => {
    const colour = s.colour ?? seriesPalette[i % seriesPalette.length]
    if (s.marks !== undefined)
      return {
        type: "scatter",
        name: s.name,
        data: s.points.map(([x, y]) => [x, y]),
        symbol: s.marks,
        symbolSize: 7,
        itemStyle: { color: colour },
      }
    return {
      type: "line",
      name: s.name,
      data: s.points.map(([x, y]) => [x, y]),
      showSymbol: false,
      connectNulls: false,
      ...(s.step === true ? { step: "end" } : {}),
      lineStyle: { color: colour, width: s.widthPx ?? 1.6, type: s.dashed === true ? "dashed" : "solid" },
      itemStyle: { color: colour },
    }
  })
  const overlays = overlaySeries(o.events ?? [], o.shaded ?? [])
  const legendNames = [...series, ...overlays].map((s) => s.name as string).filter((n) => n !== "events")
  const widthPx = o.widthPx ?? 960
  const top = legendTop(legendNames, widthPx)
  return renderSvg(
    {
      legend: { top: 0, left: "center", textStyle: { fontSize: 12.5 }, itemGap: 30, data: legendNames },
      grid: { left: 70, right: 30, top, bottom: 52 },
      xAxis: valueAxis(o.xName, { nameGap: 30, min: 0, ...(o.xMax === undefined ? {} : { max: o.xMax }) }),
      yAxis: valueAxis(o.yName, {
        nameGap: 48,
        ...(o.yMin === undefined ? {} : { min: o.yMin }),
        ...(o.yMax === undefined ? {} : { max: o.yMax }),
      }),
      series: [...series, ...overlays],
    },
    widthPx,
    (o.heightPx ?? 340) + top - 44,
  )
}

export interface BarSeries {
  readonly name: string
  readonly values: ReadonlyArray<number | null>
  readonly colour?: string
  /** Per-bar colours (one series compared across categories, e.g. legacy in orange). */
  readonly colours?: ReadonlyArray<string>
}

/** Grouped vertical bars with the value printed above each bar (readable in black and white). */
export const barChart = (o: {
  readonly categories: ReadonlyArray<string>
  readonly xName: string
  readonly yName: string
  readonly series: ReadonlyArray<BarSeries>
  readonly valueDigits?: number
  readonly legend?: boolean
  readonly widthPx?: number
  readonly heightPx?: number
}): string => {
  const digits = o.valueDigits ?? 1
  const longLabels = o.categories.some((c) => c.length > 14)
  return renderSvg(
    {
      legend: { show: o.legend !== false, top: 0, left: "center", itemGap: 30, textStyle: { fontSize: 12.5 } },
      grid: {
        left: longLabels ? 100 : 70,
        right: 30,
        top: o.legend === false ? 24 : 42,
        bottom: longLabels ? 110 : 60,
      },
      xAxis: {
        type: "category",
        data: [...o.categories],
        name: o.xName,
        nameLocation: "middle",
        nameGap: longLabels ? 92 : 34,
        nameTextStyle: { fontSize: 13, color: "#1b1b1b" },
        axisLabel: {
          fontSize: 12,
          color: "#333",
          interval: 0,
          ...(longLabels ? { rotate: 20, width: 160, overflow: "truncate" } : {}),
        },
        axisLine: { lineStyle: { color: "#666" } },
      },
      yAxis: valueAxis(o.yName, { nameGap: 48, min: 0 }),
      series: o.series.map((s, i) => {
        const colour = s.colour ?? seriesPalette[i % seriesPalette.length]
        return {
          type: "bar",
          name: s.name,
          data: s.values.map((v, j) => {
            const c = s.colours?.[j]
            return c === undefined || v === null ? v : { value: v, itemStyle: { color: c } }
          }),
          itemStyle: { color: colour, borderColor: "#222", borderWidth: 0.6 },
          barMaxWidth: 46,
          label: {
            show: true,
            position: "top",
            fontSize: 11.5,
            color: "#1b1b1b",
            formatter: (p: { value: number | null }) => (p.value === null ? "" : Number(p.value).toFixed(digits)),
          },
        }
      }),
    },
    o.widthPx ?? 960,
    o.heightPx ?? 320,
  )
}

export interface Lane {
  readonly label: string
  readonly segments: ReadonlyArray<{ readonly fromSeconds: number; readonly toSeconds: number; readonly value: string }>
}

/**
 * Swimlanes: one row per lane, coloured segments for the value in force (e.g. the next hop).
 * Segments are bars of a custom series; the colour key is a legend of empty series.
 */
export const swimlaneChart = (o: {
  readonly lanes: ReadonlyArray<Lane>
  readonly valueColours: ReadonlyMap<string, string>
  readonly xName: string
  readonly xMax: number
  readonly events?: ReadonlyArray<EventMarker>
  readonly shaded?: ReadonlyArray<ShadedInterval>
  readonly widthPx?: number
}): string => {
  const laneHeightPx = 26
  const heightPx = 150 + o.lanes.length * laneHeightPx
  const data = o.lanes.flatMap((lane, i) =>
    lane.segments.map((s) => ({
      value: [i, s.fromSeconds, s.toSeconds, s.value],
      itemStyle: { color: o.valueColours.get(s.value) ?? "#bbb" },
    })),
  )
  const keySeries = [...o.valueColours].map(([value, colour]) => ({
    type: "bar",
    name: value,
    data: [],
    itemStyle: { color: colour },
  }))
  const overlays = overlaySeries(o.events ?? [], o.shaded ?? [], "start")
  const legendNames = [...keySeries.map((s) => s.name), ...overlays.map((s) => s.name as string)].filter(
    (n) => n !== "events",
  )
  const top = legendTop(legendNames, o.widthPx ?? 960) + 12
  return renderSvg(
    {
      legend: { top: 0, left: "center", textStyle: { fontSize: 12.5 }, itemGap: 30, data: legendNames },
      grid: { left: 110, right: 30, top, bottom: 52 },
      xAxis: valueAxis(o.xName, { nameGap: 30, min: 0, max: o.xMax }),
      yAxis: {
        type: "category",
        inverse: true,
        data: o.lanes.map((l) => l.label),
        axisLabel: { fontSize: 12, color: "#333" },
        axisTick: { show: false },
        axisLine: { lineStyle: { color: "#666" } },
      },
      series: [
        {
          type: "custom",
          name: "next hop",
          // biome-ignore lint/suspicious/noExplicitAny: ECharts' renderItem API is untyped at this level.
          renderItem: (_params: any, api: any) => {
            const lane = api.value(0)
            const start = api.coord([api.value(1), lane])
            const end = api.coord([api.value(2), lane])
            const h = api.size([0, 1])[1] * 0.62
            return {
              type: "rect",
              shape: { x: start[0], y: start[1] - h / 2, width: Math.max(1, end[0] - start[0]), height: h },
              style: { fill: api.visual("color"), stroke: "#222", lineWidth: 0.4 },
            }
          },
          encode: { x: [1, 2], y: 0 },
          data,
        },
        ...keySeries,
        ...overlays,
      ],
    },
    o.widthPx ?? 960,
    heightPx,
  )
}
