/**
 * Model-simulator bench: many engines under simulated time at N = 50 and N = 200, every engine
 * configuration side by side with the legacy row, the adversarial scenarios, and a loop-freedom
 * run over many small random scenarios. Prints readable tables, or one JSON document with
 * `--json`. Wall-clock times are measured here (performance.now), never inside the simulator.
 *
 *   npm run bench:model -w packages/simulator -- [--json] [--quick] [--loop-runs=10000]
 *        [--sections=scale,adversarial,loops] [--sizes=50,200] [--topologies=full,partial]
 *        [--measured-seconds=600] [--seeds=3] [--restarts=2] [--loop-start=0]
 *   --sections=digest --sizes=60,200 --measured-seconds=20: SHA-256 of fixed runs' reports (speed-only changes must keep them)
 *   --rows=graph-least-cost,legacy,no-hysteresis,stability  --stability=rel:0.05,abs:5  (an extra row with these margins)
 *   --threads=1|2|auto  (two worker threads per run, the same report; default auto: two from 150 sites and 300 s simulated; measured-fastest runs on one)
 *   --advertise-ms=1000 --no-metric-trigger --no-request-trigger  (the model's exchange before 27 Nov; default: the daemon's,
 *        2 s adverts, --metric-trigger=abs:1,rel:0.05, --request-trigger)  --decide-ms=250  (the periodic decide)
 */
import {
  type AggregateReport,
  aggregate,
  defaultEngineSettings,
  delayedLinkStateScenario,
  type EngineSettings,
  type ExchangeConfig,
  flappingLinkScenario,
  formatTable,
  legacyEngineSettings,
  nearEqualPathsScenario,
  type RunReport,
  randomScenario,
  randomSmallScenario,
  runScenario,
  type Scenario,
  slowOscillationScenario,
  threadsPossible,
  toJson,
} from "../src/model/index.js"

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=")
    return [k ?? "", v ?? "true"] as const
  }),
)
const json = args.has("json")
const quick = args.has("quick")
const sections = new Set((args.get("sections") ?? "scale,adversarial,loops").split(","))
const sizes = (args.get("sizes") ?? "50,200").split(",").map(Number)
const measuredSeconds = Number(args.get("measured-seconds") ?? (quick ? 120 : 600))
const seedsPerRow = Number(args.get("seeds") ?? (quick ? 1 : 3))
// Site restarts per scale scenario (daemon down 2-10 s, fresh engine).
const restartsPerScenario = Number(args.get("restarts") ?? 2)
const topologiesArg = args.get("topologies")?.split(",") as Array<"full" | "partial"> | undefined
const loopStart = Number(args.get("loop-start") ?? 0)
const loopRuns = Number(args.get("loop-runs") ?? (quick ? 200 : 10_000))
const rowFilter = args.get("rows")?.split(",")
// --adversarial=near-equal,slow: only the adversarial sets whose names start with these.
const adversarialFilter = args.get("adversarial")?.split(",")
// Probe and exchange settings applied to every scenario (defaults: the daemon's prober and, since
// 27 Nov, its exchange: 2 s adverts, metric trigger, request trigger; the old model's exchange:
// --advertise-ms=1000 --no-metric-trigger --no-request-trigger).
const lossTimeoutMillis = args.has("loss-timeout-ms") ? Number(args.get("loss-timeout-ms")) : undefined
const advertiseIntervalMillis = args.has("advertise-ms") ? Number(args.get("advertise-ms")) : undefined
// --metric-trigger[=abs:1,rel:0.05]: the daemon's advert trigger (metric moves, starved flags; every
// advertisement restarts the periodic interval) with these thresholds (ExchangeConfig.metricTrigger;
// on by default with the daemon's thresholds since 27 Nov); --no-metric-trigger: off (the old model).
const metricTriggerArg = args.get("metric-trigger")
const metricTrigger: ExchangeConfig["metricTrigger"] | undefined = args.has("no-metric-trigger")
  ? false
  : metricTriggerArg === undefined
    ? undefined
    : (() => {
        const kv = new Map(
          (metricTriggerArg === "true" ? "" : metricTriggerArg)
            .split(",")
            .filter((x) => x !== "")
            .map((x) => x.split(":") as [string, string]),
        )
        return { absoluteMs: Number(kv.get("abs") ?? 1), relative: Number(kv.get("rel") ?? 0.05) }
      })()
