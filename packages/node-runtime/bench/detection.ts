/**
 * Detection bench: time from the tunnel's underlay blackholing (linkemu `down` both ways) to the
 * echo prober declaring the tunnel dead, over ≥ 20 failures at the DEFAULT probe settings, and the
 * echo probe rate that cost (bursts included). Both ends probe the tunnel, as in a mesh: site 1
 * (lower id: it keeps its sends half-way between site 2's) and site 2 each report their own verdict,
 * so one run gives two detections per failure. Failures are injected at random phases of the 1 s
 * probe cycle, after the tunnel has been up for a random 4–8 s (an extreme failure rate: the burst
 * share is then above the 10 % the interval stretch pays for, so the rate can exceed 1/s; the
 * steady-state rate is reported apart, from a quiet stretch before the failures).
 * The engine's aggregation (3 consecutive lost echoes) reaches "dead" on the same sample.
 *
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/detection.ts [--json] [--failures N]
 *     [--no-peer-echo]   site 2 only serves (the set-up before peer evidence: one prober per tunnel)
 *     [--echo '{…}']     echo overrides for both sites, e.g. '{"watchPeerRequests":false,"alignToPeer":false}'
 */
import type { PlaneStatus } from "../src/MeasurementPlane.js"
import { controlCommand } from "../test/control/ControlClient.js"
import { argValue, fmt, helpAndExit, jsonFlag, makeRig, mean, quantile, type Sampled, sleep } from "./lib.js"

helpAndExit(`
usage: npm run bench -- detection [--json] [--failures 24] [--steady-seconds 30] [--no-peer-echo] [--echo '{…}']
Time from a blackholed tunnel to the echo's dead verdict at both ends, p50/p95/max, and the probe rate (root).
  --no-peer-echo   site 2 only serves (one prober per tunnel)
  --echo           echo config overrides for both sites (JSON)
`)

const failures = Number(argValue("--failures") ?? 24)
const peerEcho = !process.argv.includes("--no-peer-echo")
const echo = JSON.parse(argValue("--echo") ?? "{}") as Record<string, unknown>
const steadySeconds = Number(argValue("--steady-seconds") ?? 30)

if (process.getuid?.() !== 0) {
  console.error("detection bench: needs root (namespaces, wireguard-go)")
  process.exit(1)
}

// Defaults for the echo; the other probes off so the rate below is the echo's alone.
const probes = { echo, icmp: { enabled: false }, tcp: { enabled: false }, lossTest: { enabled: false } }
const rig = await makeRig(probes, peerEcho ? { peerProbes: probes } : {})
const events: Array<Sampled> = []
const peerEvents: Array<Sampled> = []
rig.onSample((s) => events.push(s))
rig.onPeerSample((s) => peerEvents.push(s))
const waitHealth = async (
  list: ReadonlyArray<Sampled>,
  health: "up" | "dead",
  sinceIndex: number,
  timeoutMillis: number,
) => {
  const start = Date.now()
  while (Date.now() - start < timeoutMillis) {
    const hit = list.slice(sinceIndex).find((e) => e._tag === "Health" && e.health === health)
    if (hit !== undefined) return hit
    await sleep(5)
  }
  return undefined
}
const setDown = (down: boolean) =>
  rig.relay.request({ op: "setImpairment", id: rig.pairId, direction: "both", impairment: { down } })
/** Echo probes site 1 has sent (STATUS): samples overcount when a late reply follows its loss. */
const sentBySite1 = async () => {
  const status = JSON.parse(await controlCommand(rig.controlPath, "STATUS")) as PlaneStatus
  return status.tunnels.reduce((a, t) => a + (t.echo?.sent ?? 0), 0)
}
const echoCount = (list: ReadonlyArray<Sampled>, from: number, to = list.length) =>
  list.slice(from, to).filter((e) => e._tag === "RttSample" && e.kind === "udp-echo").length

