// The merge rule on the engine's real router graph, as a stateful property: random interleavings
// of link-state messages, store snapshots (fresh, old, down samples) and time passing. After every
// store refresh (the daemon decides every 250 ms, so expiry has run), a fresh origin's links are
// exactly what its message said, our own row is untouched, and every usable link of any other
// origin is justified by a recent up sample from the store with that very cost.
import { describe, expect, it } from "@effect/vitest"
import { fc } from "@fast-check/vitest"
import { LinkStateMessage, type LinkStats, linkCost, NodeRouter, SiteId, tunnelId } from "@net-perf/engine"
import { makeFallbackApplier } from "../../src/metricsstore/Fallback.js"

const sites = [1, 2, 3, 4]
const maxAgeMillis = 10_000
const maxSampleAgeMillis = 6_000

const op = fc.oneof(
  fc.record({
    kind: fc.constant("exchange" as const),
    origin: fc.constantFrom(...sites),
    links: fc.array(
      fc.record({
        remote: fc.constantFrom(0, ...sites),
        costMs: fc.option(fc.integer({ min: 1, max: 200 }), { nil: null }),
      }),
      { maxLength: 4 },
    ),
  }),
  fc.record({
    kind: fc.constant("store" as const),
    tunnels: fc.array(
      fc.record({
        local: fc.constantFrom(0, ...sites),
        remote: fc.constantFrom(0, ...sites),
        family: fc.constantFrom(4 as const, 6 as const),
        up: fc.boolean(),
        rttMs: fc.integer({ min: 1, max: 200 }),
        lossRatio: fc.constantFrom(0, 0.01, 0.3),
        ageMillis: fc.integer({ min: 0, max: 12_000 }),
      }),
      { maxLength: 12 },
    ),
  }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 100, max: 8_000 }) }),
)

const rowOf = (router: NodeRouter, origin: number) =>
  new Map(
    router.graph
      .linksFrom(SiteId.make(origin))
      .map((r) => [r as number, router.graph.linkCost(SiteId.make(origin), r)]),
  )

describe("the merge rule on a real NodeRouter graph", () => {
  it("keeps fresh origins' rows, our own row, and makes links usable only from recent up samples", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        let now = 1_000_000
        const router = NodeRouter.make({ self: 0, linkStateMaxAgeMillis: maxAgeMillis })
        const heard = new Map<number, number>()
        const said = new Map<number, Map<number, number>>()
        let seq = 0
        const fresh = (o: number, at: number) => at - (heard.get(o) ?? Number.NEGATIVE_INFINITY) <= maxAgeMillis
        const applier = makeFallbackApplier({
          self: SiteId.make(0),
          graph: router.graph,
          exchangeFresh: (o, at) => fresh(o, at),
          maxSampleAgeMillis,
          costModel: "default",
        })
        router.decide(now)
        for (const o of ops) {
          if (o.kind === "advance") {
            now += o.ms
            continue
          }
          if (o.kind === "exchange") {
            const byRemote = new Map<number, number | null>()
            for (const l of o.links) if (l.remote !== o.origin) byRemote.set(l.remote, l.costMs)
            const message = new LinkStateMessage({
              origin: SiteId.make(o.origin),
              incarnation: 1,
              seq: ++seq,
              generatedAtMillis: now,
              tunnels: [...byRemote].map(([remote, costMs]) => ({
                remote: SiteId.make(remote),
                family: 4 as const,
                stats: {
                  tunnel: tunnelId(o.origin, remote, 4),
                  state: costMs === null ? ("dead" as const) : ("up" as const),
                  rttMs: costMs,
                  jitterMs: 0,
                  lossRatio: 0,
                  availability: 1,
                  lastSampleAtMillis: now,
                  lastReplyAtMillis: now,
                },
                costMs,
                selected: true,
              })),
              // A forwarding origin (its own entry and a route to us): the router's graph leaves
              // out the links of an origin that offers no route (no transit through it).
              distances: [
                { destination: SiteId.make(o.origin), seqno: 0, distanceMs: 0, nextHop: null },
                { destination: SiteId.make(0), seqno: 0, distanceMs: 1, nextHop: SiteId.make(0) },
              ],
              requests: [],
            })
            router.receiveLinkState(message, now)
            heard.set(o.origin, now)
            said.set(o.origin, new Map([...byRemote].filter((e): e is [number, number] => e[1] !== null)))
            continue
          }
          const tunnels: LinkStats[] = o.tunnels
            .filter((t) => t.local !== t.remote)
            .map((t) => ({
              tunnel: tunnelId(t.local, t.remote, t.family),
              state: t.up ? ("up" as const) : ("unknown" as const),
              rttMs: t.rttMs,
              jitterMs: 0,
              lossRatio: t.lossRatio,
              availability: 1,
              lastSampleAtMillis: now - t.ageMillis,
              lastReplyAtMillis: t.up ? now - t.ageMillis : null,
            }))
          router.decide(now) // the daemon's decision loop runs expiry every 250 ms
          const before = new Map([0, ...sites].map((s) => [s, rowOf(router, s)]))
          applier.apply(tunnels, now)
          expect(rowOf(router, 0)).toEqual(before.get(0))
          for (const origin of sites) {
            const row = rowOf(router, origin)
            if (fresh(origin, now)) {
              expect(row).toEqual(before.get(origin))
              expect(row).toEqual(said.get(origin))
              continue
            }
            for (const [remote, costMs] of row) {
              const witness = tunnels.find(
                (t) =>
                  t.tunnel.local === origin &&
                  t.tunnel.remote === remote &&
                  t.state === "up" &&
                  now - (t.lastSampleAtMillis ?? 0) <= maxSampleAgeMillis &&
                  linkCost(t) === costMs,
              )
              expect(witness, `link ${origin}→${remote} at ${costMs} ms has no recent up sample`).toBeDefined()
            }
          }
        }
      }),
      { numRuns: 300 },
    )
  })
})
