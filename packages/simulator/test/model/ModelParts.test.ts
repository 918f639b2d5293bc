/**
 * Properties of the model's pure parts: the event queue's ordering, link timelines, the
 * per-destination forwarding classifier (cross-checked against the twin's `tracePath`), and the
 * oracle (cross-checked against the twin's graphology-based `oraclePath`).
 */
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { snapshotOf, tracePath } from "../../src/analysis/NextHopGraph.js"
import { type DirectedLinkState, oraclePath } from "../../src/analysis/Oracle.js"
import { EventQueue, LaneQueue } from "../../src/model/EventQueue.js"
import { FloodGraph } from "../../src/model/Flooding.js"
import { BLACKHOLE, classifyDestination, DEAD, DELIVERED, ForwardingTable, LOOP } from "../../src/model/Forwarding.js"
import { LinkTruth } from "../../src/model/LinkTimeline.js"
import { type ModelLinkSpec, meshOf } from "../../src/model/Mesh.js"
import { ModelNetwork } from "../../src/model/ModelNetwork.js"
import { Prng } from "../../src/model/Prng.js"

describe("Prng", () => {
  test.prop([fc.integer(), fc.string()])("same seed and label, same stream; values in [0, 1)", (seed, label) => {
    const a = Prng.derive(seed, label)
    const b = Prng.derive(seed, label)
    for (let i = 0; i < 50; i++) {
      const x = a.next()
      expect(x).toBe(b.next())
      expect(x).toBeGreaterThanOrEqual(0)
      expect(x).toBeLessThan(1)
    }
  })
})

describe("EventQueue", () => {
  test.prop([fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.nat()), { maxLength: 200 })])(
    "pops in time order, FIFO within a millisecond, nothing lost",
    (items) => {
      const q = new EventQueue<{ t: number; i: number }>()
      items.forEach(([t], i) => {
        q.push(t + 0.7, { t, i })
      })
      const out: Array<{ t: number; i: number }> = []
      for (let b = q.popBucket(); b !== undefined; b = q.popBucket()) {
        for (const e of b.events) expect(e.t).toBe(b.atMillis)
        out.push(...b.events)
      }
      expect(out.length).toBe(items.length)
      for (let k = 1; k < out.length; k++) {
        const p = out[k - 1]!
        const c = out[k]!
        expect(p.t < c.t || (p.t === c.t && p.i < c.i)).toBe(true)
      }
    },
  )
})

describe("LinkTruth", () => {
  test("failure and recovery, steps, flapping", () => {
    const truth = new LinkTruth(
      {
        base: { latencyMs: 10, jitterMs: 1, lossRatio: 0 },
        effects: [
          { kind: "failure", atMillis: 1000 },
          { kind: "recovery", atMillis: 2000 },
          { kind: "step", atMillis: 3000, latencyMs: 25 },
          { kind: "flapping", fromMillis: 5000, untilMillis: 7000, periodMillis: 1000, downMillis: 400 },
        ],
      },
      1,
    )
    expect(truth.changePoints(0, 10_000).map((c) => `${c.atMillis}:${c.kind}`)).toEqual([
      "1000:down",
      "2000:up",
      "3000:step",
      "5000:down",
      "5400:up",
      "6000:down",
      "6400:up",
    ])
    const ups = [0, 999, 1000, 1999, 2000, 5000, 5399, 5400, 6100, 7000].map((t) => truth.isUp(t))
    expect(ups).toEqual([true, true, false, false, true, false, false, true, false, true])
    expect(truth.latencyMs(7000)).toBe(25)
  })

  test.prop([
    fc.integer(),
    fc.double({ min: 0.01, max: 5, noNaN: true }),
    fc.double({ min: 0.1, max: 20, noNaN: true }),
  ])("a random walk stays within its bound", (seed, sigmaMs, maxDeviationMs) => {
    const truth = new LinkTruth(
      {
        base: { latencyMs: 30, jitterMs: 0, lossRatio: 0 },
        effects: [{ kind: "random-walk", stepMillis: 100, sigmaMs, maxDeviationMs }],
      },
      seed,
    )
    for (let t = 0; t < 20_000; t += 370) {
      const l = truth.latencyMs(t)
      expect(l).toBeGreaterThanOrEqual(Math.max(0.05, 30 - maxDeviationMs) - 1e-9)
      expect(l).toBeLessThanOrEqual(30 + maxDeviationMs + 1e-9)
    }
  })
})

/** A random directed mesh of n sites with 1–2 families, some links down. */
const arbMesh = fc.integer({ min: 2, max: 7 }).chain((n) =>
  fc
    .array(
      fc.record({
        from: fc.integer({ min: 0, max: n - 1 }),
        to: fc.integer({ min: 0, max: n - 1 }),
        family: fc.constantFrom(4 as const, 6 as const),
        latencyMs: fc.double({ min: 0.1, max: 100, noNaN: true }),
        down: fc.boolean(),
      }),
      { maxLength: n * n },
    )
    .map((raw) => {
      const seen = new Set<string>()
      const links: Array<ModelLinkSpec & { down: boolean }> = []
      for (const l of raw) {
        const key = `${l.from}>${l.to}/${l.family}`
        if (l.from === l.to || seen.has(key)) continue
        seen.add(key)
        links.push({
          from: l.from,
          to: l.to,
          family: l.family,
          down: l.down,
          timeline: {
            base: { latencyMs: l.latencyMs, jitterMs: 0, lossRatio: 0 },
            effects: l.down ? [{ kind: "failure", atMillis: 0 }] : [],
          },
        })
      }
      const net = new ModelNetwork(meshOf(n, [4, 6], links), 1)
      net.refreshUp(0)
      return { n, links, net }
    }),
)

