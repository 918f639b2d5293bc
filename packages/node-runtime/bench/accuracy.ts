/**
 * Accuracy bench: each probe's mean RTT error and loss error against a known impairment injected
 * on the tunnel's WireGuard underlay by the twin's userspace link emulator (linkemu), between two
 * namespaces joined by wireguard-go. "Known" = what the relay really applied: the nominal delay
 * plus its own measured release lateness, and the loss it really drew (its droppedLoss/received).
 *
 * Phases: baseline (no impairment) → +D ms each way → loss L one way (a→b: the direction of the
 * loss test's data, so echo, ICMP and the loss test all expect L). RTT error = (mean RTT in the
 * phase − mean RTT at baseline) − (2·D + both directions' mean lateness).
 * Probe rates are raised for the bench (echo 20/s, ICMP 20/s) so a phase gathers enough samples;
 * the estimators are the same as at defaults.
 *
 * `--peer-echo`: site 2 probes the tunnel too (echo at the same rate, other probes off), as in a
 * mesh: the symmetric echo then answers in the peer's own requests, and its RTT has the peer's
 * residence time (the wait for its slot) taken out.
 *
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/accuracy.ts [--json] [--seconds N] [--peer-echo]
 */
import type { PlaneStatus } from "../src/MeasurementPlane.js"
import { controlCommand } from "../test/control/ControlClient.js"
import { argValue, fmt, helpAndExit, jsonFlag, makeRig, mean, type Sampled, sleep } from "./lib.js"

helpAndExit(`
usage: npm run bench -- accuracy [--json] [--seconds 30] [--delay 10] [--loss 0.05] [--peer-echo]
Each probe's RTT and loss error against a known delay and loss injected by the link emulator (root, wireguard-go).
  --peer-echo   site 2 probes too (the symmetric echo answers in its own requests)
`)

const arg = (name: string, dflt: number) => {
  const value = argValue(name)
  return value === undefined ? dflt : Number(value)
}
const phaseSeconds = arg("--seconds", 30)
const delayMs = arg("--delay", 10)
const lossRatio = arg("--loss", 0.05)

if (process.getuid?.() !== 0) {
  console.error("accuracy bench: needs root (namespaces, wireguard-go)")
  process.exit(1)
}

const peerEcho = process.argv.includes("--peer-echo")
const rig = await makeRig(
  {
    echo: { intervalMillis: 50 },
    icmp: { intervalMillis: 50 },
    tcp: { intervalMillis: 250, timeoutMillis: 3000 },
    lossTest: { packets: 1250, intervalMillis: 1000 },
  },
  peerEcho
    ? {
        peerProbes: {
          echo: { intervalMillis: 50 },
          icmp: { enabled: false },
          tcp: { enabled: false },
          lossTest: { enabled: false },
        },
      }
    : {},
)
const loadAverage = async () =>
  Number((await import("node:fs/promises").then((f) => f.readFile("/proc/loadavg", "utf8"))).split(" ")[0])

type Kind = "udp-echo" | "icmp" | "tcp" | "loss-test"
const collect = async (seconds: number) => {
  const got: Array<Sampled> = []
  const stop = rig.onSample((s) => got.push(s))
  await sleep(seconds * 1000)
  stop()
  const rtt = (k: Kind) => got.filter((s) => s._tag === "RttSample" && s.kind === k)
  const lossTests = got.filter((s) => s._tag === "LossTestSample")
  const summary = (k: Kind) => {
    if (k === "loss-test") {
      const sent = lossTests.reduce((a, s) => a + (s.sent ?? 0), 0)
      const received = lossTests.reduce((a, s) => a + (s.received ?? 0), 0)
      return {
        samples: sent,
        meanRttMs: Number.NaN,
        lossRatio: sent === 0 ? Number.NaN : (sent - received) / sent,
        bursts: lossTests.length,
      }
    }
    const xs = rtt(k)
    const ok = xs.filter((s) => s.rttMs !== null && s.rttMs !== undefined).map((s) => s.rttMs as number)
    // A lost TCP SYN is retransmitted after 1 s: that sample is an RTT of ~1 s, not a loss.
    const rtts = k === "tcp" ? ok.filter((r) => r < 900) : ok
    return {
      samples: xs.length,
      meanRttMs: mean(rtts),
      lossRatio: xs.length === 0 ? Number.NaN : 1 - ok.length / xs.length,
      synRetries: ok.length - rtts.length,
    }
  }
  return {
    "udp-echo": summary("udp-echo"),
    icmp: summary("icmp"),
    tcp: summary("tcp"),
    "loss-test": summary("loss-test"),
    jitterMs: mean(lossTests.map((s) => s.jitterMs ?? 0)),
    rateBitsPerSecond: mean(lossTests.map((s) => s.rateBitsPerSecond ?? 0)),
  }
}

const relayStats = async () => {
  const answer = await rig.relay.request({ op: "stats", id: rig.pairId })
  const p = (
    answer.pairs as Array<{
      directions: Record<
        string,
        { received: number; forwarded: number; droppedLoss: number; releaseLatenessTotalMs: number }
      >
    }>
  )[0]!
  return p.directions
}
const setImpairment = (direction: "a->b" | "b->a" | "both", impairment: Record<string, unknown>) =>
  rig.relay.request({ op: "setImpairment", id: rig.pairId, direction, impairment })

