/**
 * perfc and perfe against the daemon's own ManagementService handler (`makeManagementHandler`)
 * serving real engine decisions: four NodeRouters fed 90 simulated seconds of echo probes, BGP
 * paths and a full link-state exchange, each served by a real gRPC server on 127.0.0.1. The
 * stand-in for the twin until the twin runs the daemon: every site, every destination, the
 * forwarding chains the daemons really chose, and a full matrix exported.
 */

import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Server, ServerCredentials } from "@grpc/grpc-js"
import {
  type AggregateTable,
  type BgpPath,
  ingestSamples,
  linkCost,
  NodeRouter,
  RttSample,
  SiteId,
  siteAsn,
  tableStats,
  tunnelId,
} from "@net-perf/engine"
import { Management, type ManagementSource, makeManagementHandler, tunnelSnapshotsOf } from "@net-perf/node-runtime"
import { type Console, Effect } from "effect"
import { runPerfc } from "../../src/perfc/Command.js"
import { runPerfe } from "../../src/perfe/Command.js"
import { startBulkApiServer } from "../perfe/BulkApiServer.js"

/** Round-trip ms per undirected link; 0–3 direct is bad, so 0 reaches 3 via 1. */
const linkRtt: ReadonlyArray<readonly [number, number, number]> = [
  [0, 1, 10],
  [0, 2, 15],
  [1, 2, 8],
  [0, 3, 200],
  [1, 3, 12],
  [2, 3, 9],
]
const sites = [0, 1, 2, 3]
const rttOf = (a: number, b: number) => linkRtt.find(([x, y]) => (x === a && y === b) || (x === b && y === a))?.[2]

const bgpPathsOf = (self: number): Array<BgpPath> =>
  sites.flatMap((d) =>
    d === self
      ? []
      : sites
          .filter((via) => via !== self)
          .map((via) => ({
            prefix: `10.201.${d}.0/24`,
            prefixFamily: 4 as const,
            asPath: via === d ? [siteAsn(SiteId.make(d))] : [siteAsn(SiteId.make(via)), siteAsn(SiteId.make(d))],
            nextHop: `10.201.${via}.1`,
            interface: `wg${self}.${via}_v4`,
            primary: via === d,
          })),
  )

const simulate = () => {
  const start = 1_764_169_200_000
  const routers = new Map(sites.map((s) => [s, NodeRouter.make({ self: s })]))
  const tables = new Map<number, AggregateTable>(sites.map((s) => [s, new Map()]))
  for (const [s, r] of routers) r.setBgpPaths(bgpPathsOf(s))
  let now = start
  // 90 s: past the start-up hold-down and the 30 s dwell before the first switch away from BGP.
  for (let t = 0; t <= 90; t++) {
    now = start + t * 1000
    for (const [a, b, rttMs] of linkRtt) {
      for (const [local, remote] of [
        [a, b],
        [b, a],
      ] as const) {
        const sample = new RttSample({ tunnel: tunnelId(local, remote, 4), kind: "udp-echo", atMillis: now, rttMs })
        routers.get(local)?.observe(sample)
        tables.set(local, ingestSamples(tables.get(local) ?? new Map(), [sample]))
      }
    }
    for (const r of routers.values()) r.decide(now)
    const messages = [...routers.values()].map((r) => r.advertise(now))
    for (const m of messages) for (const r of routers.values()) r.receiveLinkState(m, now)
  }
  return { routers, tables, now, start }
}

/** One real gRPC server per site, serving the daemon's management handler over its router. */
const serveMesh = Effect.gen(function* () {
  const { routers, tables, now, start } = simulate()
  return yield* Effect.forEach(sites, (site) =>
    Effect.gen(function* () {
      const router = routers.get(site) as NodeRouter
      const stats = tableStats(tables.get(site) ?? new Map(), now)
      const source: ManagementSource = {
        site: SiteId.make(site),
        configuredAlgorithm: router.config.algorithm,
        decision: Effect.sync(() => router.lastDecision),
        perAlgorithm: () => Effect.succeed([]),
        kernelRoutes: Effect.succeed([]),
        tunnels: Effect.succeed(tunnelSnapshotsOf(stats, router.lastDecision, (s) => linkCost(s))),
        peers: Effect.succeed([]),
        configJson: Effect.succeed("{}"),
        version: "e2e",
        startedAtMillis: start,
        now: () => now,
      }
      const handler = yield* makeManagementHandler(source)
      const server = yield* Effect.acquireRelease(
        Effect.sync(() => new Server()),
        (s) => Effect.sync(() => s.forceShutdown()),
      )
      server.addService(Management.ManagementServiceService, handler)
      const port = yield* Effect.async<number, Error>((resume) =>
        server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, p) =>
          resume(error === null ? Effect.succeed(p) : Effect.fail(error)),
        ),
      )
      return ["--target", `${site}=127.0.0.1:${port}`]
    }),
  ).pipe(Effect.map((args) => args.flat()))
})

