import { describe, expect, it } from "vitest"
import { formatComparison } from "../../src/twin/Compare.js"
import { buildReport, type ImpairmentState } from "../../src/twin/Report.js"
import { parseScenarioText, withRouting } from "../../src/twin/Scenario.js"
import { detour, direct } from "../fixtures/Triangle.js"

const state = (down01: boolean): ImpairmentState => {
  const m = new Map<string, Map<4 | 6, { delayMs: number; down?: boolean }>>()
  for (const [a, b] of [
    [0, 1],
    [1, 0],
    [0, 2],
    [2, 0],
    [1, 2],
    [2, 1],
  ] as const) {
    const is01 = (a === 0 && b === 1) || (a === 1 && b === 0)
    m.set(`${a}>${b}`, new Map([[4, { delayMs: 5, down: is01 && down01 }]]))
  }
  return m
}

/** A 3-site run where link 0-1 fails at 13 s and routing moves to the detour at `movedAt`. */
const run = (routing: string, movedAtMillis: number) => {
  const snaps = []
  for (let t = 10_000; t < 40_000; t += 250) snaps.push(t >= movedAtMillis ? detour(t) : direct(t))
  return buildReport({
    scenario: "t",
    routing,
    prefix: routing === "bird" ? "nl0001" : "nl0002",
    sites: 3,
    backends: { wireguard: "wireguard-go" },
    bird: { bfd: false },
    bringUpMs: 1000,
    initialConvergenceMs: 500,
    t0Millis: 10_000,
    endMillis: 40_000,
    initialImpairments: state(false),
    events: [{ label: "link-down 0-1", atSeconds: 3, appliedAtMillis: 13_000, impairmentsAfter: state(true) }],
    snapshots: snaps,
    rtt: [],
  })
}

describe("side-by-side comparison", () => {
  it("puts each event's figures of the baseline and net-perf in one row", () => {
    const text = formatComparison({ scenario: "t", baseline: run("bird", 22_000), netPerf: run("net-perf", 14_000) })
    const row = text.split("\n").find((l) => l.includes("link-down 0-1"))
    // converged BIRD, net-perf, bad path BIRD, net-perf (first good sample after the event)
    expect(row).toMatch(/3s\s+link-down 0-1\s+9000 ms\s+1000 ms\s+9000 ms\s+1000 ms/)
    expect(text).toContain("forwarding loops")
  })

  it("a routing that never leaves the dead link shows the whole window", () => {
    const text = formatComparison({ scenario: "t", baseline: run("bird", 99_000), netPerf: run("net-perf", 14_000) })
    expect(text.split("\n").find((l) => l.includes("link-down 0-1"))).toContain("whole window")
  })

  it("withRouting puts every site on one routing and keeps the timeline", () => {
    const s = parseScenarioText(
      [
        "name: x",
        "sites: 3",
        "durationSeconds: 10",
        "siteRouting: { '1': net-perf }",
        "events:",
        "  - { at: 1, action: kill-daemon, site: 1 }",
        '  - { at: 2, action: link-down, link: "0-1" }',
      ].join("\n"),
    )
    expect(s._tag).toBe("Right")
    if (s._tag !== "Right") return
    const bird = withRouting(s.right, "bird")
    expect(bird.routing).toBe("bird")
    expect(bird.siteRouting).toBeUndefined()
    expect(bird.events).toEqual(s.right.events)
  })
})
