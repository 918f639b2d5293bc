/**
 * No forwarding loop, whatever the topology, however stale or inconsistent the node views and
 * in whatever order (or not at all) link-state messages arrive. Packets are followed hop by hop
 * through every node's current next hop after every command.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { AlgorithmName } from "../src/Algorithms.js"
import { type Family, SiteId } from "../src/Domain.js"
import { shortestPath } from "../src/Graph.js"
import { type Tunnel, World } from "./routingWorld.js"

type Model = Record<string, never>

const check = (world: World, what: string): void => {
  const loop = world.findLoop()
  if (loop !== undefined) throw new Error(`forwarding loop after ${what}: ${loop.join(" → ")}`)
}

class Tick implements fc.Command<Model, World> {
  constructor(readonly dtMillis: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.tick(this.dtMillis)
  }
  toString = () => `tick(${this.dtMillis})`
}

class SetLink implements fc.Command<Model, World> {
  constructor(
    readonly index: number,
    readonly rttMs: number | null,
    readonly bothDirections: boolean,
  ) {}
  check = () => true
  run(_m: Model, w: World): void {
    const keys = [...w.rtt.keys()]
    if (keys.length === 0) return
    w.setDirectionRtt(keys[this.index % keys.length]!, this.rttMs, this.bothDirections)
  }
  toString = () => `setLink(${this.index}, ${this.rttMs}, ${this.bothDirections})`
}

class Decide implements fc.Command<Model, World> {
  constructor(readonly site: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    const s = this.site % w.n
    w.routers[s]!.decide(w.nowMillis)
    check(w, this.toString())
  }
  toString = () => `decide(${this.site})`
}

class Advertise implements fc.Command<Model, World> {
  constructor(readonly site: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.advertise(this.site % w.n)
  }
  toString = () => `advertise(${this.site})`
}

class Deliver implements fc.Command<Model, World> {
  constructor(
    readonly index: number,
    readonly keep: boolean,
  ) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.deliver(this.index, this.keep)
  }
  toString = () => `deliver(${this.index}${this.keep ? ", duplicate" : ""})`
}

class Drop implements fc.Command<Model, World> {
  constructor(readonly index: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.drop(this.index)
  }
  toString = () => `drop(${this.index})`
}

class ProbePaths implements fc.Command<Model, World> {
  constructor(readonly site: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.probePaths(this.site % w.n)
  }
  toString = () => `probePaths(${this.site})`
}

/** A synchronous round: probes, every site decides, advertises, everything is delivered. */
class Round implements fc.Command<Model, World> {
  constructor(readonly dtMillis: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.tick(this.dtMillis)
    for (let s = 0; s < w.n; s++) {
      w.routers[s]!.decide(w.nowMillis)
      check(w, `${this.toString()} decide(${s})`)
    }
    for (let s = 0; s < w.n; s++) w.advertise(s)
    w.deliverAll()
  }
  toString = () => `round(${this.dtMillis})`
}

/** Every site decides on what it has (views partly stale when deliveries are pending). */
class DecideAll implements fc.Command<Model, World> {
  constructor(readonly dtMillis: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    w.tick(this.dtMillis)
    for (let s = 0; s < w.n; s++) {
      w.routers[s]!.decide(w.nowMillis)
      check(w, `${this.toString()} decide(${s})`)
    }
  }
  toString = () => `decideAll(${this.dtMillis})`
}

class AdvertiseAll implements fc.Command<Model, World> {
  check = () => true
  run(_m: Model, w: World): void {
    for (let s = 0; s < w.n; s++) w.advertise(s)
  }
  toString = () => "advertiseAll"
}

/** A site's daemon restarts: it forgets everything, feasible distances included. */
class Restart implements fc.Command<Model, World> {
  constructor(readonly site: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    const site = this.site % w.n
    w.restart(site)
    w.routers[site]!.setBgpPaths(w.bgpPathsOf(site, 2))
  }
  toString = () => `restart(${this.site})`
}

/**
 * Time passes in the world the restart argument assumes: messages older than 5 s are lost, and
 * every daemon decides at least every 10 s (here: every 5 s step).
 */