try {
  // Wait for the tunnel to answer.
  await new Promise<void>((ok) => {
    const stop = rig.onSample((s) => {
      if (s._tag === "RttSample" && s.rttMs !== null) {
        stop()
        ok()
      }
    })
  })
  await sleep(2000)
  const baseline = await collect(phaseSeconds)

  await setImpairment("both", { delayMs })
  await sleep(2000)
  const before = await relayStats()
  const delayed = await collect(phaseSeconds)
  const after = await relayStats()
  const lateness = (d: string) =>
    (after[d]!.releaseLatenessTotalMs - before[d]!.releaseLatenessTotalMs) /
    Math.max(1, after[d]!.forwarded - before[d]!.forwarded)
  const injectedRttMs = 2 * delayMs + lateness("a->b") + lateness("b->a")

  await setImpairment("both", { delayMs: 0 })
  await setImpairment("a->b", { lossRatio })
  await sleep(2000)
  const echoStats = async () => {
    const s = JSON.parse(await controlCommand(rig.controlPath, "STATUS")) as PlaneStatus
    return s.tunnels.find((t) => t.name === "wg1.2_v4")?.echo ?? null
  }
  const lb = await relayStats()
  const eb = await echoStats()
  const lossy = await collect(phaseSeconds * 2)
  const la = await relayStats()
  const ea = await echoStats()
  // Replies that came after the echo's timeout: counted as lost, but the datagram was not.
  const echoLate = ea !== null && eb !== null ? { late: ea.late - eb.late, sent: ea.sent - eb.sent } : null
  const drawnLoss =
    (la["a->b"]!.droppedLoss - lb["a->b"]!.droppedLoss) / Math.max(1, la["a->b"]!.received - lb["a->b"]!.received)

  const kinds = ["udp-echo", "icmp", "tcp", "loss-test"] as const
  const rows = kinds.map((k) => ({
    probe: k,
    baselineRttMs: baseline[k].meanRttMs,
    delayedRttMs: delayed[k].meanRttMs,
    rttErrorMs: delayed[k].meanRttMs - baseline[k].meanRttMs - injectedRttMs,
    rttSamples: delayed[k].samples,
    measuredLoss: lossy[k].lossRatio,
    lossErrorVsDrawn: lossy[k].lossRatio - drawnLoss,
    lossErrorVsNominal: lossy[k].lossRatio - lossRatio,
    lossSamples: lossy[k].samples,
  }))
  const result = {
    phaseSeconds,
    peerEcho,
    echoSymmetric: ea?.symmetric ?? null,
    loadAverage1m: await loadAverage(),
    injected: { delayMsEachWay: delayMs, injectedRttMs, lossRatioNominal: lossRatio, lossRatioDrawn: drawnLoss },
    rows,
    lossTest: {
      jitterMsAtLoss: lossy.jitterMs,
      rateBitsPerSecond: lossy.rateBitsPerSecond,
      jitterMsBaseline: baseline.jitterMs,
    },
    echoLateInLossPhase: echoLate,
  }
  if (jsonFlag) console.log(JSON.stringify(result, null, 2))
  else {
    console.log(
      `peer echo ${peerEcho ? "on" : "off"}, echo symmetric ${String(result.echoSymmetric)}; load ${result.loadAverage1m}`,
    )
    console.log(
      `injected: +${delayMs} ms each way (relay really added ${fmt(injectedRttMs)} ms RTT), loss ${lossRatio} a->b (drawn ${fmt(drawnLoss, 4)})`,
    )
    console.log("probe      base RTT ms  delayed RTT ms  RTT error ms  n     loss      err vs drawn  err vs nominal  n")
    for (const r of rows) {
      console.log(
        `${r.probe.padEnd(10)} ${fmt(r.baselineRttMs).padStart(11)} ${fmt(r.delayedRttMs).padStart(15)} ${fmt(r.rttErrorMs).padStart(13)}  ${String(r.rttSamples).padEnd(5)} ${fmt(r.measuredLoss, 4).padStart(7)} ${fmt(r.lossErrorVsDrawn, 4).padStart(13)} ${fmt(r.lossErrorVsNominal, 4).padStart(15)}  ${r.lossSamples}`,
      )
    }
    if (echoLate !== null) {
      const pct = fmt((100 * echoLate.late) / Math.max(1, echoLate.sent), 2)
      console.log(
        `echo replies after the timeout in the loss phase: ${echoLate.late} of ${echoLate.sent} probes (${pct} %)`,
      )
    }
    console.log(
      `loss test: jitter ${fmt(result.lossTest.jitterMsBaseline)} ms (baseline) / ${fmt(result.lossTest.jitterMsAtLoss)} ms, rate ${fmt(result.lossTest.rateBitsPerSecond / 1e6)} Mbit/s`,
    )
  }
} finally {
  await rig.teardown()
}
