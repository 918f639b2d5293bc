#!/usr/bin/env node
// The routing targets of issue 8, measured in the twin: each scenario runs --reps times with the
// net-perf daemon at every site (and, with --baseline, as many times with plain BIRD), and the
// table gives median and p95 per figure next to its target and the baseline's median. The
// machine's load average is recorded per run (the twin shares 2 cores with everything else:
// probe RTTs inflate under load, and so do reaction times).
// Once a net-perf run's timeline is over (everything repaired and settled), the daemons' additive
// path costs (/status: forward route cost + reverse route cost, halved) and their RTT part are
// compared with the daemon's pathping (MeasureService.PathPing, via `perfc pathping`) of the
// round trip along those routes (relays' residence subtracted; raw beside it), and beside it with
// a plain ping between the same routers; and the sum of link RTTs of a two-hop detour per pair
// against its pathping (multi-hop additivity where the routes in force are direct).
// Usage (root, after `npx tsc -b`): node netns-lab/bench-targets.mjs [--reps 5] [--baseline]
//   [--rows hard-failure,degrade,loss,loss-fast,restarts,jitter] [--jitter-seconds 600] [--jitter-reps 1]
//   [--baseline-reps N] [--reports DIR] [--trace] [--all-pairs] [--dry-run] [--json]
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Effect, Schedule } from "effect"
import { execa } from "execa"

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, "../packages/simulator/dist/src")
const { makeTwin } = await import(join(dist, "twin/Twin.js"))
const { runOnTwin } = await import(join(dist, "twin/Runner.js"))
const { loadScenario, withRouting } = await import(join(dist, "twin/Scenario.js"))
const { scrapeDaemonMetrics, sumCounter } = await import(join(dist, "twin/Daemons.js"))

const usage = `Usage (root, after \`npx tsc -b\`): node netns-lab/bench-targets.mjs [options]
  --reps N             repetitions per scenario with the net-perf daemon (default 5)
  --baseline           also run each scenario with plain BIRD
  --baseline-reps N    repetitions of the plain-BIRD runs (default: --reps)
  --rows LIST          hard-failure,degrade,loss,loss-fast,restarts,jitter
                       (default: all but loss-fast)
  --jitter-seconds S   length of the near-equal jitter test (default 600)
  --jitter-reps N      repetitions of the jitter test (default 1)
  --reports DIR        write every run's full twin report there
  --trace              with --reports: the daemons' routes between watched pairs every 2 s
  --daemon-config JSON daemon config overrides for every net-perf run, merged over the
                       scenario's own (e.g. '{"routing":{"stability":{"absoluteMarginMs":2}}}')
  --network-priority P realtime (default: the link emulator under SCHED_FIFO 10, so the
                       daemons under test cannot starve the twin's wires) or normal
  --all-pairs          the additivity check (cost vs pathping/ping) on every site pair, not
                       only the scenario's watched ones
  --dry-run            print the run count and expected duration, run nothing
  --json               one JSON document on stdout instead of the table
  --help               this text`
