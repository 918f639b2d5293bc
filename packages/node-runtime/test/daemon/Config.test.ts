import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import {
  aggregationOf,
  decodeConfig,
  environmentLayer,
  loadConfig,
  mergeLayers,
  parseConfigText,
} from "../../src/daemon/Config.js"

const files: Record<string, string> = {
  "/etc/net-perf/minimal.yaml": "site: 3\n",
  "/etc/net-perf/full.yaml": [
    "site: 2",
    "routing:",
    "  algorithm: measured-fastest",
    "  stability: { absoluteMarginMs: 2 }",
    "grpc:",
    "  port: 6122",
    "  hosts: [10.201.2.1]",
  ].join("\n"),
  "/etc/net-perf/bad.yaml": "site: -1\nrouting:\n  algorithm: fastest\nkernel: { metric: 1.5 }\n",
  "/etc/net-perf/typo.yaml": "site: 1\nroutnig: {}\n",
  "/etc/net-perf/broken.yaml": "site: [1\n",
}
const readFile = (path: string) => (path in files ? Effect.succeed(files[path]!) : Effect.fail(new Error("ENOENT")))

describe("daemon config", () => {
  it.effect("a site needs only its id; everything else has defaults", () =>
    Effect.gen(function* () {
      const config = yield* loadConfig({ file: "/etc/net-perf/minimal.yaml", readFile })
      expect(config.site).toBe(3)
      expect(config.routing.algorithm).toBe("graph-least-cost")
      expect(config.grpc.port).toBe(5122)
      expect(config.http.port).toBe(5120)
      expect(config.kernel.metric).toBe(20)
      expect(config.sysctl.enabled).toBe(false)
      expect(config.probes.echo.intervalMillis).toBe(1000)
      expect(config.discovery.confDir).toBe("/etc/wireguard")
    }),
  )

  it.effect(
    "RTT from ICMP (every 4 s) with the echo as level-shift witness by default; no witness once the echo is timed",
    () =>
      Effect.gen(function* () {
        const config = yield* loadConfig({ file: "/etc/net-perf/minimal.yaml", readFile })
        expect(config.probes.icmp.intervalMillis).toBe(4000)
        expect(aggregationOf(config)).toEqual({
          rttProbeKinds: ["icmp"],
          lossProbeKinds: ["icmp"],
          levelShiftWitnessKinds: ["udp-echo"],
        })
        const timed = yield* loadConfig({
          file: "/etc/net-perf/minimal.yaml",
          readFile,
          flags: { routing: { rttProbeKinds: ["udp-echo", "icmp"] } },
        })
        expect(aggregationOf(timed).levelShiftWitnessKinds).toEqual([])
        const off = yield* loadConfig({
          file: "/etc/net-perf/minimal.yaml",
          readFile,
          flags: { routing: { levelShiftWitnessKinds: [] } },
        })
        expect(aggregationOf(off).levelShiftWitnessKinds).toEqual([])
      }),
  )

  it.effect("file, then environment, then flags: later layers win", () =>
    Effect.gen(function* () {
      const config = yield* loadConfig({
        file: "/etc/net-perf/full.yaml",
        readFile,
        env: { NETPERF_GRPC__PORT: "7122", NETPERF_ROUTING__COST_MODEL: "legacy", HOME: "/root" },
        flags: { grpc: { port: 8122 } },
      })
      expect(config.site).toBe(2)
      expect(config.routing.algorithm).toBe("measured-fastest")
      expect(config.routing.costModel).toBe("legacy")
      expect(config.routing.stability?.absoluteMarginMs).toBe(2)
      expect(config.grpc.port).toBe(8122)
      expect(config.grpc.hosts).toEqual(["10.201.2.1"])
    }),
  )

  it.effect("errors name every bad field and its value", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(loadConfig({ file: "/etc/net-perf/bad.yaml", readFile }))
      expect(error._tag).toBe("ConfigError")
      expect(error.message).toContain("site")
      expect(error.message).toContain("-1")
      expect(error.message).toContain("algorithm")
      expect(error.message).toContain('"fastest"')
      expect(error.message).toContain("metric")
    }),
  )

  it.effect("an unknown key (a typo) is rejected, not ignored", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(loadConfig({ file: "/etc/net-perf/typo.yaml", readFile }))
      expect(error.message).toContain("routnig")
    }),
  )

  it.effect("unreadable and unparsable files are typed errors naming the file", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(loadConfig({ file: "/nope.yaml", readFile }))
      expect(missing.message).toContain("/nope.yaml")
      const broken = yield* Effect.flip(loadConfig({ file: "/etc/net-perf/broken.yaml", readFile }))
      expect(broken.message).toContain("broken.yaml")
    }),
  )

  it("environment names map to nested camel-case keys with typed scalars; other NETPERF_ names are not config", () => {
    expect(
      environmentLayer({
        NETPERF_SITE: "4",
        NETPERF_KERNEL__WITHDRAW_ON_EXIT: "false",
        NETPERF_DEMO_SCENARIO: "x.yaml",
        PATH: "/bin",
      }),
    ).toEqual({
      site: 4,
      kernel: { withdrawOnExit: false },
    })
  })

  it("merge replaces arrays and scalars, merges objects", () => {
    expect(mergeLayers({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } }, undefined, { d: 1 })).toEqual({
      a: { b: 1, c: [3] },
      d: 1,
    })
    expect(Either.isLeft(parseConfigText("x", "a: [\n"))).toBe(true)
    expect(Either.isRight(decodeConfig("x", { site: 0 }))).toBe(true)
  })
})
