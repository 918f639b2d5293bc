// The plane-wide echo scheduler on real loopback sockets: one socket per local address, the peer's
// requests as evidence (a silence pulls our next probe in, at no extra probe), and the lower site
// id keeping its sends half-way between the peer's.
import { readdir, readFile, readlink } from "node:fs/promises"
import { describe, expect, it } from "@effect/vitest"
import { type RttSample, tunnelId } from "@net-perf/engine"
import { Effect, Either, Exit, Schema, Scope } from "effect"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { type EchoProbes, makeEchoProbes } from "../../src/probes/EchoProber.js"
import { EchoProbeConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { defaultProbeServerConfig, serveProbeServer } from "../../src/servers/ProbeServer.js"

const testPort = () => 20000 + Math.floor(Math.random() * 30000)
const allowLoopback = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))

/** UDP sockets of this process bound to `address` (hex from /proc/net/udp), any port but `exceptPort`. */
const udpSocketsOn = async (address: string, exceptPort: number) => {
  const inodes = new Set<string>()
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "")
    const m = /^socket:\[(\d+)\]$/.exec(target)
    if (m !== null) inodes.add(m[1]!)
  }
  const hex = address
    .split(".")
    .map((x) => Number(x).toString(16).padStart(2, "0").toUpperCase())
    .reverse()
    .join("")
  const rows = (await readFile("/proc/net/udp", "utf8")).split("\n").slice(1)
  return rows.filter((row) => {
    const f = row.trim().split(/\s+/)
    const [ip, port] = (f[1] ?? ":").split(":")
    return ip === hex && Number.parseInt(port ?? "0", 16) !== exceptPort && inodes.has(f[9] ?? "")
  }).length
}

/** A site's 5121 server on loopback, feeding peer evidence to whichever scheduler `probes` holds. */
const siteServer = (address: string, port: number) =>
  Effect.gen(function* () {
    const holder: { probes: EchoProbes | undefined } = { probes: undefined }
    yield* serveProbeServer({
      ...defaultProbeServerConfig([address], allowLoopback),
      port,
      onEchoRequest: (local, source) => holder.probes?.peerRequest(local, source),
    })
    return holder
  })

