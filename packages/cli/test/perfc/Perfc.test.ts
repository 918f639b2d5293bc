import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { algorithmNames } from "@net-perf/engine"
import { type Console, Effect, Either, Fiber } from "effect"
import fc from "fast-check"
import { normalizePerfcArgs, runPerfc } from "../../src/perfc/Command.js"
import { followVia } from "../../src/perfc/Snapshot.js"
import { parseSiteList, parseTarget, resolveTargets } from "../../src/perfc/Targets.js"
import { closedPort, meshFixture, startMesh, startServer } from "./FixtureServer.js"

/** Runs perfc in-process with its stdout/stderr captured; `exit` is the code the bin would set. */
const perfc = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const out: Array<string> = []
    const base = yield* Effect.console
    const captured: Console.Console = {
      ...base,
      log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
      error: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(`stderr: ${xs.join(" ")}`)),
    }
    const exit = yield* runPerfc(normalizePerfcArgs(["node", "perfc", ...args])).pipe(
      Effect.withConsole(captured),
      Effect.as(0),
      Effect.catchAll((e) => Effect.succeed(e._tag === "PerfcExit" ? e.code : -1)),
      Effect.provide(NodeContext.layer),
    )
    return { text: out.join("\n"), exit }
  })

/** Three fixture sites plus site 3 on a closed port. */
const meshWithDeadSite = Effect.gen(function* () {
  const servers = yield* startMesh()
  const dead = yield* closedPort
  const targets = [...servers.map((s) => `${s.site}=${s.address}`), `3=127.0.0.1:${dead}`]
  return { servers, targets: targets.flatMap((t) => ["--target", t]) }
})