class BoundedTick implements fc.Command<Model, World> {
  constructor(readonly dtMillis: number) {}
  check = () => true
  run(_m: Model, w: World): void {
    for (let left = this.dtMillis; left > 0; left -= 5000) {
      w.tick(Math.min(5000, left))
      for (let i = w.inflight.length - 1; i >= 0; i--) {
        if (w.nowMillis - w.inflight[i]!.message.generatedAtMillis > 5000) w.inflight.splice(i, 1)
      }
      for (let s = 0; s < w.n; s++) {
        w.routers[s]!.decide(w.nowMillis)
        check(w, `${this.toString()} decide(${s})`)
      }
    }
  }
  toString = () => `boundedTick(${this.dtMillis})`
}

const commands = [
  fc.integer({ min: 1, max: 10_000 }).map((dt) => new Round(dt)),
  fc.integer({ min: 1, max: 10_000 }).map((dt) => new DecideAll(dt)),
  fc.constant(new AdvertiseAll()),
  fc.tuple(fc.nat(100), fc.boolean()).map(([i, both]) => new SetLink(i, null, both)),
  fc.integer({ min: 1, max: 20_000 }).map((dt) => new Tick(dt)),
  fc
    .tuple(fc.nat(100), fc.option(fc.integer({ min: 1, max: 200 }), { freq: 3 }), fc.boolean())
    .map(([i, rtt, both]) => new SetLink(i, rtt, both)),
  fc.nat(10).map((s) => new Decide(s)),
  fc.nat(10).map((s) => new Decide(s)),
  fc.nat(10).map((s) => new Advertise(s)),
  fc.tuple(fc.nat(1000), fc.boolean()).map(([i, keep]) => new Deliver(i, keep)),
  fc.nat(1000).map((i) => new Deliver(i, false)),
  fc.nat(1000).map((i) => new Drop(i)),
  fc.nat(10).map((s) => new ProbePaths(s)),
]

const algorithmArb = fc.constantFrom<AlgorithmName>(
  "graph-least-cost",
  "least-cost-bgp",
  "shortest-bgp",
  "measured-fastest",
)

/** Random topology: n sites, each pair has an IPv4 and/or IPv6 tunnel with some probability. */
const worldArb = fc
  .record({
    n: fc.integer({ min: 3, max: 6 }),
    density: fc.double({ min: 0.3, max: 1, noNaN: true }),
    pairs: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 150 })), {
      minLength: 15,
      maxLength: 15,
    }),
    families: fc.array(fc.constantFrom<ReadonlyArray<Family>>([4], [6], [4, 6]), { minLength: 15, maxLength: 15 }),
    algorithms: fc.array(algorithmArb, { minLength: 6, maxLength: 6 }),
    dwellMillis: fc.constantFrom(0, 5_000, 30_000),
    bgpHops: fc.integer({ min: 1, max: 4 }),
  })
  .map((p) => {
    const tunnels: Array<Tunnel & { rttMs: number }> = []
    let k = 0
    for (let a = 0; a < p.n; a++) {
      for (let b = a + 1; b < p.n; b++) {
        const [roll, rttMs] = p.pairs[k]!
        const families = p.families[k]!
        k++
        if (roll > p.density) continue
        for (const family of families) tunnels.push({ a, b, family, rttMs })
      }
    }
    return { ...p, tunnels }
  })

/** Commands for the restart property: no unbounded silence (time only moves by BoundedTick). */
const restartCommands = [
  fc.integer({ min: 1, max: 30_000 }).map((dt) => new BoundedTick(dt)),
  fc.nat(10).map((s) => new Restart(s)),
  fc.tuple(fc.nat(100), fc.boolean()).map(([i, both]) => new SetLink(i, null, both)),
  fc
    .tuple(fc.nat(100), fc.option(fc.integer({ min: 1, max: 200 }), { freq: 3 }), fc.boolean())
    .map(([i, rtt, both]) => new SetLink(i, rtt, both)),
  fc.nat(10).map((s) => new Decide(s)),
  fc.constant(new AdvertiseAll()),
  fc.nat(10).map((s) => new Advertise(s)),
  fc.tuple(fc.nat(1000), fc.boolean()).map(([i, keep]) => new Deliver(i, keep)),
  fc.nat(1000).map((i) => new Deliver(i, false)),
  fc.nat(1000).map((i) => new Drop(i)),
]

