/**
 * Overhead bench: CPU and RSS of the measurement plane at 10, 50 and 100 tunnels, at DEFAULT probe
 * settings, and the packets per second per tunnel it sends. One namespace holds N links named
 * wg0.Y_v4 (veth, up) and the probe endpoints 10.201.0.4 and 10.201.Y.4 on lo, so every probe is
 * real (echo + loss test to the plane's own 5121 server, `ping`, TCP connect → RST) but crosses
 * loopback instead of WireGuard. Figures are for the plane process alone and, apart, for its N
 * `ping` children: CPU from /proc/<pid>/stat ticks for the plane (and from schedstat ns, as for the pings), memory as RSS, PSS (shared pages divided among the
 * processes mapping them: the honest sum over 100 pings) and USS (private pages only). The window
 * is shorter than the 20 min loss-test cycle: bursts start at random offsets, so a window of W s
 * sees about N·W/1200 of them; packets/tunnel/s counts the loss test at its long-run average.
 *
 *
 * `--mesh`: both ends of every tunnel in the one plane (wg0.Y_v4 and wgY.0_v4, N/2 pairs for N
 * tunnels), so each end probes and answers its peer as in a mesh where every site runs the plane:
 * the load of a node with N tunnels (the default, one end probing and the plane's server answering,
 * has a mesh node's datagram count only for the v1 echo, where each request is answered apart).
 * Echo datagrams are counted by an nftables rule on the namespace's output hook (UDP lengths of
 * the echo: v1 20/24 B and ECHO_SYM 44 B payloads; the loss test's 12/40/500 B are not counted),
 * per tunnel per second, both ends together.
 *
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/overhead.ts [--json] [--seconds 60] [--warmup 60] [--sizes 10,50,100] [--mesh]
 *     [--probes '{"lossTest":{"enabled":false}}']   probe overrides, to see one probe's share
 *     [--node-args "--cpu-prof --cpu-prof-dir=/tmp/p"]   flags for the plane's node process
 *     [--bare-node]   without the daemon's node flags (the plane runs with daemonNodeFlags by default)
 */
import { readdir, readFile } from "node:fs/promises"

import { Schema } from "effect"
import { execa, execaSync } from "execa"
import { daemonNodeFlags } from "../src/daemon/NodeFlags.js"
import type { PlaneStatus } from "../src/MeasurementPlane.js"
import { ProbesConfig } from "../src/probes/ProbeConfig.js"
import { controlCommand } from "../test/control/ControlClient.js"
import { bundleAgent } from "../test/probes/bundleAgent.js"
import { argValue, fmt, helpAndExit, jsonFlag, mainThreadSwitches, sleep } from "./lib.js"

helpAndExit(`
usage: npm run bench -- overhead [--json] [--seconds 60] [--warmup 60] [--sizes 10,50,100] [--mesh]
         [--probes '{"lossTest":{"enabled":false}}'] [--plane '{"discovery":{"monitor":false}}']
         [--node-args "--cpu-prof --cpu-prof-dir=/tmp/p"] [--agent-log /tmp/plane.log]
CPU, RSS/PSS/USS and packets per tunnel of the measurement plane at each size (root: one namespace).
  --mesh        both ends of every tunnel in the plane (a mesh node's load)
  --warmup      seconds between all workers running and the window (start-up GC settles in ~60 s)
  --probes      probe config overrides (JSON), to see one probe's share
  --plane       plane config overrides (JSON, merged one level deep: discovery, http, gaugeIntervalMillis…)
  --node-args   extra node flags for the plane process
  --bare-node   without the daemon's node flags (daemonNodeFlags, e.g. --min-semi-space-size)
  --agent-log   file for the plane's stdout/stderr (e.g. with --node-args --trace-gc)
`)

const arg = (name: string, dflt: string) => argValue(name) ?? dflt
const windowSeconds = Number(arg("--seconds", "60"))
/**
 * Wait between all workers running and the window: the plane's first minute is not its steady
 * state (start-up garbage, V8's memory reducer running full GCs for ~30–60 s after the start-up
 * allocation burst: 0.3–0.8 % of a core at 100 tunnels with every probe off in a 15 s warm-up,
 * 0.03 % after 60 s).
 */