describe("perfc against real gRPC servers", () => {
  it.scoped("prints the original's layout with path, RTT/loss, winner and why; exit 2 when a site is down", () =>
    Effect.gen(function* () {
      const { targets } = yield* meshWithDeadSite
      const { text, exit } = yield* perfc([...targets, "--timeout", "2000"])
      expect(exit).toBe(2)
      expect(text).toMatch(/^Routing Table:\n-------------\n/)
      expect(text).toContain("Source: 0 at 127.0.0.1:")
      expect(text).toContain("Configured Algorithm: graph-least-cost")
      expect(text).toContain("Update Method: graph-least-cost (1), least-cost-bgp (1)")
      expect(text).toContain("Updated at: 2025-11-26T15:00:00.000Z")
      const row = text.split("\n").find((l) => /^\s+2\s+\[1 2\]/.test(l) && l.includes("least-cost-bgp"))
      expect(row).toBeDefined()
      // RTT 10 + 20 ms; loss 1 − 0.99·0.98 = 2.98 %; the fallback reason is shown.
      expect(row).toMatch(
        /0>1>2\s+wg0\.1_v4\s+least-cost-bgp\s+32\.00\s+30\.00\s+2\.98\s+better\s+graph-least-cost: no feasible successor/,
      )
      // Site 2 has no managed route to 0: BIRD's applies.
      expect(text).toMatch(
        /\n\s+0\s+\[\] \+bird\s+-\s+-\s+none\s+-\s+-\s+-\s+all-dead\s+measured-fastest: no measured path; graph-least-cost/,
      )
      expect(text).toMatch(/Source: 3 at 127\.0\.0\.1:\d+\n\s+ERROR: unreachable: UNAVAILABLE: /)
      expect(text).toContain("3 of 4 sites answered; unreachable: 3.")
    }),
  )

  it.scoped("--json is complete and valid", () =>
    Effect.gen(function* () {
      const { targets } = yield* meshWithDeadSite
      const { text, exit } = yield* perfc([...targets, "--json"])
      expect(exit).toBe(2)
      const view = JSON.parse(text)
      expect(view.summary).toEqual({ sites: 4, reachable: 3, unreachable: [3] })
      expect(view.sites.map((s: { site: number }) => s.site)).toEqual([0, 1, 2, 3])
      expect(view.sites[3]).toMatchObject({ ok: false, site: 3, error: { code: "UNAVAILABLE" } })
      for (const [i, fixture] of meshFixture.entries()) {
        expect(view.sites[i].ok).toBe(true)
        expect(view.sites[i].routes.map((r: { destination: number }) => r.destination)).toEqual(
          fixture.routes.map((r) => r.destination),
        )
        expect(view.sites[i].tunnels).toHaveLength(fixture.tunnels.length)
        expect(view.sites[i].version).toBe("0.1.0-test")
      }
      const to2 = view.sites[0].routes[1]
      expect(to2).toMatchObject({
        destination: 2,
        nextHop: 1,
        interfaceName: "wg0.1_v4",
        algorithm: "least-cost-bgp",
        fallbacks: [{ algorithm: "graph-least-cost", reason: "no feasible successor" }],
        costMs: 32,
        path: [0, 1, 2],
        via: [1, 2],
        viaStatus: "ok",
        hopCount: 2,
        rttMs: 30,
      })
      expect(to2.lossRatio).toBeCloseTo(1 - 0.99 * 0.98, 12)
      expect(view.sites[2].routes[0]).toMatchObject({
        destination: 0,
        nextHop: null,
        algorithm: null,
        viaStatus: "bird",
      })
      expect(view.sites[2].updatedAt).toBe("2025-11-26T15:00:00.000Z")
    }),
  )

  it.scoped("--site keeps the named sources (exit 0 when they all answered); Via still follows the others", () =>
    Effect.gen(function* () {
      const { targets } = yield* meshWithDeadSite
      const { text, exit } = yield* perfc([...targets, "--site", "0", "--json"])
      expect(exit).toBe(0)
      const view = JSON.parse(text)
      expect(view.sites.map((s: { site: number }) => s.site)).toEqual([0])
      expect(view.sites[0].routes[1].via).toEqual([1, 2])
      const down = yield* perfc([...targets, "--site", "3", "--site", "1"])
      expect(down.exit).toBe(2)
      expect(down.text).not.toContain("Source: 0")
      expect(down.text).toContain("1 of 2 sites answered; unreachable: 3.")
    }),
  )

  it.scoped(
    "--algorithm asks the daemons for each algorithm's own choice and compares it with the routes in force",
    () =>
      Effect.gen(function* () {
        const servers = yield* startMesh()
        const targets = servers.flatMap((s) => ["--target", `${s.site}=${s.address}`])
        const { text, exit } = yield* perfc([...targets, "--algorithm", "shortest-bgp", "--site", "0"])
        expect(exit).toBe(0)
        expect(servers[0]?.calls.find((c) => c.method === "getRoutes")?.request).toEqual({
          algorithms: ["shortest-bgp"],
        })
        expect(text).toContain("  Algorithm shortest-bgp: 1 of 2 next hops match the routes in force")
        // shortest-bgp's own choice for 2 is the direct tunnel; measured over wg0.2_v4: 80 ms, 20 % loss.
        expect(text).toMatch(/\n\s+2\s+\[2\]\s+0>2\s+wg0\.2_v4\s+shortest-bgp\s+1\.00\s+80\.00\s+20\.00/)
        const all = yield* perfc([...targets, "--algorithm", "all", "--json"])
        const view = JSON.parse(all.text)
        expect(view.sites[1].perAlgorithm.map((a: { algorithm: string }) => a.algorithm)).toEqual([...algorithmNames])
        const bad = yield* perfc([...targets, "--algorithm", "fastest"])
        expect(bad.exit).toBe(-1)
      }),
  )

  it.scoped("a daemon that never answers fails at the deadline; no site answering exits 3", () =>
    Effect.gen(function* () {
      const hung = yield* startServer(meshFixture[0] as (typeof meshFixture)[0], { hang: true })
      const dead = yield* closedPort
      const started = Date.now()
      const { text, exit } = yield* perfc([
        "--target",
        `0=${hung.address}`,
        "--target",
        `1=127.0.0.1:${dead}`,
        "--timeout",
        "400",
      ])
      const elapsedMs = Date.now() - started
      expect(exit).toBe(3)
      expect(text).toMatch(/Source: 0 at .*\n\s+ERROR: unreachable: DEADLINE_EXCEEDED/)
      expect(text).toContain("0 of 2 sites answered; unreachable: 0, 1.")
      expect(elapsedMs).toBeGreaterThanOrEqual(400)
      expect(elapsedMs).toBeLessThan(3000)
    }),
  )

  it.scoped("--tls-ca talks TLS to a daemon with grpc.tls; plaintext to it fails", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "np-perfc-tls-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const openssl = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
      openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=np-test-ca",
      )
      openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "site.key",
        "-out",
        "site.csr",
        "-subj",
        "/CN=127.0.0.1",
      )
      writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n")
      openssl(
        "x509",
        "-req",
        "-in",
        "site.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "site.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
      )
      const pem = (name: string) => readFileSync(join(dir, name))
      const server = yield* startServer(meshFixture[1] as (typeof meshFixture)[1], {
        tls: { ca: pem("ca.pem"), cert: pem("site.pem"), key: pem("site.key") },
      })
      const secure = yield* perfc(["--target", `1=${server.address}`, "--tls-ca", join(dir, "ca.pem"), "--json"])
      expect(secure.exit).toBe(0)
      expect(JSON.parse(secure.text).sites[0]).toMatchObject({ ok: true, site: 1, version: "0.1.0-test" })
      const plain = yield* perfc(["--target", `1=${server.address}`, "--timeout", "1000"])
      expect(plain.exit).toBe(3)
      expect(plain.text).toMatch(/ERROR: unreachable: (UNAVAILABLE|DEADLINE_EXCEEDED)/)
      const halfClient = yield* perfc([
        "--target",
        `1=${server.address}`,
        "--tls-ca",
        join(dir, "ca.pem"),
        "--tls-cert",
        join(dir, "site.pem"),
      ])
      expect(halfClient.exit).toBe(-1)
    }),
  )

  it.scopedLive("--watch redraws on a fixed period until interrupted (one JSON line per refresh)", () =>
    Effect.gen(function* () {
      const servers = yield* startMesh()
      const targets = servers.flatMap((s) => ["--target", `${s.site}=${s.address}`])
      const out: Array<string> = []
      const base = yield* Effect.console
      const fiber = yield* runPerfc(normalizePerfcArgs(["node", "perfc", ...targets, "--json", "--watch", "1"])).pipe(
        Effect.withConsole({
          ...base,
          log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void out.push(xs.join(" "))),
        }),
        Effect.provide(NodeContext.layer),
        Effect.fork,
      )
      yield* Effect.sleep("2500 millis")
      yield* Fiber.interrupt(fiber)
      // Refreshes at ~0, 1 and 2 s, each a complete view on one line.
      expect(out.length).toBeGreaterThanOrEqual(3)
      expect(out.length).toBeLessThanOrEqual(4)
      for (const line of out) expect(JSON.parse(line).summary).toEqual({ sites: 3, reachable: 3, unreachable: [] })
      const table: Array<string> = []
      const tableFiber = yield* runPerfc(normalizePerfcArgs(["node", "perfc", ...targets, "--watch"])).pipe(
        Effect.withConsole({
          ...base,
          log: (...xs: ReadonlyArray<unknown>) => Effect.sync(() => void table.push(xs.join(" "))),
        }),
        Effect.provide(NodeContext.layer),
        Effect.fork,
      )
      yield* Effect.sleep("500 millis")
      yield* Fiber.interrupt(tableFiber)
      expect(table[0]?.startsWith("\x1b[H\x1b[2JRouting Table:")).toBe(true)
      expect(table[0]).toMatch(/Every 2s, .* \(Ctrl-C to stop\)$/)
    }),
  )

  it.effect("no sites named is a clear error", () =>
    Effect.gen(function* () {
      const { text, exit } = yield* perfc([])
      expect(exit).toBe(-1)
      const failure = yield* resolveTargets({ sites: undefined, mesh: undefined, targets: [], port: 5122 }).pipe(
        Effect.flip,
        Effect.provide(NodeContext.layer),
      )
      expect(failure.message).toContain("--sites")
      expect(text).toBe("")
    }),
  )
})

