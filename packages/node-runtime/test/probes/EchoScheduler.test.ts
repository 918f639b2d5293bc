// The plane-wide echo scheduler on real loopback sockets: one socket per local address, regular
// probes on the wall-clock slots, the symmetric echo (each request carries the reply to the peer's
// latest, RTT minus the peer's residence), a silent peer, and a v1-only peer.
import { readdir, readFile, readlink } from "node:fs/promises"
import { describe, expect, it } from "@effect/vitest"
import { type RttSample, tunnelId } from "@net-perf/engine"
import { Effect, Either, Exit, Schema, Scope } from "effect"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { type EchoProbes, makeEchoProbes } from "../../src/probes/EchoProber.js"
import { EchoProbeConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { encodeEchoRequest } from "../../src/servers/Packets.js"
import { defaultProbeServerConfig, serveProbeServer } from "../../src/servers/ProbeServer.js"
import { bindUdp } from "../../src/servers/Udp.js"

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
      onEchoSymmetric: (local, source, sourcePort, msg, arrivalMs) =>
        holder.probes?.peerSymmetric(local, source, sourcePort, msg, arrivalMs) ?? false,
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

  it.scopedLive("outside suspicion probes a tunnel now: once per interval, and only a tunnel it probes", () =>
    Effect.gen(function* () {
      const port = testPort()
      const remote = "127.0.5.2"
      yield* serveProbeServer({ ...defaultProbeServerConfig([remote], allowLoopback), port })
      // A long interval: without the suspicion the next regular probe is seconds away.
      const probes = yield* makeEchoProbes(Schema.decodeSync(EchoProbeConfig)({ port, intervalMillis: 5000 }))
      const tunnel = tunnelId(1, 2, 4)
      const stats = yield* probes.add(
        tunnel,
        { localAddress: "127.0.0.1", remoteAddress: remote },
        { onSample: () => {}, onHealth: () => {} },
      )
      // Unknown tunnels are ignored; so is one that has not answered yet.
      probes.suspect(tunnelId(1, 9, 4))
      yield* Effect.sleep("200 millis")
      for (let i = 0; i < 60 && stats().health !== "up"; i++) yield* Effect.sleep("200 millis")
      expect(stats().health).toBe("up")
      yield* Effect.sleep("100 millis")
      const before = stats()
      probes.suspect(tunnel)
      probes.suspect(tunnel) // within the interval: no second burst
      yield* Effect.sleep("150 millis")
      const after = stats()
      expect(after.suspicions - before.suspicions).toBe(1)
      expect(after.sent - before.sent).toBe(1)
      expect(after.received - before.received).toBe(1)
      expect(after.health).toBe("up")
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )

  it.scopedLive(
    "two sites: regular probes on the wall-clock slots, one datagram per end per second, residence subtracted, a stopped peer prober costs no loss",
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

        // Settle: v1 probes first, the capability mark, then 3 regular peer requests before deferring.
        yield* Effect.sleep("6 seconds")
        const a0 = statsA()
        const b0 = statsB()
        const from = samplesA.length
        const fromB = samplesB.length
        yield* Effect.sleep("8 seconds")
        const a1 = statsA()
        const b1 = statsB()
        expect(a1.symmetric && b1.symmetric).toBe(true)
        // Every reply each end got came inside the other end's own request: no reply datagrams,
        // so the tunnel carried sent(A) + sent(B) ≈ 2 datagrams per second.
        expect(a1.received - a0.received).toBeGreaterThanOrEqual(6)
        expect(Math.abs(b1.acksPiggybacked - b0.acksPiggybacked - (a1.received - a0.received))).toBeLessThanOrEqual(1)
        expect(Math.abs(a1.acksPiggybacked - a0.acksPiggybacked - (b1.received - b0.received))).toBeLessThanOrEqual(1)
        expect(a1.sent - a0.sent + (b1.sent - b0.sent)).toBeLessThanOrEqual(18)
        expect(a1.lost + b1.lost).toBe(0)
        // Each reply waited ≈ ½ s for the peer's slot; RTT has that residence taken out.
        const rtts = [...samplesA.slice(from), ...samplesB.slice(fromB)].map((s) => s.rttMs!)
        expect(rtts.length).toBeGreaterThanOrEqual(12)
        expect(Math.max(...rtts)).toBeLessThan(50)
        // Sends on the wall-clock grid: site 1 at phase 0, site 2 at ½ (a loaded machine fires late).
        const phase = (s: RttSample) => (s.atMillis % intervalMillis) / intervalMillis
        const lateBy = (x: number, target: number) => (x - target + 1) % 1
        const lateA = samplesA.slice(from).map((s) => lateBy(phase(s), 0))
        const lateB = samplesB.slice(fromB).map((s) => lateBy(phase(s), 0.5))
        lateA.sort((x, y) => x - y)
        lateB.sort((x, y) => x - y)
        expect(lateA[Math.floor(lateA.length / 2)]!).toBeLessThan(0.05)
        expect(lateB[Math.floor(lateB.length / 2)]!).toBeLessThan(0.05)

        // B's prober stops (WGDEL there): the request of A's that it held is answered as it
        // closes, the next ones by B's server at once; A notices B's silence and goes on with immediate requests: no loss.
        const silencesBefore = statsA().peerSilences
        yield* Scope.close(scopeB, Exit.void)
        const receivedBefore = statsA().received
        yield* Effect.sleep("4 seconds")
        expect(statsA().peerSilences).toBe(silencesBefore + 1)
        expect(statsA().lost).toBe(0)
        expect(statsA().health).toBe("up")
        expect(statsA().received - receivedBefore).toBeGreaterThanOrEqual(3)
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    60_000,
  )

  it.scopedLive("interoperates with a v1-only peer: v1 requests both ways, nothing it would drop", () =>
    Effect.gen(function* () {
      const port = testPort()
      const config = Schema.decodeSync(EchoProbeConfig)({ port, intervalMillis: 300 })
      const [a, old] = ["127.0.6.1", "127.0.6.2"] as const
      const serverA = yield* siteServer(a, port)
      // The v1 peer as the first release had it: its server answers ECHO_REQUEST (type 1) with the
      // same datagram as type 2 and counts anything else invalid; its prober sends 20-byte requests.
      const oldServer = yield* bindUdp(old, port)
      const oldInvalid: Array<number> = []
      oldServer.on("message", (msg, rinfo) => {
        if (msg.length >= 20 && msg[0] === 0x4e && msg[1] === 0x50 && msg[2] === 1 && msg[3] === 1) {
          msg[3] = 2
          oldServer.send(msg, rinfo.port, rinfo.address)
        } else oldInvalid.push(msg[3] ?? -1)
      })
      const oldProber = yield* bindUdp(old, 0)
      const oldReplies: Array<Buffer> = []
      oldProber.on("message", (msg) => oldReplies.push(Buffer.from(msg)))
      let oldSeq = 0
      const oldTimer = setInterval(
        () => oldProber.send(encodeEchoRequest(99, oldSeq++, performance.now(), 20), port, a),
        300,
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(oldTimer)))
      const probesA = yield* makeEchoProbes(config)
      serverA.probes = probesA
      const statsA = yield* probesA.add(
        tunnelId(1, 2, 4),
        { localAddress: a, remoteAddress: old },
        { onSample: () => {}, onHealth: () => {} },
      )
      yield* Effect.sleep("4 seconds")
      const s = statsA()
      expect(s.symmetric).toBe(false)
      expect(s.received).toBeGreaterThanOrEqual(8)
      expect(s.lost).toBe(0)
      expect(oldInvalid).toEqual([])
      // The old prober's requests are answered in its own format.
      expect(oldReplies.length).toBeGreaterThanOrEqual(8)
      for (const r of oldReplies) expect([r.length, r[2], r[3]]).toEqual([20, 1, 2])
      expect(s.peerRequests).toBeGreaterThanOrEqual(8)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )
})
