/**
 * MeasureService.PathPing over a real gRPC server on loopback, measuring through real 5124/udp
 * relays (sites 1..3 at 127.0.{site}.{role}): replies, every INVALID_ARGUMENT rule, the per-caller
 * rate and concurrency limits, UNAVAILABLE without a bound relay, a client deadline stopping the
 * run, and the request counter. The decoder is also checked with fast-check properties.
 */
import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect, Either, Schema } from "effect"
import * as fc from "fast-check"
import { Registry } from "prom-client"
import { templateAddressing } from "../../src/discovery/Addressing.js"
import * as pb from "../../src/gen/netperf/measure/v1/measure.js"
import { serveGrpc } from "../../src/grpc/GrpcServer.js"
import {
  callerOf,
  decodePathPingRequest,
  makeMeasureHandler,
  type PathPingLimits,
  type PathPingSource,
  pathPingBounds,
} from "../../src/management/MeasureServer.js"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import { measurePath } from "../../src/probes/PathPinger.js"
import { PathPingConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { makePathRelay } from "../../src/servers/PathRelay.js"

const allowLoopback = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))
const testPort = () => 20000 + Math.floor(Math.random() * 30000)
const defaults = { count: 5, intervalMillis: 40, timeoutMillis: 500 }
const context = { site: 1, knownSites: new Set([1, 2, 3]), defaults }

describe("decodePathPingRequest", () => {
  const request = (over: Partial<pb.PathPingRequest>) => ({ ...pb.PathPingRequest.create(), ...over })
  const reason = (over: Partial<pb.PathPingRequest>) =>
    Either.match(decodePathPingRequest(request(over), context), { onLeft: (e) => e.message, onRight: () => "ok" })

  it("fills defaults and expands families to one per node", () => {
    expect(Either.getOrThrow(decodePathPingRequest(request({ path: [1, 2, 1] }), context))).toEqual({
      path: [1, 2, 1],
      families: [0, 0, 0],
      count: 5,
      intervalMillis: 40,
    })
    expect(
      Either.getOrThrow(decodePathPingRequest(request({ path: [1, 2, 3, 1], families: [6] }), context)).families,
    ).toEqual([0, 6, 6, 6])
    expect(
      Either.getOrThrow(decodePathPingRequest(request({ path: [1, 2, 3, 1], families: [4, 0, 6] }), context)),
    ).toMatchObject({ families: [0, 4, 0, 6] })
  })

  it("names the field and the rule that failed", () => {
    expect(reason({ path: [1, 1] })).toMatch(/^path: needs at least 3 sites/)
    expect(reason({ path: [1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 1] })).toMatch(/^path: at most 16 sites/)
    expect(reason({ path: [2, 1, 2] })).toMatch(/^path: must start and end at this site \(1\)/)
    expect(reason({ path: [1, 2, 2, 1] })).toMatch(/^path: site 2 follows itself/)
    expect(reason({ path: [1, 9, 1] })).toMatch(/^path: site\(s\) 9 not known here \(known: 1,2,3\)/)
    expect(reason({ path: [1, 70000, 1] })).toMatch(/^path: site ids are 0\.\.65535, got 70000/)
    expect(reason({ path: [1, 2, 1], families: [5] })).toMatch(/^families: families are 0 \(kernel routing\), 4 or 6/)
    expect(reason({ path: [1, 2, 3, 1], families: [4, 4] })).toMatch(/^families: give none, one for every hop/)
    expect(reason({ path: [1, 2, 1], count: 51 })).toMatch(/^count: count is 1\.\.50/)
    expect(reason({ path: [1, 2, 1], intervalMillis: 5 })).toMatch(/^intervalMillis: interval_millis is 20\.\.1000/)
    expect(reason({ path: [1, 2, 1], count: 50, intervalMillis: 100 })).toMatch(/must stay ≤ 5000 ms/)
    expect(reason({ path: [1, 2, 1], count: 9, intervalMillis: 500 })).toBe("ok")
  })

  it("never throws; an accepted order starts and ends here, visits known sites and fits the 5 s budget", () => {
    const input = fc.record({
      path: fc.array(fc.oneof(fc.constantFrom(1, 2, 3), fc.integer({ min: -5, max: 70_000 })), { maxLength: 20 }),
      families: fc.array(fc.oneof(fc.constantFrom(0, 4, 6), fc.integer({ min: -1, max: 300 })), { maxLength: 20 }),
      count: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.double()),
      intervalMillis: fc.oneof(fc.integer({ min: 0, max: 1200 }), fc.double()),
    })
    fc.assert(
      fc.property(input, (request) => {
        const decoded = decodePathPingRequest(request, context)
        if (Either.isLeft(decoded)) return
        const o = decoded.right
        expect(o.path[0]).toBe(1)
        expect(o.path.at(-1)).toBe(1)
        expect(o.path.length).toBeGreaterThanOrEqual(pathPingBounds.minPathSites)
        expect(o.path.length).toBeLessThanOrEqual(pathPingBounds.maxPathSites)
        expect(o.families.length).toBe(o.path.length)
        expect(o.families.every((f) => f === 0 || f === 4 || f === 6)).toBe(true)
        expect(o.path.every((s) => context.knownSites.has(s))).toBe(true)
        expect(o.count * o.intervalMillis + defaults.timeoutMillis).toBeLessThanOrEqual(pathPingBounds.maxRunMillis)
      }),
      { numRuns: 5000 },
    )
  })

  it("accepts every well-formed round trip over known sites", () => {
    fc.assert(
      fc.property(
        fc
          .array(fc.constantFrom(2, 3), { minLength: 1, maxLength: 14 })
          .filter((m) => m.every((s, i) => s !== m[i - 1])),
        fc.constantFrom(0, 4, 6),
        (middle, family) => {
          const path = [1, ...middle, 1]
          const request = { path, families: [family], count: 0, intervalMillis: 0 }
          expect(Either.isRight(decodePathPingRequest(request, context))).toBe(true)
        },
      ),
    )
  })

  it("callerOf keeps the address, drops the port", () => {
    expect(callerOf("ipv4:10.201.0.1:40522")).toBe("10.201.0.1")
    expect(callerOf("ipv6:[fdac:c9::1]:40522")).toBe("fdac:c9::1")
    expect(callerOf("127.0.0.1:5")).toBe("127.0.0.1")
    expect(callerOf("unix:/run/x.sock")).toBe("/run/x.sock")
  })
})

