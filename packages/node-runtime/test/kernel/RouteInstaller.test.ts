/**
 * The route installer against a real kernel table, inside a namespace this test creates:
 * two veth pairs stand in for tunnels (`wg1.2_v4`, `wg1.3_v4`) plus a BIRD-like route
 * (protocol bird, metric 32) that must never be touched. Covers add/replace/delete with
 * minimal operations, idempotence, drift repair (deleted and altered routes), refusal of dead
 * and missing devices, kernel errors reported not thrown, withdrawAll, the watchdog Layer
 * (repair and withdrawal on scope close) and a property: after any sequence of desired sets
 * the kernel holds exactly the usable desired routes. Needs root; skipped with a reason otherwise.
 */
import { expect, it } from "@effect/vitest"
import { fc } from "@fast-check/vitest"
import type { KernelRoute } from "@net-perf/engine"
import { Effect, Layer, Schema } from "effect"
import { describe } from "vitest"
import { Ip, type IpService, makeIp, makeIpScoped } from "../../src/kernel/Ip.js"
import { IpRouteJson } from "../../src/kernel/KernelTable.js"
import { makeRouteInstaller, RouteInstaller } from "../../src/kernel/RouteInstaller.js"
import { addAddress, isRoot, netns, runPrefix, sh } from "./Netns.js"

if (!isRoot) console.warn("RouteInstaller.test.ts: skipped, needs root to create network namespaces")

const route = (prefix: string, device: string, extra: Partial<KernelRoute> = {}): KernelRoute => ({
  prefix,
  device,
  metric: 10,
  protocol: 201,
  ...extra,
})

/** A namespace with two "tunnels" (veth ends wg1.2_v4, wg1.3_v4; peers p2, p3) and a BIRD route. */
const lab = Effect.gen(function* () {
  const ns = yield* netns(`${runPrefix()}k`)
  for (const [dev, peer, n] of [
    ["wg1.2_v4", "p2", 2],
    ["wg1.3_v4", "p3", 3],
  ] as const) {
    yield* sh("ip", ["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer])
    yield* sh("ip", ["-n", ns, "link", "set", dev, "up"])
    yield* sh("ip", ["-n", ns, "link", "set", peer, "up"])
    yield* addAddress(ns, dev, `10.99.${n}.1/24`)
    yield* addAddress(ns, dev, `fd00:99:${n}::1/64`)
  }
  yield* sh("ip", ["-n", ns, "route", "add", "10.201.2.0/24", "via", "10.99.2.2", "proto", "bird", "metric", "32"])
  return ns
})

const kernelRoutes = (ns: string, family: 4 | 6, filter: ReadonlyArray<string> = ["proto", "201"]) =>
  sh("ip", ["-n", ns, `-${family}`, "-json", "route", "show", ...filter]).pipe(
    Effect.flatMap((out) => Schema.decodeUnknown(Schema.parseJson(Schema.Array(IpRouteJson)))(out)),
    Effect.orDie,
  )
const routeGetDev = (ns: string, dst: string) =>
  sh("ip", ["-n", ns, "-json", "route", "get", dst]).pipe(
    Effect.map((o) => (JSON.parse(o) as Array<{ dev: string }>)[0]!.dev),
  )

/** The daemon's Ip: batches and reads through one long-lived `ip -json -force -batch -`. */
const inNamespace = (ns: string) => Ip.layerScoped({ namespace: ns })

const batchProcesses = (ns: string) =>
  sh("pgrep", ["-f", `^ip -n ${ns} -json -force -batch -$`]).pipe(
    Effect.map((out) => out.split("\n").filter((l) => l.trim() !== "")),
    Effect.orElseSucceed(() => [] as Array<string>),
  )

describe.skipIf(!isRoot)("Ip with a long-lived batch process", () => {
  it.scopedLive("reports each batch's failures by its own line numbers, survives the process dying, leaves none", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      yield* Effect.scoped(
        Effect.gen(function* () {
          const ip = yield* makeIpScoped({ namespace: ns })
          const first = yield* ip.batch([
            "route add 10.201.7.0/24 dev wg1.2_v4 proto 201",
            "route add 10.201.7.0/24 dev wg1.2_v4 proto 201",
            "route add 10.201.8.0/24 dev wg1.3_v4 proto 201",
          ])
          expect(first.failures.map((f) => f.line)).toEqual([2])
          expect(first.failures[0]?.error).toMatch(/File exists/)
          expect((yield* kernelRoutes(ns, 4)).map((r) => r.dst).sort()).toEqual(["10.201.7.0/24", "10.201.8.0/24"])
          // Line numbers restart with each batch, although the process counts on.
          const second = yield* ip.batch(["route del 10.201.9.0/24", "route del 10.201.7.0/24"])
          expect(second.failures.map((f) => f.line)).toEqual([1])
          expect(yield* batchProcesses(ns)).toHaveLength(1)
          yield* sh("pkill", ["-KILL", "-f", `^ip -n ${ns} -json -force -batch -$`])
          yield* Effect.sleep("100 millis")
          // A new process for the next batch.
          const third = yield* ip.batch(["route del 10.201.8.0/24"])
          expect(third.failures).toEqual([])
          expect(yield* kernelRoutes(ns, 4)).toEqual([])
        }),
      )
      yield* Effect.sleep("100 millis")
      expect(yield* batchProcesses(ns)).toEqual([])
    }),
  )
})