// --no-request-trigger: no advert at once on a new seqno request (ExchangeConfig.requestTrigger, on
// by default since 27 Nov); --request-trigger: on (the default).
const requestTrigger = args.has("no-request-trigger") ? false : args.has("request-trigger") ? true : undefined
// --decide-ms=250: each site's periodic decide (the model's default is 1000; the daemon's 250).
const decideIntervalMillis = args.has("decide-ms") ? Number(args.get("decide-ms")) : undefined
// --threads=1|2|auto: run each scenario on one thread or split over two workers (the same report;
// `runScenario`'s threads). Default auto: two for runs of ≥ 150 sites and ≥ 300 s simulated, one
// otherwise. Since session 13 two threads take 0.6–0.8 of one thread's wall time for the 600-s
// N = 200 run (72–83 s against 102–121 s on this 2-core VM), but not for short runs, whose
// start-up burst no split evens out (70 s digest scenario: N = 200 23.8 s against 23.4 s, N = 60
// 13.9 s against 10.6 s; README, "Speed, session 13").
const threads = args.get("threads") ?? "auto"
if (threads !== "1" && threads !== "2" && threads !== "auto") throw new Error("--threads: 1, 2 or auto")
const tuned = (s: Scenario): Scenario => ({
  ...s,
  ...(lossTimeoutMillis === undefined ? {} : { probe: { ...s.probe, lossTimeoutMillis } }),
  ...(advertiseIntervalMillis === undefined && metricTrigger === undefined && requestTrigger === undefined
    ? {}
    : {
        exchange: {
          ...s.exchange,
          ...(advertiseIntervalMillis === undefined ? {} : { advertiseIntervalMillis }),
          ...(metricTrigger === undefined ? {} : { metricTrigger }),
          ...(requestTrigger === undefined ? {} : { requestTrigger }),
        },
      }),
  ...(decideIntervalMillis === undefined ? {} : { decideIntervalMillis }),
})

const log = (line: string) => {
  if (!json) process.stdout.write(`${line}\n`)
  else process.stderr.write(`${line}\n`)
}

const allRows: ReadonlyArray<EngineSettings> = [
  defaultEngineSettings,
  { label: "graph-least-cost, no hysteresis", algorithm: "graph-least-cost", stability: "none", costModel: "default" },
  { label: "least-cost-bgp", algorithm: "least-cost-bgp", stability: "default", costModel: "default" },
  { label: "shortest-bgp", algorithm: "shortest-bgp", stability: "default", costModel: "default" },
  { label: "measured-fastest", algorithm: "measured-fastest", stability: "default", costModel: "default" },
  legacyEngineSettings,
]
// --stability=abs:5,rel:0.05,noise:1.5,dwell:30000: one more row, the default engine with these
// route-stability margins (the stretch/flap trade-off side by side with the defaults).
const stabilityArg = args.get("stability")
const stabilityRow: EngineSettings | undefined =
  stabilityArg === undefined
    ? undefined
    : {
        label: `graph-least-cost, stability ${stabilityArg}`,
        algorithm: "graph-least-cost",
        costModel: "default",
        stability: Object.fromEntries(
          stabilityArg.split(/[,;]/).map((kv) => {
            const [k, v] = kv.split(":")
            const key = { abs: "absoluteMarginMs", rel: "relativeMargin", noise: "noiseFactor", dwell: "dwellMillis" }[
              k ?? ""
            ]
            if (key === undefined) throw new Error(`--stability: unknown key ${k} (abs, rel, noise, dwell)`)
            return [key, Number(v)]
          }),
        ),
      }
// A filter names a row by its label or label prefix; "no-hysteresis" names the default cost
// model without margins or dwell, "stability" the --stability row.
const rows = [...allRows, ...(stabilityRow === undefined ? [] : [stabilityRow])].filter(
  (r) =>
    rowFilter === undefined ||
    rowFilter.some(
      (f) =>
        r.label === f ||
        r.label.startsWith(`${f} `) ||
        (f === "no-hysteresis" && r.label === "graph-least-cost, no hysteresis") ||
        (f === "stability" && r === stabilityRow),
    ),
)

