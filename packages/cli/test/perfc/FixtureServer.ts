/**
 * Real ManagementService gRPC servers on 127.0.0.1 (port 0) serving fixed data, for perfc/perfe
 * tests: a 3-site mesh where 0→2 goes via 1 after graph-least-cost fell back, plus helpers to get
 * a closed port (an unreachable site) and a server that never answers (a timeout).
 */
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js"
import { Management } from "@net-perf/node-runtime"
import { Effect } from "effect"

type Route = Management.Route

const route = (r: Partial<Route> & { destination: number }): Route => ({
  interfaceName: "",
  path: [],
  algorithm: "",
  fallbacks: [],
  stability: "kept",
  starved: false,
  ...r,
})

const tunnel = (
  local: number,
  remote: number,
  rttMs: number | undefined,
  lossRatio: number,
  selected: boolean,
  family = 4,
): Management.TunnelStatus => ({
  interfaceName: `wg${local}.${remote}_v${family}`,
  remote,
  family,
  state: rttMs === undefined ? "dead" : "up",
  ...(rttMs === undefined ? {} : { rttMs, costMs: rttMs + 1 }),
  jitterMs: 0.5,
  lossRatio,
  availability: 1,
  lastSampleAtMillis: 1_764_000_000_000,
  selected,
})

export const fixtureAtMillis = 1_764_169_200_000 // 2025-11-26T15:00:00Z

/** Site data: routes in force, per-algorithm choices, tunnel stats. */
export interface SiteFixture {
  readonly site: number
  readonly configuredAlgorithm: string
  readonly routes: ReadonlyArray<Route>
  readonly perAlgorithm: Readonly<Record<string, ReadonlyArray<Route>>>
  readonly tunnels: ReadonlyArray<Management.TunnelStatus>
}

export const meshFixture: ReadonlyArray<SiteFixture> = [
  {
    site: 0,
    configuredAlgorithm: "graph-least-cost",
    routes: [
      route({
        destination: 1,
        nextHop: 1,
        interfaceName: "wg0.1_v4",
        costMs: 11,
        metricMs: 11,
        path: [0, 1],
        algorithm: "graph-least-cost",
        stability: "initial",
      }),
      route({
        destination: 2,
        nextHop: 1,
        interfaceName: "wg0.1_v4",
        costMs: 32,
        metricMs: 32,
        path: [0, 1, 2],
        algorithm: "least-cost-bgp",
        fallbacks: [{ algorithm: "graph-least-cost", reason: "no feasible successor" }],
        stability: "better",
      }),
    ],
    perAlgorithm: {
      "shortest-bgp": [
        route({
          destination: 1,
          nextHop: 1,
          interfaceName: "wg0.1_v4",
          costMs: 1,
          path: [0, 1],
          algorithm: "shortest-bgp",
        }),
        route({
          destination: 2,
          nextHop: 2,
          interfaceName: "wg0.2_v4",
          costMs: 1,
          path: [0, 2],
          algorithm: "shortest-bgp",
        }),
      ],
    },
    tunnels: [tunnel(0, 1, 10, 0.01, true), tunnel(0, 2, 80, 0.2, true), tunnel(0, 2, 70, 0, false, 6)],
  },
  {
    site: 1,
    configuredAlgorithm: "graph-least-cost",
    routes: [
      route({
        destination: 0,
        nextHop: 0,
        interfaceName: "wg1.0_v4",
        costMs: 11,
        metricMs: 11,
        path: [1, 0],
        algorithm: "graph-least-cost",
      }),
      route({
        destination: 2,
        nextHop: 2,
        interfaceName: "wg1.2_v4",
        costMs: 21,
        metricMs: 21,
        path: [1, 2],
        algorithm: "graph-least-cost",
      }),
    ],
    perAlgorithm: {},
    tunnels: [tunnel(1, 0, 10, 0.01, true), tunnel(1, 2, 20, 0.02, true)],
  },
  {
    site: 2,
    configuredAlgorithm: "measured-fastest",
    routes: [
      // No managed route to 0: BIRD's applies.
      route({
        destination: 0,
        interfaceName: "",
        path: [],
        algorithm: "",
        stability: "all-dead",
        fallbacks: [
          { algorithm: "measured-fastest", reason: "no measured path" },
          { algorithm: "graph-least-cost", reason: "destination unreachable in the graph" },
        ],
      }),
      route({
        destination: 1,
        nextHop: 1,
        interfaceName: "wg2.1_v4",
        costMs: 20.5,
        metricMs: 21,
        path: [2, 1],
        algorithm: "measured-fastest",
      }),
    ],
    perAlgorithm: {},
    tunnels: [tunnel(2, 1, 20, 0.02, true), tunnel(2, 0, undefined, 1, false)],
  },
]

