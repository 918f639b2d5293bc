import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { type Console, Duration, Effect, Fiber } from "effect"
import fc from "fast-check"
import type { MeshView, RouteView } from "../../src/perfc/Snapshot.js"
import { runPerfe } from "../../src/perfe/Command.js"
import { buildDocuments, type LastPaths } from "../../src/perfe/Documents.js"
import { backoffMillis, defaultRetryPolicy } from "../../src/perfe/Elastic.js"
import { closedPort, startMesh } from "../perfc/FixtureServer.js"
import { startBulkApiServer } from "./BulkApiServer.js"

const perfe = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const err: Array<string> = []
    const base = yield* Effect.console
    const captured: Console.Console = {
      ...base,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void err.push(xs.join(" "))),
      error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void err.push(xs.join(" "))),
    }
    const exit = yield* runPerfe(["node", "perfe", ...args]).pipe(
      Effect.withConsole(captured),
      Effect.as(0),
      Effect.catchAll((e) =>
        Effect.sync(() => {
          if (e._tag === "PerfeExit") return e.code
          err.push(`error: ${"message" in e ? e.message : e._tag}`)
          return -1
        }),
      ),
      Effect.provide(NodeContext.layer),
    )
    return { text: err.join("\n"), exit }
  })

const meshArgs = Effect.gen(function* () {
  const servers = yield* startMesh()
  const dead = yield* closedPort
  return [...servers.map((s) => `${s.site}=${s.address}`), `3=127.0.0.1:${dead}`].flatMap((t) => ["--target", t])
})

const elasticArgs = (port: number, extra: ReadonlyArray<string> = []) => [
  "--elastic-scheme",
  "http",
  "--elastic-host",
  "127.0.0.1",
  "--elastic-port",
  String(port),
  "--index",
  "np-routes",
  "--backoff",
  "40",
  ...extra,
]

describe("perfe against a bulk-API-checking HTTP server", () => {
  it.scopedLive("indexes one document per (source, destination), retries only the failed item with backoff", () =>
    Effect.gen(function* () {
      const targets = yield* meshArgs
      const api = yield* startBulkApiServer({
        auth: "elastic:s3cret",
        itemFaults: new Map([
          ["0-2", [429, 429]], // transient twice, then in
          ["1-0", [400]], // rejected for good: never retried
        ]),
      })
      const { text, exit } = yield* perfe([
        ...targets,
        ...elasticArgs(api.port, ["--elastic-password", "s3cret", "--once"]),
      ])
      expect(api.violations).toEqual([])
      expect(exit).toBe(2) // site 3 is down and one document was rejected
      expect([...api.indices.keys()]).toEqual(["np-routes"])
      // 3 sites × 2 destinations; then only 0-2 again, twice.
      expect(api.bulkRequests.map((r) => r.ids.map((id) => id.split("-").slice(0, 2).join("-")))).toEqual([
        ["0-1", "0-2", "1-0", "1-2", "2-0", "2-1"],
        ["0-2"],
        ["0-2"],
      ])
      const [first, second, third] = api.bulkRequests.map((r) => r.atMillis)
      // Backoff 40·2^attempt, jittered down to half: ≥ 20 ms then ≥ 40 ms.
      expect((second as number) - (first as number)).toBeGreaterThanOrEqual(19)
      expect((third as number) - (second as number)).toBeGreaterThanOrEqual(39)
      expect(api.documents.size).toBe(5)
      const doc02 = [...api.documents.values()].find((d) => d.pair === "0-2")
      expect(doc02).toMatchObject({
        source: 0,
        destination: 2,
        algorithm: "least-cost-bgp",
        path: [0, 1, 2],
        path_str: "0 -> 1 -> 2",
        via: [1, 2],
        via_status: "ok",
        hop_count: 2,
        cost_ms: 32,
        rtt_ms: 30,
        fallbacks: [{ algorithm: "graph-least-cost", reason: "no feasible successor" }],
        route_changed: false,
        last_path: null,
      })
      expect(typeof doc02?.["@timestamp"]).toBe("string")
      expect(Object.keys(doc02?.paths_by_algorithm as object).sort()).toEqual([
        "graph-least-cost",
        "least-cost-bgp",
        "measured-fastest",
        "shortest-bgp",
      ])
      expect(text).toContain("document 1-0-")
      expect(text).toContain("400 mapper_parsing_exception")
      expect(text).toMatch(/indexed 5\/6 documents from 3\/4 sites in 3 bulk request\(s\), 2 item retries, 1 failed/)
      expect(text).toContain("site 3 (127.0.0.1:")
    }),
  )

  it.scopedLive(
    "a bulk request failing as a whole (503) is retried; the next run seeds last paths from the index",
    () =>
      Effect.gen(function* () {
        const servers = yield* startMesh()
        const targets = servers.flatMap((s) => ["--target", `${s.site}=${s.address}`])
        const api = yield* startBulkApiServer({ requestFaults: [503] })
        const first = yield* perfe([...targets, ...elasticArgs(api.port, ["--once", "--print-routes"])])
        expect(first.exit).toBe(0)
        expect(first.text).toContain("Routing Table:")
        expect(first.text).toContain("3 of 3 sites answered.")
        expect(api.bulkRequests).toHaveLength(2)
        expect(api.bulkRequests[1]?.ids).toEqual(api.bulkRequests[0]?.ids)
        expect(api.documents.size).toBe(6)
        yield* Effect.sleep(Duration.millis(5)) // a distinct @timestamp for the second round
        const second = yield* perfe([...targets, ...elasticArgs(api.port, ["--once"])])
        expect(second.exit).toBe(0)
        expect(api.violations).toEqual([])
        expect(api.searches).toHaveLength(2)
        expect(api.searches[1]).toMatchObject({
          collapse: { field: "pair" },
          sort: [{ "@timestamp": { order: "desc" } }],
        })
        expect(api.documents.size).toBe(12)
        const latest = [...api.documents.values()]
          .filter((d) => d.pair === "0-2")
          .sort((a, b) => String(b["@timestamp"]).localeCompare(String(a["@timestamp"])))[0]
        expect(latest).toMatchObject({ route_changed: false, last_path: [0, 1, 2], last_path_str: "0 -> 1 -> 2" })
      }),
  )

  it.scopedLive("without --once it exports at start and then every interval", () =>
    Effect.gen(function* () {
      const servers = yield* startMesh()
      const targets = servers.flatMap((s) => ["--target", `${s.site}=${s.address}`])
      const api = yield* startBulkApiServer()
      const fiber = yield* Effect.fork(perfe([...targets, ...elasticArgs(api.port, ["--interval", "1"])]))
      yield* Effect.sleep(Duration.millis(2600))
      yield* Fiber.interrupt(fiber)
      expect(api.violations).toEqual([])
      // Rounds at ~0 s, 1 s and 2 s.
      expect(api.bulkRequests.length).toBeGreaterThanOrEqual(3)
      const gaps = api.bulkRequests.slice(1).map((r, i) => r.atMillis - (api.bulkRequests[i]?.atMillis ?? 0))
      for (const gap of gaps) expect(gap).toBeGreaterThan(700)
    }),
  )

  it.scopedLive("Elasticsearch down: --once fails with the node and the cause", () =>
    Effect.gen(function* () {
      const servers = yield* startMesh()
      const dead = yield* closedPort
      const { text, exit } = yield* perfe(["--target", `0=${servers[0]?.address}`, ...elasticArgs(dead, ["--once"])])
      expect(exit).toBe(-1)
      expect(text).toContain(`error: Elasticsearch HEAD /np-routes at http://127.0.0.1:${dead} failed`)
    }),
  )

  it.scopedLive("the test server itself flags bulk requests that break the documented format", () =>
    Effect.gen(function* () {
      const api = yield* startBulkApiServer()
      const post = (body: string, contentType: string) =>
        Effect.promise(() =>
          fetch(`http://127.0.0.1:${api.port}/_bulk`, {
            method: "POST",
            body,
            headers: { "content-type": contentType },
          }),
        )
      yield* post('{"index":{"_index":"a","_id":"1"}}\n{"pair":"0-1"}\n', "application/json")
      yield* post('{"index":{"_index":"a","_id":"1"}}\n{"pair":"0-1"}', "application/x-ndjson")
      yield* post('{"index":{"_index":"a"}}\n{"pair":"0-1"}\n{"index":{}}\n', "application/x-ndjson")
      expect(api.violations).toEqual([
        '_bulk Content-Type "application/json"',
        "_bulk body does not end with a newline",
        "_bulk has 3 lines: not action/document pairs",
        "action line 0 has no _id",
      ])
    }),
  )
})