describe("loop freedom", () => {
  it("hop-by-hop forwarding never loops across random topologies, stale views and update orders", () => {
    fc.assert(
      fc.property(worldArb, fc.commands(commands, { maxCommands: 80 }), (setup, cmds) => {
        const world = new World(setup.n, setup.tunnels, (self) => ({
          algorithm: setup.algorithms[self]!,
          startupHoldDownMillis: 0,
          stability: { dwellMillis: setup.dwellMillis },
          measured: { probeBudget: 3, reverifyAfterMillis: 1_000 },
        }))
        // BIRD's view is built once and may go stale as links change: the gate must still hold.
        for (let s = 0; s < setup.n; s++) world.routers[s]!.setBgpPaths(world.bgpPathsOf(s, setup.bgpHops))
        fc.modelRun(() => ({ model: {} as Model, real: world }), cmds)
      }),
      { numRuns: 1000 },
    )
  }, 180_000)

  it("a quiet network converges: every connected pair is delivered, with starvation resolved by seqno requests", () => {
    fc.assert(
      fc.property(worldArb, fc.commands(commands, { maxCommands: 60 }), (setup, cmds) => {
        const world = new World(setup.n, setup.tunnels, () => ({
          algorithm: "graph-least-cost",
          startupHoldDownMillis: 0,
          stability: { dwellMillis: setup.dwellMillis },
        }))
        fc.modelRun(() => ({ model: {} as Model, real: world }), cmds)
        // Then nothing changes any more: probes, decisions and full exchanges only.
        world.settle(40, 5_000)
        check(world, "settling")
        for (let s = 0; s < setup.n; s++) {
          for (let d = 0; d < setup.n; d++) {
            if (s === d || !world.connected(s, d)) continue
            const walk = world.walk(s, d)
            expect(walk.end, `${s} → ${d} stopped at ${walk.hops.join(" → ")}`).toBe(d)
          }
        }
      }),
      { numRuns: 200 },
    )
  }, 180_000)

  const settlesOnShortestPaths = (
    setup: { readonly n: number; readonly tunnels: ReadonlyArray<Tunnel & { readonly rttMs: number }> },
    cmds: Iterable<fc.Command<Model, World>>,
  ): void => {
    const world = new World(setup.n, setup.tunnels, () => ({
      algorithm: "graph-least-cost",
      startupHoldDownMillis: 0,
      stability: { dwellMillis: 0, absoluteMarginMs: 0, relativeMargin: 0, noiseFactor: 0 },
      tunnelStability: { dwellMillis: 0, absoluteMarginMs: 0, relativeMargin: 0, noiseFactor: 0 },
      // An optional seqno request needs a 5 ms gain by default: also a margin. Seed 164806408
      // found 3 → 2 → 4 (80 ms) kept beside 3 → 1 → 4 (79 ms) for want of the request.
      requestMinGainMs: 0,
    }))
    fc.modelRun(() => ({ model: {} as Model, real: world }), cmds)
    world.settle(40, 5_000)
    check(world, "settling")
    for (let s = 0; s < setup.n; s++) {
      const mesh = world.routers[s]!.graph
      const g = mesh.indexed()
      for (let d = 0; d < setup.n; d++) {
        if (s === d || !world.connected(s, d)) continue
        const best = shortestPath(g, SiteId.make(s), SiteId.make(d))!
        const walk = world.walk(s, d)
        expect(walk.end).toBe(d)
        // Costs as s sees them (every view is the same once the network is quiet).
        const walked = mesh.pathCost(walk.hops.map((h) => SiteId.make(h)))
        expect(walked, `${s} → ${d}: took ${walk.hops.join(" → ")}, best ${best.sites.join(" → ")}`).toBeCloseTo(
          best.costMs,
          6,
        )
      }
    }
  }

  it("without stability margins a quiet network settles on shortest paths (seqno requests lift stale feasible distances)", () => {
    fc.assert(fc.property(worldArb, fc.commands(commands, { maxCommands: 40 }), settlesOnShortestPaths), {
      numRuns: 100,
    })
  }, 180_000)

  it("without stability margins: the 5-site case where a 1 ms gain went unrequested (3 → 2 → 4 kept beside 3 → 1 → 4)", () => {
    // The shrunk counterexample of fast-check seed 164806408; it failed while requestMinGainMs stayed 5.
    const tunnels = [
      { a: 0, b: 1, family: 4, rttMs: 4 },
      { a: 0, b: 1, family: 6, rttMs: 4 },
      { a: 0, b: 2, family: 4, rttMs: 1 },
      { a: 1, b: 2, family: 4, rttMs: 3 },
      { a: 1, b: 3, family: 4, rttMs: 1 },
      { a: 1, b: 4, family: 4, rttMs: 78 },
      { a: 2, b: 3, family: 4, rttMs: 2 },
      { a: 2, b: 3, family: 6, rttMs: 2 },
      { a: 2, b: 4, family: 4, rttMs: 1 },
    ] as const
    settlesOnShortestPaths({ n: 5, tunnels }, [new Tick(1), new SetLink(88, 78, false)])
  })

  it("restarts (state lost) cause no loop, given the start-up hold-down, bounded delays and regular decisions", () => {
    fc.assert(
      fc.property(worldArb, fc.commands(restartCommands, { maxCommands: 60 }), (setup, cmds) => {
        const world = new World(setup.n, setup.tunnels, (self) => ({
          algorithm: setup.algorithms[self]!,
          stability: { dwellMillis: setup.dwellMillis },
          linkStateMaxAgeMillis: 30_000,
          // startupHoldDownMillis: the default, max age + 10 s (also at the first start).
        }))
        for (let s = 0; s < setup.n; s++) world.routers[s]!.setBgpPaths(world.bgpPathsOf(s, setup.bgpHops))
        fc.modelRun(() => ({ model: {} as Model, real: world }), cmds)
      }),
      { numRuns: 300 },
    )
  }, 180_000)

  it("a restarted node forgets its feasible distances: the start-up hold-down is what keeps it loop-free", () => {
    // Square A=0, B=1, C=2, D=3: B reaches D via A (5 + 5) rather than via C (20 + 20). A restarts
    // and at the same moment loses its link to D; B still holds A's old advertisement.
    const run = (startupHoldDownMillis: number | undefined) => {
      const w = new World(
        4,
        [
          { a: 0, b: 1, family: 4, rttMs: 5 },
          { a: 0, b: 3, family: 4, rttMs: 5 },
          { a: 1, b: 2, family: 4, rttMs: 20 },
          { a: 2, b: 3, family: 4, rttMs: 20 },
        ],
        () => (startupHoldDownMillis === undefined ? {} : { startupHoldDownMillis }),
      )
      w.settle(14, 5000)
      expect(w.nextHop(1, 3)).toBe(0)
      w.restart(0)
      w.setTunnelRtt(0, 3, 4, null)
      for (const site of [1, 2, 3]) w.advertise(site)
      w.deliverAll()
      w.tick(1000)
      w.routers[0]!.decide(w.nowMillis)
      w.routers[1]!.decide(w.nowMillis)
      return w
    }
    // Without the hold-down, A takes B (its empty FD accepts anything) while B still uses A.
    expect(run(0).findLoop()).toEqual([0, 1, 0, -1, 3])
    // With it (default: max age + 10 s), A installs nothing until B has moved on.
    const w = run(undefined)
    expect(w.findLoop()).toBeUndefined()
    expect(w.nextHop(0, 3)).toBeNull()
    for (let i = 0; i < 12; i++) {
      w.settle(1, 5000)
      check(w, `settle round ${i}`)
    }
    expect(w.nextHop(1, 3)).toBe(2)
    expect(w.nextHop(0, 3)).toBe(1)
  })
})
