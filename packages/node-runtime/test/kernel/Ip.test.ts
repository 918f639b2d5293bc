/**
 * The `Ip` command runner with real processes: a hung command is cut at the timeout, a failing
 * one carries ip's stderr, unexpected JSON is an `IpOutputError`, and batch failures are mapped
 * to their input lines (the batch test needs root for a namespace).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { describe } from "vitest"
import { makeIp } from "../../src/kernel/Ip.js"
import { IpRouteJson } from "../../src/kernel/KernelTable.js"
import { isRoot, netns, runPrefix } from "./Netns.js"

const failure = <A, E>(exit: Exit.Exit<A, E>) => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a typed failure")
  return exit.cause.error
}

describe("Ip", () => {
  it.live("a command that hangs is stopped at the timeout with IpCommandError", () =>
    Effect.gen(function* () {
      const ip = makeIp({ binary: "sleep", timeout: "200 millis" })
      const started = Date.now()
      const e = failure(yield* Effect.exit(ip.run(["10"])))
      expect(e._tag).toBe("IpCommandError")
      expect(Date.now() - started).toBeLessThan(3000)
    }),
  )
  it.live("a failing command carries its stderr and exit code", () =>
    Effect.gen(function* () {
      const e = failure(yield* Effect.exit(makeIp().run(["route", "show", "table", "no-such-table-name"])))
      expect(e).toMatchObject({ _tag: "IpCommandError", exitCode: expect.any(Number) })
      expect(e.message).toMatch(/no-such-table-name|table/i)
    }),
  )
  it.live("output that is not the expected JSON is an IpOutputError", () =>
    Effect.gen(function* () {
      const ip = makeIp({ binary: "echo" })
      const e = failure(yield* Effect.exit(ip.json(Schema.Array(IpRouteJson), ["route", "show"])))
      expect(e._tag).toBe("IpOutputError")
      const e2 = failure(yield* Effect.exit(ip.json(Schema.Array(IpRouteJson), ['[{"gateway":"10.0.0.1"}]'])))
      expect(e2).toMatchObject({ _tag: "IpOutputError", reason: expect.stringMatching(/dst/) })
    }),
  )
  it.scopedLive.skipIf(!isRoot)("batch failures are reported by input line", () =>
    Effect.gen(function* () {
      const ns = yield* netns(`${runPrefix()}i`)
      const ip = makeIp({ namespace: ns })
      const result = yield* ip.batch([
        "route replace 10.9.0.0/24 dev lo proto 201 metric 10",
        "route replace 10.9.1.0/24 dev nosuchdev proto 201 metric 10",
        "route replace 10.9.2.0/24 dev lo proto 201 metric 10",
        "route del 10.9.3.0/24 proto 201 metric 10",
      ])
      expect(result.failures.map((f) => f.line)).toEqual([2, 4])
      expect(result.failures[0]!.error).toMatch(/nosuchdev/)
      const routes = yield* ip.json(Schema.Array(IpRouteJson), ["route", "show", "proto", "201"])
      expect(routes.map((r) => r.dst)).toEqual(["10.9.0.0/24", "10.9.2.0/24"])
    }),
  )
})
