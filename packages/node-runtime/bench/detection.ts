/**
 * Detection bench: time from the tunnel's underlay blackholing (linkemu `down` both ways) to the
 * echo prober declaring the tunnel dead, over ≥ 20 failures at the DEFAULT probe settings, and the
 * echo probe rate that cost (bursts included). Failures are injected at random phases of the
 * 1 s probe cycle, after the tunnel has been up for a random 4–8 s (an extreme failure rate: the
 * burst share is then ~25 %, above the 10 % the interval stretch pays for, so the rate exceeds 1/s).
 * The engine's aggregation (3 consecutive lost echoes) reaches "dead" on the same sample.
 *
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/detection.ts [--json] [--failures N]
 */
import { fmt, jsonFlag, makeRig, mean, quantile, type Sampled, sleep } from "./lib.js"

const i = process.argv.indexOf("--failures")
const failures = i >= 0 ? Number(process.argv[i + 1]) : 24

if (process.getuid?.() !== 0) {
  console.error("detection bench: needs root (namespaces, wireguard-go)")
  process.exit(1)
}

// Defaults for the echo; the other probes off so the rate below is the echo's alone.
const rig = await makeRig({ icmp: { enabled: false }, tcp: { enabled: false }, lossTest: { enabled: false } })
const events: Array<Sampled> = []
rig.onSample((s) => events.push(s))
const waitHealth = async (health: "up" | "dead", sinceIndex: number, timeoutMillis: number) => {
  const start = Date.now()
  while (Date.now() - start < timeoutMillis) {
    const hit = events.slice(sinceIndex).find((e) => e._tag === "Health" && e.health === health)
    if (hit !== undefined) return hit
    await sleep(5)
  }
  return undefined
}
const setDown = (down: boolean) =>
  rig.relay.request({ op: "setImpairment", id: rig.pairId, direction: "both", impairment: { down } })

try {
  if ((await waitHealth("up", 0, 20_000)) === undefined) throw new Error("tunnel never came up")
  const detections: Array<number> = []
  let missed = 0
  const startedAt = Date.now()
  const startIndex = events.length
  for (let n = 0; n < failures; n++) {
    await sleep(4000 + Math.random() * 4000)
    const idx = events.length
    const t0 = Date.now()
    await setDown(true)
    const dead = await waitHealth("dead", idx, 10_000)
    if (dead === undefined) missed++
    else detections.push(dead.atMillis - t0)
    const upIdx = events.length
    await setDown(false)
    if ((await waitHealth("up", upIdx, 10_000)) === undefined) throw new Error("tunnel did not recover")
  }
  const seconds = (Date.now() - startedAt) / 1000
  const echoes = events.slice(startIndex).filter((e) => e._tag === "RttSample" && e.kind === "udp-echo").length
  const result = {
    failures: detections.length,
    missed,
    detectionMillis: {
      p50: quantile(detections, 0.5),
      p95: quantile(detections, 0.95),
      max: Math.max(...detections),
      mean: mean(detections),
    },
    echoProbesPerSecond: echoes / seconds,
    note: "rate over the whole run, which is mostly outages+recoveries (bursts); steady state is ≤ 1/s by construction",
  }
  if (jsonFlag) console.log(JSON.stringify(result, null, 2))
  else {
    console.log(`${result.failures} failures (${missed} undetected in 10 s) over ${fmt(seconds, 0)} s`)
    console.log(
      `detection ms: p50 ${fmt(result.detectionMillis.p50, 0)}  p95 ${fmt(result.detectionMillis.p95, 0)}  max ${fmt(result.detectionMillis.max, 0)}  mean ${fmt(result.detectionMillis.mean, 0)}`,
    )
    console.log(`echo probes/s over the run (bursts included): ${fmt(result.echoProbesPerSecond, 2)}`)
  }
} finally {
  await rig.teardown()
}