let parsed
try {
  parsed = parseArgs({
    options: {
      reps: { type: "string", default: "5" },
      baseline: { type: "boolean", default: false },
      "baseline-reps": { type: "string" },
      rows: { type: "string", default: "hard-failure,degrade,loss,restarts,jitter" },
      "jitter-seconds": { type: "string", default: "600" },
      "jitter-reps": { type: "string", default: "1" },
      reports: { type: "string" },
      trace: { type: "boolean", default: false },
      "all-pairs": { type: "boolean", default: false },
      "daemon-config": { type: "string" },
      "network-priority": { type: "string", default: "realtime" },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  }).values
} catch (e) {
  process.stderr.write(`bench-targets: ${e.message}\n${usage}\n`)
  process.exit(2)
}
if (parsed.help) {
  process.stdout.write(`${usage}\n`)
  process.exit(0)
}
const count = (name, text) => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench-targets: --${name} must be a positive integer, got "${text}"\n`)
    process.exit(2)
  }
  return n
}
const json = parsed.json
const networkPriority = parsed["network-priority"]
if (networkPriority !== "realtime" && networkPriority !== "normal") {
  process.stderr.write(`bench-targets: --network-priority must be realtime or normal, got "${networkPriority}"\n`)
  process.exit(2)
}
const reps = count("reps", parsed.reps)
const baseline = parsed.baseline
const rows = parsed.rows.split(",")
const knownRows = ["hard-failure", "degrade", "loss", "loss-fast", "restarts", "jitter"]
for (const r of rows) {
  if (!knownRows.includes(r)) {
    process.stderr.write(`bench-targets: unknown row "${r}" (rows: ${knownRows.join(", ")})\n`)
    process.exit(2)
  }
}
const jitterSeconds = count("jitter-seconds", parsed["jitter-seconds"])
// The 10-minute flap test runs once per routing unless asked: five would add most of an hour each.
const jitterReps = count("jitter-reps", parsed["jitter-reps"])
const dryRun = parsed["dry-run"]
const baselineReps = count("baseline-reps", parsed["baseline-reps"] ?? String(reps))
// --reports DIR: every run's full twin report (and, with --trace, the daemons' routes between the
// watched pairs every 2 s: next hop, cost, stability reason, and the direct tunnel's stats).
const reportsDir = parsed.reports
const trace = parsed.trace
const allPairs = parsed["all-pairs"]
let daemonConfig
if (parsed["daemon-config"] !== undefined) {
  try {
    daemonConfig = JSON.parse(parsed["daemon-config"])
  } catch (e) {
    process.stderr.write(`bench-targets: --daemon-config is not JSON: ${e.message}\n`)
    process.exit(2)
  }
  if (daemonConfig === null || typeof daemonConfig !== "object" || Array.isArray(daemonConfig)) {
    process.stderr.write("bench-targets: --daemon-config must be a JSON object\n")
    process.exit(2)
  }
}
/** Deep merge of plain objects (b wins); arrays and scalars are replaced. */
const merged = (a, b) => {
  if (
    a === null ||
    typeof a !== "object" ||
    Array.isArray(a) ||
    b === null ||
    typeof b !== "object" ||
    Array.isArray(b)
  )
    return b
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? merged(a[k], v) : v
  return out
}
const withDaemonConfig = (s) =>
  daemonConfig === undefined
    ? s
    : { ...s, daemon: { ...s.daemon, config: merged(s.daemon?.config ?? {}, daemonConfig) } }
// A closed pipe (`… | head`) must not kill the process before its scopes tear the twin down.
process.stderr.on("error", () => {})
process.stdout.on("error", () => {})
const log = (s) => process.stderr.write(`[bench] ${s}\n`)
const scenarioFile = (name) => join(here, "scenarios", `${name}.yaml`)

const quantile = (xs, q) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b)
  if (s.length === 0) return null
  const i = Math.min(s.length - 1, Math.ceil(q * s.length) - 1)
  return s[Math.max(0, i)]
}
const summary = (xs) => ({ n: xs.length, median: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: quantile(xs, 1) })

const pairsOf = (scenario) => {
  const watched = (scenario.watch ?? []).map((w) => w.split(/[->]/).map(Number))
  if (watched.length > 0) return watched
  const all = []
  for (let a = 0; a < scenario.sites; a++) for (let b = a + 1; b < scenario.sites; b++) all.push([a, b])
  return all
}

const inSite = (twin, x, argv) => execa("ip", ["netns", "exec", twin.siteNs(x), ...argv], { timeout: 20_000 })
const statusOf = (twin, x) =>
  inSite(twin, x, ["curl", "-sf", "-m", "5", `http://10.201.${x}.1:5120/status`]).then((r) => JSON.parse(r.stdout))
const medianOf = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const perfcBin = join(here, "../packages/cli/dist/src/bin/perfc.js")
/**
 * The daemon's pathping (MeasureService.PathPing via `perfc pathping --json`) from site `a`, with
 * its own time limit (node's start-up alone took > 20 s at load 38 on this machine) and one retry.
 */
const pathpingOnce = (twin, a, path, families) =>
  execa(
    "ip",
    [
      "netns",
      "exec",
      twin.siteNs(a),
      process.execPath,
      perfcBin,
      "pathping",
      String(a),
      path.join(","),
      "--family",
      families.join(","),
      "--count",
      "20",
      "--interval",
      "100",
      "--timeout",
      "15000",
      "--json",
    ],
    { timeout: 60_000 },
  )
    .then((r) => JSON.parse(r.stdout))
    .catch((e) => {
      // exit 2 = every probe lost: the daemon answered, the reply is on stdout
      if (e.exitCode === 2 && e.stdout) return JSON.parse(e.stdout)
      log(`  pathping ${path.join(">")} from ${a} failed: ${(e.stderr || e.shortMessage || String(e)).trim()}`)
      return null
    })
const pathpingFrom = async (twin, a, path, families) =>
  (await pathpingOnce(twin, a, path, families)) ?? (await pathpingOnce(twin, a, path, families))

/**
 * Additive path cost vs measured RTT once converged. For each pair, the daemons' route costs a→b
 * and b→a (each the sum of its links' costs, a link's cost being its RTT plus penalties), halved,
 * and their RTT part (each hop's sender's smoothed RTT of the tunnel it uses, halved likewise)
 * against the daemon's pathping of the round trip a→…→b→…→a along those routes, source-routed
 * over exactly those tunnels (20 probes, 100 ms apart). Pathping's RTT is the network's: the
 * relays' residence (receive-to-send inside each daemon, stamped in the relay's own thread) is
 * subtracted; the raw round trip is kept beside it. Like for like: the RTT part is taken from the
 * very tunnels pathping crossed (same sender, same family), and both it and the cost are the mean
 * of the daemons' figures just before and just after that pair's pathping (the smoothed RTT is a
 * decayed mean, pathping a mean of its probes). Beside it, 20 plain pings between the routers
 * (what the kernel forwards; includes no relay), taken after the pathpings, compared by their
 * mean (their median is kept too). A pair counts only if both routes are the daemons' (not
 * BIRD's), unchanged while the measurements ran, and its tunnels the same before and after.
 */
const costVsMeasured = async (twin, scenario) => {
  const sites = Array.from({ length: scenario.sites }, (_, x) => x)
  const snapshotOf = async (xs) => new Map(await Promise.all(xs.map(async (x) => [x, await statusOf(twin, x)])))
  const routeOf = (statuses, a, b) => (statuses.get(a)?.routes ?? []).find((r) => r.destination === b)
  const before = await snapshotOf(sites)
  // `from`'s tunnels to `to` that have an RTT, and the lowest-RTT one of a list.
  const measuredTunnels = (statuses, from, to) =>
    (statuses.get(from)?.tunnels ?? []).filter((t) => t.remote === to && t.stats?.rttMs != null)
  const fastestOf = (ts) => [...ts].sort((x, y) => x.stats.rttMs - y.stats.rttMs)[0]
  // The tunnel hop i of `path` (towards `destination`) uses: its route's interface, else the
  // lowest-RTT tunnel to the next site.
  const hopTunnel = (statuses, path, i, destination) => {
    const iface = routeOf(statuses, path[i], destination)?.interfaceName
    const ts = measuredTunnels(statuses, path[i], path[i + 1])
    return ts.find((t) => t.name === iface) ?? fastestOf(ts)
  }
  // The smoothed RTT that trip[i] holds for its tunnel of `family` to trip[i + 1].
  const tunnelRtt = (statuses, from, to, family) =>
    (statuses.get(from)?.tunnels ?? []).find((t) => t.remote === to && t.family === family)?.stats?.rttMs ?? null
  const tripRttPart = (statuses, trip, families) => {
    let sum = 0
    for (let i = 0; i + 1 < trip.length; i++) {
      const rtt = tunnelRtt(statuses, trip[i], trip[i + 1], families[i])
      if (rtt === null) return null
      sum += rtt
    }
    // every link RTT is a round trip; the trip crosses each of its links one way
    return sum / 2
  }
  const mean2 = (x, y) => (x === null || y === null ? null : (x + y) / 2)
  const ratio = (x, y) => (x === null || y === null || !(y > 0) ? null : x / y)
  // What a run keeps of a pathping reply (null figures when it gave none).
  const pathpingFigures = (reply) => ({
    rttMs: reply?.rttMs ?? null,
    rawRttMs: reply?.rawRttMs ?? null,
    sent: reply?.sent ?? null,
    received: reply?.received ?? null,
    relayResidenceMs: reply?.relayResidenceMs ?? null,
    hops: reply?.hops ?? null,
  })
  const pairs = allPairs ? sites.flatMap((a) => sites.filter((b) => b > a).map((b) => [a, b])) : pairsOf(scenario)
  const pingOf = async ([a, b]) => {
    const r = await inSite(twin, a, [
      "ping",
      "-n",
      "-c",
      "20",
      "-i",
      "0.2",
      "-W",
      "2",
      "-I",
      `10.201.${a}.1`,
      `10.201.${b}.1`,
    ])
      .then((x) => x.stdout)
      .catch((e) => e.stdout ?? "")
    const rtts = [...r.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]))
    return {
      medianMs: medianOf(rtts),
      meanMs: rtts.length === 0 ? null : rtts.reduce((x, y) => x + y, 0) / rtts.length,
    }
  }
  // One pathping at a time in the whole twin: with origins in parallel, one perfc's start-up (a
  // second or more of CPU at this load) ran beside another origin's probes and inflated them. The
  // daemons on the trip are read just before and just after each.
  const pathpingOf = new Map()
  const pathpings = (async () => {
    for (const [a, b] of pairs) {
      const forward = routeOf(before, a, b)
      const reverse = routeOf(before, b, a)
      if (forward?.nextHop == null || reverse?.nextHop == null) continue
      if (forward.path[0] !== a || forward.path.at(-1) !== b || reverse.path[0] !== b || reverse.path.at(-1) !== a)
        continue
      const trip = [...forward.path, ...reverse.path.slice(1)]
      const families = []
      for (let i = 0; i + 1 < trip.length; i++) {
        const onForward = i + 1 < forward.path.length
        families.push(hopTunnel(before, trip, i, onForward ? b : a)?.family ?? 0)
      }
      if (trip.length > 16) continue
      const onTrip = [...new Set(trip)]
      const just = await snapshotOf(onTrip).catch(() => null)
      const reply = await pathpingFrom(twin, a, trip, families)
      const justAfter = await snapshotOf(onTrip).catch(() => null)
      const around = just === null || justAfter === null ? null : [just, justAfter]
      pathpingOf.set(`${a}-${b}`, { trip, families, reply, around })
    }
  })()
  // Pathpings first, then the pings: neither runs beside the other (nor beside perfc's start-up),
  // so one measurement's CPU does not inflate the other's RTTs on this loaded machine.
  await pathpings
  // Multi-hop additivity: converged routes in these meshes are mostly direct, so the sum of link
  // RTTs is also checked on a two-hop detour per pair, a→c→b→c→a over each hop's fastest tunnel
  // (c: the first other site). No route follows it, so no cost and no kernel ping: the RTT part
  // alone, against pathping.
  const detours = []
  for (const [a, b] of pairs) {
    const c = sites.find((x) => x !== a && x !== b)
    if (c === undefined) continue
    const trip = [a, c, b, c, a]
    const just = await snapshotOf([a, b, c]).catch(() => null)
    if (just === null) continue
    const families = trip
      .slice(0, -1)
      .map(
        (x, i) =>
          fastestOf(measuredTunnels(just, x, trip[i + 1]).filter((t) => t.stats.state === "up"))?.family ?? null,
      )
    if (families.includes(null)) continue
    const reply = await pathpingFrom(twin, a, trip, families)
    const justAfter = await snapshotOf([a, b, c]).catch(() => null)
    if (reply?.rttMs == null || justAfter === null) continue
    const rttSumMs = mean2(tripRttPart(just, trip, families), tripRttPart(justAfter, trip, families))
    detours.push({
      pair: `${a}-${b}`,
      kind: "detour",
      trip,
      families,
      rttSumMs,
      pathping: pathpingFigures(reply),
      rttRatio: ratio(rttSumMs, reply.rttMs),
    })
  }
  const pings = await Promise.all(pairs.map(pingOf))
  const after = await snapshotOf(sites)
  const out = []
  for (const [k, [a, b]] of pairs.entries()) {
    const pingRttMs = pings[k].medianMs
    const pingMeanMs = pings[k].meanMs
    const pp = pathpingOf.get(`${a}-${b}`)
    const pathpingRttMs = pp?.reply?.rttMs ?? null
    const pathpingRawRttMs = pp?.reply?.rawRttMs ?? null
    const routes = [routeOf(before, a, b), routeOf(before, b, a), routeOf(after, a, b), routeOf(after, b, a)]
    if (routes.some((r) => r === undefined || r.nextHop === null || r.costMs === null)) continue
    if (routes[0].path.join() !== routes[2].path.join() || routes[1].path.join() !== routes[3].path.join()) continue
    if (pingMeanMs === null && pathpingRttMs === null) continue
    // Cost and RTT part at the pathping's time (mean of just before and just after it); without a
    // pathping (none possible for this pair) at the end, against the ping.
    const [s0, s1] = pp?.around ?? [after, after]
    const costAt = (st) => {
      const f = routeOf(st, a, b)?.costMs
      const r = routeOf(st, b, a)?.costMs
      return f == null || r == null ? null : (f + r) / 2
    }
    const costMs = mean2(costAt(s0), costAt(s1))
    let rttSumMs = null
    if (pp !== undefined) {
      // the same tunnels before and after, and the ones pathping crossed
      const same = pp.trip.every(
        (_, i) =>
          i + 1 === pp.trip.length ||
          [s0, s1].every(
            (st) => hopTunnel(st, pp.trip, i, i + 1 < routes[2].path.length ? b : a)?.family === pp.families[i],
          ),
      )
      if (!same) continue
      rttSumMs = mean2(tripRttPart(s0, pp.trip, pp.families), tripRttPart(s1, pp.trip, pp.families))
    } else {
      const trip = [...routes[2].path, ...routes[3].path.slice(1)]
      const families = trip
        .slice(0, -1)
        .map((_, i) => hopTunnel(after, trip, i, i + 1 < routes[2].path.length ? b : a)?.family ?? 0)
      rttSumMs = tripRttPart(after, trip, families)
    }
    out.push({
      pair: `${a}-${b}`,
      kind: "route",
      paths: [routes[2].path, routes[3].path],
      costMs,
      rttSumMs,
      pathping: pp === undefined ? null : { trip: pp.trip, families: pp.families, ...pathpingFigures(pp.reply) },
      pingRttMs,
      pingMeanMs,
      // the additivity check proper: cost (and its RTT part) against the pathping of the same
      // path, relays' residence subtracted
      ratio: ratio(costMs, pathpingRttMs),
      rttRatio: ratio(rttSumMs, pathpingRttMs),
      // the same against the raw pathping (residence included: the figure before the correction)
      rawRatio: ratio(costMs, pathpingRawRttMs),
      rawRttRatio: ratio(rttSumMs, pathpingRawRttMs),
      // beside it, the plain ping along the routes in force, mean against mean
      pingRatio: ratio(costMs, pingMeanMs),
      pingRttRatio: ratio(rttSumMs, pingMeanMs),
      // how much userspace timing remains in pathping: kernel-answered ping (kernel-stamped), means
      pathpingVsPing: ratio(pathpingRttMs, pingMeanMs),
      rawPathpingVsPing: ratio(pathpingRawRttMs, pingMeanMs),
    })
  }
  return [...out, ...detours]
}

