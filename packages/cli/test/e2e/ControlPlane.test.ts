// Issue 6's acceptance, as a test: a 3-site twin (real wireguard-go, real BIRD 2) runs three real
// net-perf daemons; they exchange link state, install protocol-201 routes, move traffic off a link
// made slow, and withdraw every managed route on SIGTERM.
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { makeTwin, NetLab, parseScenarioText, type Twin } from "@net-perf/simulator"
import { Effect, Either } from "effect"
import { execa } from "execa"
import { managedRoutes, waitFor } from "./faults/Mesh.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping the control-plane twin test: needs root (network namespaces)")

const scenario = Either.getOrThrow(
  parseScenarioText(
    [
      "name: control-plane-3",
      "sites: 3",
      "durationSeconds: 60",
      "links:",
      "  default: { delayMs: 5 }",
      "events: []",
    ].join("\n"),
  ),
)

const perfc = join(import.meta.dirname, "../../dist/src/bin/perfc.js")

/** On failure: what each daemon logged and what perfc saw, so a red CI run explains itself. */
const diagnose = (twin: Twin, daemons: ReadonlyArray<NetLab.DaemonHandle>) =>
  Effect.promise(async () => {
    for (const d of daemons) {
      const log = await readFile(d.logFile, "utf8").catch(() => "")
      console.log(`--- site ${d.site} daemon log (last 30 lines)\n${log.split("\n").slice(-30).join("\n")}`)
    }
    const [command, ...args] = twin.siteCommand(0, [process.execPath, perfc, "--sites", "0,1,2"])
    const r = await execa(command!, args, { reject: false })
    console.log(`--- perfc from site 0\n${r.stdout}\n${r.stderr}`)
  })

describe.skipIf(!isRoot)("net-perf daemons in a 3-site twin", () => {
  it.scopedLive(
    "exchange link state, install proto-201 routes, avoid a slow link, withdraw on SIGTERM",
    () =>
      Effect.gen(function* () {
        const twin = yield* makeTwin({ scenario, mode: "test" })
        const ns = (site: number) => twin.siteNs(site)
        const daemons = yield* Effect.forEach([0, 1, 2], (site) =>
          NetLab.startDaemon(twin, site, {
            // Short dwell and 1σ noise margin: this test checks the mechanism, not the default tuning
            // (on a loaded 2-core CI machine the measured jitter alone can exceed the injected step).
            overrides: { routing: { linkStateMaxAgeMillis: 5_000, stability: { dwellMillis: 3_000, noiseFactor: 1 } } },
          }),
        )
        const routeTo = (site: number, dst: number) =>
          Effect.map(managedRoutes(ns(site)), (routes) => routes.find((r) => r.dst === `10.201.${dst}.0/24`)?.dev)

        // 1. every site installs a managed route (IPv4 and IPv6 overlay) to every other site
        const installedMs = yield* waitFor(
          "protocol-201 routes to every other site, both overlay families",
          90,
          Effect.map(
            Effect.forEach([0, 1, 2], (s) => managedRoutes(ns(s))),
            (tables) => tables.every((t) => t.length === 4),
          ),
        )
        // direct tunnels while every link is equal
        expect(yield* routeTo(0, 1)).toMatch(/^wg0\.1_v[46]$/)

        // 2. link state: site 0's perfc sees every site's routes through the management API
        const [command, ...args] = twin.siteCommand(0, [process.execPath, perfc, "--sites", "0,1,2", "--json"])
        const overview = yield* Effect.promise(() => execa(command!, args, { reject: false }))
        expect(overview.exitCode, overview.stderr).toBe(0)
        const sites = JSON.parse(overview.stdout).sites as Array<{ site: number; routes: Array<unknown> }>
        expect(sites.map((s) => s.site)).toEqual([0, 1, 2])
        for (const s of sites) expect(s.routes.length).toBe(2)

        // 3. the direct 0-1 link becomes slow: both ends move to the detour via 2
        yield* twin.impair("0-1", { delayMs: 60 })
        const movedMs = yield* waitFor(
          "0→1 and 1→0 routed via site 2",
          45,
          Effect.map(
            Effect.all([routeTo(0, 1), routeTo(1, 0)]),
            ([a, b]) => a?.startsWith("wg0.2_") === true && b?.startsWith("wg1.2_") === true,
          ),
        ).pipe(Effect.tapError(() => diagnose(twin, daemons)))
        // and forwarding really uses the detour: RTT 0→1 is near 2×(5+5) ms, not 2×60 ms
        const ping = yield* Effect.promise(() =>
          execa(
            "ip",
            ["netns", "exec", ns(0), "ping", "-n", "-c", "5", "-i", "0.2", "-I", "10.201.0.1", "10.201.1.1"],
            {
              reject: false,
            },
          ),
        )
        const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1])
        expect(avg).toBeLessThan(80)

        // 4. SIGTERM: every daemon withdraws its routes before exiting
        const stoppedAt = Date.now()
        const outcomes = yield* Effect.forEach(daemons, (d) => d.stop("SIGTERM"), { concurrency: "unbounded" })
        const withdrawMs = Date.now() - stoppedAt
        expect(outcomes).toEqual(["exit 0", "exit 0", "exit 0"])
        for (const s of [0, 1, 2]) expect(yield* managedRoutes(ns(s))).toEqual([])
        console.log(
          `control plane (3 sites): routes installed ${installedMs} ms after start, moved off the slow link in ${movedMs} ms, SIGTERM → all routes withdrawn and exited in ${withdrawMs} ms`,
        )
      }),
    240_000,
  )
})