describe.skipIf(!isRoot)("Ip reads through the long-lived batch process", () => {
  it.scopedLive("answer as one-shot processes do, in order with batches, one process for all, errors per read", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const oneShot = makeIp({ namespace: ns })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const ip = yield* makeIpScoped({ namespace: ns })
          const routes = Schema.Array(IpRouteJson)
          const v4 = ["route", "show", "table", "all", "proto", "bird", "root", "0.0.0.0/0"]
          expect(yield* ip.json(routes, v4)).toEqual(yield* oneShot.json(routes, v4))
          expect((yield* ip.json(routes, v4)).map((r) => r.dst)).toEqual(["10.201.2.0/24"])
          // `root ::/0` is `-6`: the v6 table of the namespace (link routes of the veths included).
          const v6 = yield* ip.json(routes, ["route", "show", "table", "all", "root", "::/0"])
          expect(v6).toEqual(yield* oneShot.json(routes, ["-6", "route", "show", "table", "all"]))
          expect(v6.length).toBeGreaterThan(0)
          // Reads see the batches written before them, and interleave with them in order.
          for (let i = 0; i < 20; i++) {
            yield* ip.batch([`route replace 10.201.${30 + i}.0/24 dev wg1.2_v4 proto 201`])
            const ours = yield* ip.json(routes, ["route", "show", "proto", "201"])
            expect(ours.map((r) => r.dst)).toContain(`10.201.${30 + i}.0/24`)
            expect(ours).toHaveLength(i + 1)
          }
          // A failing read is an IpCommandError carrying ip's message; the next read still answers.
          const bad = yield* Effect.either(ip.json(routes, ["route", "show", "table", "no-such-table-name"]))
          expect(bad._tag).toBe("Left")
          if (bad._tag === "Left") expect(bad.left.message).toMatch(/no-such-table-name|table/i)
          expect(yield* ip.json(routes, ["route", "show", "proto", "201"])).toHaveLength(20)
          // Global options cannot go on a batch line: such a read runs as its own process, same answer.
          expect(yield* ip.json(routes, ["-4", "route", "show", "proto", "201"])).toHaveLength(20)
          expect(yield* batchProcesses(ns)).toHaveLength(1)
          // Interrupted while waiting: the process is replaced, so its late answer cannot reach the next read.
          yield* ip.json(routes, ["route", "show", "proto", "201"]).pipe(Effect.timeout("0 millis"), Effect.ignore)
          expect((yield* ip.json(routes, ["route", "show", "proto", "bird"])).map((r) => r.dst)).toEqual([
            "10.201.2.0/24",
          ])
        }),
      )
      yield* Effect.sleep("100 millis")
      expect(yield* batchProcesses(ns)).toEqual([])
    }),
  )
})