describe("plane-wide echo scheduler", () => {
  it.scopedLive("probes 20 tunnels from one socket per local address and releases it with the last tunnel", () =>
    Effect.gen(function* () {
      const port = testPort()
      const remotes = Array.from({ length: 20 }, (_, i) => `127.0.3.${i + 1}`)
      yield* serveProbeServer({ ...defaultProbeServerConfig(remotes, allowLoopback), port })
      const probes = yield* makeEchoProbes(Schema.decodeSync(EchoProbeConfig)({ port, intervalMillis: 200 }))
      const before = yield* Effect.promise(() => udpSocketsOn("127.0.0.1", port))
      const scope = yield* Scope.make()
      const stats = yield* Effect.forEach(remotes, (remote, i) =>
        probes
          .add(
            tunnelId(1, i + 2, 4),
            { localAddress: "127.0.0.1", remoteAddress: remote },
            { onSample: () => {}, onHealth: () => {} },
          )
          .pipe(Scope.extend(scope)),
      )
      expect(yield* Effect.promise(() => udpSocketsOn("127.0.0.1", port))).toBe(before + 1)
      yield* Effect.sleep("1500 millis")
      for (const s of stats) {
        expect(s().health).toBe("up")
        expect(s().received).toBeGreaterThanOrEqual(3)
        expect(s().lost).toBe(0)
      }
      yield* Scope.close(scope, Exit.void)
      yield* Effect.sleep("50 millis")
      expect(yield* Effect.promise(() => udpSocketsOn("127.0.0.1", port))).toBe(before)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )

  it.scopedLive(
    "keeps site 1's sends half-way between site 2's, and a silent peer pulls the next probe in without extra probes",
    () =>
      Effect.gen(function* () {
        const port = testPort()
        const intervalMillis = 1000
        const config = Schema.decodeSync(EchoProbeConfig)({ port, intervalMillis })
        const [a, b] = ["127.0.4.1", "127.0.4.2"] as const
        const serverA = yield* siteServer(a, port)
        const serverB = yield* siteServer(b, port)
        const probesA = yield* makeEchoProbes(config)
        serverA.probes = probesA
        const samplesA: Array<RttSample> = []
        const samplesB: Array<RttSample> = []
        const statsA = yield* probesA.add(
          tunnelId(1, 2, 4),
          { localAddress: a, remoteAddress: b },
          { onSample: (s) => samplesA.push(s), onHealth: () => {} },
        )
        const scopeB = yield* Scope.make()
        // Only B's prober lives in scopeB: B's server keeps answering A.
        const probesB = yield* makeEchoProbes(config).pipe(Scope.extend(scopeB))
        serverB.probes = probesB
        const statsB = yield* probesB
          .add(
            tunnelId(2, 1, 4),
            { localAddress: b, remoteAddress: a },
            { onSample: (s) => samplesB.push(s), onHealth: () => {} },
          )
          .pipe(Scope.extend(scopeB))

        // Alignment: each of A's sends comes to lie about half a period after B's last (3 regular
        // requests first, then ≤ 10 % of a period per probe: ≤ 9 s from the worst phase on a quiet
        // machine). A loaded machine (CI runs test files in parallel) stalls event loops, and gaps
        // off the peer's period pause the alignment, so this polls for it for up to 30 s.
        const phasesOfLastSends = () => {
          const sendsB = samplesB.map((s) => s.atMillis)
          return samplesA
            .slice(-4)
            .map((s) => {
              const before = sendsB.filter((t) => t <= s.atMillis)
              return before.length === 0 ? Number.NaN : (s.atMillis - before[before.length - 1]!) / intervalMillis
            })
            .filter((x) => !Number.isNaN(x))
        }
        const halfWay = () => {
          const phases = phasesOfLastSends()
          return statsA().phaseAligned && phases.length >= 3 && phases.every((phase) => Math.abs(phase - 0.5) < 0.15)
        }
        const alignStartedMs = Date.now()
        yield* Effect.sleep("13 seconds")
        while (!halfWay() && Date.now() - alignStartedMs < 30_000) yield* Effect.sleep("500 millis")
        console.log(`echo phase alignment: half-way after ${((Date.now() - alignStartedMs) / 1000).toFixed(1)} s`)
        expect(statsA().phaseAligned).toBe(true)
        expect(statsB().phaseAligned).toBe(false) // the higher id does not move
        expect(statsA().peerRequests).toBeGreaterThanOrEqual(6)
        const phases = phasesOfLastSends()
        expect(phases.length).toBeGreaterThanOrEqual(3)
        for (const phase of phases) expect(Math.abs(phase - 0.5)).toBeLessThan(0.15)

        // B's prober stops (as when the B→A direction fails): A hears nothing where a request was
        // due, and sends its next probe at once instead of half a period later.
        const silencesBefore = statsA().peerSilences
        const sentBefore = statsA().sent
        yield* Scope.close(scopeB, Exit.void)
        const lastB = Math.max(...samplesB.map((s) => s.atMillis))
        yield* Effect.sleep("3500 millis")
        expect(statsA().peerSilences).toBe(silencesBefore + 1)
        const firstAfter = samplesA.map((s) => s.atMillis).find((t) => t > lastB + 0.6 * intervalMillis)
        expect(firstAfter).toBeDefined()
        // Expected ≈ lastB + 1 period + ~100 ms slack; without the pull-in: lastB + 1.5 periods.
        expect(firstAfter! - lastB).toBeLessThan(1.35 * intervalMillis)
        // No extra probe: ~3.5 periods, so at most 4 sends (the pulled-in one included).
        expect(statsA().sent - sentBefore).toBeLessThanOrEqual(4)
        expect(statsA().lost).toBe(0)
        expect(statsA().health).toBe("up")
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    60_000,
  )
})