describe("perfc targets", () => {
  it.effect("a mesh file gives every site's router address and the mesh's gRPC port; --target overrides", () =>
    Effect.gen(function* () {
      const mesh = join(import.meta.dirname, "../../examples/mesh-3site.yaml")
      const targets = yield* resolveTargets({ sites: "2", mesh, targets: ["7=[::1]:6000"], port: 5999 }).pipe(
        Effect.provide(NodeContext.layer),
      )
      expect(targets).toEqual([
        { site: 0, name: "ams", address: "10.201.0.1:5122" },
        { site: 1, name: "fra", address: "10.201.1.1:5122" },
        { site: 2, name: undefined, address: "10.201.2.1:5999" },
        { site: 7, name: "sgp", address: "[::1]:6000" },
      ])
    }),
  )

  it("parses site lists and targets, rejecting junk", () => {
    expect(parseSiteList("2, 0,1,1")).toEqual(Either.right([0, 1, 2]))
    expect(parseSiteList("0-3,7")).toEqual(Either.right([0, 1, 2, 3, 7]))
    expect(Either.isLeft(parseSiteList("0,x"))).toBe(true)
    expect(Either.isLeft(parseSiteList("3-1"))).toBe(true)
    expect(Either.isLeft(parseTarget("3=host"))).toBe(true)
    expect(Either.isLeft(parseTarget("3=host:99999"))).toBe(true)
    expect(Either.isLeft(parseTarget("a=host:1"))).toBe(true)
    fc.assert(
      fc.property(fc.nat(65535), fc.ipV4(), fc.integer({ min: 1, max: 65535 }), (site, host, port) => {
        expect(parseTarget(`${site}=${host}:${port}`)).toEqual(Either.right({ site, address: `${host}:${port}` }))
      }),
    )
  })

  it("normalises a bare --watch to the default period", () => {
    expect(normalizePerfcArgs(["n", "p", "--watch"])).toEqual(["n", "p", "--watch", "2"])
    expect(normalizePerfcArgs(["n", "p", "--watch", "--json"])).toEqual(["n", "p", "--watch", "2", "--json"])
    expect(normalizePerfcArgs(["n", "p", "--watch", "5"])).toEqual(["n", "p", "--watch", "5"])
  })
})