/** Threads a run of this scenario uses (two only where `threadsPossible`). */
const threadsUsed = (scenario: Scenario, settings: EngineSettings): 1 | 2 => {
  if (!threadsPossible(scenario, settings)) return 1
  if (threads === "auto") return scenario.mesh.sites >= 150 && scenario.durationMillis >= 300_000 ? 2 : 1
  return threads === "2" ? 2 : 1
}

interface Timed {
  readonly report: RunReport
  readonly realMillis: number
  /** CPU time of this process during the run (user + system): the machine is shared, so wall time overstates. */
  readonly cpuMillis: number
}

const timed = (scenario: Scenario, settings: EngineSettings): Timed => {
  const t0 = performance.now()
  // process.cpuUsage is the whole process's: both workers' CPU included.
  const c0 = process.cpuUsage()
  const report = runScenario(scenario, settings, true, threadsUsed(scenario, settings))
  const c = process.cpuUsage(c0)
  return { report, realMillis: performance.now() - t0, cpuMillis: (c.user + c.system) / 1000 }
}

interface Row {
  readonly section: string
  readonly aggregate: AggregateReport
  readonly scenariosPerSecond: number
  readonly realSecondsPerScenario: number
  readonly cpuSecondsPerScenario: number
  readonly simulatedSecondsPerScenario: number
}

const runRow = (section: string, label: string, scenarios: ReadonlyArray<Scenario>, settings: EngineSettings): Row => {
  const results = scenarios.map((s) => {
    const r = timed(tuned(s), settings)
    log(
      `  ${section} | ${label} | ${s.name}: ${(r.realMillis / 1000).toFixed(1)} s real, ${(r.cpuMillis / 1000).toFixed(1)} s CPU, ${threadsUsed(s, settings)} thread(s)`,
    )
    return r
  })
  const realMillis = results.reduce((a, r) => a + r.realMillis, 0)
  const cpuMillis = results.reduce((a, r) => a + r.cpuMillis, 0)
  return {
    section,
    aggregate: aggregate(
      label,
      results.map((r) => r.report),
    ),
    scenariosPerSecond: results.length / (realMillis / 1000),
    realSecondsPerScenario: realMillis / 1000 / results.length,
    cpuSecondsPerScenario: cpuMillis / 1000 / results.length,
    simulatedSecondsPerScenario: (scenarios[0]?.durationMillis ?? 0) / 1000,
  }
}

const printRows = (title: string, section: ReadonlyArray<Row>) => {
  log(`\n${title}`)
  log(formatTable(section.map((r) => r.aggregate)))
  log(
    section
      .map(
        (r) =>
          `  ${r.aggregate.label}: ${r.scenariosPerSecond.toFixed(3)} scenarios/s (${r.realSecondsPerScenario.toFixed(1)} s real, ${r.cpuSecondsPerScenario.toFixed(1)} s CPU per ${r.simulatedSecondsPerScenario} s simulated)`,
      )
      .join("\n"),
  )
}

const out: Record<string, unknown> = {
  machine: { cpus: (await import("node:os")).cpus().length, node: process.version },
  parameters: {
    measuredSeconds,
    seedsPerRow,
    loopRuns,
    loopStart,
    sizes,
    topologies: topologiesArg ?? "full up to 50 sites, else partial",
    restartsPerScenario,
    quick,
    lossTimeoutMillis,
    advertiseIntervalMillis,
    metricTrigger,
    requestTrigger,
    decideIntervalMillis,
    threads,
  },
}

// --- Scale: N = 50 full mesh and N = 200 partial mesh, every configuration. ----------------
if (sections.has("scale")) {
  const scale: Row[] = []
  for (const n of sizes)
    for (const topology of topologiesArg ?? [n <= 50 ? ("full" as const) : ("partial" as const)]) {
      const scenarios = Array.from({ length: seedsPerRow }, (_, i) =>
        randomScenario({
          sites: n,
          topology,
          degree: 8,
          seed: 1000 + i,
          measuredMillis: measuredSeconds * 1000,
          hardFailures: Math.max(4, Math.round(measuredSeconds / 60)),
          latencySteps: Math.max(2, Math.round(measuredSeconds / 120)),
          stretchSampleMillis: n >= 200 ? 30_000 : 10_000,
          siteRestarts: restartsPerScenario,
        }),
      )
      for (const settings of rows) {
        if (n >= 200 && settings.algorithm === "measured-fastest" && !args.has("all-rows")) continue
        // "… N=200" last: the HTML report drops that suffix from row labels.
        scale.push(runRow(`N=${n} ${topology}`, `${settings.label} ${topology} N=${n}`, scenarios, settings))
      }
      printRows(
        `Scale: N=${n} ${topology} mesh, ${measuredSeconds} s measured after ${(scenarios[0]?.warmupMillis ?? 0) / 1000} s warm-up`,
        scale.filter((r) => r.section === `N=${n} ${topology}`),
      )
    }
  out.scale = scale
}