/** Relays for sites 1..3 on loopback, and site 1's PathPing service on a real gRPC server. */
const measureService = (limits: Partial<PathPingLimits> = {}, bindOrigin = true) =>
  Effect.gen(function* () {
    const port = testPort()
    const addressing = templateAddressing("127.0.{site}.{role}")
    const relayFor = (site: number, bound: boolean) =>
      makePathRelay({
        localSite: site,
        bindAddresses: bound ? [addressing.address(site, 0), addressing.address(site, 4)] : [],
        port,
        addressing,
        allow: allowLoopback,
        rateLimit: { packetsPerSecond: 5000, burstPackets: 5000 },
        rebindIntervalMillis: 1000,
      })
    const origin = yield* relayFor(1, bindOrigin)
    yield* relayFor(2, true)
    yield* relayFor(3, true)
    const metrics = yield* MeasurementMetrics
    const config = Schema.decodeSync(PathPingConfig)({ port, ...defaults })
    const source: PathPingSource = {
      site: 1,
      knownSites: Effect.succeed(new Set([1, 2, 3])),
      defaults,
      measurePath: (path, families, c) =>
        measurePath(origin, 1, path, families, { ...config, ...c }).pipe(
          Effect.provideService(MeasurementMetrics, metrics),
        ),
    }
    const registry = new Registry()
    const handler = yield* makeMeasureHandler(source, {
      limits,
      registry,
      pathGauges: [metrics.pathRtt, metrics.pathLoss],
    })
    const server = yield* serveGrpc({
      host: "127.0.0.1",
      port: 0,
      services: [{ definition: pb.MeasureServiceService, implementation: handler }],
    })
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new pb.MeasureServiceClient(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
      (c) => Effect.sync(() => c.close()),
    )
    const call = (request: Partial<pb.PathPingRequest>, deadlineMillis = 10_000) =>
      Effect.async<Either.Either<pb.PathPingResponse, grpc.ServiceError>>((resume) => {
        const pending = client.pathPing(
          { ...pb.PathPingRequest.create(), ...request },
          new grpc.Metadata(),
          { deadline: new Date(Date.now() + deadlineMillis) },
          (error, response) => resume(Effect.succeed(error === null ? Either.right(response) : Either.left(error))),
        )
        return Effect.sync(() => pending.cancel())
      })
    const outcomes = Effect.promise(async () => {
      const m = await registry.getSingleMetric("netperf_pathping_requests_total")?.get()
      return Object.fromEntries((m?.values ?? []).map((v) => [v.labels.outcome, v.value]))
    })
    return { call, outcomes, metrics }
  }).pipe(Effect.provide(MeasurementMetrics.Default))

