#!/usr/bin/env node
// The routing targets of issue 8, measured in the twin: each scenario runs --reps times with the
// net-perf daemon at every site (and, with --baseline, as many times with plain BIRD), and the
// table gives median and p95 per figure next to its target and the baseline's median. The
// machine's load average is recorded per run (the twin shares 2 cores with everything else:
// probe RTTs inflate under load, and so do reaction times).
// Usage (root, after `npx tsc -b`): node netns-lab/bench-targets.mjs [--reps 5] [--baseline]
//   [--rows hard-failure,degrade,loss,restarts,jitter] [--jitter-seconds 600] [--json]
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Schedule } from "effect"

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, "../packages/simulator/dist/src")
const { makeTwin } = await import(join(dist, "twin/Twin.js"))
const { runOnTwin } = await import(join(dist, "twin/Runner.js"))
const { loadScenario, withRouting } = await import(join(dist, "twin/Scenario.js"))
const { scrapeDaemonMetrics, sumCounter } = await import(join(dist, "twin/Daemons.js"))

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : process.argv[i + 1]
}
const json = process.argv.includes("--json")
const reps = Number(arg("reps", "5"))
const baseline = process.argv.includes("--baseline")
const rows = arg("rows", "hard-failure,degrade,loss,restarts,jitter").split(",")
const jitterSeconds = Number(arg("jitter-seconds", "600"))
const log = (s) => process.stderr.write(`[bench] ${s}\n`)
const scenarioFile = (name) => join(here, "scenarios", `${name}.yaml`)

const quantile = (xs, q) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b)
  if (s.length === 0) return null
  const i = Math.min(s.length - 1, Math.ceil(q * s.length) - 1)
  return s[Math.max(0, i)]
}
const summary = (xs) => ({ n: xs.length, median: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: quantile(xs, 1) })

/** One run on a fresh twin; with daemons, the fast echo's rate per tunnel from their /metrics. */
const runOnce = (scenario) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const load1 = loadavg()[0]
        const twin = yield* makeTwin({ scenario, mode: "test", onProgress: (l) => log(`  ${l}`) })
        const sites = [...twin.daemons.keys()]
        const scrape = Effect.forEach(sites, (x) =>
          scrapeDaemonMetrics(twin, x).pipe(
            Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("30 seconds"))),
            Effect.map((t) => sumCounter(t, "netperf_probes_sent_total", { probe: "udp" })),
            Effect.orElseSucceed(() => null),
          ),
        )
        const before = { at: Date.now(), sent: yield* scrape }
        const report = yield* runOnTwin(twin, { onProgress: (l) => log(`  ${l}`) })
        const after = { at: Date.now(), sent: yield* scrape }
        const tunnels = (scenario.sites - 1) * scenario.families.length
        const rates = sites.flatMap((_, i) =>
          before.sent[i] === null || after.sent[i] === null
            ? []
            : [(after.sent[i] - before.sent[i]) / tunnels / ((after.at - before.at) / 1000)],
        )
        return {
          report,
          echoPerTunnelPerSecond: rates.length === 0 ? null : rates.reduce((a, b) => a + b, 0) / rates.length,
          loadAverage: [load1, loadavg()[0]],
        }
      }),
    ),
  )

const INF = Number.POSITIVE_INFINITY
const bad = (e) => (e === undefined ? null : e.badPathAtEnd ? INF : e.badPathMs)
const off = (e) => (e === undefined ? null : e.offOptimumAtEnd ? INF : e.offOptimumMs)
const longestMs = (r, kind) =>
  Math.max(0, ...r.anomalies.filter((a) => a.kind === kind).map((a) => a.lastSeenMillis - a.firstSeenMillis))
const rttRatios = (r) =>
  r.rtt.flatMap((p) =>
    p.chosenPathRttMs === null || !p.symmetricOracleRttMs ? [] : [p.chosenPathRttMs / p.symmetricOracleRttMs],
  )
const measuredRatios = (r) =>
  r.rtt.flatMap((p) =>
    p.measuredMedianRttMs === null || !p.symmetricOracleRttMs || p.samples < 5
      ? []
      : [p.measuredMedianRttMs / p.symmetricOracleRttMs],
  )

