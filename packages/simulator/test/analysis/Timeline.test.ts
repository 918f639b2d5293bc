import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import { snapshotOf } from "../../src/analysis/NextHopGraph.js"
import { anomalyEpisodes, convergencePerEvent, flapsPerPair } from "../../src/analysis/Timeline.js"
import { detour, direct, sites } from "../fixtures/Triangle.js"

/** Transient: 0 lost its route to 1, 1 still points at 0. */
const hole = (t: number) =>
  snapshotOf(t, sites, [
    [0, 2, 2],
    [1, 0, 0],
    [1, 2, 2],
    [2, 0, 0],
    [2, 1, 1],
  ])

describe("Timeline", () => {
  test("convergence is measured from the event to the first sample of the settled state", () => {
    const samples = [direct(0), direct(250), hole(1250), detour(2000), detour(2250), direct(6250), direct(6500)]
    const [fail, recover] = convergencePerEvent(
      samples,
      [
        { atMillis: 1000, label: "link 0-1 down" },
        { atMillis: 6000, label: "link 0-1 up" },
      ],
      7000,
    )
    expect(fail?.convergedAfterMs).toBe(1000)
    expect(fail?.changed).toBe(true)
    expect(fail?.settledDelivering).toBe(true)
    expect(fail?.samplesWithBlackholes).toBe(1)
    expect(fail?.routeChanges).toBe(1 + 2)
    expect(recover?.convergedAfterMs).toBe(250)
    expect(recover?.routeChanges).toBe(2)
  })

  test("an event that changes nothing converges in 0 ms", () => {
    const [ev] = convergencePerEvent([direct(0), direct(500), direct(900)], [{ atMillis: 100, label: "x" }], 1000)
    expect(ev?.convergedAfterMs).toBe(0)
    expect(ev?.changed).toBe(false)
  })

  test.prop([fc.array(fc.boolean(), { minLength: 1, maxLength: 40 })])(
    "flaps per pair count every alternation between two routes",
    (pattern) => {
      const samples = pattern.map((d, i) => (d ? direct(i * 250) : detour(i * 250)))
      const flips = pattern.filter((d, i) => i > 0 && d !== pattern[i - 1]).length
      const f01 = flapsPerPair(samples).find((f) => f.src === 0 && f.dst === 1)
      expect(f01?.nextHopChanges).toBe(flips)
      expect(f01?.pathChanges).toBe(flips)
      const f20 = flapsPerPair(samples).find((f) => f.src === 2 && f.dst === 0)
      expect(f20?.nextHopChanges).toBe(0)
    },
  )

  test("anomaly episodes merge consecutive samples", () => {
    const eps = anomalyEpisodes([direct(0), hole(250), hole(500), direct(750)])
    expect(eps).toHaveLength(1)
    expect(eps[0]).toMatchObject({
      kind: "blackhole",
      dst: 1,
      where: [0, 0],
      samples: 2,
      firstSeenMillis: 250,
      lastSeenMillis: 500,
    })
  })
})
