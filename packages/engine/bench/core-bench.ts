/**
 * Figures for the engine-core modules (aggregation, tunnel choice, planner, analyser) at mesh
 * scale. A script, not a test: it prints medians (and `--json`). Run:
 *   npx esbuild packages/engine/bench/core-bench.ts --bundle --platform=node --format=esm \
 *     --outfile=/tmp/core-bench.mjs --log-level=warning && node /tmp/core-bench.mjs [--json]
 */
import { Either } from "effect"
import {
  analysePaths,
  chooseTunnels,
  emptyAggregate,
  type Family,
  ingest,
  type KernelRoute,
  type LinkStats,
  linkStats,
  type PathMeasurement,
  planRoutes,
  RttSample,
  SiteId,
  type TunnelAggregate,
  tunnelId,
} from "../src/index.js"

const json = process.argv.includes("--json")
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const time = (runs: number, f: () => void) => {
  f() // warm-up: JIT compilation is not what we measure
  const out: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    f()
    out.push(performance.now() - t0)
  }
  return median(out)
}

const figures: Record<string, number> = {}
for (const n of [50, 100, 200]) {
  // One node of an n-site mesh: 2(n−1) tunnels, 60 s of 1/s echoes each.
  const tunnels = []
  for (let r = 1; r < n; r++) for (const f of [4, 6] as const) tunnels.push(tunnelId(0, r, f))
  const samples = []
  for (let s = 0; s < 60; s++) {
    for (const [i, t] of tunnels.entries()) {
      samples.push(
        RttSample.make({
          tunnel: t,
          kind: "udp-echo",
          atMillis: s * 1000 + i,
          rttMs: s % 17 === 3 ? null : 10 + (i % 40),
        }),
      )
    }
  }
  let aggs: Array<TunnelAggregate> = tunnels.map(emptyAggregate)
  const ingestMs = time(5, () => {
    const state = tunnels.map(emptyAggregate)
    for (let k = 0; k < samples.length; k++) state[k % tunnels.length] = ingest(state[k % tunnels.length]!, samples[k]!)
    aggs = state
  })
  figures[`aggregation_ingest_ns_per_sample_n${n}`] = (ingestMs * 1e6) / samples.length
  let stats: Array<LinkStats> = []
  figures[`aggregation_linkstats_all_tunnels_ms_n${n}`] = time(20, () => {
    stats = aggs.map((a) => linkStats(a, 60_000))
  })
  figures[`tunnel_choice_all_peers_ms_n${n}`] = time(20, () => {
    chooseTunnels(SiteId.make(0), new Map<SiteId, { key: Family; sinceMillis: number }>(), stats, 60_000)
  })
  const route = (d: number, dev: string): KernelRoute => ({
    prefix: `10.201.${d}.0/24`,
    device: dev,
    metric: 100,
    protocol: 201,
  })
  const installed = Array.from({ length: n - 1 }, (_, d) => route(d + 1, `wg0.${d + 1}_v4`))
  const desired = Array.from({ length: n - 1 }, (_, d) =>
    route(d + 1, d % 10 === 0 ? `wg0.${d + 2}_v4` : `wg0.${d + 1}_v4`),
  )
  figures[`planner_ms_n${n}`] = time(50, () => {
    Either.getOrThrow(planRoutes(desired, installed))
  })
}
// Analyser: a 20-site full mesh (190 links), every round trip plus 100 triangles.
{
  const n = 20
  const lat = (a: number, b: number) => 1 + ((a * 31 + b * 17) % 50)
  const ms: Array<PathMeasurement> = []
  for (let a = 0; a < n; a++)
    for (let b = a + 1; b < n; b++) ms.push({ path: [a, b, a].map(SiteId.make), rttMs: 2 * lat(a, b) })
  for (let k = 0; k < 100; k++) {
    const a = k % n
    const b = (k * 7 + 1) % n
    const c = (k * 13 + 2) % n
    if (a === b || b === c || a === c) continue
    const e = (x: number, y: number) => lat(Math.min(x, y), Math.max(x, y))
    ms.push({ path: [a, b, c, a].map(SiteId.make), rttMs: e(a, b) + e(b, c) + e(c, a) })
  }
  figures.analyser_20_sites_190_links_ms = time(5, () => {
    Either.getOrThrow(analysePaths(ms))
  })
}
if (json) process.stdout.write(`${JSON.stringify(figures)}\n`)
else for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(48)} ${v.toFixed(3)}\n`)
