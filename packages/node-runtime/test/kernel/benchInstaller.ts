/**
 * Benchmark (a script, not a test): route installer cost in a namespace it creates, for N
 * managed routes: first install (adds), an aligned pass (read-back only), moving every route to
 * another tunnel (replaces), drift repair after deleting 10 %, and withdrawAll.
 * Run as root: `npx vite-node packages/node-runtime/test/kernel/benchInstaller.ts [--json]`.
 */
import type { KernelRoute } from "@net-perf/engine"
import { Effect } from "effect"
import { Ip } from "../../src/kernel/Ip.js"
import { makeRouteInstaller } from "../../src/kernel/RouteInstaller.js"
import { netns, runPrefix, sh } from "./Netns.js"

const time = <A, E, R>(e: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const t0 = performance.now()
    const a = yield* e
    return [performance.now() - t0, a] as const
  })

const run = Effect.scoped(
  Effect.gen(function* () {
    const ns = yield* netns(`${runPrefix()}b`)
    for (const [dev, peer] of [
      ["wg1.2_v4", "p2"],
      ["wg1.3_v4", "p3"],
    ] as const) {
      yield* sh("ip", ["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer])
      yield* sh("ip", ["-n", ns, "link", "set", dev, "up"])
      yield* sh("ip", ["-n", ns, "link", "set", peer, "up"])
    }
    const results: Array<Record<string, number>> = []
    for (const n of [10, 100, 1000]) {
      const installer = yield* makeRouteInstaller().pipe(Effect.provide(Ip.layer({ namespace: ns })))
      const routes = (device: string): Array<KernelRoute> =>
        Array.from({ length: n }, (_, i) => ({
          prefix: i % 2 === 0 ? `10.${100 + (i >> 9)}.${(i >> 1) & 255}.0/24` : `fdac:${(i >> 1).toString(16)}::/64`,
          device,
          metric: 10,
          protocol: 201,
        }))
      const [installMs, r1] = yield* time(installer.setDesired(routes("wg1.2_v4")))
      if (r1.installed.length !== n) throw new Error(`installed ${r1.installed.length} of ${n}`)
      const [alignedMs] = yield* time(installer.reconcile)
      const [moveMs, r2] = yield* time(installer.setDesired(routes("wg1.3_v4")))
      if (r2.applied.length !== n) throw new Error("move was not n replaces")
      for (const r of routes("wg1.3_v4").slice(0, Math.max(1, n / 10)))
        yield* sh("ip", ["-n", ns, "route", "del", r.prefix, "proto", "201", "metric", "10"])
      const [repairMs, r3] = yield* time(installer.reconcile)
      if (r3.installed.length !== n) throw new Error("repair incomplete")
      const [withdrawMs, removed] = yield* time(installer.withdrawAll)
      if (removed !== n) throw new Error("withdraw incomplete")
      results.push({ routes: n, installMs, alignedMs, moveMs, repairMs, withdrawMs })
    }
    return results
  }),
)

const results = await Effect.runPromise(run)
if (process.argv.includes("--json")) console.log(JSON.stringify(results))
else
  for (const r of results)
    console.log(
      `${r.routes} routes: install ${r.installMs!.toFixed(0)} ms, aligned pass ${r.alignedMs!.toFixed(0)} ms, move all ${r.moveMs!.toFixed(0)} ms, repair 10 % ${r.repairMs!.toFixed(0)} ms, withdrawAll ${r.withdrawMs!.toFixed(0)} ms`,
    )
