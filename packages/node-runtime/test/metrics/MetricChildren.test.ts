// histogramChild/counterChild/gaugeChild against prom-client's own labels().observe/inc/set: after any sequence of
// observations, increments, series removals and resets, both registries expose the same text.
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Counter, Gauge, Histogram, Registry } from "prom-client"
import { counterChild, gaugeChild, gaugeChildren, histogramChild } from "../../src/metrics/Metrics.js"

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const labelSets = [
  { local: "0", remote: "1", family: "4", probe: "udp" },
  { local: "0", remote: "1", family: "6", probe: "udp" },
  { local: "0", remote: "2", family: "4", probe: "icmp" },
]
const makeSide = (fast: boolean) => {
  const registry = new Registry()
  const labelNames = ["local", "remote", "family", "probe"]
  const histogram = new Histogram({ name: "h_seconds", help: "h", labelNames, buckets, registers: [registry] })
  const counter = new Counter({ name: "c_total", help: "c", labelNames, registers: [registry] })
  const gauge = new Gauge({ name: "g_ratio", help: "g", labelNames, registers: [registry] })
  const children = labelSets.map((l) =>
    fast
      ? { h: histogramChild(histogram, l), c: counterChild(counter, l), g: gaugeChild(gauge, l) }
      : { h: histogram.labels(l), c: counter.labels(l), g: gauge.labels(l) },
  )
  return { registry, histogram, counter, gauge, children }
}
const value = fc.oneof(fc.double({ min: 0, max: 5, noNaN: true }), fc.constantFrom(...buckets), fc.constant(0))
const op = fc.oneof(
  { weight: 10, arbitrary: fc.tuple(fc.constant("observe" as const), fc.nat(2), value) },
  { weight: 5, arbitrary: fc.tuple(fc.constant("inc" as const), fc.nat(2), fc.nat(1000)) },
  {
    weight: 5,
    arbitrary: fc.tuple(
      fc.constant("set" as const),
      fc.nat(2),
      fc.oneof(fc.double(), fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, -0)),
    ),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constant("remove" as const), fc.nat(2), fc.constant(0)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("reset" as const), fc.constant(0), fc.constant(0)) },
)

describe("metric children for per-sample use", () => {
  it("expose exactly what prom-client's own children expose", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 200 }), async (ops) => {
        const sides = [makeSide(true), makeSide(false)]
        for (const [kind, i, v] of ops)
          for (const s of sides) {
            const child = s.children[i]!
            if (kind === "observe") child.h.observe(v)
            else if (kind === "inc") child.c.inc(v)
            else if (kind === "set") child.g.set(v)
            else if (kind === "remove") {
              s.histogram.remove(labelSets[i]!)
              s.counter.remove(labelSets[i]!)
              s.gauge.remove(labelSets[i]!)
            } else {
              s.histogram.reset()
              s.counter.reset()
              s.gauge.reset()
            }
          }
        expect(await sides[0]!.registry.metrics()).toEqual(await sides[1]!.registry.metrics())
      }),
      { numRuns: 300 },
    )
  })
})

describe("gaugeChildren (one child per label value, made at first use)", () => {
  it("exposes what labelled sets expose, across removals and resets", async () => {
    const gaugeOp = fc.oneof(
      { weight: 10, arbitrary: fc.tuple(fc.constant("set" as const), fc.nat(5), fc.double({ noNaN: true })) },
      { weight: 1, arbitrary: fc.tuple(fc.constant("remove" as const), fc.nat(5), fc.constant(0)) },
      { weight: 1, arbitrary: fc.tuple(fc.constant("reset" as const), fc.constant(0), fc.constant(0)) },
    )
    await fc.assert(
      fc.asyncProperty(fc.array(gaugeOp, { maxLength: 200 }), async (ops) => {
        const make = () => {
          const registry = new Registry()
          const gauge = new Gauge({ name: "route_cost", help: "c", labelNames: ["destination"], registers: [registry] })
          return { registry, gauge }
        }
        const fast = make()
        const plain = make()
        const childOf = gaugeChildren(fast.gauge, "destination")
        for (const [kind, i, v] of ops) {
          const destination = String(i)
          if (kind === "set") {
            childOf(destination).set(v)
            plain.gauge.set({ destination }, v)
          } else if (kind === "remove") {
            fast.gauge.remove({ destination })
            plain.gauge.remove({ destination })
          } else {
            fast.gauge.reset()
            plain.gauge.reset()
          }
        }
        expect(await fast.registry.metrics()).toEqual(await plain.registry.metrics())
      }),
      { numRuns: 300 },
    )
  })
})
