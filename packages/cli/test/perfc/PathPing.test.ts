/**
 * `perfc pathping` in-process against a real MeasureService gRPC server on loopback that measures
 * through real 5124/udp relays (sites 1..3 at 127.0.{site}.{role}): table, --json, exit codes,
 * the daemon's errors passed through; plus properties of the path parser and of the round trip
 * built from routes in force. The twin test (PathPingTwin.test.ts) runs it against real daemons.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import {
  loadGrpcTls,
  Measure,
  MeasurementMetrics,
  makeAllowList,
  makeCa,
  makeLeaf,
  makeMeasureHandler,
  makePathRelay,
  measurePath,
  PathPingConfig,
  templateAddressing,
} from "@net-perf/node-runtime"
import { type Console, Effect, Either, Schema } from "effect"
import fc from "fast-check"
import { normalizePerfcArgs, runPerfc } from "../../src/perfc/Command.js"
import {
  familyOfInterface,
  parsePathArgs,
  pathRtts,
  type RouteInForce,
  roundTripViaRoutes,
} from "../../src/perfc/PathPing.js"

const perfc = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const err: Array<string> = []
    const base = yield* Effect.console
    const captured: Console.Console = {
      ...base,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
      error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void err.push(xs.join(" "))),
    }
    const exit = yield* runPerfc(normalizePerfcArgs(["node", "perfc", ...args])).pipe(
      Effect.withConsole(captured),
      Effect.as(0),
      Effect.catchAll((e) => Effect.succeed(e._tag === "PerfcExit" ? e.code : -1)),
      Effect.provide(NodeContext.layer),
    )
    return { stdout: out.join("\n"), stderr: err.join("\n"), exit }
  })

/** Site 1's MeasureService on 127.0.0.1 (port 0) over loopback relays for sites 1..3. */
const site1For = (credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()) =>
  Effect.gen(function* () {
    const port = 20000 + Math.floor(Math.random() * 30000)
    const addressing = templateAddressing("127.0.{site}.{role}")
    const allow = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))
    const relays = yield* Effect.forEach([1, 2, 3], (site) =>
      makePathRelay({
        localSite: site,
        bindAddresses: [addressing.address(site, 0), addressing.address(site, 4)],
        port,
        addressing,
        allow,
        rateLimit: { packetsPerSecond: 5000, burstPackets: 5000 },
        rebindIntervalMillis: 1000,
      }),
    )
    const metrics = yield* MeasurementMetrics
    const defaults = { count: 4, intervalMillis: 30, timeoutMillis: 500 }
    const config = Schema.decodeSync(PathPingConfig)({ port, ...defaults })
    const handler = yield* makeMeasureHandler({
      site: 1,
      knownSites: Effect.succeed(new Set([1, 2, 3])),
      defaults,
      measurePath: (path, families, c) =>
        measurePath(relays[0]!, 1, path, families, { ...config, ...c }).pipe(
          Effect.provideService(MeasurementMetrics, metrics),
        ),
    })
    const server = yield* Effect.acquireRelease(
      Effect.async<{ server: grpc.Server; port: number }, Error>((resume) => {
        const server = new grpc.Server()
        server.addService(Measure.MeasureServiceService, handler)
        server.bindAsync("127.0.0.1:0", credentials, (error, bound) =>
          resume(error === null ? Effect.succeed({ server, port: bound }) : Effect.fail(error)),
        )
      }),
      ({ server }) => Effect.sync(() => server.forceShutdown()),
    )
    return ["--target", `1=127.0.0.1:${server.port}`]
  }).pipe(Effect.provide(MeasurementMetrics.Default))
const site1 = site1For()