describe("Forwarding classification", () => {
  test.prop([
    arbMesh.chain((m) =>
      fc.tuple(
        fc.constant(m),
        fc.array(fc.tuple(fc.integer({ min: -1, max: m.n - 1 }), fc.constantFrom(4, 6)), {
          minLength: m.n * m.n,
          maxLength: m.n * m.n,
        }),
      ),
    ),
  ])("agrees with the twin's tracePath, and finds dead tunnels", ([{ n, net }, choices]) => {
    const table = new ForwardingTable(net)
    const routes: Array<[number, number, number]> = []
    for (let s = 0; s < n; s++)
      for (let d = 0; d < n; d++) {
        const [nh, fam] = choices[s * n + d]!
        if (s === d || nh === s) continue
        table.install(s, d, nh < 0 ? null : nh, fam)
        // The twin's view has no tunnels: a route over a missing tunnel is no route.
        if (nh >= 0 && net.linkIndex(s, nh, fam) >= 0) routes.push([s, d, nh])
      }
    const snap = snapshotOf(
      0,
      Array.from({ length: n }, (_, i) => i),
      routes,
    )
    const status = new Uint8Array(n)
    for (let d = 0; d < n; d++) {
      classifyDestination(table, d, status)
      for (let s = 0; s < n; s++) {
        if (s === d) continue
        const trace = tracePath(snap, s, d)
        // Packets die at the first problem on the way: a down tunnel before any loop or blackhole.
        const hops = trace.path.slice(0, -1).map((x) => table.link[x * n + d]!)
        const anyDown = hops.some((li) => li >= 0 && net.linkUp[li] !== 1)
        const expected = anyDown
          ? DEAD
          : trace._tag === "Loop"
            ? LOOP
            : trace._tag === "Blackhole"
              ? BLACKHOLE
              : DELIVERED
        expect(status[s]).toBe(expected)
      }
    }
  })
})

describe("Oracle", () => {
  test.prop([arbMesh])("oracleTo equals the twin's oraclePath delay for every pair", ({ n, links, net }) => {
    const twinLinks: DirectedLinkState[] = links.map((l) => ({
      from: l.from,
      to: l.to,
      delayMs: l.timeline.base.latencyMs,
      lossRatio: 0,
      down: l.down,
    }))
    const lat = net.latencies(0)
    for (let d = 0; d < n; d++) {
      const dist = net.oracleTo(d, lat)
      for (let s = 0; s < n; s++) {
        const twin = oraclePath(twinLinks, s, d)
        if (twin === undefined) expect(dist[s]).toBe(Number.POSITIVE_INFINITY)
        else expect(dist[s]).toBeCloseTo(twin.delayMs, 6)
      }
    }
  })
})

describe("FloodGraph (relayed link state)", () => {
  test.prop([arbMesh, fc.integer({ min: 1, max: 50 }), fc.integer()])(
    "without jitter or loss a copy arrives after delay × the fewest up hops; a down site neither takes nor relays",
    ({ n, net }, delayMillis, seed) => {
      const flood = new FloodGraph(net)
      const down = new Uint8Array(n)
      const blocked = n > 2 ? n - 1 : -1
      if (blocked > 0) down[blocked] = 1
      const arrival = flood.arrivals(0, { delayMillis, delayJitterMillis: 0, lossRatio: 0 }, new Prng(seed), down)
      // Reference: BFS over directed links that are up, through sites that are not down.
      const hops = new Array<number>(n).fill(Number.POSITIVE_INFINITY)
      hops[0] = 0
      const queue = [0]
      for (let qi = 0; qi < queue.length; qi++) {
        const a = queue[qi]!
        if (a !== 0 && down[a] === 1) continue
        for (let b = 0; b < n; b++) {
          if (hops[b] !== Number.POSITIVE_INFINITY || down[b] === 1) continue
          const up = net.families.some((f) => {
            const li = net.linkIndex(a, b, f)
            return li >= 0 && net.linkUp[li] === 1
          })
          if (!up) continue
          hops[b] = hops[a]! + 1
          queue.push(b)
        }
      }
      for (let s = 0; s < n; s++) expect(arrival[s]).toBeCloseTo(hops[s]! * delayMillis, 9)
    },
  )
})

describe("LaneQueue", () => {
  it("hands out a millisecond's deliveries apart from its other events, each in push order; later pushes for that millisecond come next", () => {
    const q = new LaneQueue<string>()
    q.push(5.7, "a")
    q.pushDelivery(5.2, 1)
    q.push(3, "b")
    q.pushDelivery(5, 2)
    q.push(5, "c")
    expect(q.popBucket()).toEqual({ atMillis: 3, deliveries: [], events: ["b"] })
    const five = q.popBucket()!
    expect(five).toEqual({ atMillis: 5, deliveries: [1, 2], events: ["a", "c"] })
    q.push(5, "d")
    expect(q.peekTime()).toBe(5)
    expect(q.popBucket()).toEqual({ atMillis: 5, deliveries: [], events: ["d"] })
    expect(q.popBucket()).toBeUndefined()
  })
})