try {
  if ((await waitHealth(events, "up", 0, 20_000)) === undefined) throw new Error("tunnel never came up")
  // Steady state first (after the peers' phases settled): the rate a healthy tunnel costs. Site 2's
  // rate is from its samples (no control socket there); a late reply adds a sample, never a probe.
  await sleep(5000)
  const steadyFrom = events.length
  const steadyPeerFrom = peerEvents.length
  const steadyStart = Date.now()
  const sent0 = await sentBySite1()
  await sleep(steadySeconds * 1000)
  const steadyRate = ((await sentBySite1()) - sent0) / ((Date.now() - steadyStart) / 1000)
  const steadySamples = echoCount(events, steadyFrom) / ((Date.now() - steadyStart) / 1000)
  const steadyPeerRate = echoCount(peerEvents, steadyPeerFrom) / ((Date.now() - steadyStart) / 1000)

  const detections: Array<number> = []
  const peerDetections: Array<number> = []
  let missed = 0
  const startedAt = Date.now()
  const sentAtStart = await sentBySite1()
  for (let n = 0; n < failures; n++) {
    await sleep(4000 + Math.random() * 4000)
    const idx = events.length
    const peerIdx = peerEvents.length
    const t0 = Date.now()
    await setDown(true)
    const dead = await waitHealth(events, "dead", idx, 10_000)
    if (dead === undefined) missed++
    else detections.push(dead.atMillis - t0)
    if (peerEcho) {
      const peerDead = await waitHealth(peerEvents, "dead", peerIdx, 5000)
      if (peerDead !== undefined) peerDetections.push(peerDead.atMillis - t0)
    }
    const upIdx = events.length
    await setDown(false)
    const up = await waitHealth(events, "up", upIdx, 30_000)
    if (up === undefined) throw new Error("tunnel did not recover in 30 s")
    console.error(
      `failure ${n + 1}: site 1 ${dead === undefined ? "missed" : `${dead.atMillis - t0} ms`}, site 2 ${peerDetections.length > 0 && peerEcho ? `${peerDetections.at(-1)} ms` : "-"}; up again after ${up.atMillis - t0} ms`,
    )
  }
  const seconds = (Date.now() - startedAt) / 1000
  const both = [...detections, ...peerDetections]
  const summary = (xs: ReadonlyArray<number>) => ({
    n: xs.length,
    p50: quantile(xs, 0.5),
    p95: quantile(xs, 0.95),
    max: Math.max(...xs),
    mean: mean(xs),
  })
  const result = {
    peerEcho,
    echo,
    failures: detections.length,
    missed,
    detectionMillis: summary(detections),
    peerDetectionMillis: peerEcho ? summary(peerDetections) : null,
    bothEndsMillis: peerEcho ? summary(both) : null,
    echoProbesPerSecondSteady: steadyRate,
    peerEchoProbesPerSecondSteady: peerEcho ? steadyPeerRate : null,
    echoSamplesPerSecondSteady: steadySamples,
    echoProbesPerSecondDuringFailures: ((await sentBySite1()) - sentAtStart) / seconds,
    loadAverage1m: Number(
      (await import("node:fs/promises").then((f) => f.readFile("/proc/loadavg", "utf8"))).split(" ")[0],
    ),
  }
  if (jsonFlag) console.log(JSON.stringify(result, null, 2))
  else {
    const line = (label: string, s: ReturnType<typeof summary>) =>
      console.log(
        `${label}: n ${s.n}  p50 ${fmt(s.p50, 0)}  p95 ${fmt(s.p95, 0)}  max ${fmt(s.max, 0)}  mean ${fmt(s.mean, 0)} ms`,
      )
    console.log(
      `${result.failures} failures (${missed} undetected in 10 s) over ${fmt(seconds, 0)} s; peer echo ${peerEcho ? "on" : "off"}; load ${result.loadAverage1m}`,
    )
    line("site 1 detection", result.detectionMillis)
    if (result.peerDetectionMillis !== null) line("site 2 detection", result.peerDetectionMillis)
    if (result.bothEndsMillis !== null) line("both ends       ", result.bothEndsMillis)
    console.log(
      `site 1 echo probes sent/s: steady ${fmt(steadyRate, 3)} (samples/s ${fmt(steadySamples, 3)}${peerEcho ? `; site 2 samples/s ${fmt(steadyPeerRate, 3)}` : ""}); during the failure run ${fmt(result.echoProbesPerSecondDuringFailures, 2)}`,
    )
  }
} finally {
  await rig.teardown()
}