describe("perfc pathping against a real MeasureService on loopback", () => {
  it.scopedLive("prints a hop table, or JSON; exit 0", () =>
    Effect.gen(function* () {
      const target = yield* site1
      const table = yield* perfc(["pathping", "1", "1,2,3,1", "--family", "4", ...target])
      expect(table.exit, table.stderr).toBe(0)
      const lines = table.stdout.split("\n")
      expect(lines[0]).toMatch(/^pathping 1 > 2 > 3 > 1 from site 1 \(127\.0\.0\.1:\d+\): 4 × 30 ms$/)
      expect(lines[1]).toMatch(
        /^\s+Hop\s+From > To\s+Via\s+RTT ms\s+Step ms\s+Raw ms\s+Relays ms\s+Sent\s+Recv\s+Loss$/,
      )
      expect(lines[2]).toMatch(/^\s+1\s+1 > 2\s+v4\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+4\s+4\s+0 %$/)
      expect(lines[3]).toMatch(/^\s+2\s+2 > 3\s+v4\s+[\d.]+\s+-?[\d.]+\s+[\d.]+\s+[\d.]+\s+4\s+4\s+0 %$/)
      expect(lines[4]).toMatch(/^\s+all\s+1 > … > 1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+4\s+4\s+0 %$/)
      expect(table.stdout).toContain("Relays = the relays' residence")

      const json = yield* perfc([
        "pathping",
        "1",
        "1",
        "3",
        "1",
        "--count",
        "2",
        "--interval",
        "20",
        "--json",
        ...target,
      ])
      expect(json.exit, json.stderr).toBe(0)
      const reply = JSON.parse(json.stdout)
      expect(reply).toMatchObject({
        site: 1,
        path: [1, 3, 1],
        families: [0, 0, 0],
        count: 2,
        intervalMillis: 20,
        sent: 2,
        received: 2,
        lossRatio: 0,
      })
      expect(reply.rttMs).toBeGreaterThan(0)
      expect(reply.relayResidenceMs).toBeGreaterThan(0)
      expect(reply.rawRttMs).toBeCloseTo(reply.rttMs + reply.relayResidenceMs, 2)
      expect(reply.hops).toHaveLength(1)
      expect(reply.hops[0]).toMatchObject({ index: 1, from: 1, to: 3, family: 0, received: 2 })
      expect(reply.hops[0].rawRttMs).toBeCloseTo(reply.hops[0].rttMs + reply.hops[0].relayResidenceMs, 2)
    }),
  )

  it.scopedLive("every probe lost → exit 2; the daemon's INVALID_ARGUMENT → exit 1; no daemon → exit 3", () =>
    Effect.gen(function* () {
      const target = yield* site1
      // nothing is bound at 127.0.2.6 (v6 role): the path is lost, the daemon answered
      const lost = yield* perfc(["pathping", "1", "1,2,1", "--family", "6", "--json", ...target])
      expect(lost.exit).toBe(2)
      expect(JSON.parse(lost.stdout)).toMatchObject({ received: 0, rttMs: null, lossRatio: 1 })
      const unknown = yield* perfc(["pathping", "1", "1,9,1", ...target])
      expect(unknown.exit).toBe(1)
      expect(unknown.stderr).toMatch(/INVALID_ARGUMENT: path: site\(s\) 9 not known here \(known: 1,2,3\)/)
      const tooLong = yield* perfc(["pathping", "1", "1,2,1", "--count", "50", "--interval", "1000", ...target])
      expect(tooLong.exit).toBe(1)
      expect(tooLong.stderr).toMatch(/INVALID_ARGUMENT: count: .* must stay ≤ 5000 ms/)
      const local = yield* perfc(["pathping", "1", "1,2", ...target])
      expect(local.exit).toBe(1)
      expect(local.stderr).toMatch(/path 1,2: needs at least 3 sites/)
      const none = yield* perfc(["pathping", "1", "1,2,1", "--target", "1=127.0.0.1:1", "--timeout", "2000"])
      expect(none.exit).toBe(3)
      expect(none.stderr).toMatch(/site 1 \(127\.0\.0\.1:1\): UNAVAILABLE/)
      // --via-routes needs GetRoutes from the sites on the way: a daemon that does not answer → exit 3
      const noRoutes = yield* perfc(["pathping", "1", "--to", "2", "--via-routes", "--target", "1=127.0.0.1:1"])
      expect(noRoutes.exit).toBe(3)
      expect(noRoutes.stderr).toMatch(/no managed route chain from 1 to 2 \(incomplete\)/)
      const both = yield* perfc(["pathping", "1", "1,2,1", "--to", "2", "--via-routes", ...target])
      expect(both.exit).toBe(1)
      expect(both.stderr).toMatch(/give either a path, or --to <site> --via-routes/)
    }),
  )
})

describe("perfc pathping over mutual TLS (the daemon's grpc.tls)", () => {
  it.scopedLive("with the CA and a client certificate it measures; plaintext to the TLS port fails with exit 3", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "np-pathping-tls-"))),
        (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
      )
      const ca = yield* makeCa(dir, "ca")
      const server = yield* makeLeaf(dir, ca, "site1", ["127.0.0.1"])
      const client = yield* makeLeaf(dir, ca, "perfc", ["127.0.0.1"])
      const tls = yield* loadGrpcTls(server)
      const target = yield* site1For(tls.server)
      const secure = yield* perfc([
        "pathping",
        "1",
        "1,2,1",
        "--tls-ca",
        ca.certFile,
        "--tls-cert",
        client.certFile,
        "--tls-key",
        client.keyFile,
        "--json",
        ...target,
      ])
      expect(secure.exit, secure.stderr).toBe(0)
      expect(JSON.parse(secure.stdout)).toMatchObject({ path: [1, 2, 1], received: 4 })
      const plain = yield* perfc(["pathping", "1", "1,2,1", "--timeout", "2000", ...target])
      expect(plain.exit).toBe(3)
      expect(plain.stderr).toMatch(/UNAVAILABLE/)
    }),
  )
})

