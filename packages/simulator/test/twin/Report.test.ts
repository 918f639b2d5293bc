import { describe, expect, it } from "vitest"
import { buildReport, formatSummary, type ImpairmentState } from "../../src/twin/Report.js"
import { detour, direct } from "../fixtures/Triangle.js"

const state = (d01: number, down01 = false): ImpairmentState => {
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
    m.set(`${a}>${b}`, new Map([[4, { delayMs: is01 ? d01 : 5, down: is01 && down01 }]]))
  }
  return m
}

describe("twin report", () => {
  it("judges each window's settled RTT against the paths in use and the oracle", () => {
    const t0 = 10_000
    const snaps = [direct(9_000), direct(t0), direct(12_000), detour(16_000), detour(19_000)]
    const pings = [
      ...[10_500, 11_000, 11_500].map((at, i) => ({ atMillis: at, seq: i, rttMs: 12 })),
      // after the failure: lost until the detour, then ~22 ms
      { atMillis: 14_000, seq: 3, rttMs: null },
      ...[16_500, 17_000, 18_000].map((at, i) => ({ atMillis: at, seq: 4 + i, rttMs: 22 })),
    ]
    const r = buildReport({
      scenario: "t",
      prefix: "nl0000",
      sites: 3,
      backends: { wireguard: "wireguard-go" },
      bird: { bfd: false },
      bringUpMs: 1000,
      initialConvergenceMs: 500,
      t0Millis: t0,
      endMillis: 20_000,
      initialImpairments: state(6),
      events: [{ label: "link-down 0-1", atSeconds: 3, appliedAtMillis: 13_000, impairmentsAfter: state(6, true) }],
      snapshots: snaps,
      rtt: [{ a: 0, b: 1, samples: pings }],
    })
    expect(r.events[0]).toMatchObject({ convergedAfterMs: 3000, changed: true, settledDelivering: true })
    const [start, down] = r.rtt
    expect(start).toMatchObject({
      window: "start",
      measuredMedianRttMs: 12,
      chosenPathRttMs: 12,
      oracleRttMs: 12,
      lossRatio: 0,
    })
    expect(down).toMatchObject({
      window: "link-down 0-1",
      measuredMedianRttMs: 22,
      chosenForward: "0>2>1",
      chosenReverse: "1>2>0",
      chosenPathRttMs: 20,
      oracleRttMs: 20,
      lossRatio: 0,
    })
    expect(r.totalRouteChanges).toBe(2)
    // Timeline: every pair's first next hop, then only the two changes (0>1 and 1>0 via 2).
    expect(r.timeline.nextHops).toHaveLength(6 + 2)
    expect(r.timeline.nextHops.slice(6)).toEqual([
      { atMillis: 16_000, src: 0, dst: 1, via: 2 },
      { atMillis: 16_000, src: 1, dst: 0, via: 2 },
    ])
    expect(r.timeline.events).toEqual([{ label: "link-down 0-1", atMillis: 13_000 }])
    expect(r.timeline.rtt[0]?.samples).toHaveLength(7)
    const text = formatSummary(r)
    expect(text).toContain("link-down 0-1: converged after 3000 ms")
    expect(text).toContain("0-1 [link-down 0-1]: measured 22 ms")
  })
})