describe("followVia", () => {
  // Random next-hop tables over sites 0..n-1: null = no managed route, undefined = site not queried.
  const tables = fc.integer({ min: 2, max: 8 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      next: fc.array(
        fc.array(fc.oneof(fc.integer({ min: 0, max: n - 1 }), fc.constant(null), fc.constant(undefined)), {
          minLength: n,
          maxLength: n,
        }),
        { minLength: n, maxLength: n },
      ),
      source: fc.integer({ min: 0, max: n - 1 }),
      destination: fc.integer({ min: 0, max: n - 1 }),
    }),
  )

  it("follows the tables exactly, ends at the destination only when ok, and stops on the first repeat", () => {
    fc.assert(
      fc.property(tables, ({ n, next, source, destination }) => {
        fc.pre(source !== destination)
        const nextHopOf = (site: number, d: number) => (site === d ? null : next[site]?.[d])
        const { via, status } = followVia(source, destination, nextHopOf)
        expect(via.length).toBeLessThanOrEqual(n)
        let at = source
        for (const hop of via) {
          expect(nextHopOf(at, destination)).toBe(hop)
          at = hop
        }
        const walk = [source, ...via]
        if (status === "ok") expect(via.at(-1)).toBe(destination)
        if (status === "loop") expect(new Set(walk).size).toBe(walk.length - 1)
        else expect(new Set(walk).size).toBe(walk.length)
        if (status === "bird") expect(nextHopOf(at, destination)).toBeNull()
        if (status === "incomplete") expect(nextHopOf(at, destination)).toBeUndefined()
      }),
      { numRuns: 2000 },
    )
  })
})
