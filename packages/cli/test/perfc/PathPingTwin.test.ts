/**
 * MeasureService.PathPing end to end (root only): a 3-site twin (wireguard-go, BIRD 2) with the
 * real `net-perf` daemon per site; from site 0's namespace the compiled `perfc pathping` measures
 * a given round trip and one built from the routes in force, gets INVALID_ARGUMENT for a site the
 * daemon does not know and RESOURCE_EXHAUSTED beyond the per-caller concurrency, and the daemon's
 * /metrics counts every outcome. The twin's scope removes namespaces, daemons and processes.
 * Needs the built binaries (`npx tsc -b`); skips with a reason otherwise.
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { makeTwin, NetLab, parseScenarioText, type Twin } from "@net-perf/simulator"
import { Effect, Either } from "effect"
import { execa } from "execa"
import { managedRoutes, scrape, waitFor } from "../e2e/faults/Mesh.js"

const repo = join(import.meta.dirname, "../../../..")
const perfc = join(repo, "packages/cli/dist/src/bin/perfc.js")
const daemon = join(repo, "packages/node-runtime/dist/src/bin/net-perf.js")
const isRoot = process.getuid?.() === 0
const skipReason = !isRoot
  ? "needs root (network namespaces)"
  : !existsSync(perfc) || !existsSync(daemon)
    ? "built binaries missing (run npx tsc -b)"
    : undefined
if (skipReason !== undefined) console.log(`skipping the pathping twin test: ${skipReason}`)

// 5 ms one way on every link: a hop's round trip is ≥ 10 ms, the triangle's ≥ 15 ms.
const scenario = Either.getOrThrow(
  parseScenarioText(
    ["name: pathping-3", "sites: 3", "durationSeconds: 60", "links:", "  default: { delayMs: 5 }", "events: []"].join(
      "\n",
    ),
  ),
)

const measureModule = join(repo, "packages/node-runtime/dist/src/gen/netperf/measure/v1/measure.js")
const grpcModule = join(repo, "node_modules/@grpc/grpc-js/build/src/index.js")
/** Three PathPing calls issued together from one process; prints their status codes as JSON. */
const concurrentCalls = `
import grpc from ${JSON.stringify(grpcModule)}
import { MeasureServiceClient } from ${JSON.stringify(measureModule)}
const client = new MeasureServiceClient("10.201.0.1:5122", grpc.credentials.createInsecure())
const request = { path: [0, 1, 0], families: [], count: 30, intervalMillis: 100 }
const one = () => new Promise((resolve) =>
  client.pathPing(request, (error) => resolve({ code: error ? error.code : 0, details: error ? error.details : "" })))
console.log(JSON.stringify(await Promise.all([one(), one(), one()])))
client.close()
`

interface PathPingJson {
  site: number
  path: Array<number>
  families: Array<number>
  rttMs: number | null
  sent: number
  received: number
  relayResidenceMs: number | null
  rawRttMs: number | null
  hops: Array<{ index: number; from: number; to: number; family: number; rttMs: number | null; received: number }>
}

const perfcAt = (twin: Twin, site: number, args: ReadonlyArray<string>) =>
  Effect.promise(() => {
    const [command, ...rest] = twin.siteCommand(site, [process.execPath, perfc, "pathping", ...args])
    return execa(command!, rest, { reject: false, timeout: 30_000 })
  })

