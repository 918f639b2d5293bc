// The metrics-store decoders and the merge rule, as properties: any body either decodes into
// series or becomes a typed MetricsStoreError (never a throw, never a half-decoded value); store
// series make valid LinkStats; the fallback plan never touches our own links or an origin the
// exchange has fresh data for, and never makes a link usable from an old or down sample.
import { describe, expect, it } from "@effect/vitest"
import { fc } from "@fast-check/vitest"
import { type LinkStats, linkCost, SiteId, tunnelId, tunnelKey } from "@net-perf/engine"
import { Either } from "effect"
import { planFallback } from "../../src/metricsstore/Fallback.js"
import { linkStatsFromSeries } from "../../src/metricsstore/MetricsStoreSource.js"
import { decodeQueryResponse, type InstantSeries } from "../../src/metricsstore/PromApi.js"

const request = { url: "http://127.0.0.1:1", query: "up" }

const valueText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => ({ text: String(n), value: n })),
  fc.constant({ text: "+Inf", value: Number.POSITIVE_INFINITY }),
  fc.constant({ text: "-Inf", value: Number.NEGATIVE_INFINITY }),
  fc.constant({ text: "NaN", value: Number.NaN }),
)
const labels = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/), fc.string({ maxLength: 8 }), { maxKeys: 4 })
const vectorEntry = fc.record({
  labels,
  atSeconds: fc.double({ min: 0, max: 4e9, noNaN: true }),
  value: valueText,
})

describe("decodeQueryResponse", () => {
  it("decodes every well-formed vector response, values and times included", () => {
    fc.assert(
      fc.property(fc.array(vectorEntry, { maxLength: 6 }), (entries) => {
        const body = JSON.stringify({
          status: "success",
          data: {
            resultType: "vector",
            result: entries.map((e) => ({ metric: e.labels, value: [e.atSeconds, e.value.text] })),
          },
        })
        const decoded = decodeQueryResponse(body, request)
        expect(Either.isRight(decoded)).toBe(true)
        const series = Either.getOrThrow(decoded)
        expect(series.length).toBe(entries.length)
        series.forEach((s, i) => {
          const e = entries[i]!
          expect(s.labels).toEqual(e.labels)
          expect(s.atMillis).toBe(Math.round(e.atSeconds * 1000))
          expect(Object.is(s.value, e.value.value) || s.value === e.value.value).toBe(true)
        })
      }),
    )
  })

  it("rejects anything else with a typed error (bad-response), never a throw", () => {
    const wellFormed = (j: unknown) => {
      const o = j as { status?: unknown; data?: { resultType?: unknown } }
      return o?.status === "error" || (o?.status === "success" && o.data?.resultType === "vector")
    }
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.anything().map((a) => JSON.stringify(a) ?? "undefined"),
          // near misses: the right envelope with a wrong part
          fc
            .record({
              status: fc.constantFrom("success", "ok", 1),
              data: fc.record({
                resultType: fc.constantFrom("vector", "matrix", "scalar"),
                result: fc.array(
                  fc.record({
                    metric: fc.oneof(labels, fc.constant(null), fc.array(fc.string())),
                    value: fc.oneof(
                      fc.tuple(fc.double(), fc.constantFrom("1", "x", "", "1e", "0x")),
                      fc.tuple(fc.string(), fc.constant("1")),
                      fc.tuple(fc.double(), fc.double()),
                      fc.constant([]),
                    ),
                  }),
                  { minLength: 1, maxLength: 3 },
                ),
              }),
            })
            .map((o) => JSON.stringify(o)),
        ),
        (body) => {
          const decoded = decodeQueryResponse(body, request)
          if (Either.isRight(decoded)) {
            // Only a body that really is a vector response may decode.
            expect(wellFormed(JSON.parse(body))).toBe(true)
            return
          }
          expect(decoded.left._tag).toBe("MetricsStoreError")
          expect(["bad-response", "query-error"]).toContain(decoded.left.reason)
          expect(decoded.left.message).toContain(request.url)
        },
      ),
    )
  })

  it("turns Prometheus' error body into a query-error naming the store's message", () => {
    const decoded = decodeQueryResponse(
      JSON.stringify({ status: "error", errorType: "bad_data", error: 'parse error at char 3: unexpected "}"' }),
      request,
    )
    expect(Either.isLeft(decoded) && decoded.left.reason).toBe("query-error")
    expect(Either.isLeft(decoded) && decoded.left.detail).toContain("bad_data: parse error")
  })

  it("rejects a non-numeric sample value and a matrix result", () => {
    const bad = decodeQueryResponse(
      JSON.stringify({
        status: "success",
        data: { resultType: "vector", result: [{ metric: {}, value: [1, "one"] }] },
      }),
      request,
    )
    expect(Either.isLeft(bad) && bad.left.reason).toBe("bad-response")
    const matrix = decodeQueryResponse(
      JSON.stringify({ status: "success", data: { resultType: "matrix", result: [] } }),
      request,
    )
    expect(Either.isLeft(matrix) && matrix.left.reason).toBe("bad-response")
  })
})

