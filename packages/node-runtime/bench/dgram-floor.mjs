// The floor under the echo's CPU cost: a bare Node dgram loop doing only the echo's datagrams for
// N tunnels with both ends probing at 1/s (N requests out and N in per second, each answered: 4N
// datagram operations/s), no parsing, no timers per tunnel, no metrics. The send tick sets how
// bunched the traffic is: 10 ms spreads it as peers' requests and replies arrive in production,
// 100 ms batches it. Compare with bench/overhead.ts in the same run.
//   node packages/node-runtime/bench/dgram-floor.mjs [tunnels=100] [seconds=30] [tickMs=10]
import dgram from "node:dgram"
import { loadavg } from "node:os"

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  console.log(
    "usage: npm run bench -- dgram-floor [tunnels=100] [seconds=30] [tickMs=10]\nCPU of a bare Node dgram loop doing only the echo's datagrams (the floor under the echo's cost).",
  )
  process.exit(0)
}
const tunnels = Number(process.argv[2] ?? 100)
const seconds = Number(process.argv[3] ?? 30)
const tickMs = Number(process.argv[4] ?? 10)
const bind = (s) => new Promise((resolve) => s.bind(0, "127.0.0.1", resolve))
const a = dgram.createSocket("udp4")
const b = dgram.createSocket("udp4")
await bind(a)
await bind(b)
const ports = [a.address().port, b.address().port]
let replies = 0
for (const s of [a, b])
  s.on("message", (m, rinfo) => {
    if (m[0] === 1) {
      m[0] = 2
      s.send(m, rinfo.port, "127.0.0.1")
    } else replies++
  })
const request = Buffer.alloc(20)
request[0] = 1
const perTick = (2 * tunnels * tickMs) / 1000
let i = 0
const timer = setInterval(() => {
  for (let k = 0; k < perTick; k++, i++) (i % 2 ? a : b).send(request, ports[i % 2], "127.0.0.1")
}, tickMs)
const cpu0 = process.cpuUsage()
const t0 = Date.now()
setTimeout(() => {
  clearInterval(timer)
  const cpu = process.cpuUsage(cpu0)
  const s = (Date.now() - t0) / 1000
  const row = {
    tunnels,
    tickMs,
    seconds: s,
    datagramOpsPerSecond: Math.round((replies * 4) / s),
    cpuPercentOfOneCore: Number((((cpu.user + cpu.system) / 1e6 / s) * 100).toFixed(2)),
    loadAverage: Number(loadavg()[0].toFixed(1)),
  }
  console.log(JSON.stringify(row))
  a.close()
  b.close()
}, seconds * 1000)