// --- Adversarial scenarios, default vs legacy. ----------------------------------------------
if (sections.has("adversarial")) {
  const adversarial: Row[] = []
  const seeds = Array.from({ length: seedsPerRow }, (_, i) => 2000 + i)
  const allSets: ReadonlyArray<readonly [string, ReadonlyArray<Scenario>]> = [
    ["near-equal paths (flap test)", seeds.map((s) => nearEqualPathsScenario(s, 10, measuredSeconds * 1000))],
    ["slow oscillation", seeds.map((s) => slowOscillationScenario(s, 12, 2 * measuredSeconds * 1000))],
    ["link flapping every 1 s", seeds.map((s) => flappingLinkScenario(s, 10, measuredSeconds * 1000))],
    ["link state delayed 1-5 s", seeds.map((s) => delayedLinkStateScenario(s, 20, measuredSeconds * 1000))],
  ]
  const sets = allSets.filter(
    ([name]) => adversarialFilter === undefined || adversarialFilter.some((f) => name.startsWith(f)),
  )
  for (const [name, scenarios] of sets)
    for (const settings of [defaultEngineSettings, legacyEngineSettings, ...(stabilityRow ? [stabilityRow] : [])])
      adversarial.push(runRow(name, `${name}: ${settings.label}`, scenarios, settings))
  printRows("Adversarial scenarios", adversarial)
  out.adversarial = adversarial
}

// --- Loop freedom over many small random scenarios. ------------------------------------------
if (sections.has("loops")) {
  const t0 = performance.now()
  let loops = 0
  let loopPairSeconds = 0
  let unresolvedHard = 0
  const loopSeeds: Array<{ seed: number; settings: string; samples: RunReport["loopSamples"] }> = []
  // Every configuration takes its turn; a short start-up hold-down keeps each scenario small.
  const loopRows = allRows.map((r) => ({ ...r, extra: { ...r.extra, startupHoldDownMillis: 2_000 } }))
  for (let i = 0; i < loopRuns; i++) {
    const seed = 100_000 + loopStart + i
    const settings = loopRows[(loopStart + i) % loopRows.length]!
    const r = runScenario(tuned(randomSmallScenario(seed, 20_000, 8_000)), settings)
    loops += r.loops.count
    loopPairSeconds += r.loops.pairSeconds
    unresolvedHard += r.hardFailures.unresolved
    if (r.loops.count > 0 && loopSeeds.length < 20)
      loopSeeds.push({ seed, settings: settings.label, samples: r.loopSamples })
    if ((i + 1) % 500 === 0) log(`  loop-freedom: ${i + 1}/${loopRuns} scenarios, ${loops} loops so far`)
  }
  const realSeconds = (performance.now() - t0) / 1000
  const loopResult = {
    scenarios: loopRuns,
    loops,
    loopPairSeconds,
    unresolvedHardFailures: unresolvedHard,
    scenariosPerSecond: loopRuns / realSeconds,
    realSeconds,
    loopSeeds,
  }
  log(
    `\nLoop freedom: ${loopRuns} random small scenarios (4-10 sites, failures, steps, delayed/lossy/reordered link state; every configuration in turn): ${loops} loops (${loopPairSeconds.toFixed(1)} pair·s), ${loopResult.scenariosPerSecond.toFixed(1)} scenarios/s`,
  )
  for (const l of loopSeeds) log(`  loop: seed ${l.seed} (${l.settings}): ${JSON.stringify(l.samples.slice(0, 3))}`)
  out.loops = loopResult
}

