import { describe, expect, it } from "@effect/vitest"
import { fc, test } from "@fast-check/vitest"
import { type ForwardingSnapshot, snapshotOf } from "../../src/analysis/NextHopGraph.js"
import type { DirectedLinkState } from "../../src/analysis/Oracle.js"
import { lossAwareSymmetricOracleRtt, pathQualityPerWindow, symmetricOracleRtt } from "../../src/twin/PathQuality.js"

const mesh = (sites: number, delayOf: (a: number, b: number) => number, down: (a: number, b: number) => boolean) => {
  const links: DirectedLinkState[] = []
  for (let a = 0; a < sites; a++)
    for (let b = 0; b < sites; b++)
      if (a !== b) links.push({ from: a, to: b, delayMs: delayOf(a, b), lossRatio: 0, down: down(a, b) })
  return links
}

/** Every site forwards straight to the destination, except the given detours [src, dst, via]. */
const forwarding = (
  atMillis: number,
  sites: number,
  detours: ReadonlyArray<readonly [number, number, number]> = [],
) => {
  const routes: Array<readonly [number, number, number]> = []
  for (let a = 0; a < sites; a++)
    for (let b = 0; b < sites; b++) {
      if (a === b) continue
      const d = detours.find(([s, t]) => s === a && t === b)
      routes.push([a, b, d === undefined ? b : d[2]])
    }
  return snapshotOf(
    atMillis,
    Array.from({ length: sites }, (_, i) => i),
    routes,
  )
}

describe("symmetric oracle", () => {
  test.prop([
    fc.integer({ min: 2, max: 6 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 36, maxLength: 36 }),
  ])("symmetric, at most the direct link's RTT, and obeys the triangle inequality", (sites, delays) => {
    const links = mesh(
      sites,
      (a, b) => delays[a * 6 + b] as number,
      () => false,
    )
    const rtt = symmetricOracleRtt(links, sites)
    for (let a = 0; a < sites; a++)
      for (let b = 0; b < sites; b++) {
        if (a === b) continue
        const x = rtt(a, b) as number
        expect(x).toBe(rtt(b, a))
        expect(x).toBeLessThanOrEqual((delays[a * 6 + b] as number) + (delays[b * 6 + a] as number))
        for (let c = 0; c < sites; c++)
          if (c !== a && c !== b) expect(x).toBeLessThanOrEqual((rtt(a, c) as number) + (rtt(c, b) as number))
      }
  })

  it("a one-way delay makes the detour best for the pair in both directions", () => {
    const links = mesh(
      3,
      (a, b) => (a === 0 && b === 1 ? 55 : 5),
      () => false,
    )
    expect(symmetricOracleRtt(links, 3)(0, 1)).toBe(20)
  })

  it("the loss-aware oracle avoids a link losing ≥ 1 % unless nothing else connects the pair", () => {
    const lossy = mesh(
      3,
      () => 5,
      () => false,
    ).map((l) => ((l.from === 0 && l.to === 1) || (l.from === 1 && l.to === 0) ? { ...l, lossRatio: 0.05 } : l))
    expect(symmetricOracleRtt(lossy, 3)(0, 1)).toBe(10)
    expect(lossAwareSymmetricOracleRtt(lossy, 3)(0, 1)).toBe(20)
    expect(lossAwareSymmetricOracleRtt(lossy, 3)(0, 2)).toBe(10)
    // Only the lossy link joins 0 and 1: it is the best there is.
    const alone = lossy.filter((l) => l.from !== 2 && l.to !== 2)
    expect(lossAwareSymmetricOracleRtt(alone, 3)(0, 1)).toBe(10)
    expect(
      lossAwareSymmetricOracleRtt(
        lossy.map((l) => ({ ...l, lossRatio: 0.005 })),
        3,
      )(0, 1),
    ).toBe(10)
  })
})

describe("path quality per event", () => {
  const sites = 3
  const healthy = mesh(
    sites,
    () => 5,
    () => false,
  )
  const failed = mesh(
    sites,
    () => 5,
    (a, b) => (a === 0 && b === 1) || (a === 1 && b === 0),
  )
  const snaps = (moveAtMillis: number, backAtMillis: number): ForwardingSnapshot[] => {
    const out: ForwardingSnapshot[] = []
    for (let t = 0; t < 30_000; t += 250)
      out.push(
        t >= moveAtMillis && t < backAtMillis
          ? forwarding(t, sites, [
              [0, 1, 2],
              [1, 0, 2],
            ])
          : forwarding(t, sites),
      )
    return out
  }
  const windows = [
    { fromMillis: 0, toMillis: 5_000, links: healthy },
    { fromMillis: 5_000, toMillis: 15_000, links: failed },
    { fromMillis: 15_000, toMillis: 30_000, links: healthy },
  ]

  test.prop([fc.integer({ min: 5_000, max: 14_000 }), fc.integer({ min: 15_000, max: 29_000 })])(
    "a failure counts until the first sample around it, a repair until the first sample back",
    (moveAt, backAt) => {
      const [start, failure, repair] = pathQualityPerWindow(snaps(moveAt, backAt), healthy, windows, sites)
      const sampleAfter = (t: number) => Math.ceil(t / 250) * 250
      expect(start).toMatchObject({ badPathMs: 0, offOptimumMs: 0 })
      expect(failure?.badPathMs).toBe(sampleAfter(moveAt) - 5_000)
      expect(failure?.badPathAtEnd).toBe(false)
      expect(repair?.badPathMs).toBe(0)
      expect(repair?.offOptimumMs).toBe(sampleAfter(backAt) - 15_000)
    },
  )

  it("a routing that never moves is on the dead path for the whole window", () => {
    const [, failure] = pathQualityPerWindow(snaps(99_999, 99_999), healthy, windows, sites)
    expect(failure?.badPathAtEnd).toBe(true)
  })

  it("an impairment left from an earlier event is not charged to a later one", () => {
    const slow = mesh(
      sites,
      (a, b) => (a === 0 && b === 1 ? 55 : 5),
      () => false,
    )
    const slowAndFailed = mesh(
      sites,
      (a, b) => (a === 0 && b === 1 ? 55 : 5),
      (a, b) => (a === 1 && b === 2) || (a === 2 && b === 1),
    )
    const w = [
      { fromMillis: 0, toMillis: 5_000, links: healthy },
      { fromMillis: 5_000, toMillis: 10_000, links: slow },
      { fromMillis: 10_000, toMillis: 20_000, links: slowAndFailed },
    ]
    // never leaves 0→1 (slow); 1→2 and 2→1 move via 0 at once
    const s: ForwardingSnapshot[] = []
    for (let t = 0; t < 20_000; t += 250)
      s.push(
        forwarding(
          t,
          sites,
          t >= 10_000
            ? [
                [1, 2, 0],
                [2, 1, 0],
              ]
            : [],
        ),
      )
    const [, degrade, failure] = pathQualityPerWindow(s, healthy, w, sites)
    expect(degrade?.badPathAtEnd).toBe(true)
    expect(failure?.badPathMs).toBe(0)
  })
})
