// The twin's optional metrics store: a 3-site net-perf twin (real wireguard-go, BIRD 2, the real
// daemon) with a real Prometheus in the underlay namespace scraping every daemon each second.
// The timeline stops Prometheus and starts it again: routes stay where they are, no loop or
// blackhole, every daemon's netperf_metrics_store_up goes to 0 (one log line) and back to 1, the
// store never replaces fresh link state (no fallback links while the exchange is healthy). Then
// site 2's link-state exchange is blocked (gRPC dropped in its namespace): once it ages out, every
// daemon takes the silent origins' links from the store, traffic still flows, and unblocking
// hands them back to the exchange. Teardown leaves nothing behind (namespaces, Prometheus, the
// run folder).
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Schedule } from "effect"
import { scrapeDaemonMetrics } from "../../src/twin/Daemons.js"
import { twinMetricsStoreOf } from "../../src/twin/MetricsStore.js"
import { runOnTwin } from "../../src/twin/Runner.js"
import { defaultStateRoot, isClean, residueOf } from "../../src/twin/RunState.js"
import { parseScenarioText } from "../../src/twin/Scenario.js"
import { makeTwin } from "../../src/twin/Twin.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping the twin metrics-store test: needs root (network namespaces)")

const scenario = Either.getOrThrow(
  parseScenarioText(
    [
      "name: metrics-store-down",
      "sites: 3",
      "families: [4]",
      "durationSeconds: 32",
      "routing: net-perf",
      "metricsStore: prometheus",
      "links:",
      "  default: { delayMs: 5 }",
      "events:",
      "  - { at: 6, action: stop-metrics-store }",
      "  - { at: 20, action: start-metrics-store }",
    ].join("\n"),
  ),
)

const gauge = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text)
  return m === null ? undefined : Number(m[1])
}

/** Waits until the latest reading after `since` of every site satisfies `ok`; the wait in ms. */
const waitForReadings = (
  readings: ReadonlyArray<Reading>,
  since: number,
  ok: (r: Reading) => boolean,
  sites: ReadonlyArray<number>,
  timeoutMillis: number,
) =>
  Effect.gen(function* () {
    while (Date.now() - since < timeoutMillis) {
      const latest = sites.map((x) => readings.filter((r) => r.site === x && r.atMillis > since).at(-1))
      if (latest.every((r) => r !== undefined && ok(r))) return Date.now() - since
      yield* Effect.sleep("200 millis")
    }
    return yield* Effect.dieMessage(`readings did not reach the expected state within ${timeoutMillis} ms`)
  })

interface Reading {
  readonly atMillis: number
  readonly site: number
  readonly up: number | undefined
  readonly fallbackLinks: number | undefined
}

describe("scenario metricsStore", () => {
  it("decodes the option and its actions, and refuses the actions without a store", () => {
    expect(scenario.metricsStore).toBe("prometheus")
    expect(scenario.events.map((e) => e.action)).toEqual(["stop-metrics-store", "start-metrics-store"])
    const without = parseScenarioText(
      ["name: x", "sites: 2", "durationSeconds: 5", "events:", "  - { at: 1, action: stop-metrics-store }"].join("\n"),
    )
    expect(Either.isLeft(without) && without.left.message).toContain("needs a metrics store")
    const other = parseScenarioText(
      ["name: x", "sites: 2", "durationSeconds: 5", "metricsStore: victoriametrics"].join("\n"),
    )
    expect(Either.isLeft(other)).toBe(true)
  })
})