const warmupSeconds = Number(arg("--warmup", "60"))
const sizes = arg("--sizes", "10,50,100").split(",").map(Number)
/** Probe overrides (JSON), e.g. '{"lossTest":{"enabled":false}}' to see one probe's share. */
const probes = JSON.parse(arg("--probes", "{}")) as Record<string, unknown>
/** Plane overrides (JSON, merged one level deep), e.g. '{"discovery":{"monitor":false}}'. */
const planeOverrides = JSON.parse(arg("--plane", "{}")) as Record<string, unknown>
const effectiveProbes = Schema.decodeUnknownSync(ProbesConfig)(probes)
/** Extra node flags for the plane process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const nodeArgs = arg("--node-args", "")
  .split(" ")
  .filter((x) => x.length > 0)
/**
 * The plane runs with the daemon's node flags (`daemonNodeFlags`: what `net-perf` starts with), so
 * the bench measures what production runs; `--bare-node` leaves them out (node's defaults).
 */
const planeNodeFlags = process.argv.includes("--bare-node") ? [] : daemonNodeFlags
/** File for the plane's stdout and stderr (e.g. with `--node-args --trace-gc`); discarded without it. */
const agentLog = arg("--agent-log", "")
const TICKS = 100
const mesh = process.argv.includes("--mesh")

if (process.getuid?.() !== 0) {
  console.error("overhead bench: needs root (namespaces)")
  process.exit(1)
}

const cpuTicks = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return Number(fields[11]) + Number(fields[12])
}
/**
 * CPU time in ns of every thread of a process (`/proc/<pid>/task/<tid>/schedstat`, first field):
 * exact where /proc/<pid>/stat counts 10 ms ticks. A ping at 0.5 packets/s uses well under one
 * tick per minute, so summing 100 pings' ticks read 0.00–0.02 % when they really take ≈ 0.25 %.
 */
const cpuNs = async (pid: number) => {
  const tids = await readdir(`/proc/${pid}/task`)
  const ns = await Promise.all(
    tids.map(async (t) => Number((await readFile(`/proc/${pid}/task/${t}/schedstat`, "utf8")).split(" ")[0])),
  )
  return ns.reduce((a, b) => a + b, 0)
}
/** CPU time in ns of the main thread alone (its tid is the pid): the rest is V8's compile/GC workers and libuv's pool. */
const mainThreadNs = async (pid: number) =>
  Number((await readFile(`/proc/${pid}/task/${pid}/schedstat`, "utf8")).split(" ")[0])
const rssKb = async (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
/**
 * Proportional set size: shared pages (libc, the ping binary) divided among the processes that map
 * them, so a sum over processes is the real memory they take together (RSS counts them once each).
 */
const pssKb = async (pid: number) =>
  Number(/^Pss:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0)
/** Unique set size: pages no other process maps (what killing the process would free). */
const ussKb = async (pid: number) => {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, "utf8")
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0)
  return field("Private_Clean") + field("Private_Dirty")
}
/** Names of the child processes (ping, ip monitor), to tell them apart. */
const comm = async (pid: number) => (await readFile(`/proc/${pid}/comm`, "utf8")).trim()
const children = async (pid: number) =>
  (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => ""))
    .split(" ")
    .filter((x) => x.length > 0)
    .map(Number)

const bundle = await bundleAgent()
const startAgent = (ns: string, config: string) =>
  execa("ip", ["netns", "exec", ns, process.execPath, ...planeNodeFlags, ...nodeArgs, bundle.file, config], {
    reject: false,
    stdin: "ignore",
    ...(agentLog === ""
      ? { stdout: "ignore", stderr: "ignore" }
      : { stdout: { file: agentLog }, stderr: { file: agentLog } }),
  })
const results: Array<Record<string, number>> = []
// A signal skips `finally`: remove the current size's namespace and plane before exiting.
let current: { ns: string; sock: string; agent?: { kill: (signal: NodeJS.Signals) => boolean } } | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    current?.agent?.kill("SIGKILL")
    if (current !== undefined) {
      execaSync("ip", ["netns", "del", current.ns], { reject: false })
      execaSync("rm", ["-f", current.sock], { reject: false })
    }
    void bundle.cleanup().finally(() => process.exit(130))
  })
