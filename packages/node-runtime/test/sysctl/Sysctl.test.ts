/**
 * Sysctl: the plan from the configuration (pure), applying to a file tree (changed/unchanged/
 * failed reporting), and the real /proc/sys of a namespace this test creates (per-netns keys
 * like net.ipv4.conf.*), applied by the real service running inside that namespace.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, Schema } from "effect"
import { describe } from "vitest"
import { makeSysctl, planSysctl, SysctlConfig, type SysctlResult } from "../../src/sysctl/Sysctl.js"
import { isRoot, netns, runPrefix, sh } from "../kernel/Netns.js"

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, "../../../..")
const defaults = Schema.decodeUnknownSync(SysctlConfig)({ enabled: true })

describe("planSysctl", () => {
  it("applies REFERENCE §10 defaults to wg*, en* and lo; accept_ra 0 on tunnels, 2 elsewhere", () => {
    const plan = planSysctl(defaults, ["lo", "wg1.2_v4", "enp1s0", "eth0", "veth9"])
    const byKey = new Map(plan.map((w) => [w.key, w]))
    expect(byKey.get("net.ipv4.conf.all.rp_filter")?.value).toBe("0")
    expect(byKey.get("net.ipv6.conf.all.forwarding")?.value).toBe("1")
    expect(byKey.get("net.ipv4.conf.wg1/2_v4.forwarding")).toEqual({
      key: "net.ipv4.conf.wg1/2_v4.forwarding",
      path: "net/ipv4/conf/wg1.2_v4/forwarding",
      value: "1",
    })
    expect(byKey.get("net.ipv6.conf.wg1/2_v4.accept_ra")?.value).toBe("0")
    expect(byKey.get("net.ipv6.conf.enp1s0.accept_ra")?.value).toBe("2")
    expect(byKey.get("net.ipv6.conf.lo.accept_ra")?.value).toBe("2")
    expect([...byKey.keys()].some((k) => k.includes("eth0") || k.includes("veth9"))).toBe(false)
    expect(plan).toHaveLength(7 + 3 * 6)
  })
  it("is configurable: custom globals and rules, later rules override", () => {
    const config = Schema.decodeUnknownSync(SysctlConfig)({
      global: { "net.ipv4.ip_forward": "1" },
      interfaces: [
        { match: ["tun*"], settings: { "net.ipv4.conf.{if}.rp_filter": "2" } },
        { match: ["tun0"], settings: { "net.ipv4.conf.{if}.rp_filter": "0" } },
      ],
    })
    expect(config.enabled).toBe(false)
    expect(planSysctl(config, ["tun0", "tun1"]).map((w) => `${w.key}=${w.value}`)).toEqual([
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.tun0.rp_filter=0",
      "net.ipv4.conf.tun1.rp_filter=2",
    ])
  })
})

describe("makeSysctl on a file tree", () => {
  it.scopedLive("writes only differing keys, reports previous values, reports failures without failing", () =>
    Effect.gen(function* () {
      const root = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "np-sysctl-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
      )
      const files: Record<string, string> = {
        "net/ipv4/conf/all/rp_filter": "1\n",
        "net/ipv4/conf/wg1.2_v4/rp_filter": "0\n",
      }
      for (const [p, v] of Object.entries(files)) {
        yield* Effect.promise(() => mkdir(dirname(join(root, p)), { recursive: true }))
        yield* Effect.promise(() => writeFile(join(root, p), v))
      }
      // A directory where a file should be: the write fails like a read-only key would.
      yield* Effect.promise(() => mkdir(join(root, "net/ipv4/conf/wg1.2_v4/forwarding"), { recursive: true }))
      const config = Schema.decodeUnknownSync(SysctlConfig)({
        global: { "net.ipv4.conf.all.rp_filter": "0" },
        interfaces: [
          { match: ["wg*"], settings: { "net.ipv4.conf.{if}.rp_filter": "0", "net.ipv4.conf.{if}.forwarding": "1" } },
        ],
      })
      const sysctl = makeSysctl(config, { root })
      expect(yield* sysctl.interfaces).toEqual(["wg1.2_v4"])
      const results = yield* sysctl.apply().pipe(Logger.withMinimumLogLevel(LogLevel.None))
      const outcome = (r: SysctlResult) => `${r.key}: ${r.previous} -> ${r.value} ${r.outcome}`
      expect(results.map(outcome)).toEqual([
        "net.ipv4.conf.all.rp_filter: 1 -> 0 changed",
        "net.ipv4.conf.wg1/2_v4.rp_filter: 0 -> 0 unchanged",
        "net.ipv4.conf.wg1/2_v4.forwarding: null -> 1 failed",
      ])
      expect(results[2]!.error).toMatch(/EISDIR/)
      expect(yield* Effect.promise(() => readFile(join(root, "net/ipv4/conf/all/rp_filter"), "utf8"))).toBe("0")
      const again = yield* sysctl.applyInterface("wg1.2_v4").pipe(Logger.withMinimumLogLevel(LogLevel.None))
      expect(again.map((r) => r.outcome)).toEqual(["unchanged", "failed"])
    }),
  )
})

describe.skipIf(!isRoot)("Sysctl in a network namespace (real /proc/sys)", () => {
  const runInside = (ns: string, config: unknown) =>
    sh("ip", [
      "netns",
      "exec",
      ns,
      join(repoRoot, "node_modules/.bin/vite-node"),
      "--root",
      repoRoot,
      join(here, "applyInNetns.ts"),
      JSON.stringify(config),
    ]).pipe(Effect.map((out) => JSON.parse(out.trim().split("\n").at(-1)!) as ReadonlyArray<SysctlResult>))
  const read = (ns: string, path: string) => sh("ip", ["netns", "exec", ns, "cat", `/proc/sys/${path}`])

  it.scopedLive(
    "applies per-netns keys to the namespace's own interfaces, idempotently, leaving the host alone",
    () =>
      Effect.gen(function* () {
        const ns = yield* netns(`${runPrefix()}y`)
        yield* sh("ip", ["-n", ns, "link", "add", "wg1.2_v4", "type", "veth", "peer", "name", "p2"])
        const hostBefore = yield* Effect.promise(() => readFile("/proc/sys/net/ipv4/conf/all/route_localnet", "utf8"))
        yield* sh("ip", ["netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/wg1.2_v4/rp_filter"])

        const first = yield* runInside(ns, { enabled: true })
        const rp = first.find((r) => r.key === "net.ipv4.conf.wg1/2_v4.rp_filter")
        expect(rp).toMatchObject({ previous: "1", value: "0", outcome: "changed" })
        expect(first.filter((r) => r.outcome === "failed")).toEqual([])
        expect(first.some((r) => r.key === "net.ipv4.conf.p2.forwarding")).toBe(false)
        expect((yield* read(ns, "net/ipv4/conf/wg1.2_v4/rp_filter")).trim()).toBe("0")
        expect((yield* read(ns, "net/ipv6/conf/wg1.2_v4/accept_ra")).trim()).toBe("0")
        expect((yield* read(ns, "net/ipv4/conf/lo/forwarding")).trim()).toBe("1")

        const second = yield* runInside(ns, { enabled: true })
        expect(second.every((r) => r.outcome === "unchanged")).toBe(true)
        expect(yield* Effect.promise(() => readFile("/proc/sys/net/ipv4/conf/all/route_localnet", "utf8"))).toBe(
          hostBefore,
        )
      }),
    60_000,
  )
})