describe("MeasureService.PathPing on a real gRPC server and real relays", () => {
  it.scopedLive("measures a round trip hop by hop, with the request's count and interval", () =>
    Effect.gen(function* () {
      const { call, outcomes } = yield* measureService()
      const started = performance.now()
      const reply = Either.getOrThrow(yield* call({ path: [1, 2, 3, 1], families: [4], count: 4, intervalMillis: 30 }))
      expect(performance.now() - started).toBeLessThan(5000)
      expect(reply).toMatchObject({ site: 1, path: [1, 2, 3, 1], families: [0, 4, 4, 4], sent: 4, received: 4 })
      expect(reply.count).toBe(4)
      expect(reply.intervalMillis).toBe(30)
      expect(reply.rttMs).toBeGreaterThan(0)
      expect(reply.relayResidenceMs).toBeGreaterThanOrEqual(0)
      expect(reply.hops.map((h) => [h.from, h.to, h.index, h.sent, h.received])).toEqual([
        [1, 2, 1, 4, 4],
        [2, 3, 2, 4, 4],
      ])
      for (const h of reply.hops) expect(h.rttMs).toBeGreaterThan(0)
      // defaults (count 5) and a palindrome: its far half is the path itself
      const back = Either.getOrThrow(yield* call({ path: [1, 2, 3, 2, 1] }))
      expect(back.sent).toBe(5)
      expect(back.hops.map((h) => h.to)).toEqual([2, 3])
      // an unbound hop: the path is lost, the hop before it answers
      const lost = Either.getOrThrow(yield* call({ path: [1, 2, 1], families: [6] }))
      expect(lost.received).toBe(0)
      expect(lost.rttMs).toBeUndefined()
      expect(yield* outcomes).toEqual({ ok: 3 })
    }),
  )

  it.scopedLive("bad input → INVALID_ARGUMENT naming the rule; nothing is sent", () =>
    Effect.gen(function* () {
      const { call, outcomes } = yield* measureService()
      const cases: ReadonlyArray<[Partial<pb.PathPingRequest>, RegExp]> = [
        [{ path: [1, 1] }, /^path: needs at least 3 sites/],
        [{ path: [2, 1, 2] }, /must start and end at this site \(1\)/],
        [{ path: [1, 7, 1] }, /site\(s\) 7 not known here/],
        [{ path: [1, 2, 1], families: [5] }, /^families:/],
        [{ path: [1, 2, 1], count: 99 }, /^count:/],
      ]
      for (const [request, detail] of cases) {
        const error = Either.getLeft(yield* call(request))
        expect(error._tag).toBe("Some")
        if (error._tag === "Some") {
          expect(error.value.code).toBe(grpc.status.INVALID_ARGUMENT)
          expect(error.value.details).toMatch(detail)
        }
      }
      expect(yield* outcomes).toEqual({ invalid: 5 })
    }),
  )

  it.scopedLive("a caller beyond its burst or concurrency gets RESOURCE_EXHAUSTED", () =>
    Effect.gen(function* () {
      const { call, outcomes } = yield* measureService({ burst: 3, requestsPerSecond: 0.01, concurrentPerCaller: 1 })
      const quick = { path: [1, 2, 1], count: 1, intervalMillis: 20 }
      // two at once: one runs, the other is refused at once
      const both = yield* Effect.all([call(quick), call(quick)], { concurrency: 2 })
      const codes = both.map((r) => (Either.isLeft(r) ? r.left.code : grpc.status.OK)).sort()
      expect(codes).toEqual([grpc.status.OK, grpc.status.RESOURCE_EXHAUSTED].sort())
      // the burst of 3: two more pass, the next is refused
      expect(Either.isRight(yield* call(quick))).toBe(true)
      expect(Either.isRight(yield* call(quick))).toBe(true)
      const refused = yield* call(quick)
      expect(Either.isLeft(refused) && refused.left.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
      expect(Either.isLeft(refused) && refused.left.details).toMatch(/asked too often/)
      expect(yield* outcomes).toEqual({ ok: 3, rate_limited: 2 })
    }),
  )

  it.scopedLive("UNAVAILABLE while this site's relay has no socket", () =>
    Effect.gen(function* () {
      const { call, outcomes } = yield* measureService({}, false)
      const reply = yield* call({ path: [1, 2, 1] })
      expect(Either.isLeft(reply) && reply.left.code).toBe(grpc.status.UNAVAILABLE)
      expect(yield* outcomes).toEqual({ unavailable: 1 })
    }),
  )

  it.scopedLive("a client deadline shorter than the run cancels it; the server counts it and goes on serving", () =>
    Effect.gen(function* () {
      const { call, outcomes } = yield* measureService()
      const reply = yield* call({ path: [1, 2, 3, 1], count: 20, intervalMillis: 100 }, 300)
      expect(Either.isLeft(reply) && reply.left.code).toBe(grpc.status.DEADLINE_EXCEEDED)
      yield* Effect.sleep("200 millis")
      expect(yield* outcomes).toEqual({ cancelled: 1 })
      expect(Either.isRight(yield* call({ path: [1, 2, 1], count: 2, intervalMillis: 20 }))).toBe(true)
    }),
  )

  it.scopedLive("keeps the path series of only the last keptPathSeries on-demand paths", () =>
    Effect.gen(function* () {
      const { call, metrics } = yield* measureService({ keptPathSeries: 2, burst: 10 })
      const quick = { count: 1, intervalMillis: 20, families: [4] }
      for (const path of [
        [1, 2, 1],
        [1, 3, 1],
        [1, 2, 3, 1],
      ])
        Either.getOrThrow(yield* call({ ...quick, path }))
      const paths = yield* Effect.promise(async () => {
        const m = await metrics.pathRtt.get()
        return [...new Set(m.values.map((v) => v.labels.path))].sort()
      })
      expect(paths).toEqual(["1-2v4-3v4-1v4", "1-3v4-1v4"])
    }),
  )
})
