/**
 * The page shell shared by every HTML report: escaping, tables, figures and one stylesheet that
 * reads on a laptop and in print. Decision: a report is ONE self-contained file — no scripts, no
 * fonts, no images from anywhere; charts arrive as inline SVG strings rendered on the server.
 */

/** Okabe–Ito: eight colours that stay distinct under the common colour-vision deficiencies. */
export const okabeIto = {
  blue: "#0072B2",
  orange: "#E69F00",
  green: "#009E73",
  vermillion: "#D55E00",
  purple: "#CC79A7",
  sky: "#56B4E9",
  yellow: "#F0E442",
  black: "#000000",
} as const

/** Series colours in the order they are handed out (yellow last: weak on white paper). */
export const seriesPalette: ReadonlyArray<string> = [
  okabeIto.blue,
  okabeIto.orange,
  okabeIto.green,
  okabeIto.vermillion,
  okabeIto.purple,
  okabeIto.sky,
  okabeIto.black,
  okabeIto.yellow,
]

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

/** A cell: plain text (escaped) or pre-built HTML; numbers are right-aligned. */
export type Cell = string | number | null | undefined | { readonly html: string; readonly numeric?: boolean }

const cellHtml = (c: Cell, tag: "td" | "th"): string => {
  if (c === null || c === undefined) return `<${tag} class="num muted">—</${tag}>`
  if (typeof c === "number") return `<${tag} class="num">${escapeHtml(String(c))}</${tag}>`
  if (typeof c === "string") return `<${tag}>${escapeHtml(c)}</${tag}>`
  return `<${tag}${c.numeric === true ? ' class="num"' : ""}>${c.html}</${tag}>`
}

export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<Cell>>,
  options: { readonly caption?: string; readonly className?: string } = {},
): string =>
  [
    `<table${options.className === undefined ? "" : ` class="${options.className}"`}>`,
    options.caption === undefined ? "" : `<caption>${escapeHtml(options.caption)}</caption>`,
    `<thead><tr>${header.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join("")}</tr></thead>`,
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => cellHtml(c, "td")).join("")}</tr>`).join("\n")}</tbody>`,
    "</table>",
  ].join("\n")

/** Key/value table for a summary block. */
export const facts = (rows: ReadonlyArray<readonly [string, Cell]>): string =>
  `<table class="facts"><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th>${cellHtml(v, "td")}</tr>`)
    .join("\n")}</tbody></table>`

/**
 * A chart in a figure. `data` attributes name what the SVG shows (chart kind, series, event
 * markers), so tests and people inspecting the file can see it without parsing paths.
 */
export const figure = (svg: string, caption: string, data: Readonly<Record<string, string>> = {}): string =>
  `<figure class="chart"${Object.entries(data)
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join("")}>${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`

/** A block that scrolls sideways on a narrow screen instead of widening the page. */
export const wide = (html: string): string => `<div class="wide">${html}</div>`

export const note = (text: string): string => `<p class="note">${escapeHtml(text)}</p>`

export const section = (title: string, body: string, id?: string): string =>
  `<section${id === undefined ? "" : ` id="${escapeHtml(id)}"`}><h2>${escapeHtml(title)}</h2>\n${body}\n</section>`

const stylesheet = `
:root { color-scheme: light; --fg: #1b1b1b; --muted: #5f6368; --rule: #d0d4da; --bg: #fff; --band: #f4f6f8; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
  color: var(--fg); background: var(--bg); margin: 0 auto; padding: 1.25rem 1.5rem 3rem; max-width: 1180px; }
h1 { font-size: 1.55rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
p.sub { color: var(--muted); margin: 0 0 1rem; }
p.note { color: var(--muted); font-style: italic; margin: .4rem 0; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { padding: .28rem .6rem; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
thead th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.muted { color: var(--muted); }
table.facts th { font-weight: 500; color: var(--muted); white-space: nowrap; }
table.facts td.num { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 2rem; }
.grid.charts { grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); }
.wide { overflow-x: auto; max-width: 100%; }
figure.chart { margin: .6rem 0 1.4rem; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .2rem; }
.ok { color: #006d4f; font-weight: 600; }
.bad { color: #b34700; font-weight: 600; }
.legend-inline span { display: inline-block; margin-right: 1rem; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: -.1em; margin-right: .3em; border: 1px solid #0003; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .8rem; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  section { break-inside: auto; }
  .wide { overflow: visible; }
  .wide table { font-size: 8.5pt; }
}
`

/** The whole document. `generator` names what produced the report (shown in the footer). */
export const page = (options: {
  readonly title: string
  readonly subtitle: string
  readonly body: string
  readonly generator: string
}): string =>
  [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Nothing may be fetched: the file must read the same offline, years later.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${escapeHtml(options.title)}</title>`,
    `<style>${stylesheet}</style>`,
    "</head>",
    "<body>",
    `<header><h1>${escapeHtml(options.title)}</h1><p class="sub">${escapeHtml(options.subtitle)}</p></header>`,
    options.body,
    `<footer>${escapeHtml(options.generator)} · charts rendered to inline SVG with Apache ECharts (server side); colours: Okabe–Ito palette.</footer>`,
    "</body>",
    "</html>",
    "",
  ].join("\n")

export const fmtMs = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? "—" : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`

export const fmtNum = (x: number | null | undefined, digits = 2): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits)

export const fmtPct = (ratio: number | null | undefined, digits = 1): string =>
  ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(digits)} %`
