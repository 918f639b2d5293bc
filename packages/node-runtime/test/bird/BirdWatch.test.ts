/** watchBgpPaths against a fake BIRD whose table changes and which goes down and back. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Queue, Schedule, Stream } from "effect"
import { afterAll, describe } from "vitest"
import { makeBird2 } from "../../src/bird/Bird.js"
import { type BirdTableEvent, watchBgpPaths } from "../../src/bird/BirdWatch.js"
import { makeFakeBird } from "../../src/bird/testing/FakeBird.js"
import { loadFixture } from "./fixtures.js"

const dir = mkdtempSync(join(tmpdir(), "np-birdwatch-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const fixture = loadFixture("bird2")

describe("watchBgpPaths", () => {
  it.scopedLive("emits the table once, then only changes and outages", () =>
    Effect.gen(function* () {
      const f = yield* makeFakeBird({ path: join(dir, "w.ctl"), welcome: fixture.welcome, replies: fixture.replies })
      const bird = yield* makeBird2({
        socket: f.path,
        requestTimeout: "300 millis",
        reconnect: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
      })
      const events = yield* Queue.unbounded<BirdTableEvent>()
      const fiber = yield* Stream.runForEach(watchBgpPaths(bird, "30 millis"), (e) => Queue.offer(events, e)).pipe(
        Effect.fork,
      )
      const next = Queue.take(events).pipe(
        Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("no event") }),
      )

      const first = yield* next
      expect(first._tag === "Paths" && first.paths.length).toBe(6)
      yield* Effect.sleep("200 millis")
      expect(yield* Queue.size(events)).toBe(0) // unchanged table: nothing emitted

      // Timestamps change but paths do not: still nothing.
      f.setReplies({
        ...fixture.replies,
        "show route all": fixture.replies["show route all"]!.replaceAll("14:55", "15:56"),
      })
      yield* Effect.sleep("200 millis")
      expect(yield* Queue.size(events)).toBe(0)

      // A path disappears (the link-2 path of 10.201.2.0/24 is withdrawn).
      const raw = fixture.replies["show route all"]!
      const cut = raw.indexOf("1007-                     unicast [l2v4", raw.indexOf("10.201.2.0/24"))
      const end = raw.indexOf("1007-\n", cut)
      f.setReplies({ ...fixture.replies, "show route all": raw.slice(0, cut) + raw.slice(end) })
      const changed = yield* next
      expect(changed._tag === "Paths" && changed.paths.length).toBe(5)

      yield* f.stop
      const down = yield* next
      expect(down._tag).toBe("Unavailable")
      yield* Effect.sleep("200 millis")
      expect(yield* Queue.size(events)).toBe(0) // one event per outage
      yield* f.start
      const back = yield* next
      expect(back._tag === "Paths" && back.paths.length).toBe(5)
      yield* Fiber.interrupt(fiber)
      expect(Chunk.size(yield* Queue.takeAll(events))).toBe(0)
    }),
  )
})