/** Scenario name → figures extracted from a report (each a list: one run may give several samples). */
const plans = {
  "hard-failure": {
    scenario: "hard-failure",
    figures: (r) => ({
      "hard failure → all sites around it (ms)": r.events.filter((e) => e.label.startsWith("link-down")).map(bad),
    }),
    targets: { "hard failure → all sites around it (ms)": "p95 ≤ 1500" },
  },
  degrade: {
    scenario: "degrade",
    figures: (r) => ({
      "+50 ms one way → moved (ms)": [bad(r.events[0])],
      "+50 ms repaired → back (ms)": [off(r.events[1])],
    }),
    targets: { "+50 ms one way → moved (ms)": "≤ 10000", "+50 ms repaired → back (ms)": "≤ 30000" },
  },
  loss: {
    scenario: "loss",
    figures: (r) => ({
      "5 % loss → moved (ms)": [bad(r.events[0])],
      "5 % loss repaired → back (ms)": [off(r.events[1])],
    }),
    targets: { "5 % loss → moved (ms)": "≤ 10000", "5 % loss repaired → back (ms)": "≤ 30000" },
  },
  restarts: {
    scenarios: ["daemon-restart", "bird-restart"],
    figures: (r) => ({
      "daemon/BIRD restarts: loop episodes": [r.anomalies.filter((a) => a.kind === "loop").length],
      "daemon/BIRD restarts: longest blackhole (ms)": [longestMs(r, "blackhole")],
    }),
    targets: {
      "daemon/BIRD restarts: loop episodes": "0",
      "daemon/BIRD restarts: longest blackhole (ms)": "≤ detection (~3000)",
    },
  },
  jitter: {
    scenario: "near-equal-jitter",
    tweak: (s) => ({ ...s, durationSeconds: jitterSeconds }),
    figures: (r) => ({ [`near-equal, 1 ms σ jitter, ${jitterSeconds} s: route switches`]: [r.totalRouteChanges] }),
    targets: { [`near-equal, 1 ms σ jitter, ${jitterSeconds} s: route switches`]: "0" },
  },
}

const collected = { "net-perf": {}, bird: {} }
const runs = []
const add = (routing, figures) => {
  for (const [k, v] of Object.entries(figures)) {
    collected[routing][k] = [...(collected[routing][k] ?? []), ...v]
  }
}
const targets = {}
for (const row of rows) {
  const plan = plans[row]
  if (plan === undefined) throw new Error(`unknown row ${row} (known: ${Object.keys(plans).join(", ")})`)
  Object.assign(targets, plan.targets)
  const names = plan.scenarios ?? [plan.scenario]
  // The 10-minute flap test runs once per routing: five of them would take most of an hour.
  const n = row === "jitter" ? 1 : reps
  for (const name of names) {
    const loaded = await Effect.runPromise(loadScenario(scenarioFile(name)))
    const s = plan.tweak ? plan.tweak(loaded) : loaded
    for (const routing of baseline ? ["bird", "net-perf"] : ["net-perf"])
      for (let i = 0; i < n; i++) {
        log(`${name} (${routing}) run ${i + 1}/${n}, load average ${loadavg()[0].toFixed(1)}`)
        const started = Date.now()
        const { report, echoPerTunnelPerSecond, loadAverage } = await runOnce(withRouting(s, routing))
        const figures = {
          ...plan.figures(report),
          "loop episodes (all scenarios)": [report.anomalies.filter((a) => a.kind === "loop").length],
          "chosen path RTT / symmetric oracle": rttRatios(report),
          "measured RTT / symmetric oracle (twin overhead included)": measuredRatios(report),
          ...(echoPerTunnelPerSecond === null ? {} : { "fast echo probes/s per tunnel": [echoPerTunnelPerSecond] }),
        }
        add(routing, figures)
        runs.push({
          scenario: name,
          routing,
          run: i + 1,
          seconds: Math.round((Date.now() - started) / 1000),
          loadAverage,
          figures,
        })
        log(`  → ${JSON.stringify(figures)}`)
      }
  }
}
Object.assign(targets, {
  "loop episodes (all scenarios)": "0",
  "chosen path RTT / symmetric oracle": "≤ 1.10",
  "fast echo probes/s per tunnel": "≤ 1",
})

const table = Object.keys(collected["net-perf"]).map((figure) => ({
  figure,
  target: targets[figure] ?? "",
  netPerf: summary(collected["net-perf"][figure]),
  ...(baseline && collected.bird[figure] ? { bird: summary(collected.bird[figure]) } : {}),
}))
const loads = runs.flatMap((r) => r.loadAverage)
const result = {
  reps,
  baseline,
  loadAverage: { min: Math.min(...loads), max: Math.max(...loads) },
  table,
  runs,
}
if (json) console.log(JSON.stringify(result, (_k, v) => (v === INF ? "never (whole window)" : v), 2))
else {
  const fmt = (x) => (x === null ? "—" : x === INF ? "never" : Number.isInteger(x) ? String(x) : x.toFixed(2))
  console.log(
    `routing targets in the twin (${reps} runs each; load average ${result.loadAverage.min.toFixed(1)}–${result.loadAverage.max.toFixed(1)} on 2 cores)`,
  )
  for (const t of table)
    console.log(
      `  ${t.figure.padEnd(58)} median ${fmt(t.netPerf.median).padStart(7)}  p95 ${fmt(t.netPerf.p95).padStart(7)}  (n=${t.netPerf.n})` +
        `  target ${t.target.padEnd(18)}${t.bird ? ` BIRD median ${fmt(t.bird.median)}, p95 ${fmt(t.bird.p95)}` : ""}`,
    )
}
