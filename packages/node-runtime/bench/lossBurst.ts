/**
 * CPU of one default loss-test burst (1000 × 500 B at 1 Mbit/s), sender and server in this one
 * process over loopback, as a mesh node pays it (its own bursts and its peers'). Runs `--bursts`
 * bursts back to back after one warm-up burst and prints the process CPU per burst (user + system,
 * from `process.cpuUsage`) beside the load average; `--idle` measures the same wall time with no
 * burst, to subtract the process's idle cost.
 *
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/lossBurst.ts [--json] [--bursts 5]
 *     [--probes '{"packets":1000}']   loss-test config overrides
 */
import { readdirSync, readFileSync } from "node:fs"
import { loadavg } from "node:os"
import { tunnelId } from "@net-perf/engine"
import { Effect, Either, Schema } from "effect"
import { MeasurementMetrics } from "../src/metrics/Metrics.js"
import { runLossTest } from "../src/probes/LossTester.js"
import { LossTestConfig } from "../src/probes/ProbeConfig.js"
import { makeAllowList } from "../src/servers/Guard.js"
import { defaultProbeServerConfig, serveProbeServer } from "../src/servers/ProbeServer.js"
import { argValue, fmt, helpAndExit, jsonFlag, mainThreadSwitches } from "./lib.js"

helpAndExit(`
usage: npm run bench -- lossBurst [--json] [--bursts 5] [--probes '{"packets":1000}']
CPU per default loss-test burst, both ends in this process over loopback.
`)

const arg = (name: string, dflt: string) => argValue(name) ?? dflt
const bursts = Number(arg("--bursts", "5"))
const overrides = JSON.parse(arg("--probes", "{}")) as Record<string, unknown>
const port = 20000 + Math.floor(Math.random() * 30000)
const config = Schema.decodeUnknownSync(LossTestConfig)({ ...overrides, port })
const allow = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))
const tunnel = tunnelId(1, 2, 4)

const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}
const sysMs = () => process.cpuUsage().system / 1000
const switches = () => mainThreadSwitches(process.pid)
/** CPU ticks (10 ms) per thread name: which thread pays (main, libuv pool, V8 GC helpers). */
const threadTicks = () => {
  const out = new Map<string, number>()
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out.set(name, (out.get(name) ?? 0) + Number(f[11]) + Number(f[12]))
    } catch {}
  }
  return out
}

const program = Effect.gen(function* () {
  yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], allow), port })
  const burst = Effect.scoped(runLossTest(tunnel, { localAddress: "127.0.0.1", remoteAddress: "127.0.0.1" }, config))
  yield* burst
  const threads0 = threadTicks()
  const perBurstMs: Array<number> = []
  const wallMs: Array<number> = []
  const systemMs: Array<number> = []
  const wakeUps: Array<number> = []
  for (let i = 0; i < bursts; i++) {
    // Let the previous burst's session expire on the server first (its heartbeat timer stops).
    yield* Effect.sleep("4 seconds")
    const c0 = cpuMs()
    const sys0 = sysMs()
    const sw0 = switches()
    const t0 = performance.now()
    const s = yield* burst
    perBurstMs.push(cpuMs() - c0)
    systemMs.push(sysMs() - sys0)
    wakeUps.push(switches() - sw0)
    wallMs.push(performance.now() - t0)
    if (s.received !== s.sent) console.error(`burst ${i}: ${s.sent - s.received} lost`)
  }
  const threads1 = threadTicks()
  const threadMsPerBurst = Object.fromEntries(
    [...threads1].map(([k, v]) => [k, ((v - (threads0.get(k) ?? 0)) * 10) / bursts]).filter(([, v]) => v !== 0),
  )
  yield* Effect.sleep("4 seconds")
  const meanWallMs = wallMs.reduce((a, b) => a + b, 0) / wallMs.length
  const c0 = cpuMs()
  yield* Effect.sleep(meanWallMs)
  const idleMs = cpuMs() - c0
  const sorted = [...perBurstMs].sort((a, b) => a - b)
  return {
    packets: config.packets,
    packetBytes: config.packetBytes,
    pacingTickMillis: config.pacingTickMillis,
    bursts,
    cpuMsPerBurst: perBurstMs.map((x) => Number(x.toFixed(1))),
    systemCpuMsPerBurst: systemMs.map((x) => Number(x.toFixed(1))),
    mainThreadSwitchesPerBurst: wakeUps,
    medianCpuMsPerBurst: Number(sorted[Math.floor(sorted.length / 2)]!.toFixed(1)),
    threadMsPerBurst,
    idleCpuMsSameWall: Number(idleMs.toFixed(1)),
    meanWallMs: Number(meanWallMs.toFixed(0)),
    loadAverage: Number(loadavg()[0]!.toFixed(2)),
  }
})

const result = await Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(MeasurementMetrics.Default)))
if (jsonFlag) console.log(JSON.stringify(result))
else
  console.log(
    `loss burst ${result.packets} × ${result.packetBytes} B, tick ${result.pacingTickMillis} ms: CPU per burst ${fmt(result.medianCpuMsPerBurst)} ms median (${result.cpuMsPerBurst.join(", ")}; wake-ups ${result.mainThreadSwitchesPerBurst.join(", ")}; system ${result.systemCpuMsPerBurst.join(", ")}), threads ${JSON.stringify(result.threadMsPerBurst)} (incl. 4 s idle between bursts), idle ${fmt(result.idleCpuMsSameWall)} ms, load ${result.loadAverage}`,
  )