describe.skipIf(!isRoot)("the twin's Prometheus as the daemons' metrics store", () => {
  it.live(
    "stopping and starting it moves no route, makes no loop, every daemon reports it down and up; it fills a silent site's links",
    () =>
      Effect.gen(function* () {
        let prefix = ""
        let pids: ReadonlyArray<number> = []
        const sites = [0, 1, 2]
        const { report, readings, logs, prometheusPids, filledMs, releasedMs } = yield* Effect.scoped(
          Effect.gen(function* () {
            const twin = yield* makeTwin({ scenario, mode: "test" })
            prefix = twin.prefix
            pids = [...(yield* twin.pids), ...[...twin.daemons.values()].flatMap((d) => d.pid() ?? [])]
            const readings: Reading[] = []
            const poll = Effect.forEach(
              sites,
              (site) =>
                scrapeDaemonMetrics(twin, site).pipe(
                  Effect.map((text) =>
                    readings.push({
                      atMillis: Date.now(),
                      site,
                      up: gauge(text, "netperf_metrics_store_up"),
                      fallbackLinks: gauge(text, "netperf_metrics_store_fallback_links"),
                    }),
                  ),
                  Effect.ignore,
                ),
              { concurrency: 3, discard: true },
            )
            const poller = yield* Effect.fork(Effect.repeat(poll, Schedule.spaced("400 millis")))
            const prometheusPids = new Set<number>()
            const report = yield* runOnTwin(twin, {
              onProgress: (line) => {
                const pid = twinMetricsStoreOf(twin)?.pid()
                if (pid !== undefined) prometheusPids.add(pid)
                console.log(line)
              },
            })
            // Phase 2 (after the timeline, store running): site 2's link-state exchange blocked both
            // ways (gRPC :5122 dropped in its namespace). Once site 2 ages out at sites 0 and 1 (and they
            // at site 2), the daemons fill those origins' links from the store; unblocked, the exchange
            // takes over again and the store's links go.
            const blockedAt = Date.now()
            yield* twin.exec(2, [
              "nft",
              "add table inet npms; add chain inet npms in { type filter hook input priority 0 ; } ; add rule inet npms in tcp dport 5122 drop ; add chain inet npms out { type filter hook output priority 0 ; } ; add rule inet npms out tcp dport 5122 drop",
            ])
            const filledMs = yield* waitForReadings(
              readings,
              blockedAt,
              (r) => (r.site === 2 ? r.fallbackLinks === 4 : r.fallbackLinks === 2),
              sites,
              40_000,
            )
            // Still forwarding to and from the silent site (direct tunnels: a destination is always
            // eligible over a live link) while its links come from the store.
            yield* twin.exec(0, ["ping", "-c", "3", "-i", "0.3", "-W", "1", "10.201.2.1"])
            yield* twin.exec(2, ["ping", "-c", "3", "-i", "0.3", "-W", "1", "10.201.1.1"])
            const unblockedAt = Date.now()
            yield* twin.exec(2, ["nft", "delete table inet npms"])
            const releasedMs = yield* waitForReadings(
              readings,
              unblockedAt,
              (r) => r.fallbackLinks === 0,
              sites,
              40_000,
            )
            yield* Fiber.interrupt(poller)
            const logs = yield* Effect.forEach(sites, (site) =>
              Effect.promise(() => readFile(join(twin.siteDir(site), "net-perf.log"), "utf8")),
            )
            return { report, readings, logs, prometheusPids, filledMs, releasedMs }
          }),
        )

        expect(report.initialConvergenceMs).not.toBeNull()
        const [stop, start] = report.events
        expect(stop?.error).toBeUndefined()
        expect(start?.error).toBeUndefined()
        const stopAt = report.timeline.events[0]!.atMillis
        const startAt = report.timeline.events[1]!.atMillis

        // Routes stay: no next-hop change from the stop to the end, no loop, no blackhole.
        const changes = report.timeline.nextHops.filter((c) => c.atMillis > stopAt)
        expect(changes).toEqual([])
        expect(report.anomalies).toEqual([])

        const figures: string[] = []
        for (const site of sites) {
          const mine = readings.filter((r) => r.site === site)
          // Up before the stop (the store answered), with no link taken from it: the exchange is fresh.
          const before = mine.filter((r) => r.atMillis < stopAt)
          expect(before.at(-1)?.up).toBe(1)
          // (Before the exchange has connected, a daemon may fill its peers' links from the store: by design.)
          const early = mine.filter((r) => r.atMillis < report.timeline.t0Millis && (r.fallbackLinks ?? 0) > 0)
          if (early.length > 0)
            figures.push(
              `site ${site}: store links in use before t0 in ${early.length} reading(s), up to ${Math.max(...early.map((r) => r.fallbackLinks ?? 0))}`,
            )
          expect(
            mine
              .filter((r) => r.atMillis >= report.timeline.t0Millis && r.atMillis <= report.timeline.endMillis)
              .every((r) => r.fallbackLinks === 0),
          ).toBe(true)
          // Down after the stop...
          const firstDown = mine.find((r) => r.atMillis > stopAt && r.up === 0)
          expect(firstDown).toBeDefined()
          expect(mine.filter((r) => r.atMillis > stopAt + 4_000 && r.atMillis < startAt).every((r) => r.up === 0)).toBe(
            true,
          )
          // ...and up again after the start.
          const firstUp = mine.find((r) => r.atMillis > startAt && r.up === 1)
          expect(firstUp).toBeDefined()
          expect(mine.filter((r) => r.atMillis > report.timeline.endMillis).every((r) => r.up === 1)).toBe(true)
          figures.push(
            `site ${site}: down seen ${firstDown!.atMillis - stopAt} ms after the stop, up ${firstUp!.atMillis - startAt} ms after the start`,
          )
          // One log line per outage, not one per failed query: exactly one "unavailable" line between
          // the stop and the start, and every outage (the start-up one, before Prometheus was ready,
          // included) ended by one "answers again" line.
          const lines = (logs[site] as string).split("\n")
          // The daemon logs with Effect's pretty logger: "[HH:MM:SS.mmm] WARN (#51): …", local time of day.
          const at = (l: string) => {
            const m = /^\[(\d\d):(\d\d):(\d\d)\.(\d{3})\]/.exec(l)
            if (m === null) return Date.parse(/timestamp=(\S+)/.exec(l)?.[1] ?? "")
            const d = new Date(stopAt)
            d.setHours(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]))
            return d.getTime()
          }
          const downLines = lines.filter((l) => l.includes("metrics store unavailable"))
          const backLines = lines.filter((l) => l.includes("answers again"))
          expect(
            downLines.filter((l) => at(l) >= stopAt && at(l) <= startAt),
            `site ${site}, stop ${new Date(stopAt).toISOString()}, start ${new Date(startAt).toISOString()}: ${downLines.join(" | ")}`,
          ).toHaveLength(1)
          expect(backLines.length).toBe(downLines.length)
        }
        console.log(`metrics store in the twin (readings every 400 ms): ${figures.join("; ")}`)
        console.log(
          `exchange of site 2 blocked → store links in use at every site after ${filledMs} ms (age-out 10 s + refresh); unblocked → none after ${releasedMs} ms`,
        )

        const residue = yield* residueOf(defaultStateRoot(), prefix, [...pids, ...prometheusPids])
        expect(isClean(residue), JSON.stringify(residue)).toBe(true)
      }),
    240_000,
  )
})