const stopping = new AbortController()
/** One run on a fresh twin; with daemons, the fast echo's rate per tunnel from their /metrics. */
const runOnce = (scenario) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const load1 = loadavg()[0]
        const twin = yield* makeTwin({ scenario, mode: "test", networkPriority, onProgress: (l) => log(`  ${l}`) })
        const sites = [...twin.daemons.keys()]
        const scrape = Effect.forEach(sites, (x) =>
          scrapeDaemonMetrics(twin, x).pipe(
            Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("30 seconds"))),
            Effect.map((t) => sumCounter(t, "netperf_probes_sent_total", { probe: "udp" })),
            Effect.orElseSucceed(() => null),
          ),
        )
        const before = { at: Date.now(), sent: yield* scrape }
        const traced = []
        // One round every 2 s as an Effect (interrupted with the run's scope; an async loop would
        // outlive the twin and keep the process alive).
        const traceRound = Effect.promise(async () => {
          for (const [a, b] of pairsOf(scenario))
            for (const [x, y] of [
              [a, b],
              [b, a],
            ]) {
              const st = await statusOf(twin, x).catch(() => null)
              const r = st?.routes?.find((r) => r.destination === y)
              const tun = (st?.tunnels ?? []).filter((t) => t.remote === y)
              traced.push({
                atMillis: Date.now(),
                from: x,
                to: y,
                nextHop: r?.nextHop ?? null,
                costMs: r?.costMs ?? null,
                stability: r?.stability ?? null,
                path: r?.path ?? null,
                tunnels: tun.map((t) => ({ family: t.family, costMs: t.costMs, ...t.stats })),
              })
            }
        })
        const tracer = Effect.repeat(traceRound, Schedule.spaced("2 seconds"))
        if (trace && sites.length > 0) yield* Effect.forkScoped(tracer)
        const report = yield* runOnTwin(twin, { onProgress: (l) => log(`  ${l}`) })
        const after = { at: Date.now(), sent: yield* scrape }
        const costs =
          sites.length === 0
            ? []
            : yield* Effect.promise(() =>
                costVsMeasured(twin, scenario).catch((e) => {
                  log(`  cost vs measured RTT failed: ${e}`)
                  return []
                }),
              )
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
          costs,
          traced,
        }
      }),
    ),
    { signal: stopping.signal },
  )

