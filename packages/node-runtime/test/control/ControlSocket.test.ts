import { mkdtemp, rm, stat } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fc from "fast-check"
import { type ControlCommand, parseControlLine, serveControlSocket } from "../../src/control/ControlSocket.js"
import { controlCommand, controlCommands } from "./ControlClient.js"

/** A real handler over a small tunnel table: what the plane does, minus discovery. */
const tableHandler = () => {
  const enabled = new Set<string>()
  let restarts = 0
  const handle = (c: ControlCommand) => {
    switch (c._tag) {
      case "WgAdd":
        if (!c.name.startsWith("wg"))
          return Effect.fail({ message: `${c.name}: does not match the tunnel name pattern` })
        enabled.add(c.name)
        return Effect.succeed("OK")
      case "WgDel":
        enabled.delete(c.name)
        return Effect.succeed("OK")
      case "WgRestart":
        restarts++
        return Effect.succeed("OK")
      case "Status":
        return Effect.succeed(JSON.stringify({ enabled: [...enabled].sort(), restarts }))
    }
  }
  return handle
}

const tempSocket = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "npctl-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
).pipe(Effect.map((dir) => join(dir, "sub", "net-perf.sock")))

describe("control line parser", () => {
  it("parses the four commands and rejects everything else with a reason", () => {
    expect(Either.getOrThrow(parseControlLine("WGADD wg1.2_v4"))).toEqual({ _tag: "WgAdd", name: "wg1.2_v4" })
    expect(Either.getOrThrow(parseControlLine("wgdel wg1.2_v4 "))).toEqual({ _tag: "WgDel", name: "wg1.2_v4" })
    expect(Either.getOrThrow(parseControlLine("WGRESTART"))).toEqual({ _tag: "WgRestart", name: undefined })
    expect(Either.getOrThrow(parseControlLine("STATUS"))).toEqual({ _tag: "Status" })
    for (const [line, reason] of [
      ["", /empty/],
      ["WGADD", /needs an interface name/],
      ["WGADD a b", /too many/],
      ["WGADD this-name-is-too-long", /not an interface name/],
      ["STATUS now", /no argument/],
      ["REBOOT", /unknown command/],
    ] as const) {
      expect(Either.flip(parseControlLine(line)).pipe(Either.getOrThrow).reason).toMatch(reason)
    }
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }),
        (s) => Either.isLeft(parseControlLine(s)) || Either.isRight(parseControlLine(s)),
      ),
    )
  })
})

describe("control socket", () => {
  it.scopedLive("answers commands in order on one connection, with mode 0660", () =>
    Effect.gen(function* () {
      const path = yield* tempSocket
      yield* serveControlSocket({ path, mode: 0o660, readTimeoutMillis: 2000 }, tableHandler())
      expect(((yield* Effect.promise(() => stat(path))).mode & 0o777).toString(8)).toBe("660")
      const replies = yield* Effect.promise(() =>
        controlCommands(path, [
          "WGADD wg1.2_v4",
          "WGADD wg1.3_v6",
          "WGDEL wg1.3_v6",
          "WGRESTART",
          "STATUS",
          "WGADD eth0",
          "NOPE",
        ]),
      )
      expect(replies).toEqual([
        "OK",
        "OK",
        "OK",
        "OK",
        JSON.stringify({ enabled: ["wg1.2_v4"], restarts: 1 }),
        "ERROR: eth0: does not match the tunnel name pattern",
        'ERROR: unknown command "NOPE" (expected WGADD, WGDEL, WGRESTART or STATUS)',
      ])
    }),
  )

  it.scopedLive("closes an idle connection after the read timeout with an ERROR line", () =>
    Effect.gen(function* () {
      const path = yield* tempSocket
      yield* serveControlSocket({ path, mode: 0o660, readTimeoutMillis: 300 }, tableHandler())
      const started = Date.now()
      const got = yield* Effect.promise(
        () =>
          new Promise<string>((resolve) => {
            let data = ""
            const s = net.connect(path)
            s.setEncoding("utf8")
            s.write("WGA") // an incomplete line
            s.on("data", (d: string) => (data += d))
            s.on("close", () => resolve(data))
          }),
      )
      expect(got).toBe("ERROR: timeout waiting for a command\n")
      expect(Date.now() - started).toBeGreaterThanOrEqual(250)
      expect(Date.now() - started).toBeLessThan(3000)
      // The server still serves new connections.
      expect(yield* Effect.promise(() => controlCommand(path, "STATUS"))).toContain("restarts")
    }),
  )

  it.scopedLive("replaces a stale socket file and removes its own on close", () =>
    Effect.gen(function* () {
      const path = yield* tempSocket
      yield* Effect.scoped(serveControlSocket({ path, mode: 0o660, readTimeoutMillis: 1000 }, tableHandler()))
      expect(
        yield* Effect.promise(() =>
          stat(path).then(
            () => true,
            () => false,
          ),
        ),
      ).toBe(false)
      yield* serveControlSocket({ path, mode: 0o660, readTimeoutMillis: 1000 }, tableHandler())
      expect(yield* Effect.promise(() => controlCommand(path, "WGRESTART wg1.2_v4"))).toBe("OK")
    }),
  )
})
