// Issue 8's CI scenario, shortened: a 4-site twin (real wireguard-go, real BIRD 2, the real
// net-perf daemon at every site) plays one hard failure and one degradation (one way, on a link
// that carries best paths) with its repair, and the report must meet the routing targets with
// margins for a shared, noisy 2-core machine (targets in brackets):
//   failure → every site forwarding around it within 5 s [p95 1.5 s; BGP's hold timer is 9 s],
//   degradation → moved within 15 s [10 s], repair → back on the best path within 45 s [30 s],
// The degradation is +150 ms one way, not the target's +50 ms: at load ~20 on 2 cores the daemons'
// UDP echo (answered by a Node event loop at each end) measured an idle 10 ms tunnel at 20–50 ms
// RTT with 10–30 ms jitter, so a two-hop detour looked as slow as +50 ms on the direct link and the
// daemon rightly stayed. netns-lab/bench-targets.mjs measures the +50 ms case.
//   no forwarding loop at all, no blackhole longer than 5 s [detection time],
//   fast echo ≤ 1.1 probes/s per tunnel on average [1/s], converged path RTT (injected) at the oracle,
//   and nothing left behind afterwards.
import { describe, expect, it } from "@effect/vitest"
import { makeTwin, NetLab, parseScenarioText } from "@net-perf/simulator"
import { Effect, Either, Schedule } from "effect"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping the end-to-end twin test: needs root (network namespaces)")

const scenario = Either.getOrThrow(
  parseScenarioText(
    [
      "name: e2e-ci",
      "sites: 4",
      "families: [4]",
      "durationSeconds: 95",
      // Daemon defaults throughout: the initial choice starts no dwell and a +150 ms step is an
      // urgent gain (engine README, "Reaction to a degradation"), so no stability override is needed.
      "routing: net-perf",
      "links:",
      "  default: { delayMs: 5 }",
      'watch: ["0-1", "2-3"]',
      "events:",
      '  - { at: 5, action: link-down, link: "2-3" }',
      '  - { at: 20, action: link-up, link: "2-3" }',
      '  - { at: 30, action: set-impairment, link: "0>1", delayMs: 155 }',
      '  - { at: 50, action: set-impairment, link: "0>1", delayMs: 5 }',
    ].join("\n"),
  ),
)

const echoSent = (text: string) => NetLab.sumCounter(text, "netperf_probes_sent_total", { probe: "udp" })

describe.skipIf(!isRoot)("net-perf end to end in a 4-site twin", () => {
  it.live(
    "fails over within seconds, leaves a degraded link and comes back, never loops, leaves nothing behind",
    () =>
      Effect.gen(function* () {
        let prefix = ""
        let pids: ReadonlyArray<number> = []
        const { report, echoPerTunnelPerSecond } = yield* Effect.scoped(
          Effect.gen(function* () {
            const twin = yield* makeTwin({ scenario, mode: "test" })
            prefix = twin.prefix
            pids = [...(yield* twin.pids), ...[...twin.daemons.values()].flatMap((d) => d.pid() ?? [])]
            const sites = [0, 1, 2, 3]
            // A daemon serves /metrics a moment after it starts: retry for a while.
            const scrape = Effect.forEach(sites, (x) =>
              NetLab.scrapeDaemonMetrics(twin, x).pipe(
                Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("30 seconds"))),
                Effect.map(echoSent),
              ),
            )
            const before = { at: Date.now(), sent: yield* scrape }
            const report = yield* NetLab.runOnTwin(twin)
            const after = { at: Date.now(), sent: yield* scrape }
            const tunnelsPerSite = (scenario.sites - 1) * scenario.families.length
            const rates = sites.map(
              (x) =>
                ((after.sent[x] as number) - (before.sent[x] as number)) /
                tunnelsPerSite /
                ((after.at - before.at) / 1000),
            )
            return { report, echoPerTunnelPerSecond: Math.max(...rates) }
          }),
        )
        console.log(NetLab.formatSummary(report))
        console.log(`fast echo: at most ${echoPerTunnelPerSecond.toFixed(2)} probes/s per tunnel (site average)`)

        expect(report.initialConvergenceMs).not.toBeNull()
        const [down, up, degrade, repair] = report.events
        for (const e of report.events) expect(e.error).toBeUndefined()
        // failure: every pair off the dead link and delivering
        expect(down?.badPathMs).toBeLessThanOrEqual(5_000)
        expect(down?.settledDelivering).toBe(true)
        expect(up?.settledDelivering).toBe(true)
        // degradation: off the slow direction, then back after the repair
        expect(degrade?.badPathAtEnd).toBe(false)
        expect(degrade?.badPathMs).toBeLessThanOrEqual(15_000)
        // Back after the repair: the engine's level-shift detection sees the step in three ICMP samples,
        // and the plain (not urgent) gain waits the 30 s dwell since the move. A link back from a
        // *failure* is distrusted for up to a minute (availability), longer than its 10 s window here:
        // the engine's Aggregation tests pin that bound.
        console.log(
          `repair → back on the best path: ${repair?.offOptimumAtEnd === true ? "not within the run" : `${repair?.offOptimumMs} ms`}`,
        )
        expect(repair?.offOptimumAtEnd).toBe(false)
        expect(repair?.offOptimumMs).toBeLessThanOrEqual(45_000)
        // never a loop; a blackhole only while a failure is being detected
        expect(report.anomalies.filter((a) => a.kind === "loop")).toEqual([])
        for (const a of report.anomalies) expect(a.lastSeenMillis - a.firstSeenMillis).toBeLessThanOrEqual(5_000)
        // the fast echo stays at about one probe per second per tunnel, bursts included
        expect(echoPerTunnelPerSecond).toBeLessThanOrEqual(1.1)
        // once settled, the paths in use are as good as the symmetric oracle's (injected delays)
        const degraded = report.rtt.find((p) => p.a === 0 && p.b === 1 && p.window.startsWith("impair 0>1 delayMs=155"))
        expect(degraded?.chosenPathRttMs).toBeLessThanOrEqual(20 * 1.1)

        const residue = yield* NetLab.residueOf(NetLab.defaultStateRoot(), prefix, pids)
        expect(NetLab.isClean(residue), JSON.stringify(residue)).toBe(true)
      }),
    300_000,
  )
})