const INF = Number.POSITIVE_INFINITY
const pick = (costs, key, kind = "route") => costs.flatMap((c) => (c.kind !== kind || c[key] == null ? [] : [c[key]]))
const bad = (e) => (e === undefined ? null : e.badPathAtEnd ? INF : e.badPathMs)
const off = (e) => (e === undefined ? null : e.offOptimumAtEnd ? INF : e.offOptimumMs)
/**
 * After event `e`: ms until both directions of a–b forward over their direct link again (the
 * later of the two; INF if not by the end). For a repaired loss: the RTT oracle cannot see loss,
 * so "off the optimum" reads 0 there while the route may still sit on the detour.
 */
const backOnDirect = (r, e, a, b) => {
  if (e === undefined) return null
  const direction = (src, dst) => {
    const hops = r.timeline.nextHops.filter((h) => h.src === src && h.dst === dst)
    let via = null
    for (const h of hops) if (h.atMillis <= e.atMillis) via = h.via
    let since = via === dst ? e.atMillis : null
    for (const h of hops) {
      if (h.atMillis <= e.atMillis) continue
      if (h.via === dst && since === null) since = h.atMillis
      if (h.via !== dst) since = null
    }
    return since === null ? INF : since - e.atMillis
  }
  return Math.max(direction(a, b), direction(b, a))
}
const longestMs = (r, kind) =>
  Math.max(0, ...r.anomalies.filter((a) => a.kind === kind).map((a) => a.lastSeenMillis - a.firstSeenMillis))
