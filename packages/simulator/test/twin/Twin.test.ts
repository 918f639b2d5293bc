/**
 * A real 3-site twin (root only): BGP sessions come up and routes are installed, each site sees
 * only its own WireGuard sockets, an injected delay shows in the measured RTT, a failed link
 * makes BIRD converge onto the detour, and nothing is left afterwards.
 */
import { it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Scope } from "effect"
import { describe, expect } from "vitest"
import { isFullyDelivering, tracePath } from "../../src/analysis/NextHopGraph.js"
import { isClean, residueOf } from "../../src/twin/RunState.js"
import { startPinger, startRouteSampler } from "../../src/twin/Sampler.js"
import { parseScenarioText } from "../../src/twin/Scenario.js"
import { makeTwin, type Twin } from "../../src/twin/Twin.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping twin integration tests: they need root (network namespaces)")

const scenario = Either.getOrThrow(
  parseScenarioText(`
name: test-triangle
sites: 3
durationSeconds: 30
bird: { holdTimeSeconds: 3 }
links: { default: { delayMs: 2 } }
`),
)
const stateRoot = "/run/netlab"

const waitFor = <A, E>(what: string, check: Effect.Effect<A | undefined, E>, timeoutMs: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const v = yield* check
      if (v !== undefined) return v
      yield* Effect.sleep(Duration.millis(200))
    }
    return yield* Effect.dieMessage(`timed out after ${timeoutMs} ms waiting for ${what}`)
  })

const medianOf = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

describe.skipIf(!isRoot)("twin (3 sites, real WireGuard and BIRD)", () => {
  it.live(
    "sessions, isolation, delay, failover, zero residue",
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const twin: Twin = yield* makeTwin({ scenario, mode: "test" }).pipe(Scope.extend(scope))
        const pids = yield* twin.pids
        expect(pids.length).toBeGreaterThanOrEqual(12 + 3 + 1)

        // BGP: every session of site 0 reaches Established; kernel routes installed by BIRD.
        yield* waitFor(
          "BGP sessions of site 0",
          twin
            .birdc(0, "show protocols")
            .pipe(Effect.map((out) => ((out.match(/Established/g) ?? []).length === 4 ? true : undefined))),
          30_000,
        )
        const routes = yield* twin.exec(0, ["ip", "-json", "route", "show", "proto", "bird"])
        const dsts = (JSON.parse(routes) as Array<{ dst: string }>).map((r) => r.dst).sort()
        expect(dsts).toEqual(["10.201.1.0/24", "10.201.2.0/24"])
        const routes6 = yield* twin.exec(0, ["ip", "-json", "-6", "route", "show", "proto", "bird"])
        expect((JSON.parse(routes6) as Array<{ dst: string }>).map((r) => r.dst).sort()).toEqual([
          "fdac:c9:1::/64",
          "fdac:c9:2::/64",
        ])

        // Isolation: site 1 sees only its own four tunnels through wg.
        const wgIfaces = (yield* twin.exec(1, ["wg", "show", "interfaces"])).trim().split(/\s+/).sort()
        expect(wgIfaces).toEqual(["wg1.0_v4", "wg1.0_v6", "wg1.2_v4", "wg1.2_v6"])

        // Delay: +40 ms each way on 0-1 shows as ~+80 ms RTT between the routers.
        const sampler = yield* startRouteSampler([0, 1, 2], twin.siteNs).pipe(Scope.extend(scope))
        const base = yield* startPinger(0, 1, twin.siteNs, 100).pipe(Scope.extend(scope))
        yield* Effect.sleep(Duration.seconds(3))
        const before = medianOf(base.flatMap((s) => (s.rttMs === null ? [] : [s.rttMs])))
        yield* twin.impair("0-1", { delayMs: 42 })
        const mark = Date.now() + 500
        yield* Effect.sleep(Duration.seconds(3.5))
        const after = medianOf(
          base.filter((s) => s.atMillis > mark).flatMap((s) => (s.rttMs === null ? [] : [s.rttMs])),
        )
        console.log(`RTT 0-1: ${before.toFixed(2)} ms at 2 ms each way, ${after.toFixed(2)} ms at 42 ms each way`)
        expect(after - before).toBeGreaterThan(80 - 6)
        expect(after - before).toBeLessThan(80 + 10)

        // Failover: blackhole 0-1; BIRD's hold timer (3 s) expires and 0 reaches 1 via 2.
        expect(isFullyDelivering(sampler.snapshot(Date.now()))).toBe(true)
        yield* twin.impair("0-1", { down: true, delayMs: 2 })
        const failedAt = Date.now()
        yield* waitFor(
          "detour 0>2>1 and 1>2>0",
          Effect.sync(() => {
            const snap = sampler.snapshot(Date.now())
            const f = tracePath(snap, 0, 1)
            const r = tracePath(snap, 1, 0)
            return f._tag === "Delivered" &&
              f.path.join(">") === "0>2>1" &&
              r._tag === "Delivered" &&
              r.path.join(">") === "1>2>0"
              ? true
              : undefined
          }),
          20_000,
        )
        const convergedMs = Date.now() - failedAt
        console.log(`failover 0-1 → via 2 after ${convergedMs} ms (hold time 3 s)`)
        expect(convergedMs).toBeGreaterThan(1000)
        const detourRtt = yield* twin.exec(0, ["ping", "-n", "-c", "3", "-i", "0.2", "-I", "10.201.0.1", "10.201.1.1"])
        expect(detourRtt).toContain("3 received")

        // Teardown, then nothing of the run is left.
        yield* Scope.close(scope, Exit.void)
        const residue = yield* residueOf(stateRoot, twin.prefix, pids)
        expect(residue).toEqual({ namespaces: [], processes: [], files: [] })
        expect(isClean(residue)).toBe(true)
      }),
    120_000,
  )
})