describe("perfe documents", () => {
  const route = (destination: number, path: ReadonlyArray<number>): RouteView => ({
    destination,
    nextHop: path[1] ?? null,
    interfaceName: null,
    algorithm: "graph-least-cost",
    fallbacks: [],
    costMs: 1,
    metricMs: 1,
    path,
    via: path.slice(1),
    viaStatus: "ok",
    hopCount: path.length - 1,
    rttMs: null,
    lossRatio: null,
    stability: "kept",
    starved: false,
  })
  const view = (atMillis: number, paths: ReadonlyArray<ReadonlyArray<number>>): MeshView => ({
    atMillis,
    sites: [
      {
        ok: true,
        site: 0,
        name: null,
        address: "x",
        configuredAlgorithm: "graph-least-cost",
        updatedAtMillis: atMillis,
        version: null,
        node: null,
        elapsedMillis: 0,
        routes: paths.map((p) => route(p.at(-1) as number, p)),
        perAlgorithm: [],
        tunnels: null,
      },
    ],
    summary: { sites: 1, reachable: 1, unreachable: [] },
  })

  it("route_changed compares with the newest earlier path of the pair (the original kept the oldest)", () => {
    const pathTo2 = fc.constantFrom<ReadonlyArray<number>>([0, 2], [0, 1, 2], [0, 3, 2], [0, 1, 3, 2])
    fc.assert(
      fc.property(fc.array(pathTo2, { minLength: 1, maxLength: 12 }), (rounds) => {
        let last: LastPaths = new Map()
        for (const [i, path] of rounds.entries()) {
          const { documents, lastPaths } = buildDocuments(view(1000 * (i + 1), [path]), last)
          const doc = documents[0]?.document
          const previous = rounds[i - 1]
          expect(doc?.route_changed).toBe(previous !== undefined && previous.join() !== path.join())
          expect(doc?.last_path ?? null).toEqual(previous ?? null)
          expect(documents[0]?.id).toBe(`0-2-${1000 * (i + 1)}`)
          last = lastPaths
        }
      }),
    )
  })

  it("backoff doubles, is jittered within [d/2, d] and capped", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, unit) => {
        const d = Math.min(defaultRetryPolicy.maxBackoffMillis, defaultRetryPolicy.initialBackoffMillis * 2 ** attempt)
        const b = backoffMillis(defaultRetryPolicy, attempt, unit)
        expect(b).toBeGreaterThanOrEqual(Math.floor(d / 2))
        expect(b).toBeLessThanOrEqual(d)
      }),
    )
  })
})