/**
 * "Once converged": a window counts when its forwarding had settled at least this long before the
 * window ended (the start window always). A window still moving at its end (e.g. the minute a
 * repaired link waits out its availability penalty, which "failed link back" reports) is counted
 * apart, not judged against the oracle.
 */
const convergedForMs = 5000
const windowConverged = (r, p) =>
  p.window === "start" || (r.events.find((e) => e.label === p.window)?.settledForMs ?? 0) >= convergedForMs
const rttRatios = (r) =>
  r.rtt.flatMap((p) =>
    p.chosenPathRttMs === null || !p.symmetricOracleRttMs || !windowConverged(r, p)
      ? []
      : [p.chosenPathRttMs / p.symmetricOracleRttMs],
  )
const unconvergedWindows = (r) => [r.rtt.filter((p) => !windowConverged(r, p)).length]
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
      "failed link back → on it again (ms)": r.events.filter((e) => e.label.startsWith("link-up")).map(off),
    }),
    targets: {
      "hard failure → all sites around it (ms)": "p95 ≤ 1500",
      "failed link back → on it again (ms)": "≤ 60000 (engine README)",
    },
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
      "5 % loss repaired → back (ms)": [backOnDirect(r, r.events[1], 0, 1)],
    }),
    targets: { "5 % loss → moved (ms)": "≤ 10000", "5 % loss repaired → back (ms)": "≤ 30000" },
  },
  // The same 5 % loss with the loss test every 5 s (scenario loss-fast.yaml): what a 10 s
  // reaction to loss costs in probes, since the default budget cannot see it that fast.
  "loss-fast": {
    scenario: "loss-fast",
    figures: (r) => ({
      "5 % loss, loss test every 5 s → moved (ms)": [bad(r.events[0])],
      "5 % loss, loss test every 5 s, repaired → back (ms)": [backOnDirect(r, r.events[1], 0, 1)],
    }),
    targets: {
      "5 % loss, loss test every 5 s → moved (ms)": "≤ 10000",
      "5 % loss, loss test every 5 s, repaired → back (ms)": "≤ 30000",
    },
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

const benchStartedAt = Date.now()
const collected = { "net-perf": {}, bird: {} }
const runs = []
const add = (routing, figures) => {
  for (const [k, v] of Object.entries(figures)) {
    collected[routing][k] = [...(collected[routing][k] ?? []), ...v]
  }
}
const targets = {}
// Every run: its scenario (loaded now, so a bad file fails before any twin) and how many times.
const schedule = []
for (const row of rows) {
  const plan = plans[row]
  if (plan === undefined) throw new Error(`unknown row ${row} (known: ${Object.keys(plans).join(", ")})`)
  for (const name of plan.scenarios ?? [plan.scenario]) {
    const loaded = await Effect.runPromise(loadScenario(scenarioFile(name)))
    schedule.push({
      row,
      plan,
      name,
      s: withDaemonConfig(plan.tweak ? plan.tweak(loaded) : loaded),
      n: row === "jitter" ? jitterReps : reps,
    })
  }
}
// Per run beyond the timeline: bring-up and initial convergence (~20–30 s with daemons: their
// start-up hold-down is 10 s), the cost check (~6 s) and teardown (wireguard-go exits, ~10 s).
const overheadSeconds = 45
const routings = baseline ? ["bird", "net-perf"] : ["net-perf"]
// Plain BIRD's figures vary little from run to run (timers): --baseline-reps N runs it fewer times.
const runsOf = (x, routing) => (routing === "bird" ? Math.min(x.n, baselineReps) : x.n)
const runCount = (x) => routings.reduce((t, r) => t + runsOf(x, r), 0)
const expectedSeconds = schedule.reduce((t, x) => t + runCount(x) * (x.s.durationSeconds + overheadSeconds), 0)
log(
  `${schedule.reduce((t, x) => t + runCount(x), 0)} runs (${schedule.map((x) => `${x.name} ×${runCount(x)}`).join(", ")}): expected duration ≈ ${Math.round(expectedSeconds / 60)} min (more under load)`,
)
if (dryRun) process.exit(0)
// SIGINT/SIGTERM interrupt the running twin, so its scope tears it down, and then exit.
// A second signal (a shell's process group, an impatient ^C) must not kill the process before the
// teardown finished: that left the run's namespaces and processes behind for `netlab down`.
for (const signal of ["SIGINT", "SIGTERM"])
  process.on(signal, () => {
    if (stopping.signal.aborted) {
      log(`${signal}: still tearing the twin down (SIGKILL leaves it to \`netlab down\`)`)
      return
    }
    log(`${signal}: tearing the current twin down`)
    stopping.abort()
  })
for (const { plan, name, s, n } of schedule) {
  Object.assign(targets, plan.targets)
  for (const routing of routings)
    for (let i = 0; i < runsOf({ n }, routing); i++) {
      log(`${name} (${routing}) run ${i + 1}/${runsOf({ n }, routing)}, load average ${loadavg()[0].toFixed(1)}`)
      const started = Date.now()
      const { report, echoPerTunnelPerSecond, loadAverage, costs, traced } = await runOnce(
        withRouting(s, routing),
      ).catch((e) => {
        if (!stopping.signal.aborted) throw e
        log("stopped; no table")
        process.exit(130)
      })
      if (reportsDir !== undefined) {
        mkdirSync(reportsDir, { recursive: true })
        writeFileSync(
          join(reportsDir, `${name}-${routing}-${i + 1}.json`),
          JSON.stringify({ report, costs, ...(trace ? { trace: traced } : {}) }, null, 1),
        )
      }
      const figures = {
        ...plan.figures(report),
        "loop episodes (all scenarios)": [report.anomalies.filter((a) => a.kind === "loop").length],
        "chosen path RTT / symmetric oracle": rttRatios(report),
        "pair windows still converging at their end (not judged)": unconvergedWindows(report),
        "measured RTT / symmetric oracle (twin overhead included)": measuredRatios(report),
        ...(echoPerTunnelPerSecond === null ? {} : { "fast echo probes/s per tunnel": [echoPerTunnelPerSecond] }),
        ...(costs.length === 0
          ? {}
          : {
              "additive path cost / pathping RTT, converged": pick(costs, "ratio"),
              "cost's RTT part (link RTT sum) / pathping RTT, converged": pick(costs, "rttRatio"),
              "cost's RTT part / raw pathping RTT (relays' residence in), converged": pick(costs, "rawRttRatio"),
              "additive path cost / ping RTT (routes in force, means), converged": pick(costs, "pingRatio"),
              "cost's RTT part (link RTT sum) / ping RTT (means), converged": pick(costs, "pingRttRatio"),
              "pathping RTT / ping RTT (means), converged": pick(costs, "pathpingVsPing"),
              "raw pathping RTT / ping RTT (means), converged": pick(costs, "rawPathpingVsPing"),
              "link RTT sum / pathping RTT, two-hop detours": pick(costs, "rttRatio", "detour"),
            }),
      }
      add(routing, figures)
      runs.push({
        scenario: name,
        routing,
        run: i + 1,
        seconds: Math.round((Date.now() - started) / 1000),
        loadAverage,
        figures,
        ...(costs.length === 0 ? {} : { costs }),
      })
      log(`  → ${JSON.stringify(figures)}`)
    }
}
Object.assign(targets, {
  "loop episodes (all scenarios)": "0",
  "chosen path RTT / symmetric oracle": "≤ 1.10",
  "fast echo probes/s per tunnel": "≤ 1",
  "additive path cost / pathping RTT, converged": "0.90–1.10",
  "cost's RTT part (link RTT sum) / pathping RTT, converged": "0.90–1.10",
  "cost's RTT part / raw pathping RTT (relays' residence in), converged": "(beside)",
  "additive path cost / ping RTT (routes in force, means), converged": "(beside)",
  "cost's RTT part (link RTT sum) / ping RTT (means), converged": "(beside)",
  "pathping RTT / ping RTT (means), converged": "≈ 1",
  "raw pathping RTT / ping RTT (means), converged": "(beside)",
  "link RTT sum / pathping RTT, two-hop detours": "0.90–1.10",
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
  ...(daemonConfig === undefined ? {} : { daemonConfig }),
  networkPriority,
  expectedSeconds,
  elapsedSeconds: Math.round((Date.now() - benchStartedAt) / 1000),
  loadAverage: { min: Math.min(...loads), max: Math.max(...loads) },
  table,
  runs,
}
if (json) console.log(JSON.stringify(result, (_k, v) => (v === INF ? "never (whole window)" : v), 2))
else {
  const fmt = (x) => (x === null ? "—" : x === INF ? "never" : Number.isInteger(x) ? String(x) : x.toFixed(2))
  console.log(
    `routing targets in the twin (${reps} runs each; load average ${result.loadAverage.min.toFixed(1)}–${result.loadAverage.max.toFixed(1)} on 2 cores; network priority ${networkPriority}${daemonConfig === undefined ? "" : `; daemon config ${JSON.stringify(daemonConfig)}`})`,
  )
  for (const t of table)
    console.log(
      `  ${t.figure.padEnd(60)} median ${fmt(t.netPerf.median).padStart(7)}  p95 ${fmt(t.netPerf.p95).padStart(7)}  (n=${t.netPerf.n})` +
        `  target ${t.target.padEnd(18)}${t.bird ? ` BIRD median ${fmt(t.bird.median)}, p95 ${fmt(t.bird.p95)}` : ""}`,
    )
}
