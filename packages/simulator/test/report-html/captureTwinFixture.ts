/**
 * Records a twin run WITH its raw timeline (ping samples and next-hop change points) for the
 * HTML report fixtures, until the twin's own report carries `timeline` (requested in
 * /work/notes/report-requests.md). Runs the scenario exactly as `netlab run` does and, beside
 * the runner's samplers, a second route sampler and pingers on the same twin. Root only.
 *
 *   npx vite-node packages/simulator/test/report-html/captureTwinFixture.ts -- <scenario.yaml> <out.json>
 */
import { writeFileSync } from "node:fs"
import { Duration, Effect, Schedule } from "effect"
import type { TwinTimeline } from "../../src/twin/Report.js"
import { runOnTwin } from "../../src/twin/Runner.js"
import { startPinger, startRouteSampler } from "../../src/twin/Sampler.js"
import { loadScenario, watchedPairs } from "../../src/twin/Scenario.js"
import { makeTwin } from "../../src/twin/Twin.js"

const [scenarioFile, outFile] = process.argv.slice(2).filter((a) => a !== "--")
if (scenarioFile === undefined || outFile === undefined) throw new Error("usage: <scenario.yaml> <out.json>")

const program = Effect.scoped(
  Effect.gen(function* () {
    const scenario = yield* loadScenario(scenarioFile)
    const twin = yield* makeTwin({ scenario, mode: "run", onProgress: (l) => process.stderr.write(`[capture] ${l}\n`) })
    const sites = Array.from({ length: scenario.sites }, (_, i) => i)
    const sampler = yield* startRouteSampler(sites, twin.siteNs, scenario.sampleHz)
    const nextHops: Array<{ atMillis: number; src: number; dst: number; via: number | null }> = []
    const last = new Map<string, number | null>()
    yield* Effect.sync(() => {
      const snap = sampler.snapshot(Date.now())
      if (sampler.reporting() < sites.length) return
      for (const src of sites)
        for (const dst of sites) {
          if (src === dst) continue
          const via = snap.nextHops.get(src)?.get(dst) ?? null
          const k = `${src}>${dst}`
          if (!last.has(k) || last.get(k) !== via) {
            last.set(k, via)
            nextHops.push({ atMillis: snap.atMillis, src, dst, via })
          }
        }
    }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(Math.round(1000 / scenario.sampleHz)))), Effect.forkScoped)
    const pingers = yield* Effect.forEach(watchedPairs(scenario), ([a, b]) =>
      startPinger(a, b, twin.siteNs, 200).pipe(Effect.map((samples) => ({ a, b, samples }))),
    )
    const report = yield* runOnTwin(twin)
    const first = report.events[0]
    const endMillis = Date.now()
    const t0Millis = first === undefined ? endMillis - report.durationMs : first.atMillis - first.atSeconds * 1000
    const inRun = (at: number) => at >= t0Millis && at <= t0Millis + report.durationMs
    // Keep the pair's next hop in force at t0 (its last change before t0), then every change during the run.
    const atStart = new Map<string, (typeof nextHops)[number]>()
    for (const c of nextHops) if (c.atMillis < t0Millis) atStart.set(`${c.src}>${c.dst}`, { ...c, atMillis: t0Millis })
    const timeline: TwinTimeline = {
      t0Millis,
      endMillis: t0Millis + report.durationMs,
      events: report.events.map((e) => ({ label: e.label, atMillis: e.atMillis })),
      nextHops: [...atStart.values(), ...nextHops.filter((c) => inRun(c.atMillis))],
      rtt: pingers.map((p) => ({
        a: p.a,
        b: p.b,
        samples: p.samples.filter((s) => inRun(s.atMillis)).map((s) => ({ atMillis: s.atMillis, rttMs: s.rttMs })),
      })),
    }
    writeFileSync(outFile, `${JSON.stringify({ ...report, timeline })}\n`)
    process.stderr.write(`[capture] wrote ${outFile}\n`)
  }),
)

Effect.runPromise(program).catch((e) => {
  process.stderr.write(`capture failed: ${String(e)}\n`)
  process.exitCode = 1
})