describe("pathping input", () => {
  it("parses 0,2,3,0 / 0 2 3 0 / 0>2>3>0 alike and rejects what the daemon would", () => {
    for (const args of [["0,2,3,0"], ["0", "2", "3", "0"], ["0>2>3>0"], ["0, 2,3", "0"]])
      expect(Either.getOrThrow(parsePathArgs(0, args))).toEqual([0, 2, 3, 0])
    expect(Either.isLeft(parsePathArgs(0, ["0,2,3"]))).toBe(true)
    expect(Either.isLeft(parsePathArgs(0, ["0,x,0"]))).toBe(true)
    expect(Either.isLeft(parsePathArgs(0, ["0,99999,0"]))).toBe(true)
    expect(Either.isLeft(parsePathArgs(0, ["0,2,2,0"]))).toBe(true)
    expect(familyOfInterface("wg0.2_v6")).toBe(6)
    expect(familyOfInterface("eth0")).toBe(0)
    expect(familyOfInterface(null)).toBe(0)
  })

  it("the routed round trip follows every site's next hop there and back, on its route's family", () => {
    // Random next-hop tables over 6 sites: the result is either a round trip that obeys them or an error.
    const table = fc.array(
      fc.array(fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }), { minLength: 6, maxLength: 6 }),
      {
        minLength: 6,
        maxLength: 6,
      },
    )
    fc.assert(
      fc.property(table, fc.array(fc.constantFrom(4, 6), { minLength: 36, maxLength: 36 }), (hops, fams) => {
        const routesOf = (x: number): ReadonlyArray<RouteInForce> =>
          (hops[x] ?? []).flatMap((next, destination) =>
            next === undefined || destination === x
              ? []
              : [{ destination, nextHop: next, interfaceName: `wg${x}.${next}_v${fams[x * 6 + destination]}` }],
          )
        const built = roundTripViaRoutes(0, 3, routesOf)
        if (Either.isLeft(built)) return
        const { path, families } = built.right
        expect(path[0]).toBe(0)
        expect(path.at(-1)).toBe(0)
        expect(families).toHaveLength(path.length - 1)
        const farthest = path.indexOf(3)
        expect(farthest).toBeGreaterThan(0)
        for (let i = 0; i + 1 < path.length; i++) {
          const destination = i < farthest ? 3 : 0
          const route = routesOf(path[i]!).find((r) => r.destination === destination)
          expect(route?.nextHop).toBe(path[i + 1])
          expect(families[i]).toBe(familyOfInterface(route?.interfaceName))
        }
      }),
      { numRuns: 3000 },
    )
  })

  it("a missing or looping route chain is an error naming where it stopped", () => {
    const routes: Record<number, ReadonlyArray<RouteInForce>> = {
      0: [{ destination: 3, nextHop: 1, interfaceName: "wg0.1_v4" }],
      1: [{ destination: 3, nextHop: 0, interfaceName: "wg1.0_v4" }],
    }
    const built = roundTripViaRoutes(0, 3, (x) => routes[x])
    expect(Either.isLeft(built) && built.left.message).toMatch(
      /no managed route chain from 0 to 3 \(loop after 0>1>0\)/,
    )
    const unanswered = roundTripViaRoutes(0, 3, (x) => (x === 0 ? routes[0] : undefined))
    expect(Either.isLeft(unanswered) && unanswered.left.message).toMatch(/\(incomplete after 0>1\)/)
  })
})

describe("pathping reply from daemons of either version", () => {
  it("the network RTT is raw − residence, whether the daemon subtracted it (rawRttMs sent) or not", () =>
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        (networkMs, residenceMs) => {
          const rawMs = networkMs + residenceMs
          const fromNew = pathRtts({ rttMs: networkMs, rawRttMs: rawMs, relayResidenceMs: residenceMs })
          const fromOld = pathRtts({ rttMs: rawMs, relayResidenceMs: residenceMs })
          return (
            fromNew.rawRttMs === rawMs &&
            fromOld.rawRttMs === rawMs &&
            Math.abs(fromNew.rttMs! - fromOld.rttMs!) <= 1e-9 * Math.max(1, rawMs) &&
            fromNew.relayResidenceMs === residenceMs &&
            fromOld.relayResidenceMs === residenceMs
          )
        },
      ),
    ))
  it("an older daemon's reply without a residence has no network RTT to give; an all-lost run has none", () => {
    expect(pathRtts({ rttMs: 5 })).toEqual({ rttMs: undefined, rawRttMs: 5, relayResidenceMs: undefined })
    expect(pathRtts({})).toEqual({ rttMs: undefined, rawRttMs: undefined, relayResidenceMs: undefined })
  })
})
