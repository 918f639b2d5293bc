// The control protocol's edges: any input line gets exactly one well-formed answer; the client
// gives up on a relay that does not answer, or is not there, within its timeouts.
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { fc, it as fcit } from "@fast-check/vitest"
import { Effect, Exit, Layer, ManagedRuntime } from "effect"
import { connectLinkEmuClient } from "../../src/linkemu/Client.js"
import { answerLine } from "../../src/linkemu/ControlServer.js"
import { LinkEmulator } from "../../src/linkemu/LinkEmulator.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "linkemu-proto-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
)

describe("linkemu control protocol", () => {
  const runtime = ManagedRuntime.make(Layer.fresh(LinkEmulator.layer()))

  const answer = (line: string) =>
    runtime.runPromise(
      Effect.gen(function* () {
        const emu = yield* LinkEmulator
        return yield* answerLine(emu, line, () => {})
      }),
    )

  const requestArb = fc.oneof(
    fc.json(),
    fc.string(),
    fc
      .record({
        op: fc.constantFrom("ping", "addPair", "removePair", "setImpairment", "stats", "launch"),
        id: fc.option(fc.string(), { nil: undefined }),
        direction: fc.option(fc.constantFrom("a->b", "b->a", "both", "up"), { nil: undefined }),
        impairment: fc.option(fc.dictionary(fc.constantFrom("delayMs", "lossRatio", "down", "x"), fc.jsonValue()), {
          nil: undefined,
        }),
        tag: fc.option(fc.oneof(fc.string(), fc.integer()), { nil: undefined }),
      })
      .map((r) => JSON.stringify(r)),
  )

  fcit.prop([requestArb], { numRuns: 300 })("answers any line with ok and, on failure, an error text", async (line) => {
    const reply = await answer(line)
    expect(typeof reply.ok).toBe("boolean")
    if (reply.ok === false) expect(typeof reply.error === "string" && reply.error.length > 0).toBe(true)
    // the answer is one JSON line
    expect(JSON.stringify(reply)).not.toContain("\n")
  })

  it("never reports success for an op it does not know", async () => {
    expect((await answer(`{"op":"shutdown","extra":1}`)).ok).toBe(false)
    expect((await answer(`{"op":"ping","tag":{"a":1}}`)).ok).toBe(false)
    await runtime.dispose()
  })

  it.scopedLive("client connect gives up after its timeout when nothing listens", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const started = Date.now()
      const exit = yield* connectLinkEmuClient(join(dir, "absent.sock"), { connectTimeoutMs: 300 }).pipe(Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(Date.now() - started).toBeLessThan(5000)
    }),
  )

  it.scopedLive("a request to a relay that never answers fails, and the connection is not reused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "mute.sock")
      // a real unix-socket server that reads requests and never answers
      const server = yield* Effect.acquireRelease(
        Effect.async<ReturnType<typeof createServer>>((resume) => {
          const s = createServer((conn) => conn.resume())
          s.listen(path, () => resume(Effect.succeed(s)))
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.close(() => resume(Effect.void))
          }),
      )
      expect(server.listening && existsSync(path)).toBe(true)
      const client = yield* connectLinkEmuClient(path, { requestTimeoutMs: 300 })
      const started = Date.now()
      const first = yield* client.ping.pipe(Effect.flip)
      expect(first._tag).toBe("LinkEmuConnectionLost")
      expect(Date.now() - started).toBeLessThan(3000)
      const second = yield* client.stats().pipe(Effect.flip)
      expect(second._tag).toBe("LinkEmuConnectionLost")
    }),
  )
})