const capture = <E>(run: Effect.Effect<void, E, NodeContext.NodeContext>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const base = yield* Effect.console
    const exit = yield* run.pipe(
      Effect.withConsole({
        ...base,
        log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
        error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(`stderr: ${xs.join(" ")}`)),
      } satisfies Console.Console),
      Effect.as(0),
      Effect.catchAll((e) =>
        Effect.succeed(typeof e === "object" && e !== null && "code" in e ? Number((e as { code: unknown }).code) : -1),
      ),
      Effect.provide(NodeContext.layer),
    )
    return { out, exit }
  })

describe("perfc/perfe against the daemon's management handler over real engine decisions", () => {
  it.scopedLive("perfc shows every site's routes; --json is complete and the forwarding chains match the paths", () =>
    Effect.gen(function* () {
      const targets = yield* serveMesh
      const { out, exit } = yield* capture(runPerfc(["node", "perfc", ...targets, "--json"]))
      expect(exit).toBe(0)
      const view = JSON.parse(out.join("\n"))
      expect(view.summary).toEqual({ sites: 4, reachable: 4, unreachable: [] })
      for (const site of view.sites) {
        expect(site).toMatchObject({ ok: true, configuredAlgorithm: "graph-least-cost", version: "e2e" })
        expect(site.routes.map((r: { destination: number }) => r.destination)).toEqual(
          sites.filter((d) => d !== site.site),
        )
        for (const r of site.routes) {
          expect(r.algorithm).toBe("graph-least-cost")
          expect(r.viaStatus).toBe("ok")
          // What the other daemons forward really follows the path the source expects.
          expect(r.via).toEqual(r.path.slice(1))
          // Measured RTT along the path = sum of the links' RTTs (constant probes).
          const pathRtt = r.path
            .slice(1)
            .reduce((sum: number, hop: number, i: number) => sum + (rttOf(r.path[i], hop) ?? Number.NaN), 0)
          expect(r.rttMs).toBeCloseTo(pathRtt, 6)
          expect(r.lossRatio).toBe(0)
        }
      }
      const zeroToThree = view.sites[0].routes.find((r: { destination: number }) => r.destination === 3)
      expect(zeroToThree).toMatchObject({ nextHop: 1, interfaceName: "wg0.1_v4", path: [0, 1, 3], via: [1, 3] })
      expect(zeroToThree.rttMs).toBeCloseTo(22, 6)

      const table = yield* capture(runPerfc(["node", "perfc", ...targets]))
      expect(table.exit).toBe(0)
      expect(table.out.join("\n")).toMatch(
        /\n\s+3\s+\[1 3\]\s+0>1>3\s+wg0\.1_v4\s+graph-least-cost\s+\d+\.\d\d\s+22\.00\s+0\.00/,
      )
      expect(table.out.join("\n")).toContain("4 of 4 sites answered.")
    }),
  )

  it.scopedLive("perfe exports the full matrix: one document per ordered pair", () =>
    Effect.gen(function* () {
      const targets = yield* serveMesh
      const api = yield* startBulkApiServer()
      const { exit } = yield* capture(
        runPerfe([
          "node",
          "perfe",
          ...targets,
          "--elastic-scheme",
          "http",
          "--elastic-host",
          "127.0.0.1",
          "--elastic-port",
          String(api.port),
          "--once",
        ]),
      )
      expect(exit).toBe(0)
      expect(api.violations).toEqual([])
      const pairs = [...api.documents.values()].map((d) => d.pair).sort()
      expect(pairs).toEqual(sites.flatMap((s) => sites.filter((d) => d !== s).map((d) => `${s}-${d}`)).sort())
      const doc = [...api.documents.values()].find((d) => d.pair === "0-3")
      expect(doc).toMatchObject({ path: [0, 1, 3], via: [1, 3], via_status: "ok", algorithm: "graph-least-cost" })
    }),
  )
})