describe.skipIf(!isRoot)("RouteInstaller in a namespace", () => {
  it.scopedLive("adds, keeps idempotent, replaces and deletes with minimal operations", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
      const desired = [
        route("10.201.2.0/24", "wg1.3_v4"),
        route("fdac:c9:2::/64", "wg1.3_v4"),
        route("10.201.3.0/24", "wg1.3_v4", { gateway: "10.201.3.1", source: "10.99.3.1" }),
      ]
      const first = yield* installer.setDesired(desired)
      expect(first.applied.map((o) => o._tag)).toEqual(["RouteAdd", "RouteAdd", "RouteAdd"])
      expect(first.failed).toEqual([])
      expect(first.installed).toHaveLength(3)
      // Ours (metric 10) wins over the BIRD-like route (metric 32), which is left in place.
      expect(yield* routeGetDev(ns, "10.201.2.7")).toBe("wg1.3_v4")
      expect((yield* kernelRoutes(ns, 4, ["proto", "bird"])).map((r) => r.dst)).toEqual(["10.201.2.0/24"])
      const v4 = yield* kernelRoutes(ns, 4)
      expect(v4.find((r) => r.dst === "10.201.3.0/24")).toMatchObject({
        gateway: "10.201.3.1",
        prefsrc: "10.99.3.1",
        metric: 10,
      })

      expect((yield* installer.setDesired(desired)).applied).toEqual([])

      const moved = yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4"), desired[1]!, desired[2]!])
      expect(moved.applied.map((o) => `${o._tag} ${o.route.prefix} ${o.route.device}`)).toEqual([
        "RouteReplace 10.201.2.0/24 wg1.2_v4",
      ])
      const dropped = yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4")])
      expect(dropped.applied.map((o) => o._tag)).toEqual(["RouteDelete", "RouteDelete"])
      expect((yield* kernelRoutes(ns, 6)).length).toBe(0)
    }),
  )

  it.scopedLive("setDesired diffs against the last pass: one `ip` run per change; a rejection reads back", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const base = makeIp({ namespace: ns })
      let runs = 0
      const count = (n: number) =>
        Effect.sync(() => {
          runs += n
        })
      const counted: IpService = {
        ...base,
        run: (args) => Effect.zipRight(count(1), base.run(args)),
        json: (schema, args) => Effect.zipRight(count(1), base.json(schema, args)),
        batch: (lines) => Effect.zipRight(count(lines.length === 0 ? 0 : 1), base.batch(lines)),
      }
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(Layer.succeed(Ip, counted)))
      const desired = [route("10.201.2.0/24", "wg1.3_v4"), route("fdac:c9:2::/64", "wg1.3_v4")]
      yield* installer.setDesired(desired)
      expect(runs).toBeGreaterThanOrEqual(4) // the first pass reads routes and links back
      runs = 0
      expect((yield* installer.setDesired(desired)).applied).toEqual([])
      expect(runs).toBe(0)
      const moved = yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4"), desired[1]!])
      expect(runs).toBe(1)
      expect(moved.installed.map((r) => `${r.prefix} ${r.device}`).sort()).toEqual([
        "10.201.2.0/24 wg1.2_v4",
        "fdac:c9:2::/64 wg1.3_v4",
      ])
      expect(yield* routeGetDev(ns, "10.201.2.7")).toBe("wg1.2_v4")
      // Drift is not seen by setDesired (it trusts the last pass); the watchdog's pass repairs it.
      yield* sh("ip", ["-n", ns, "route", "del", "10.201.2.0/24", "proto", "201", "metric", "10"])
      expect((yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4"), desired[1]!])).applied).toEqual([])
      expect((yield* installer.reconcile).applied.map((o) => o._tag)).toEqual(["RouteAdd"])
      expect(yield* routeGetDev(ns, "10.201.2.7")).toBe("wg1.2_v4")
      // A rejected operation: the report reads the kernel back, and so does the next setDesired.
      const bad = route("10.201.4.0/24", "wg1.2_v4", { source: "192.0.2.77" })
      runs = 0
      const rejected = yield* installer.setDesired([bad, route("10.201.2.0/24", "wg1.2_v4"), desired[1]!])
      expect(rejected.failed).toHaveLength(1)
      expect(rejected.installed.map((r) => r.prefix).sort()).toEqual(["10.201.2.0/24", "fdac:c9:2::/64"])
      expect(runs).toBe(3) // batch + both families read back
      runs = 0
      yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4"), desired[1]!])
      expect(runs).toBeGreaterThanOrEqual(3)
    }),
  )

  it.scopedLive("repairs drift: a deleted route comes back, an altered one is put right", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
      yield* installer.setDesired([route("10.201.2.0/24", "wg1.2_v4"), route("fdac:c9:2::/64", "wg1.2_v4")])
      yield* sh("ip", ["-n", ns, "route", "del", "10.201.2.0/24", "proto", "201", "metric", "10"])
      yield* sh("ip", [
        "-n",
        ns,
        "-6",
        "route",
        "replace",
        "fdac:c9:2::/64",
        "dev",
        "wg1.3_v4",
        "proto",
        "201",
        "metric",
        "10",
      ])
      const repaired = yield* installer.reconcile
      expect(repaired.applied.map((o) => o._tag).sort()).toEqual(["RouteAdd", "RouteReplace"])
      expect(yield* routeGetDev(ns, "10.201.2.9")).toBe("wg1.2_v4")
      expect(yield* routeGetDev(ns, "fdac:c9:2::9")).toBe("wg1.2_v4")
      expect((yield* installer.reconcile).applied).toEqual([])
    }),
  )

  it.scopedLive("never routes via a dead or missing device; BIRD's route applies instead", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
      const desired = [route("10.201.2.0/24", "wg1.3_v4"), route("10.201.9.0/24", "wg1.9_v4")]
      const r1 = yield* installer.setDesired(desired)
      expect(r1.refused).toEqual([{ route: desired[1], reason: "device-missing" }])
      expect(r1.installed.map((r) => r.prefix)).toEqual(["10.201.2.0/24"])
      // The tunnel loses carrier (its peer goes down): our route is removed, BIRD's takes over.
      yield* sh("ip", ["-n", ns, "link", "set", "p3", "down"])
      const r2 = yield* installer.reconcile
      expect(r2.refused.map((r) => r.reason)).toEqual(["device-down", "device-missing"])
      expect(r2.installed).toEqual([])
      expect(yield* routeGetDev(ns, "10.201.2.7")).toBe("wg1.2_v4")
      // Carrier back: the route returns on the next pass.
      yield* sh("ip", ["-n", ns, "link", "set", "p3", "up"])
      const r3 = yield* installer.reconcile
      expect(r3.installed.map((r) => `${r.prefix} ${r.device}`)).toEqual(["10.201.2.0/24 wg1.3_v4"])
    }),
  )

  it.scopedLive("kernel rejections are reported per operation, the rest still applies", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
      const bad = route("10.201.4.0/24", "wg1.2_v4", { source: "192.0.2.77" })
      const report = yield* installer.setDesired([bad, route("10.201.5.0/24", "wg1.2_v4")])
      expect(report.failed).toHaveLength(1)
      expect(report.failed[0]!.op.route).toEqual(bad)
      expect(report.failed[0]!.error).toMatch(/prefsrc|Invalid|Error/i)
      expect(report.installed.map((r) => r.prefix)).toEqual(["10.201.5.0/24"])
    }),
  )

  it.scopedLive("withdrawAll removes every managed route of both families and nothing else", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
      yield* installer.setDesired([
        route("10.201.2.0/24", "wg1.3_v4"),
        route("fdac:c9:2::/64", "wg1.3_v4"),
        route("10.201.7.7/32", "wg1.2_v4"),
      ])
      expect(yield* installer.withdrawAll).toBe(3)
      expect(yield* installer.installed).toEqual([])
      expect((yield* kernelRoutes(ns, 4, ["proto", "bird"])).length).toBe(1)
      // Forgotten desired set: the next pass does not reinstall.
      expect((yield* installer.reconcile).applied).toEqual([])
    }),
  )

  it.scopedLive("the Layer's watchdog repairs drift on its own and withdraws on scope close", () =>
    Effect.gen(function* () {
      const ns = yield* lab
      yield* Effect.scoped(
        Effect.gen(function* () {
          const installer = yield* RouteInstaller
          yield* installer.setDesired([route("10.201.2.0/24", "wg1.3_v4")])
          yield* sh("ip", ["-n", ns, "route", "del", "10.201.2.0/24", "proto", "201", "metric", "10"])
          const started = Date.now()
          while ((yield* kernelRoutes(ns, 4)).length === 0) {
            if (Date.now() - started > 5000) throw new Error("watchdog did not repair within 5 s")
            yield* Effect.sleep("50 millis")
          }
        }).pipe(
          Effect.provide(RouteInstaller.layer({ watchdogInterval: "200 millis" }).pipe(Layer.provide(inNamespace(ns)))),
        ),
      )
      expect(yield* kernelRoutes(ns, 4)).toEqual([])
    }),
  )

  it.scopedLive(
    "property: after any sequence of desired sets the kernel holds exactly the usable ones",
    () =>
      Effect.gen(function* () {
        const ns = yield* lab
        const installer = yield* makeRouteInstaller().pipe(Effect.provide(inNamespace(ns)))
        const prefixes = ["10.201.2.0/24", "10.201.3.0/24", "10.201.4.0/24", "fdac:c9:2::/64", "fdac:c9:3::/64"]
        const devices = ["wg1.2_v4", "wg1.3_v4", "wg1.8_v4"]
        const setArb = fc
          .uniqueArray(fc.tuple(fc.constantFrom(...prefixes), fc.constantFrom(...devices)), {
            selector: ([p]) => p,
            maxLength: 5,
          })
          .map((xs) => xs.map(([p, d]) => route(p, d)))
        const samples = fc.sample(fc.array(setArb, { minLength: 1, maxLength: 4 }), { numRuns: 10, seed: 201 })
        for (const sequence of samples) {
          for (const desired of sequence) {
            const report = yield* installer.setDesired(desired)
            const expected = desired.filter((r) => r.device !== "wg1.8_v4")
            const key = (r: KernelRoute) => `${r.prefix} ${r.device} ${r.metric}`
            expect(report.installed.map(key).sort()).toEqual(expected.map(key).sort())
            expect((yield* installer.installed).map(key).sort()).toEqual(expected.map(key).sort())
            expect((yield* installer.reconcile).applied).toEqual([])
          }
        }
      }),
    60_000,
  )
})
