/**
 * Fidelity bench of the userspace link emulator: does the relay deliver the delay, loss and rate it
 * is asked for, and what does it cost? A script, not a test: prints a table (`--json` for machines).
 *
 * Run (after `npx tsc -b packages/simulator/bench`):
 *   node packages/simulator/dist/bench/linkemu-fidelity.js [--json] [--timers worker,spin,coarse]
 *        [--priority normal|high|realtime] [--no-wireguard] [--wg-realtime] [--quick]
 *
 * How: the relay runs as its own process (as in the twin), spawned per timer mode. A UDP echo on
 * loopback (both ends in this process) measures RTT with 0 ms and with 20 ms each way, one-way
 * loss at 5 % over 20 000 datagrams (counted at the receiver), the throughput of a 1200-byte burst
 * under a rate limit (IP bytes/s between first and last arrival), and the relay's CPU time
 * (/proc/<pid>/stat) while 1000 datagrams/s cross it with 20 ms delay. As root it also builds two
 * namespaces with wireguard-go and an underlay namespace holding the relay, and pings over the tunnel.
 * The machine is shared: the load average is printed with the figures.
 */
import { randomBytes } from "node:crypto"
import { createSocket, type Socket } from "node:dgram"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { loadavg, setPriority, tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { execa } from "execa"
import {
  detectImpairmentBackend,
  type LinkEmuClient,
  nowMs,
  spawnLinkEmulator,
  type TimerMode,
} from "../src/linkemu/index.js"

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(`--${name}`)
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const json = flag("json")
const quick = flag("quick")
const timers = option("timers", "worker,spin,coarse").split(",") as TimerMode[]
const priority = option("priority", "normal") as "normal" | "high" | "realtime"
const isRoot = process.getuid?.() === 0
const wireguard = !flag("no-wireguard") && isRoot
// --wg-realtime: run wireguard-go under SCHED_FIFO too, to separate the relay's error from the
// tunnel processes' scheduling delays on a loaded machine.
const wgRealtime = flag("wg-realtime") && isRoot

const log = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`)
}

// ---------- small statistics ----------
const mean = (xs: ReadonlyArray<number>) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)
const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))] ?? Number.NaN
}
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits

// ---------- loopback endpoints ----------
interface End {
  readonly socket: Socket
  readonly port: number
  received: number
  lastArrivalMs: number
  firstArrivalMs: number
  echoTo: number | undefined
}

const openEnd = (): Effect.Effect<End, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<End>((resume) => {
      const socket = createSocket("udp4")
      socket.bind(0, "127.0.0.1", () => {
        try {
          socket.setRecvBufferSize(8 * 1024 * 1024)
        } catch {
          // keep the default
        }
        const end: End = {
          socket,
          port: socket.address().port,
          received: 0,
          lastArrivalMs: 0,
          firstArrivalMs: 0,
          echoTo: undefined,
        }
        socket.on("message", (data) => {
          const t = nowMs()
          if (end.received === 0) end.firstArrivalMs = t
          end.received++
          end.lastArrivalMs = t
          if (end.echoTo !== undefined) socket.send(data, end.echoTo, "127.0.0.1")
        })
        resume(Effect.succeed(end))
      })
    }),
    (end) => Effect.sync(() => end.socket.close()),
  )

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** RTTs of `count` probes from `a` through the relay, echoed by the other end. */
const rtts = (a: End, relayPort: number, count: number, intervalMs: number) =>
  Effect.gen(function* () {
    const sentAt = new Map<number, number>()
    const got: number[] = []
    const onMessage = (data: Buffer) => {
      const t0 = sentAt.get(data.readUInt32BE(0))
      if (t0 !== undefined) got.push(nowMs() - t0)
    }
    a.socket.on("message", onMessage)
    for (let n = 0; n < count; n++) {
      const buf = Buffer.alloc(64)
      buf.writeUInt32BE(n, 0)
      sentAt.set(n, nowMs())
      a.socket.send(buf, relayPort, "127.0.0.1")
      yield* sleep(intervalMs)
    }
    yield* sleep(300)
    a.socket.off("message", onMessage)
    return got
  })

/** utime+stime of a process (all threads), in seconds. */
const cpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

interface LoopbackFigures {
  timer: TimerMode
  baselineRttMeanMs: number
  delayedRttMeanMs: number
  delayedRttMedianMs: number
  delayedRttP10Ms: number
  delayedRttP90Ms: number
  delayExcessMeanMs: number
  delayExcessMedianMs: number
  probes: number
  relayReleaseLatenessMeanMs: number
  relayReleasesLateOver1Ms: number
  relayReleases: number
  lossSent: number
  lossRelayReceived: number
  lossMeasuredRatio: number
  lossErrorAbs: number
  rates: Array<{ configuredBitsPerSecond: number; measuredBitsPerSecond: number; errorRatio: number }>
  cpuIdlePercent: number
  cpuPercentPer1000DatagramsPerSecond: number
  cpuDatagramsPerSecond: number
}

const loopback = (timer: TimerMode): Effect.Effect<LoopbackFigures, unknown> =>
  Effect.scoped(
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "linkemu-bench-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const relay = yield* spawnLinkEmulator({ controlPath: join(dir, "c.sock"), timer, priority, seed: 2026 })
      const client: LinkEmuClient = relay.client
      const a = yield* openEnd()
      const b = yield* openEnd()
      const { listen } = yield* client.addPair({
        id: "bench",
        family: 4,
        listen: { address: "127.0.0.1", port: 0 },
        a: { address: "127.0.0.1", port: a.port },
        b: { address: "127.0.0.1", port: b.port },
      })
      const relayPort = listen.port
      b.echoTo = relayPort

      // Delay: 0 ms, then 20 ms each way.
      yield* rtts(a, relayPort, 50, 5) // warm-up
      const baseline = yield* rtts(a, relayPort, quick ? 100 : 300, 5)
      yield* client.setImpairment("bench", "both", { delayMs: 20 })
      const probes = quick ? 200 : 1000
      const lateBefore = (yield* client.stats("bench"))[0]!.directions
      const delayed = yield* rtts(a, relayPort, probes, 7)
      const lateAfter = (yield* client.stats("bench"))[0]!.directions
      let releases = 0
      let latenessMs = 0
      let lateOver1Ms = 0
      for (const d of ["a->b", "b->a"] as const) {
        releases += lateAfter[d].forwarded - lateBefore[d].forwarded
        latenessMs += lateAfter[d].releaseLatenessTotalMs - lateBefore[d].releaseLatenessTotalMs
        lateOver1Ms += lateAfter[d].releasedLateOver1Ms - lateBefore[d].releasedLateOver1Ms
      }
      const relayLatenessMeanMs = latenessMs / Math.max(1, releases)
      log(
        `  [${timer}] relay release lateness: mean ${round(relayLatenessMeanMs)} ms, ${lateOver1Ms}/${releases} over 1 ms`,
      )
      log(`  [${timer}] RTT 0 ms: ${round(mean(baseline))} ms; 2x20 ms: mean ${round(mean(delayed))} ms`)

      // Loss: 5 % a->b, counted at b.
      yield* client.setImpairment("bench", "both", { delayMs: 0 })
      yield* client.setImpairment("bench", "a->b", { lossRatio: 0.05 })
      b.echoTo = undefined
      b.received = 0
      const lossSent = quick ? 10_000 : 20_000
      const before = (yield* client.stats("bench"))[0]!.directions["a->b"].received
      for (let i = 0; i < lossSent; i++) {
        a.socket.send(Buffer.alloc(32), relayPort, "127.0.0.1")
        if (i % 25 === 24) yield* sleep(1)
      }
      yield* sleep(500)
      const relayReceived = (yield* client.stats("bench"))[0]!.directions["a->b"].received - before
      const lossMeasuredRatio = 1 - b.received / lossSent
      log(`  [${timer}] loss 5 %: ${round(lossMeasuredRatio * 100, 2)} % of ${lossSent} (relay got ${relayReceived})`)
      yield* client.setImpairment("bench", "a->b", { lossRatio: 0 })

      // Rate: bursts of 1200-byte datagrams, throughput between first and last arrival.
      const rates: LoopbackFigures["rates"] = []
      for (const configured of [2_000_000, 10_000_000]) {
        yield* client.setImpairment("bench", "a->b", { rateBitsPerSecond: configured, queueLimitPackets: 5000 })
        b.received = 0
        const count = configured <= 2_000_000 ? 300 : 1500
        const payload = Buffer.alloc(1200)
        for (let i = 0; i < count; i++) {
          a.socket.send(payload, relayPort, "127.0.0.1")
          if (i % 50 === 49) yield* sleep(1)
        }
        const expectedMs = (count * (1200 + 28) * 8 * 1000) / configured
        yield* sleep(expectedMs + 500)
        const measured = ((b.received - 1) * (1200 + 28) * 8 * 1000) / (b.lastArrivalMs - b.firstArrivalMs)
        rates.push({
          configuredBitsPerSecond: configured,
          measuredBitsPerSecond: round(measured, 0),
          errorRatio: round(measured / configured - 1, 4),
        })
        log(`  [${timer}] rate ${configured / 1e6} Mbit/s: ${round(measured / 1e6)} Mbit/s (${b.received}/${count})`)
      }
      yield* client.setImpairment("bench", "a->b", { rateBitsPerSecond: 0, queueLimitPackets: 1000 })

      // CPU: idle, then 1000 datagrams/s (500 probes/s echoed) with 20 ms each way.
      const idle0 = cpuSeconds(relay.pid)
      yield* sleep(2000)
      const cpuIdlePercent = ((cpuSeconds(relay.pid) - idle0) / 2) * 100
      yield* client.setImpairment("bench", "both", { delayMs: 20 })
      b.echoTo = relayPort
      const statsBefore = (yield* client.stats("bench"))[0]!
      const cpu0 = cpuSeconds(relay.pid)
      const t0 = nowMs()
      const seconds = quick ? 3 : 5
      while (nowMs() - t0 < seconds * 1000) {
        for (let i = 0; i < 5; i++) a.socket.send(Buffer.alloc(100), relayPort, "127.0.0.1")
        yield* sleep(10)
      }
      const elapsedS = (nowMs() - t0) / 1000
      const cpuUsed = cpuSeconds(relay.pid) - cpu0
      const statsAfter = (yield* client.stats("bench"))[0]!
      const datagrams =
        statsAfter.directions["a->b"].received +
        statsAfter.directions["b->a"].received -
        statsBefore.directions["a->b"].received -
        statsBefore.directions["b->a"].received
      const rate = datagrams / elapsedS
      const cpuPercent = (cpuUsed / elapsedS) * 100
      log(
        `  [${timer}] CPU ${round(cpuPercent, 1)} % of a core at ${round(rate, 0)} datagrams/s (idle ${round(cpuIdlePercent, 1)} %)`,
      )

      return {
        timer,
        baselineRttMeanMs: round(mean(baseline)),
        delayedRttMeanMs: round(mean(delayed)),
        delayedRttMedianMs: round(quantile(delayed, 0.5)),
        delayedRttP10Ms: round(quantile(delayed, 0.1)),
        delayedRttP90Ms: round(quantile(delayed, 0.9)),
        delayExcessMeanMs: round(mean(delayed) - mean(baseline) - 40),
        delayExcessMedianMs: round(quantile(delayed, 0.5) - quantile(baseline, 0.5) - 40),
        probes: delayed.length,
        relayReleaseLatenessMeanMs: round(relayLatenessMeanMs),
        relayReleasesLateOver1Ms: lateOver1Ms,
        relayReleases: releases,
        lossSent,
        lossRelayReceived: relayReceived,
        lossMeasuredRatio: round(lossMeasuredRatio, 5),
        lossErrorAbs: round(lossMeasuredRatio - 0.05, 5),
        rates,
        cpuIdlePercent: round(cpuIdlePercent, 2),
        cpuPercentPer1000DatagramsPerSecond: round((cpuPercent * 1000) / rate, 2),
        cpuDatagramsPerSecond: round(rate, 0),
      }
    }),
  )

// ---------- WireGuard over the relay, in namespaces this bench creates ----------
interface WireGuardFigures {
  baselinePing: PingSummary
  delayedPing: PingSummary
  delayExcessMs: number
  lossPing: PingSummary
  lossErrorAbs: number
}
interface PingSummary {
  sent: number
  received: number
  lossRatio: number
  avgMs: number
  minMs: number
  maxMs: number
  mdevMs: number
}

const sh = (file: string, argv: ReadonlyArray<string>, input?: string) =>
  Effect.promise(() => execa(file, argv, { ...(input === undefined ? {} : { input }), reject: false })).pipe(
    Effect.flatMap((r) =>
      r.exitCode === 0 ? Effect.succeed(r.stdout) : Effect.fail(new Error(`${file} ${argv.join(" ")}: ${r.stderr}`)),
    ),
  )

const ping = (ns: string, target: string, count: number, intervalS: string) =>
  Effect.gen(function* () {
    const out = yield* Effect.promise(() =>
      execa("ip", ["netns", "exec", ns, "ping", "-n", "-q", "-c", String(count), "-i", intervalS, "-W", "1", target], {
        reject: false,
      }),
    )
    const stats = /(\d+) packets transmitted, (\d+) received/.exec(out.stdout)
    const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(out.stdout)
    const sent = Number(stats?.[1] ?? 0)
    const received = Number(stats?.[2] ?? 0)
    return {
      sent,
      received,
      lossRatio: sent === 0 ? 1 : round(1 - received / sent, 5),
      minMs: Number(rtt?.[1] ?? Number.NaN),
      avgMs: Number(rtt?.[2] ?? Number.NaN),
      maxMs: Number(rtt?.[3] ?? Number.NaN),
      mdevMs: Number(rtt?.[4] ?? Number.NaN),
    } satisfies PingSummary
  })

const wireguardBench = (): Effect.Effect<WireGuardFigures, unknown> =>
  Effect.scoped(
    Effect.gen(function* () {
      const prefix = `np${randomBytes(2).toString("hex")}`
      const nsA = `${prefix}a`
      const nsB = `${prefix}b`
      const nsU = `${prefix}u`
      for (const ns of [nsU, nsA, nsB]) {
        yield* Effect.acquireRelease(sh("ip", ["netns", "add", ns]), () =>
          sh("ip", ["netns", "del", ns]).pipe(Effect.ignore),
        )
        yield* sh("ip", ["-n", ns, "link", "set", "lo", "up"])
      }
      // a0 (A, 100.64.1.1) <-> ua (U, 100.64.1.254); b0 (B, 100.64.2.1) <-> ub (U, 100.64.2.254)
      for (const [ns, side, self, peer, subnet] of [
        [nsA, "a0", "ua", "1", "1"],
        [nsB, "b0", "ub", "1", "2"],
      ] as const) {
        yield* sh("ip", ["link", "add", `${prefix}${side}`, "netns", ns, "type", "veth", "peer", self, "netns", nsU])
        yield* sh("ip", ["-n", ns, "link", "set", `${prefix}${side}`, "name", side])
        yield* sh("ip", ["-n", ns, "addr", "add", `100.64.${subnet}.${peer}/24`, "dev", side])
        yield* sh("ip", ["-n", ns, "link", "set", side, "up"])
        yield* sh("ip", ["-n", ns, "route", "add", "default", "via", `100.64.${subnet}.254`])
        yield* sh("ip", ["-n", nsU, "addr", "add", `100.64.${subnet}.254/24`, "dev", self])
        yield* sh("ip", ["-n", nsU, "link", "set", self, "up"])
      }
      const dir = mkdtempSync(join(tmpdir(), "linkemu-wg-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const relay = yield* spawnLinkEmulator({ controlPath: join(dir, "c.sock"), netns: nsU, priority, seed: 2026 })
      const { listen } = yield* relay.client.addPair({
        id: "ab",
        family: 4,
        listen: { address: "100.64.1.254", port: 0 },
        a: { address: "100.64.1.1", port: 51820 },
        b: { address: "100.64.2.1", port: 51820 },
      })
      const keyA = yield* sh("wg", ["genkey"])
      const keyB = yield* sh("wg", ["genkey"])
      const pubA = yield* sh("wg", ["pubkey"], keyA)
      const pubB = yield* sh("wg", ["pubkey"], keyB)
      for (const [ns, ifname, key, peerPub, overlay, peerOverlay] of [
        [nsA, `${prefix}wa`, keyA, pubB, "10.99.0.1", "10.99.0.2"],
        [nsB, `${prefix}wb`, keyB, pubA, "10.99.0.2", "10.99.0.1"],
      ] as const) {
        const wgCommand = wgRealtime
          ? ["chrt", "-f", "10", "wireguard-go", "-f", ifname]
          : ["wireguard-go", "-f", ifname]
        const child = execa("ip", ["netns", "exec", ns, ...wgCommand], {
          reject: false,
          env: { WG_PROCESS_FOREGROUND: "1" },
        })
        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            child.kill("SIGTERM")
            const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
            await child
            clearTimeout(timer)
          }),
        )
        for (let i = 0; i < 50; i++) {
          const probe = yield* Effect.promise(() => execa("ip", ["-n", ns, "link", "show", ifname], { reject: false }))
          if (probe.exitCode === 0) break
          yield* sleep(100)
        }
        const keyFile = join(dir, `${ifname}.key`)
        yield* sh("sh", ["-c", `umask 077; cat > ${keyFile}`], key)
        yield* sh("ip", [
          "netns",
          "exec",
          ns,
          "wg",
          "set",
          ifname,
          "listen-port",
          "51820",
          "private-key",
          keyFile,
          "peer",
          peerPub,
          "endpoint",
          `${listen.address}:${listen.port}`,
          "allowed-ips",
          `${peerOverlay}/32`,
          "persistent-keepalive",
          "25",
        ])
        yield* sh("ip", ["-n", ns, "addr", "add", `${overlay}/24`, "dev", ifname])
        yield* sh("ip", ["-n", ns, "link", "set", ifname, "up"])
      }
      yield* ping(nsA, "10.99.0.2", 20, "0.05") // handshake + warm-up
      const baselinePing = yield* ping(nsA, "10.99.0.2", quick ? 100 : 300, "0.01")
      yield* relay.client.setImpairment("ab", "both", { delayMs: 20 })
      const delayedPing = yield* ping(nsA, "10.99.0.2", quick ? 100 : 300, "0.02")
      log(`  [wireguard] ping 0 ms: ${baselinePing.avgMs} ms; 2x20 ms: ${delayedPing.avgMs} ms`)
      yield* relay.client.setImpairment("ab", "both", { delayMs: 0 })
      yield* relay.client.setImpairment("ab", "a->b", { lossRatio: 0.05 })
      const lossPing = yield* ping(nsA, "10.99.0.2", 10_000, "0.002")
      log(`  [wireguard] ping loss with 5 % a->b: ${round(lossPing.lossRatio * 100, 2)} % of ${lossPing.sent}`)
      return {
        baselinePing,
        delayedPing,
        delayExcessMs: round(delayedPing.avgMs - baselinePing.avgMs - 40),
        lossPing,
        lossErrorAbs: round(lossPing.lossRatio - 0.05, 5),
      }
    }),
  )

const main = Effect.gen(function* () {
  if (priority !== "normal" && isRoot) {
    // The probing endpoints live in this process: they need the same head start as the relay,
    // or the bench measures its own scheduling delays.
    setPriority(priority === "realtime" ? -20 : -10)
    // realtime: the main thread (the one serving the probe sockets) joins the relay under SCHED_FIFO
    if (priority === "realtime") yield* sh("chrt", ["-f", "-p", "10", String(process.pid)])
  }
  const backend = yield* detectImpairmentBackend()
  log(
    `impairment backend: ${backend.backend} (${backend.reason}); load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  )
  const loopbackFigures: LoopbackFigures[] = []
  for (const timer of timers) {
    log(`loopback, timer ${timer}, priority ${priority}:`)
    loopbackFigures.push(yield* loopback(timer))
  }
  let wireguardFigures: WireGuardFigures | { skipped: string } = { skipped: isRoot ? "--no-wireguard" : "not root" }
  if (wireguard) {
    log("wireguard-go over the relay (namespaces):")
    wireguardFigures = yield* wireguardBench()
  }
  const result = {
    backend,
    priority,
    loadAverage: loadavg().map((x) => round(x, 2)),
    cpus: (yield* Effect.promise(() => import("node:os"))).cpus().length,
    loopback: loopbackFigures,
    wireguard: wireguardFigures,
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
    return
  }
  const rows = loopbackFigures.map((f) => [
    f.timer,
    `${f.baselineRttMeanMs}`,
    `${f.delayedRttMeanMs} (p50 ${f.delayedRttMedianMs}, p10-p90 ${f.delayedRttP10Ms}-${f.delayedRttP90Ms})`,
    `${f.delayExcessMeanMs >= 0 ? "+" : ""}${f.delayExcessMeanMs}`,
    `${f.relayReleaseLatenessMeanMs} (${f.relayReleasesLateOver1Ms}/${f.relayReleases} >1ms)`,
    `${round(f.lossMeasuredRatio * 100, 2)} % (${f.lossSent})`,
    f.rates
      .map((r) => `${r.configuredBitsPerSecond / 1e6}M:${r.errorRatio >= 0 ? "+" : ""}${round(r.errorRatio * 100, 2)}%`)
      .join(" "),
    `${f.cpuPercentPer1000DatagramsPerSecond} %`,
  ])
  const header = [
    "timer",
    "RTT 0ms",
    "RTT 2x20ms mean",
    "excess",
    "relay late",
    "loss 5%",
    "rate error",
    "CPU/1000 dg/s",
  ]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ")
  console.log(
    `linkemu fidelity (loopback UDP echo, relay process, priority ${priority}; load ${result.loadAverage.join(" ")} on ${result.cpus} CPUs)`,
  )
  console.log(line(header))
  for (const r of rows) console.log(line(r))
  if ("skipped" in wireguardFigures) console.log(`wireguard: skipped (${wireguardFigures.skipped})`)
  else {
    const w = wireguardFigures
    console.log(
      `wireguard-go ping over the relay: 0 ms ${w.baselinePing.avgMs} ms, 2x20 ms ${w.delayedPing.avgMs} ms (mdev ${w.delayedPing.mdevMs}), excess ${w.delayExcessMs} ms; loss 5 % a->b: ${round(w.lossPing.lossRatio * 100, 2)} % of ${w.lossPing.sent}`,
    )
  }
})

Effect.runPromise(main).catch((e) => {
  console.error(e)
  process.exitCode = 1
})
