/**
 * perfc's text output: the original's "Routing Table" layout (Source / Update Method / Updated
 * at, then each destination with its Via) extended to one aligned row per destination with the
 * winning algorithm, cost, measured RTT/loss and why earlier algorithms fell through. Failed
 * sites are listed in place with their error, and a summary line closes the output.
 */
import type { MeshView, RouteView, SiteView } from "./Snapshot.js"

const fixed = (x: number | null, digits: number): string => (x === null ? "-" : x.toFixed(digits))

const list = (xs: ReadonlyArray<number>): string => `[${xs.join(" ")}]`

const viaText = (r: RouteView): string => {
  const suffix = r.viaStatus === "ok" ? "" : r.viaStatus === "bird" ? " +bird" : ` ${r.viaStatus}`
  return `${list(r.via)}${suffix}`
}

const whyText = (r: RouteView): string =>
  r.fallbacks.length === 0 ? "-" : r.fallbacks.map((f) => `${f.algorithm}: ${f.reason}`).join("; ")

const header = ["To", "Via", "Path", "Interface", "Algorithm", "Cost ms", "RTT ms", "Loss %", "Stability", "Fallbacks"]
const rightAligned: ReadonlySet<number> = new Set([0, 5, 6, 7])

const routeRow = (r: RouteView): ReadonlyArray<string> => [
  String(r.destination),
  viaText(r),
  r.path.length === 0 ? "-" : r.path.join(">"),
  r.interfaceName ?? "-",
  r.algorithm ?? "none",
  fixed(r.costMs, 2),
  fixed(r.rttMs, 2),
  r.lossRatio === null ? "-" : (r.lossRatio * 100).toFixed(2),
  r.starved ? `${r.stability} (starved)` : r.stability || "-",
  whyText(r),
]

/** Column-aligned rows (numbers right-aligned in the given columns), the last column left ragged. */
export const alignRows = (
  rows: ReadonlyArray<ReadonlyArray<string>>,
  indent: string,
  rightAligned: ReadonlySet<number> = new Set(),
): ReadonlyArray<string> => {
  const widths: Array<number> = []
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length)
  }
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, i) =>
          rightAligned.has(i)
            ? cell.padStart(widths[i] ?? 0)
            : i === row.length - 1
              ? cell
              : cell.padEnd(widths[i] ?? 0),
        )
        .join("  ")
        .trimEnd(),
  )
}

const routeTable = (routes: ReadonlyArray<RouteView>, indent: string): ReadonlyArray<string> =>
  routes.length === 0
    ? [`${indent}(no destinations)`]
    : alignRows([header, ...routes.map(routeRow)], indent, rightAligned)

const siteLabel = (s: SiteView): string => `${s.site}${s.name === null ? "" : ` (${s.name})`} at ${s.address}`

/** Algorithms that produced the routes in force, most used first: the original's "Update Method". */
const updateMethod = (routes: ReadonlyArray<RouteView>): string => {
  const counts = new Map<string, number>()
  for (const r of routes) counts.set(r.algorithm ?? "none", (counts.get(r.algorithm ?? "none") ?? 0) + 1)
  if (counts.size === 0) return "-"
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, n]) => `${name} (${n})`)
    .join(", ")
}

const siteBlock = (s: SiteView): ReadonlyArray<string> => {
  if (!s.ok) return [`Source: ${siteLabel(s)}`, `  ERROR: unreachable: ${s.error.code}: ${s.error.message}`]
  const lines = [
    `Source: ${siteLabel(s)}`,
    `Configured Algorithm: ${s.configuredAlgorithm || "-"}`,
    `Update Method: ${updateMethod(s.routes)}`,
    `Updated at: ${s.updatedAtMillis > 0 ? new Date(s.updatedAtMillis).toISOString() : "never (no routing decision yet)"}`,
    `Daemon: ${s.version ?? "?"}${s.node === null ? "" : ` (node ${s.node})`}, answered in ${s.elapsedMillis} ms`,
  ]
  if (s.perAlgorithm.length === 0) return [...lines, ...routeTable(s.routes, "  ")]
  const inForce = new Map(s.routes.map((r) => [r.destination, r]))
  return [
    ...lines,
    ...s.perAlgorithm.flatMap((a) => {
      const same = a.routes.filter((r) => inForce.get(r.destination)?.nextHop === r.nextHop).length
      return [
        `  Algorithm ${a.algorithm}: ${same} of ${a.routes.length} next hops match the routes in force`,
        ...routeTable(a.routes, "    "),
      ]
    }),
  ]
}

/** The whole report, ending with a newline. */
export const renderTable = (view: MeshView): string => {
  const blocks = view.sites.map((s) => siteBlock(s).join("\n"))
  const { summary } = view
  const closing =
    summary.unreachable.length === 0
      ? `${summary.reachable} of ${summary.sites} sites answered.`
      : `${summary.reachable} of ${summary.sites} sites answered; unreachable: ${summary.unreachable.join(", ")}.`
  return `Routing Table:\n-------------\n\n${blocks.join("\n\n")}\n\n${closing}\n`
}

/** JSON output: the view plus ISO timestamps; +Infinity never appears (costs are null instead). */
export const renderJson = (view: MeshView, pretty: boolean): string =>
  JSON.stringify(
    {
      at: new Date(view.atMillis).toISOString(),
      ...view,
      sites: view.sites.map((s) =>
        s.ok ? { ...s, updatedAt: s.updatedAtMillis > 0 ? new Date(s.updatedAtMillis).toISOString() : null } : s,
      ),
    },
    null,
    pretty ? 2 : undefined,
  )