const gaugeNames = [
  "netperf_tunnel_up",
  "netperf_tunnel_rtt_smoothed_seconds",
  "netperf_tunnel_jitter_seconds",
  "netperf_tunnel_loss_ratio",
  "netperf_tunnel_availability_ratio",
] as const

const storeTunnel = fc.record({
  local: fc.integer({ min: 0, max: 4 }),
  remote: fc.integer({ min: 0, max: 4 }),
  family: fc.constantFrom(4, 6, 5),
  instance: fc.constantFrom("a:5120", "b:5120"),
  atSeconds: fc.integer({ min: 1_000, max: 1_100 }),
  gauges: fc.record({
    netperf_tunnel_up: fc.constantFrom(0, 1, 0.5),
    netperf_tunnel_rtt_smoothed_seconds: fc.option(fc.double({ min: -0.01, max: 1, noNaN: true }), { nil: undefined }),
    netperf_tunnel_jitter_seconds: fc.option(fc.double({ min: 0, max: 0.1, noNaN: true }), { nil: undefined }),
    netperf_tunnel_loss_ratio: fc.option(fc.double({ min: 0, max: 1.2, noNaN: true }), { nil: undefined }),
    netperf_tunnel_availability_ratio: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  }),
})

const seriesOf = (tunnels: ReadonlyArray<typeof storeTunnel extends fc.Arbitrary<infer T> ? T : never>) => {
  const values: InstantSeries[] = []
  const times: InstantSeries[] = []
  for (const t of tunnels) {
    const base = { local: String(t.local), remote: String(t.remote), family: String(t.family), instance: t.instance }
    for (const name of gaugeNames) {
      const v = t.gauges[name]
      if (v !== undefined) values.push({ labels: { ...base, __name__: name }, atMillis: 2_000_000, value: v })
    }
    times.push({ labels: base, atMillis: 2_000_000, value: t.atSeconds })
  }
  return { values, times }
}

describe("linkStatsFromSeries", () => {
  it("makes at most one valid LinkStats per tunnel, the newest sample, up only when the origin said up", () => {
    fc.assert(
      fc.property(fc.array(storeTunnel, { maxLength: 12 }), (tunnels) => {
        const { values, times } = seriesOf(tunnels)
        const out = linkStatsFromSeries(values, times)
        const keys = out.tunnels.map((s) => tunnelKey(s.tunnel))
        expect(new Set(keys).size).toBe(keys.length)
        for (const s of out.tunnels) {
          expect(s.tunnel.local).not.toBe(s.tunnel.remote)
          expect([4, 6]).toContain(s.tunnel.family)
          expect(s.lossRatio).toBeGreaterThanOrEqual(0)
          expect(s.lossRatio).toBeLessThanOrEqual(1)
          const sources = tunnels.filter(
            (t) => t.local === s.tunnel.local && t.remote === s.tunnel.remote && t.family === s.tunnel.family,
          )
          // the newest sample of that tunnel (possibly another instance's, if this one's was invalid)
          expect(sources.some((t) => t.atSeconds * 1000 === s.lastSampleAtMillis)).toBe(true)
          if (s.state === "up") {
            const source = sources.find(
              (t) => t.atSeconds * 1000 === s.lastSampleAtMillis && t.gauges.netperf_tunnel_up === 1,
            )
            expect(source).toBeDefined()
            expect(s.rttMs).not.toBeNull()
          } else expect(s.state).toBe("unknown")
        }
        expect(out.invalid).toBeLessThanOrEqual(tunnels.length)
      }),
    )
  })

  it("reads an exported tunnel back in engine units", () => {
    const { values, times } = seriesOf([
      {
        local: 1,
        remote: 2,
        family: 4,
        instance: "a:5120",
        atSeconds: 1_050,
        gauges: {
          netperf_tunnel_up: 1,
          netperf_tunnel_rtt_smoothed_seconds: 0.012,
          netperf_tunnel_jitter_seconds: 0.001,
          netperf_tunnel_loss_ratio: 0.02,
          netperf_tunnel_availability_ratio: 0.9,
        },
      },
    ])
    const [stats] = linkStatsFromSeries(values, times).tunnels
    expect(stats).toEqual({
      tunnel: tunnelId(1, 2, 4),
      state: "up",
      rttMs: 12,
      jitterMs: 1,
      lossRatio: 0.02,
      availability: 0.9,
      lastSampleAtMillis: 1_050_000,
      lastReplyAtMillis: 1_050_000,
    })
  })
})

