#!/usr/bin/env node
// Twin figures: bring-up time, time to full BGP convergence, memory (PSS of every process in
// the twin's namespaces plus the relay) and teardown time for N sites; then plain-BIRD
// convergence on the six-site failure scenario with and without BFD.
// Usage (root, after `npx tsc -b`): node netns-lab/bench-twin.mjs [--sizes 6,10,20]
//   [--families 4|4,6] [--config meshgen|builtin] [--failure] [--json]
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Either, Exit, Scope } from "effect"

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, "../packages/simulator/dist/src")
const { makeTwin } = await import(join(dist, "twin/Twin.js"))
const { runScenario } = await import(join(dist, "twin/Runner.js"))
const { startRouteSampler } = await import(join(dist, "twin/Sampler.js"))
const { parseScenarioText, loadScenario } = await import(join(dist, "twin/Scenario.js"))
const { isFullyDelivering } = await import(join(dist, "analysis/NextHopGraph.js"))

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : process.argv[i + 1]
}
const json = process.argv.includes("--json")
const sizes = arg("sizes", "6,10,20").split(",").map(Number)
const families = arg("families", "4").split(",").map(Number)
const failure = process.argv.includes("--failure") || !process.argv.includes("--sizes")
const configGenerator = arg("config", "meshgen")
const log = (s) => process.stderr.write(`[bench] ${s}\n`)

const pssKiB = (pid) => {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}
const memAvailableKiB = () => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))[1])

const sizeRun = (n) =>
  Effect.gen(function* () {
    const scenario = Either.getOrThrow(
      parseScenarioText(
        JSON.stringify({
          name: `bench-${n}`,
          sites: n,
          durationSeconds: 1,
          families,
          links: { default: { delayMs: 1 } },
        }),
      ),
    )
    const memBefore = memAvailableKiB()
    const scope = yield* Scope.make()
    const t0 = Date.now()
    const twin = yield* makeTwin({ scenario, mode: "test", configGenerator, onProgress: log }).pipe(
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void)),
    )
    const upMs = Date.now() - t0
    const sampler = yield* startRouteSampler(
      Array.from({ length: n }, (_, i) => i),
      twin.siteNs,
      4,
    ).pipe(Scope.extend(scope))
    let convergedMs = null
    while (Date.now() - t0 < 180_000) {
      if (sampler.reporting() === n && isFullyDelivering(sampler.snapshot(Date.now()))) {
        convergedMs = Date.now() - t0
        break
      }
      yield* Effect.sleep("250 millis")
    }
    // Then every BGP session (one per tunnel) Established.
    const expected = n * (n - 1) * families.length
    let established = 0
    let allSessionsMs = null
    while (Date.now() - t0 < 240_000) {
      const counts = yield* Effect.forEach(
        Array.from({ length: n }, (_, i) => i),
        (i) =>
          twin.birdc(i, "show protocols").pipe(
            Effect.map((o) => (o.match(/Established/g) ?? []).length),
            Effect.orElseSucceed(() => 0),
          ),
        { concurrency: 4 },
      )
      established = counts.reduce((a, b) => a + b, 0)
      if (established >= expected) {
        allSessionsMs = Date.now() - t0
        break
      }
      yield* Effect.sleep("1 second")
    }
    const pids = yield* twin.pids
    const pss = pids.reduce((s, p) => s + pssKiB(p), 0)
    const wgPids = pids.filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, "utf8").trim() === "wireguard-go"
      } catch {
        return false
      }
    })
    const wgPss = wgPids.reduce((s, p) => s + pssKiB(p), 0)
    const memUsedMiB = Math.round((memBefore - memAvailableKiB()) / 1024)
    const t1 = Date.now()
    yield* Scope.close(scope, Exit.void)
    const downMs = Date.now() - t1
    return {
      config: configGenerator,
      sites: n,
      families,
      tunnelPairs: (n * (n - 1) * families.length) / 2,
      processes: pids.length,
      wireguardGo: wgPids.length,
      upMs,
      allRoutesMs: convergedMs,
      bgpSessionsEstablished: established / 2,
      allSessionsMs,
      pssMiB: Math.round(pss / 1024),
      wireguardGoPssMiBEach: wgPids.length === 0 ? null : Number((wgPss / 1024 / wgPids.length).toFixed(1)),
      memAvailableDropMiB: memUsedMiB,
      teardownMs: downMs,
    }
  })

const results = { sizes: [], failure: [] }
for (const n of sizes) {
  log(`size ${n}`)
  const r = await Effect.runPromise(sizeRun(n))
  log(JSON.stringify(r))
  results.sizes.push(r)
}
if (failure)
  for (const f of ["six-site-failure.yaml", "six-site-failure-bfd.yaml"]) {
    log(`scenario ${f}`)
    const s = await Effect.runPromise(loadScenario(join(here, "scenarios", f)))
    const report = await Effect.runPromise(runScenario(s, { mode: "test", configGenerator, onProgress: log }))
    const r = {
      scenario: s.name,
      bfd: s.bird.bfd,
      holdTimeSeconds: s.bird.holdTimeSeconds,
      bfdDetectMs: s.bird.bfd ? s.bird.bfdIntervalMs * s.bird.bfdMultiplier : null,
      events: report.events.map((e) => ({
        event: e.label,
        convergedAfterMs: e.convergedAfterMs,
        routeChanges: e.routeChanges,
        samplesWithLoops: e.samplesWithLoops,
        samplesWithBlackholes: e.samplesWithBlackholes,
      })),
    }
    log(JSON.stringify(r))
    results.failure.push(r)
  }

if (json) console.log(JSON.stringify(results, null, 2))
else {
  console.log(
    "sites  tunnel-pairs  procs  up(s)  all-routes(s)  all-sessions(s)  sessions  PSS(MiB)  wg-go(MiB each)  teardown(s)",
  )
  for (const r of results.sizes)
    console.log(
      `${String(r.sites).padStart(5)}  ${String(r.tunnelPairs).padStart(12)}  ${String(r.processes).padStart(5)}  ${(r.upMs / 1000).toFixed(1).padStart(5)}  ${r.allRoutesMs === null ? "   —" : (r.allRoutesMs / 1000).toFixed(1).padStart(13)}  ${r.allSessionsMs === null ? "   —" : (r.allSessionsMs / 1000).toFixed(1).padStart(15)}  ${String(r.bgpSessionsEstablished).padStart(8)}  ${String(r.pssMiB).padStart(8)}  ${String(r.wireguardGoPssMiBEach).padStart(15)}  ${(r.teardownMs / 1000).toFixed(1).padStart(11)}`,
    )
  for (const r of results.failure)
    for (const e of r.events)
      console.log(
        `${r.scenario} (bfd=${r.bfd}): ${e.event}: converged after ${e.convergedAfterMs} ms, ${e.routeChanges} next-hop changes, loops in ${e.samplesWithLoops} samples, blackholes in ${e.samplesWithBlackholes}`,
      )
}
