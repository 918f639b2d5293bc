import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Family, type LinkStats, SiteId, tunnelId } from "../src/Domain.js"
import type { Choice } from "../src/Stability.js"
import { chooseTunnel, chooseTunnels } from "../src/TunnelChoice.js"

const peer = SiteId.make(2)
const link = (family: Family, rttMs: number, over: Partial<LinkStats> = {}): LinkStats => ({
  tunnel: tunnelId(1, 2, family),
  state: "up",
  rttMs,
  jitterMs: 0,
  lossRatio: 0,
  availability: 1,
  lastSampleAtMillis: 0,
  lastReplyAtMillis: 0,
  ...over,
})

describe("TunnelChoice", () => {
  it("breaks ties deterministically: incumbent, then family 4", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 500, noNaN: true }), (rtt) => {
        const first = chooseTunnel(peer, undefined, { 6: link(6, rtt), 4: link(4, rtt) }, 0)
        expect(first.choice?.key).toBe(4)
        const kept = chooseTunnel(peer, { key: 6, sinceMillis: 0 }, { 4: link(4, rtt), 6: link(6, rtt) }, 1e9)
        expect(kept.choice?.key).toBe(6)
      }),
    )
  })

  it("does not switch family inside the margins, switches after the dwell on a clear gain", () => {
    const prev: Choice<Family> = { key: 4, sinceMillis: 0 }
    const small = chooseTunnel(peer, prev, { 4: link(4, 50), 6: link(6, 46) }, 60_000)
    expect(small.choice?.key).toBe(4)
    expect(small.reason).toBe("within-margin")
    // A 12 ms gain beats the 5 ms threshold but is not urgent (> 3 thresholds): it waits the dwell.
    const clearEarly = chooseTunnel(peer, prev, { 4: link(4, 50), 6: link(6, 38) }, 10_000)
    expect(clearEarly.choice?.key).toBe(4)
    expect(clearEarly.reason).toBe("dwell")
    const clear = chooseTunnel(peer, prev, { 4: link(4, 50), 6: link(6, 38) }, 30_000)
    expect(clear.choice).toEqual({ key: 6, sinceMillis: 30_000 })
    // A 20 ms gain is urgent: it waits only the urgent dwell (5 s).
    const urgent = chooseTunnel(peer, prev, { 4: link(4, 50), 6: link(6, 30) }, 5_000)
    expect(urgent.choice).toEqual({ key: 6, sinceMillis: 5_000 })
    expect(urgent.reason).toBe("urgent")
    // Jitter as noise widens the margin: costs 58 vs 46, gain 12 ms < 1.5·√(8²+8²) ≈ 17 ms.
    const noisy = chooseTunnel(peer, prev, { 4: link(4, 50, { jitterMs: 8 }), 6: link(6, 38, { jitterMs: 8 }) }, 1e6)
    expect(noisy.choice?.key).toBe(4)
  })

  it("leaves a dead family at once and keeps a lone tunnel", () => {
    const prev: Choice<Family> = { key: 4, sinceMillis: 1000 }
    const d = chooseTunnel(peer, prev, { 4: link(4, 10, { state: "dead" }), 6: link(6, 80) }, 1001)
    expect(d.choice?.key).toBe(6)
    expect(d.reason).toBe("left-dead")
    expect(d.costByFamily[4]).toBe(Number.POSITIVE_INFINITY)
    const lone = chooseTunnel(peer, undefined, { 6: link(6, 80) }, 0)
    expect(lone.choice?.key).toBe(6)
    const stale = chooseTunnel(
      peer,
      prev,
      { 4: link(4, 10), 6: link(6, 80, { lastSampleAtMillis: 100_000 }) },
      100_000,
      {
        staleAfterMillis: 30_000,
      },
    )
    expect(stale.choice?.key).toBe(6)
  })

  it("decides per peer for one node's tunnels, in peer order", () => {
    const stats = [
      { ...link(4, 20), tunnel: tunnelId(1, 3, 4) },
      { ...link(6, 10), tunnel: tunnelId(1, 3, 6) },
      link(4, 5),
      { ...link(4, 1), tunnel: tunnelId(7, 2, 4) },
    ]
    const out = chooseTunnels(
      SiteId.make(1),
      new Map([[SiteId.make(9), { key: 4 as Family, sinceMillis: 0 }]]),
      stats,
      0,
    )
    expect([...out.keys()]).toEqual([2, 3, 9])
    expect(out.get(SiteId.make(3))?.choice?.key).toBe(6)
    expect(out.get(SiteId.make(2))?.choice?.key).toBe(4)
    expect(out.get(SiteId.make(9))?.reason).toBe("no-candidates")
  })
})