export interface RunningServer {
  readonly site: number
  readonly address: string
  readonly calls: Array<{ method: string; request: unknown }>
}

const implementation = (fixture: SiteFixture, calls: RunningServer["calls"], hang: boolean) => {
  const unary =
    <Req, Res>(method: string, reply: (req: Req) => Res) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      calls.push({ method, request: call.request })
      if (hang) return // never answers: the client's deadline must fire
      callback(null, reply(call.request))
    }
  return {
    getRoutes: unary<Management.GetRoutesRequest, Management.GetRoutesResponse>("getRoutes", (req) => ({
      site: fixture.site,
      atMillis: fixtureAtMillis,
      configuredAlgorithm: fixture.configuredAlgorithm,
      routes: [...fixture.routes],
      perAlgorithm: req.algorithms.map((algorithm) => ({
        algorithm,
        routes: [...(fixture.perAlgorithm[algorithm] ?? fixture.routes)].map((r) => ({ ...r, algorithm })),
      })),
    })),
    getKernelRoutes: unary<Management.Empty, Management.GetKernelRoutesResponse>("getKernelRoutes", () => ({
      routes: [],
    })),
    getLinkStats: unary<Management.Empty, Management.GetLinkStatsResponse>("getLinkStats", () => ({
      site: fixture.site,
      tunnels: [...fixture.tunnels],
    })),
    getPeers: unary<Management.Empty, Management.GetPeersResponse>("getPeers", () => ({
      site: fixture.site,
      peers: [],
    })),
    getConfig: unary<Management.Empty, Management.GetConfigResponse>("getConfig", () => ({ json: "{}" })),
    getVersion: unary<Management.Empty, Management.GetVersionResponse>("getVersion", () => ({
      version: "0.1.0-test",
      node: `site${fixture.site}`,
      startedAtMillis: fixtureAtMillis - 60_000,
    })),
  }
}

/** Starts one server per fixture (scoped: shut down at scope end). */
export const startServer = (
  fixture: SiteFixture,
  options: { hang?: boolean; tls?: { ca: Buffer; cert: Buffer; key: Buffer } } = {},
) =>
  Effect.acquireRelease(
    Effect.async<{ server: Server; running: RunningServer }, Error>((resume) => {
      const server = new Server()
      const calls: RunningServer["calls"] = []
      server.addService(Management.ManagementServiceService, implementation(fixture, calls, options.hang ?? false))
      const credentials =
        options.tls === undefined
          ? ServerCredentials.createInsecure()
          : ServerCredentials.createSsl(
              options.tls.ca,
              [{ private_key: options.tls.key, cert_chain: options.tls.cert }],
              false,
            )
      server.bindAsync("127.0.0.1:0", credentials, (error, port) => {
        if (error !== null) resume(Effect.fail(error))
        else resume(Effect.succeed({ server, running: { site: fixture.site, address: `127.0.0.1:${port}`, calls } }))
      })
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown()),
  ).pipe(Effect.map(({ running }) => running))

export const startMesh = (fixtures: ReadonlyArray<SiteFixture> = meshFixture) =>
  Effect.forEach(fixtures, (f) => startServer(f))

/** A loopback port nothing listens on: bound by a server that is then shut down. */
export const closedPort = Effect.async<number, Error>((resume) => {
  const server = new Server()
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
    if (error !== null) return resume(Effect.fail(error))
    server.tryShutdown(() => resume(Effect.succeed(port)))
  })
})
