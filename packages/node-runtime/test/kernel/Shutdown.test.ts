/**
 * Shutdown behaviour of the installer as the daemon runs it (a child process under
 * `NodeRuntime.runMain`): SIGTERM withdraws every managed route before exit (and the time it
 * takes is printed), SIGKILL leaves them, and the next start reconciles the leftovers to its
 * own desired set. Needs root (a namespace); skipped with a reason otherwise.
 */
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import type { KernelRoute } from "@net-perf/engine"
import { Effect, Schema } from "effect"
import { execa } from "execa"
import { describe } from "vitest"
import { IpRouteJson } from "../../src/kernel/KernelTable.js"
import { type Child, isRoot, netns, runPrefix, sh, stopProcess } from "./Netns.js"

if (!isRoot) console.warn("Shutdown.test.ts: skipped, needs root to create network namespaces")

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, "../../../..")

const managed = (ns: string) =>
  Effect.all([4, 6].map((f) => sh("ip", ["-n", ns, `-${f}`, "-json", "route", "show", "proto", "201"]))).pipe(
    Effect.flatMap((outs) =>
      Effect.forEach(outs, (o) => Schema.decodeUnknown(Schema.parseJson(Schema.Array(IpRouteJson)))(o)),
    ),
    Effect.map((rs) =>
      rs
        .flat()
        .map((r) => `${r.dst} ${r.dev}`)
        .sort(),
    ),
    Effect.orDie,
  )

/** Starts the installer process; resolves once it printed READY. Killed (if still alive) on scope close. */
const startInstaller = (ns: string, desired: ReadonlyArray<KernelRoute>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = execa(
        join(repoRoot, "node_modules/.bin/vite-node"),
        ["--root", repoRoot, join(here, "installerProcess.ts"), ns, JSON.stringify(desired)],
        { reject: false, stdin: "ignore", cwd: repoRoot },
      )
      await new Promise<void>((resolve, reject) => {
        let out = ""
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString()
          if (out.includes("READY")) resolve()
        })
        void child.then((r) => reject(new Error(`installer exited early: ${r.stderr}`)))
      })
      // Wrapped: returning the (thenable) child itself would await its exit.
      return { child: child as Child }
    }),
    ({ child }) => stopProcess(child),
  ).pipe(Effect.map(({ child }) => child))

const route = (prefix: string, device: string): KernelRoute => ({ prefix, device, metric: 10, protocol: 201 })

describe.skipIf(!isRoot)("installer shutdown in a daemon-like process", () => {
  it.scopedLive(
    "SIGTERM withdraws all managed routes; SIGKILL leaves them and the next start reconciles",
    () =>
      Effect.gen(function* () {
        const ns = yield* netns(`${runPrefix()}s`)
        for (const [dev, peer] of [
          ["wg1.2_v4", "p2"],
          ["wg1.3_v4", "p3"],
        ] as const) {
          yield* sh("ip", ["-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer])
          yield* sh("ip", ["-n", ns, "link", "set", dev, "up"])
          yield* sh("ip", ["-n", ns, "link", "set", peer, "up"])
        }
        const first = [
          route("10.201.2.0/24", "wg1.2_v4"),
          route("fdac:c9:2::/64", "wg1.2_v4"),
          route("10.201.3.0/24", "wg1.3_v4"),
        ]

        const graceful = yield* startInstaller(ns, first)
        expect(yield* managed(ns)).toEqual([
          "10.201.2.0/24 wg1.2_v4",
          "10.201.3.0/24 wg1.3_v4",
          "fdac:c9:2::/64 wg1.2_v4",
        ])
        const t0 = performance.now()
        graceful.kill("SIGTERM")
        const exited = yield* Effect.promise(() => graceful)
        expect(exited).toMatchObject({ exitCode: 0 })
        const withdrawMs = performance.now() - t0
        expect(yield* managed(ns)).toEqual([])
        console.log(`SIGTERM → process exited with routes withdrawn: ${withdrawMs.toFixed(0)} ms (3 routes)`)

        const crashed = yield* startInstaller(ns, first)
        crashed.kill("SIGKILL")
        yield* Effect.promise(() => crashed)
        expect((yield* managed(ns)).length).toBe(3)

        const second = [route("10.201.2.0/24", "wg1.3_v4")]
        const restarted = yield* startInstaller(ns, second)
        expect(yield* managed(ns)).toEqual(["10.201.2.0/24 wg1.3_v4"])
        restarted.kill("SIGINT")
        yield* Effect.promise(() => restarted)
        expect(yield* managed(ns)).toEqual([])
      }),
    90_000,
  )
})