describe.skipIf(skipReason !== undefined)("perfc pathping against real daemons in a 3-site twin", () => {
  it.scopedLive(
    "measures given and routed round trips; rejects bad input and floods with clear status codes",
    () =>
      Effect.gen(function* () {
        const twin = yield* makeTwin({ scenario, mode: "test" })
        yield* Effect.forEach([0, 1, 2], (site) => NetLab.startDaemon(twin, site))
        yield* waitFor(
          "protocol-201 routes to every other site",
          90,
          Effect.map(
            Effect.forEach([0, 1, 2], (s) => managedRoutes(twin.siteNs(s))),
            (tables) => tables.every((t) => t.length === 4),
          ),
        )

        // A given triangle on the v4 tunnels, hop by hop.
        const given = yield* perfcAt(twin, 0, ["0", "0,1,2,0", "--family", "4", "--count", "5", "--json"])
        expect(given.exitCode, given.stderr).toBe(0)
        const triangle = JSON.parse(given.stdout) as PathPingJson
        expect(triangle.path).toEqual([0, 1, 2, 0])
        expect(triangle.families).toEqual([0, 4, 4, 4])
        expect(triangle.received).toBe(5)
        expect(triangle.rttMs).toBeGreaterThan(15)
        // the network's RTT: the relays' residence is out of it, and in the raw round trip
        expect(triangle.relayResidenceMs).toBeGreaterThan(0)
        expect(triangle.rawRttMs).toBeCloseTo((triangle.rttMs ?? 0) + (triangle.relayResidenceMs ?? 0), 2)
        expect(triangle.hops.map((h) => [h.from, h.to, h.received])).toEqual([
          [0, 1, 5],
          [1, 2, 5],
        ])
        // turning back at 1 is one link's round trip (≥ 10 ms); at 2 two links' (≥ 20 ms)
        expect(triangle.hops[0]?.rttMs).toBeGreaterThan(10)
        expect(triangle.hops[1]?.rttMs).toBeGreaterThan(20)

        // The round trip along the routes in force (direct: every link is equal), on their tunnels.
        const routed = yield* perfcAt(twin, 0, ["0", "--to", "2", "--via-routes", "--json"])
        expect(routed.exitCode, routed.stderr).toBe(0)
        const trip = JSON.parse(routed.stdout) as PathPingJson & { builtFrom: string }
        expect(trip.builtFrom).toBe("routes in force 0>2>0")
        expect(trip.path[0]).toBe(0)
        expect(trip.path).toContain(2)
        expect(trip.path.at(-1)).toBe(0)
        expect(trip.families.slice(1).every((f) => f === 4 || f === 6)).toBe(true)
        expect(trip.received).toBe(10)
        expect(trip.rttMs).toBeGreaterThan(10)

        // The human table.
        const table = yield* perfcAt(twin, 0, ["0", "0", "1", "0", "--count", "3"])
        expect(table.exitCode, table.stderr).toBe(0)
        expect(table.stdout).toMatch(/^pathping 0 > 1 > 0 from site 0 \(10\.201\.0\.1:5122\): 3 × 100 ms/)
        // RTT, Step, Raw, Relays
        expect(table.stdout).toMatch(/\n\s+1\s+0 > 1\s+kernel(\s+[\d.]+){4}\s+3\s+3\s+0 %/)

        // A site the daemon does not know: the daemon's INVALID_ARGUMENT, exit 1.
        const unknown = yield* perfcAt(twin, 0, ["0", "0,7,0"])
        expect(unknown.exitCode).toBe(1)
        expect(unknown.stderr).toMatch(/INVALID_ARGUMENT: path: site\(s\) 7 not known here \(known: 0,1,2\)/)

        // Three long runs at once from one caller (one process, so they really overlap even when
        // node start-up is slow under load): the third is refused (2 at once per caller).
        const together = yield* Effect.promise(() => {
          const [command, ...rest] = twin.siteCommand(0, [
            process.execPath,
            "--input-type=module",
            "-e",
            concurrentCalls,
          ])
          return execa(command!, rest, { reject: false, timeout: 60_000 })
        })
        expect(together.exitCode, together.stderr).toBe(0)
        const outcomes = JSON.parse(together.stdout) as Array<{ code: number; details: string }>
        expect(outcomes.map((o) => o.code).sort()).toEqual([0, 0, 8]) // 8 = RESOURCE_EXHAUSTED
        expect(outcomes.find((o) => o.code === 8)?.details).toMatch(/already runs 2 pathping\(s\) here/)

        const metrics = (yield* scrape(twin, 0)) ?? ""
        const outcome = (name: string) =>
          Number(new RegExp(`netperf_pathping_requests_total\\{outcome="${name}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0)
        expect(outcome("ok")).toBe(5)
        expect(outcome("invalid")).toBe(1)
        expect(outcome("rate_limited")).toBe(1)
        expect(metrics).toMatch(/netperf_path_rtt_seconds\{path="0-1v4-2v4-0v4",hop="all"\} [\d.e-]+/)
      }),
    240_000,
  )
})