try {
  for (const n of sizes) {
    const tag = `np${Math.floor(Math.random() * 0xffff)
      .toString(16)
      .padStart(4, "0")}`
    const ns = `${tag}o`
    const sock = `/tmp/${tag}-ctl.sock`
    const ip = (args: ReadonlyArray<string>) => execa("ip", ["-n", ns, ...args])
    let agent: ReturnType<typeof startAgent> | undefined
    current = { ns, sock }
    try {
      await execa("ip", ["netns", "add", ns])
      await ip(["link", "set", "lo", "up"])
      const batch = ["addr add 10.201.0.4/32 dev lo"]
      const sites = mesh ? Math.ceil(n / 2) : n
      for (let y = 1; y <= sites; y++) {
        batch.push(
          `link add wg0.${y}_v4 type veth peer name ${tag}p${y}`,
          `link set wg0.${y}_v4 up`,
          `addr add 10.201.${y}.4/32 dev lo`,
        )
        // The far end of the same tunnel, measured by the same plane (its own prober and server).
        if (mesh && 2 * (y - 1) + 1 < n)
          batch.push(`link add wg${y}.0_v4 type veth peer name ${tag}q${y}`, `link set wg${y}.0_v4 up`)
      }
      await execa("ip", ["-n", ns, "-batch", "-"], { input: `${batch.join("\n")}\n` })
      await execa("ip", ["netns", "exec", ns, "nft", "-f", "-"], {
        input: [
          "table inet npbench {",
          "  chain out {",
          "    type filter hook output priority 0; policy accept;",
          "    udp length { 28, 32, 52 } counter",
          "  }",
          "}",
          "",
        ].join("\n"),
      })
      const echoDatagrams = async () =>
        Number(
          /counter packets (\d+)/.exec(
            (await execa("ip", ["netns", "exec", ns, "nft", "list", "chain", "inet", "npbench", "out"])).stdout,
          )?.[1] ?? Number.NaN,
        )
      const config = {
        localSite: 0,
        discovery: { confDir: "/nonexistent" },
        control: { path: sock },
        http: null,
        probeServerAddresses: ["10.201.0.4", ...Array.from({ length: sites }, (_, i) => `10.201.${i + 1}.4`)],
        pathRelayAddresses: ["10.201.0.4"],
        probes,
      }
      for (const [k, v] of Object.entries(planeOverrides)) {
        const base = (config as Record<string, unknown>)[k]
        ;(config as Record<string, unknown>)[k] =
          typeof v === "object" && v !== null && typeof base === "object" && base !== null ? { ...base, ...v } : v
      }
      const started = startAgent(ns, JSON.stringify(config))
      agent = started
      current.agent = started
      const pid = started.pid!
      const status = async (): Promise<PlaneStatus> => JSON.parse(await controlCommand(sock, "STATUS"))
      // Up to 60 s: at load 30+ (the lead's twin, the model bench) 100 workers took more than 20 s.
      for (let i = 0; ; i++) {
        const s = await status().catch(() => undefined)
        if (s !== undefined && s.tunnels.filter((t) => t.sampleCounts !== null).length === n) break
        if (i > 600) throw new Error(`plane did not start ${n} workers`)
        await sleep(100)
      }
      await sleep(warmupSeconds * 1000)
      const sum = (s: PlaneStatus, k: "udp-echo" | "icmp" | "tcp" | "loss-test") =>
        s.tunnels.reduce((a, t) => a + (t.sampleCounts?.[k] ?? 0), 0)
      const pings0 = await children(pid)
      const before = {
        cpu: await cpuTicks(pid),
        cpuNs: await cpuNs(pid),
        mainNs: await mainThreadNs(pid),
        switches: mainThreadSwitches(pid),
        pings: await Promise.all(pings0.map((p) => cpuNs(p).catch(() => 0))),
        status: await status(),
        echoDatagrams: await echoDatagrams(),
        at: Date.now(),
      }
      await sleep(windowSeconds * 1000)
      const after = {
        cpu: await cpuTicks(pid),
        cpuNs: await cpuNs(pid),
        mainNs: await mainThreadNs(pid),
        switches: mainThreadSwitches(pid),
        pings: await Promise.all(pings0.map((p) => cpuNs(p).catch(() => 0))),
        status: await status(),
        echoDatagrams: await echoDatagrams(),
        at: Date.now(),
      }
      const seconds = (after.at - before.at) / 1000
      const kids = await children(pid)
      const pings = (
        await Promise.all(kids.map(async (p) => ((await comm(p).catch(() => "")) === "ping" ? p : 0)))
      ).filter((p) => p > 0)
      const total = async (f: (pid: number) => Promise<number>, pids: ReadonlyArray<number>) =>
        (await Promise.all(pids.map((p) => f(p).catch(() => 0)))).reduce((a, b) => a + b, 0)
      const pingRss = await total(rssKb, pings)
      const pingPss = await total(pssKb, pings)
      const pingUss = await total(ussKb, pings)
      const rate = (k: "udp-echo" | "icmp" | "tcp" | "loss-test") =>
        (sum(after.status, k) - sum(before.status, k)) / seconds / n
      const lossBursts = sum(after.status, "loss-test") - sum(before.status, "loss-test")
      const row = {
        tunnels: n,
        mesh: mesh ? 1 : 0,
        // 1: the plane ran with node's defaults, not the daemon's flags (--bare-node)
        bareNode: planeNodeFlags.length === 0 ? 1 : 0,
        windowSeconds: seconds,
        warmupSeconds,
        planeCpuPercentOfOneCore: ((after.cpu - before.cpu) / TICKS / seconds) * 100,
        // The same from schedstat (ns, all threads alive at both reads): no 10 ms tick rounding.
        planeCpuSchedstatPercentOfOneCore: ((after.cpuNs - before.cpuNs) / 1e9 / seconds) * 100,
        // The main thread's share of that (schedstat); the rest is V8's worker threads (TurboFan jobs, GC helpers).
        planeMainThreadCpuPercentOfOneCore: ((after.mainNs - before.mainNs) / 1e9 / seconds) * 100,
        mainThreadWakeUpsPerSecond: (after.switches - before.switches) / seconds,
        planeRssMb: (await rssKb(pid)) / 1024,
        planePssMb: (await pssKb(pid)) / 1024,
        planeUssMb: (await ussKb(pid)) / 1024,
        // schedstat ns of the pings alive at the window's start (ticks rounded 100 pings to ≈ 0).
        pingCpuPercentOfOneCore:
          ((after.pings.reduce((a, b) => a + b, 0) - before.pings.reduce((a, b) => a + b, 0)) / 1e9 / seconds) * 100,
        pingRssMbTotal: pingRss / 1024,
        pingPssMbTotal: pingPss / 1024,
        pingUssMbTotal: pingUss / 1024,
        pingProcesses: pings.length,
        echoPerTunnelPerSecond: rate("udp-echo"),
        icmpPerTunnelPerSecond: rate("icmp"),
        tcpPerTunnelPerSecond: rate("tcp"),
        lossBurstsInWindow: lossBursts,
        // Every echo datagram on the wire (requests, replies, acks), per tunnel per second, both
        // ends together: in --mesh n tunnel ends make n/2 tunnels.
        echoDatagramsPerTunnelPerSecond: (after.echoDatagrams - before.echoDatagrams) / seconds / (mesh ? n / 2 : n),
        // Datagrams sent per tunnel per second: echo, ICMP and TCP (SYN) requests + loss-test data
        // (the loss test's long-run average from its settings: a window sees only a few bursts).
        packetsPerTunnelPerSecond:
          rate("udp-echo") +
          rate("icmp") +
          rate("tcp") +
          (effectiveProbes.lossTest.enabled
            ? effectiveProbes.lossTest.packets / (effectiveProbes.lossTest.intervalMillis / 1000)
            : 0),
        loadAverage1m: Number((await readFile("/proc/loadavg", "utf8")).split(" ")[0]),
      }
      results.push(row)
      if (!jsonFlag) {
        console.log(
          `${String(n).padStart(3)} tunnels: plane CPU ${fmt(row.planeCpuPercentOfOneCore, 2)} % of a core (schedstat ${fmt(row.planeCpuSchedstatPercentOfOneCore, 2)} %, main thread ${fmt(row.planeMainThreadCpuPercentOfOneCore, 2)} %; main thread ${fmt(row.mainThreadWakeUpsPerSecond, 1)} wake-ups/s), RSS ${fmt(row.planeRssMb, 1)} MB, PSS ${fmt(row.planePssMb, 1)} MB, USS ${fmt(row.planeUssMb, 1)} MB; ` +
            `${row.pingProcesses} ping: CPU ${fmt(row.pingCpuPercentOfOneCore, 2)} %, RSS ${fmt(row.pingRssMbTotal, 1)} MB, PSS ${fmt(row.pingPssMbTotal, 1)} MB, USS ${fmt(row.pingUssMbTotal, 1)} MB; ` +
            `per tunnel/s: echo ${fmt(row.echoPerTunnelPerSecond, 2)}, icmp ${fmt(row.icmpPerTunnelPerSecond, 2)}, tcp ${fmt(row.tcpPerTunnelPerSecond, 2)}, ` +
            `${lossBursts} loss bursts; ≈ ${fmt(row.packetsPerTunnelPerSecond, 2)} packets/tunnel/s sent; ` +
            `echo datagrams/tunnel/s (both ends) ${fmt(row.echoDatagramsPerTunnelPerSecond, 2)}; load ${row.loadAverage1m}`,
        )
      }
    } finally {
      if (agent !== undefined) {
        agent.kill("SIGTERM")
        await Promise.race([agent, sleep(8000)])
        agent.kill("SIGKILL")
        await agent
      }
      await execa("ip", ["netns", "del", ns], { reject: false })
      await execa("rm", ["-f", sock], { reject: false })
    }
  }
} finally {
  await bundle.cleanup()
}
if (jsonFlag) console.log(JSON.stringify({ windowSeconds, results }, null, 2))