// --- Report digests: the speed-only check for engine and model changes. -------------------
// SHA-256 of each run's full JSON report (stretch histogram included) for fixed scenarios: a
// change that is meant to be behaviour-preserving must print the same digests before and after.
if (sections.has("digest")) {
  const { createHash } = await import("node:crypto")
  const digests: Array<{ name: string; sha256: string; cpuSeconds: number; realSeconds: number }> = []
  for (const n of sizes)
    for (const settings of rows) {
      const scenario = randomScenario({
        sites: n,
        topology: n <= 60 ? "full" : "partial",
        degree: 8,
        seed: 1000,
        warmupMillis: 50_000,
        measuredMillis: measuredSeconds * 1000,
        hardFailures: 3,
        latencySteps: 2,
        stretchSampleMillis: 5_000,
        siteRestarts: restartsPerScenario,
      })
      const r = timed(tuned(scenario), settings)
      const text = JSON.stringify(r.report, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v))
      const sha256 = createHash("sha256").update(text).digest("hex")
      digests.push({ name: r.report.name, sha256, cpuSeconds: r.cpuMillis / 1000, realSeconds: r.realMillis / 1000 })
      log(
        `  digest N=${n} ${settings.label}: ${sha256.slice(0, 16)} (${(r.cpuMillis / 1000).toFixed(1)} s CPU, ${(r.realMillis / 1000).toFixed(1)} s real, ${scenario.durationMillis / 1000} s simulated, ${threadsUsed(scenario, settings)} thread(s))`,
      )
    }
  out.digests = digests
}

// --- Goals. -------------------------------------------------------------------------------
const goals: Array<{ goal: string; value: string; met: boolean }> = []
const scaleRows = (out.scale as Row[] | undefined) ?? []
const defaultRow = new RegExp(`^${defaultEngineSettings.label} (full|partial) N=\\d+$`)
for (const r of scaleRows.filter((x) => defaultRow.test(x.aggregate.label))) {
  const a = r.aggregate
  goals.push({ goal: `${a.label}: 0 loops`, value: String(a.loops), met: a.loops === 0 })
  goals.push({
    goal: `${a.label}: mean stretch ≤ 1.05`,
    value: (a.stretchMean ?? Number.NaN).toFixed(4),
    met: (a.stretchMean ?? 9) <= 1.05,
  })
  const p95 = a.hardFailures.reactionMillis.p95
  goals.push({
    goal: `${a.label}: hard-failure reaction p95 ≤ 3 s`,
    value: p95 === null ? "-" : `${(p95 / 1000).toFixed(2)} s`,
    met: p95 !== null && p95 <= 3000,
  })
  if (a.sites >= 200) {
    const realPer600 = (r.realSecondsPerScenario * 600) / r.simulatedSecondsPerScenario
    const cpuPer600 = (r.cpuSecondsPerScenario * 600) / r.simulatedSecondsPerScenario
    goals.push({
      goal: `${a.label}: 10 min simulated in < 60 s real`,
      value: `${realPer600.toFixed(1)} s real (${cpuPer600.toFixed(1)} s CPU) per 600 s simulated, warm-up included pro rata`,
      met: realPer600 < 60,
    })
  }
}
const adv = (out.adversarial as Row[] | undefined) ?? []
const flap = adv.find(
  (r) => r.aggregate.label.startsWith("near-equal") && r.aggregate.label.endsWith(defaultEngineSettings.label),
)
if (flap !== undefined)
  goals.push({
    goal: "0 flaps among near-equal paths",
    value: `${flap.aggregate.switchesPerPairPerHour.toFixed(3)} switches/pair/h`,
    met: flap.aggregate.switchesPerPairPerHour === 0,
  })
const loopResult = out.loops as { loops: number; scenarios: number } | undefined
if (loopResult !== undefined)
  goals.push({
    goal: `0 loops in ${loopResult.scenarios} random scenarios`,
    value: String(loopResult.loops),
    met: loopResult.loops === 0,
  })
out.goals = goals
log("\nGoals")
for (const g of goals) log(`  ${g.met ? "met    " : "NOT met"}  ${g.goal}: ${g.value}`)

if (json) {
  const strip = (rows: Row[] | undefined) => rows?.map((r) => ({ ...r }))
  process.stdout.write(
    `${JSON.stringify({ ...out, scale: strip(out.scale as Row[] | undefined), adversarial: strip(out.adversarial as Row[] | undefined) }, null, 2)}\n`,
  )
}
void toJson
