import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { type Console, Effect } from "effect"
import fc from "fast-check"
import { runAnalyse } from "../../src/analyse/Analyse.js"

const fixture = join(import.meta.dirname, "fixtures/pathping-4site.json")
const dir = mkdtempSync(join(tmpdir(), "np-analyse-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const analyse = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const base = yield* Effect.console
    const captured: Console.Console = {
      ...base,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
      error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
    }
    const error = yield* runAnalyse(["node", "net-perf-analyse", ...args]).pipe(
      Effect.withConsole(captured),
      Effect.as(undefined),
      Effect.catchAll((e) => Effect.succeed("message" in e ? String(e.message) : e._tag)),
      Effect.provide(NodeContext.layer),
    )
    return { text: out.join("\n"), error }
  })

const writeJson = (name: string, value: unknown) => {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(value))
  return file
}

// One-way latencies of the fixture's mesh; every fixture RTT is consistent with them.
const truth: Record<string, number> = { "0-1": 5, "0-2": 12, "1-2": 10, "1-3": 20, "2-3": 7 }

describe("net-perf-analyse", () => {
  it.effect("recovers the links of a consistent fixture (lost samples dropped, PathSamples accepted)", () =>
    Effect.gen(function* () {
      const { text, error } = yield* analyse(["--json", fixture])
      expect(error).toBeUndefined()
      const result = JSON.parse(text)
      expect(result.measurements).toBe(7)
      expect(result.rank).toBe(5)
      for (const link of result.links) {
        expect(link.identifiable).toBe(true)
        expect(link.latencyMs).toBeCloseTo(truth[`${link.a}-${link.b}`] as number, 6)
      }
      expect(result.rmsResidualMs).toBeLessThan(1e-6)
    }),
  )

  it.effect("names the links that disagree with an inconsistent measurement, and prints tables", () =>
    Effect.gen(function* () {
      // 2-3 measured at 3× its real RTT, once: the links on that path disagree most.
      const file = writeJson("bad.json", [
        { path: [0, 1, 0], rttMs: 10 },
        { path: [0, 2, 0], rttMs: 24 },
        { path: [1, 2, 1], rttMs: 20 },
        { path: [0, 1, 2, 0], rttMs: 27 },
        { path: [1, 3, 1], rttMs: 40 },
        { path: [2, 3, 2], rttMs: 42 },
        { path: [1, 3, 2, 1], rttMs: 37 },
      ])
      const json = JSON.parse((yield* analyse(["--json", "--top", "2", file])).text)
      expect(json.worstLinks).toHaveLength(2)
      expect(json.worstLinks.map((l: { a: number; b: number }) => `${l.a}-${l.b}`)).toContain("2-3")
      expect(json.rmsResidualMs).toBeGreaterThan(1)
      // The inflated trip is fitted well below what was measured.
      expect(json.residuals[5]).toMatchObject({ index: 5, path: [2, 3, 2], measuredMs: 42 })
      expect(json.residuals[5].residualMs).toBeLessThan(-3)
      const { text } = yield* analyse([file])
      expect(text).toMatch(/^7 measurements, 5 links, rank 5, RMS residual \d+\.\d{3} ms/)
      expect(text).toContain("Estimated one-way link latencies:")
      expect(text).toMatch(/Links that disagree most with the measurements \(top 5\):\n\s+Link\s+Disagreement ms/)
      expect(text).toMatch(/\n\s+5\s+2>3>2\s+42\.000\s+\d+\.\d{3}\s+-\d+\.\d{3}/)
    }),
  )

  it.effect("under-determined links are reported as such", () =>
    Effect.gen(function* () {
      // Only the cycle 0-1-2-0: three links, one equation.
      const file = writeJson("under.json", [{ path: [0, 1, 2, 0], rttMs: 30 }])
      const { text } = yield* analyse([file])
      expect(text).toContain("3 links not determined by the measurements")
      expect(text).toMatch(/\n\s+0-1\s+\d+\.\d{3}\s+no\s+1/)
    }),
  )

  it.effect("bad input is a clear error naming the entry", () =>
    Effect.gen(function* () {
      const negative = yield* analyse([writeJson("neg.json", [{ path: [0, 1, 0], rttMs: -3 }])])
      expect(negative.error).toContain("not pathping measurements")
      expect(negative.error).toContain("rttMs")
      const short = yield* analyse([writeJson("short.json", { measurements: [{ path: [0], rttMs: 3 }] })])
      expect(short.error).toContain("measurements")
      const lost = yield* analyse([
        writeJson("lost.json", [
          { _tag: "PathSample", path: [0, 1, 0], families: [4, 4], atMillis: 1, rttMs: null, sent: 3, received: 0 },
        ]),
      ])
      expect(lost.error).toContain("no usable measurements")
      const notJson = join(dir, "x.json")
      writeFileSync(notJson, "{")
      expect((yield* analyse([notJson])).error).toContain("not JSON")
    }),
  )

  it.effect("any consistent set of round trips that pins every link is recovered exactly", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.double({ min: 0.1, max: 100, noNaN: true }), { minLength: 3, maxLength: 3 }),
          async ([a, b, c]) => {
            // Triangle 0-1-2: the three out-and-back trips pin each link.
            const file = writeJson("prop.json", [
              { path: [0, 1, 0], rttMs: 2 * (a as number) },
              { path: [1, 2, 1], rttMs: 2 * (b as number) },
              { path: [0, 2, 0], rttMs: 2 * (c as number) },
              { path: [0, 1, 2, 0], rttMs: (a as number) + (b as number) + (c as number) },
            ])
            const { text } = await Effect.runPromise(analyse(["--json", file]))
            const links = JSON.parse(text).links as Array<{ a: number; b: number; latencyMs: number }>
            const expected: Record<string, number> = { "0-1": a as number, "1-2": b as number, "0-2": c as number }
            for (const l of links) expect(l.latencyMs).toBeCloseTo(expected[`${l.a}-${l.b}`] as number, 5)
          },
        ),
        { numRuns: 25 },
      ),
    ),
  )
})