const linkStats = fc.record({
  local: fc.integer({ min: 0, max: 5 }),
  remote: fc.integer({ min: 0, max: 5 }),
  family: fc.constantFrom(4 as const, 6 as const),
  state: fc.constantFrom("up" as const, "dead" as const, "unknown" as const),
  rttMs: fc.option(fc.double({ min: 0, max: 300, noNaN: true }), { nil: null }),
  lossRatio: fc.double({ min: 0, max: 1, noNaN: true }),
  ageMillis: fc.integer({ min: -1_000, max: 120_000 }),
})

describe("planFallback (the merge rule)", () => {
  it("never fills our own row or a fresh origin's; every link it makes usable is up and recent; it clears only what it filled", () => {
    fc.assert(
      fc.property(
        fc.array(linkStats, { maxLength: 20 }),
        fc.subarray([0, 1, 2, 3, 4, 5]),
        fc.subarray([0, 1, 2, 3, 4, 5]),
        fc.integer({ min: 1_000, max: 60_000 }),
        (raw, freshOrigins, previouslyFilled, maxSampleAgeMillis) => {
          const now = 10_000_000
          const self = SiteId.make(0)
          const tunnels: LinkStats[] = raw.map((r) => ({
            tunnel: tunnelId(r.local, r.remote, r.family),
            state: r.state,
            rttMs: r.rttMs,
            jitterMs: 0,
            lossRatio: r.lossRatio,
            availability: 1,
            lastSampleAtMillis: now - r.ageMillis,
            lastReplyAtMillis: now - r.ageMillis,
          }))
          const fresh = new Set<number>(freshOrigins)
          const plan = planFallback({
            self,
            nowMillis: now,
            tunnels,
            exchangeFresh: (o) => fresh.has(o),
            maxSampleAgeMillis,
            costModel: "default",
            filled: new Set(previouslyFilled),
          })
          for (const row of plan.set) {
            expect(row.origin).not.toBe(self)
            expect(fresh.has(row.origin)).toBe(false)
            row.remotes.forEach((remote, i) => {
              const cost = row.costsMs[i]!
              expect(cost).toBeLessThan(Number.POSITIVE_INFINITY)
              // some sample of that link justifies the cost: up, with an RTT, recent
              const witness = tunnels.find(
                (t) =>
                  t.tunnel.local === row.origin &&
                  t.tunnel.remote === remote &&
                  t.tunnel.family === row.families[i] &&
                  t.state === "up" &&
                  now - (t.lastSampleAtMillis ?? 0) <= maxSampleAgeMillis &&
                  linkCost(t) === cost,
              )
              expect(witness).toBeDefined()
            })
          }
          for (const o of plan.clear) {
            expect(previouslyFilled).toContain(o)
            expect(fresh.has(o)).toBe(false)
            expect(plan.filled.has(o)).toBe(false)
          }
          expect(plan.links).toBe(plan.set.reduce((n, r) => n + r.remotes.length, 0))
        },
      ),
    )
  })
})
