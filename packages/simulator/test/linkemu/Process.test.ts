// The relay as its own process: control protocol over the unix socket, bad requests, and every
// way it can stop (scope close, shutdown request, SIGTERM, socket directory removed, parent died).
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connectLinkEmuClient, defaultMainPath, spawnLinkEmulator } from "../../src/linkemu/Client.js"
import { udpEnd } from "./udp.js"

const mainPath = defaultMainPath()

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "linkemu-test-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
)

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const waitUntil = (what: string, check: () => boolean, timeoutMs = 5000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep(50)
    }
  })

describe("linkemu relay process", () => {
  it("has a compiled entry point (run `npx tsc -b packages/simulator` first)", () => {
    expect(existsSync(mainPath), mainPath).toBe(true)
  })

  it.scopedLive(
    "relays through a pair configured over the control socket",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const { client, pid } = yield* spawnLinkEmulator({ controlPath: join(dir, "c.sock"), seed: 3 })
        expect(yield* client.ping).toBe(pid)
        const a = yield* udpEnd()
        const b = yield* udpEnd()
        const { listen } = yield* client.addPair({
          id: "0-1-v4",
          family: 4,
          listen: { address: "127.0.0.1", port: 0 },
          a: { address: "127.0.0.1", port: a.port },
          b: { address: "127.0.0.1", port: b.port },
          aToB: { delayMs: 15 },
        })
        expect(listen.port).toBeGreaterThan(0)
        const imps = yield* client.setImpairment("0-1-v4", "b->a", { lossRatio: 2 })
        expect(imps["b->a"].lossRatio).toBe(1)
        expect(imps["a->b"].delayMs).toBe(15)
        const sentAt = Date.now()
        yield* a.send("over", listen.port)
        const got = yield* b.waitFor(1, 2000)
        expect(got[0]?.data.toString()).toBe("over")
        expect(Date.now() - sentAt).toBeGreaterThanOrEqual(14)
        yield* b.send("back", listen.port)
        yield* Effect.sleep(100)
        expect(a.arrivals.length).toBe(0)
        const [stats] = yield* client.stats("0-1-v4")
        expect(stats!.directions["a->b"].forwarded).toBe(1)
        expect(stats!.directions["b->a"].droppedLoss).toBe(1)
        yield* client.removePair("0-1-v4")
        expect(yield* client.stats()).toEqual([])
      }),
    60_000,
  )

  it.scopedLive(
    "answers every bad request with an error line and keeps serving",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const { client } = yield* spawnLinkEmulator({ controlPath: join(dir, "c.sock") })
        const answer = (line: string) =>
          client.raw(line).pipe(Effect.map((l) => JSON.parse(l) as { ok: boolean; error?: string; tag?: unknown }))
        const bad = [
          ["not json", "invalid JSON"],
          ["[1,2]", "JSON object"],
          [`{"op":"launch"}`, "op"],
          [`{"op":"removePair"}`, "id"],
          [`{"op":"removePair","id":"none"}`, "no pair none"],
          [`{"op":"setImpairment","id":"x","direction":"up","impairment":{}}`, "direction"],
          [`{"op":"setImpairment","id":"x","direction":"both","impairment":{"delayMs":-5}}`, "impairment.delayMs"],
          [`{"op":"setImpairment","id":"x","direction":"both","impairment":{"delay":5}}`, "delay"],
          [
            `{"op":"addPair","id":"p","family":4,"listen":{"address":"::1","port":0},"a":{"address":"127.0.0.1","port":1},"b":{"address":"127.0.0.1","port":2}}`,
            "not IPv4",
          ],
          [
            `{"op":"addPair","id":"p","family":4,"listen":{"address":"nowhere","port":0},"a":{"address":"127.0.0.1","port":1},"b":{"address":"127.0.0.1","port":2}}`,
            "not an IP address",
          ],
          [
            `{"op":"addPair","id":"p","family":4,"listen":{"address":"192.0.2.1","port":0},"a":{"address":"127.0.0.1","port":1},"b":{"address":"127.0.0.1","port":2}}`,
            "cannot bind",
          ],
          [`{"op":"stats","id":"nope"}`, "no pair nope"],
        ] as const
        for (const [line, mentions] of bad) {
          const reply = yield* answer(line)
          expect(reply.ok, line).toBe(false)
          expect(reply.error, line).toContain(mentions)
        }
        const tagged = yield* answer(`{"op":"removePair","id":"none","tag":17}`)
        expect(tagged).toMatchObject({ ok: false, tag: 17 })
        const ping = yield* answer(`{"op":"ping","tag":"t"}`)
        expect(ping).toMatchObject({ ok: true, tag: "t" })
        const failed = yield* client.removePair("none").pipe(Effect.flip)
        expect(failed._tag).toBe("LinkEmuRequestFailed")
      }),
    60_000,
  )

  it.scopedLive(
    "stops and removes its socket on scope close, shutdown, SIGTERM and socket directory removal",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        // scope close (shutdown request, then signals)
        const first = join(dir, "first.sock")
        const pid1 = yield* Effect.scoped(spawnLinkEmulator({ controlPath: first }).pipe(Effect.map((r) => r.pid)))
        expect(alive(pid1)).toBe(false)
        expect(existsSync(first)).toBe(false)

        // shutdown request
        const second = join(dir, "second.sock")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const { client, pid } = yield* spawnLinkEmulator({ controlPath: second })
            yield* client.shutdown
            yield* waitUntil("the relay exits after shutdown", () => !alive(pid))
            expect(existsSync(second)).toBe(false)
          }),
        )

        // SIGTERM
        const third = join(dir, "third.sock")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const { pid } = yield* spawnLinkEmulator({ controlPath: third })
            process.kill(pid, "SIGTERM")
            yield* waitUntil("the relay exits after SIGTERM", () => !alive(pid))
            expect(existsSync(third)).toBe(false)
          }),
        )

        // the control socket's directory disappears
        const sub = mkdtempSync(join(dir, "sub-"))
        yield* Effect.scoped(
          Effect.gen(function* () {
            const { pid } = yield* spawnLinkEmulator({ controlPath: join(sub, "c.sock") })
            rmSync(sub, { recursive: true, force: true })
            yield* waitUntil("the relay exits after its directory went away", () => !alive(pid))
          }),
        )
      }),
    // four relay processes, each a Node start-up: seconds apiece when the machine is loaded
    120_000,
  )

  it.scopedLive(
    "exits when its parent process dies",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const socketPath = join(dir, "orphan.sock")
        // sh is the relay's parent; killing sh orphans the relay.
        const sh = spawn("sh", ["-c", `"${process.execPath}" "${mainPath}" --control "${socketPath}" & wait`], {
          stdio: ["ignore", "pipe", "inherit"],
        })
        const ready = yield* Effect.async<{ pid: number }>((resume) => {
          sh.stdout.once("data", (chunk: Buffer) =>
            resume(Effect.succeed(JSON.parse(chunk.toString()) as { pid: number })),
          )
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => alive(ready.pid) && process.kill(ready.pid, "SIGKILL")))
        const client = yield* connectLinkEmuClient(socketPath)
        expect(yield* client.ping).toBe(ready.pid)
        sh.kill("SIGKILL")
        yield* waitUntil("the orphaned relay exits", () => !alive(ready.pid))
        expect(existsSync(socketPath)).toBe(false)
      }),
    60_000,
  )
})
