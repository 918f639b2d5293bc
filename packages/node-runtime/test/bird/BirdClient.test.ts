/**
 * The BIRD client against a fake BIRD (a real unix-socket server replaying replies captured
 * from BIRD 2.0.12 and 1.6.8): typed results, protocol edge cases (chunked replies,
 * spontaneous lines, error codes, garbage), a timeout test for every blocking step (connect
 * banner, request, BIRD 1.x second daemon), reconnect after hang-ups and restarts, and strict
 * one-request-at-a-time per socket.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Schedule, Schema } from "effect"
import { afterAll, describe } from "vitest"
import { Bird, BirdConfig, makeBird1, makeBird2 } from "../../src/bird/Bird.js"
import { makeBirdSocket } from "../../src/bird/BirdSocket.js"
import { type FakeBirdOptions, makeFakeBird } from "../../src/bird/testing/FakeBird.js"
import { loadFixture } from "./fixtures.js"

const dir = mkdtempSync(join(tmpdir(), "np-fakebird-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const socketPath = () => join(dir, `b${n++}.ctl`)

const bird2 = loadFixture("bird2")
const fast = {
  requestTimeout: "500 millis",
  reconnect: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(3))),
} as const

const fake = (o: Partial<FakeBirdOptions> = {}) =>
  makeFakeBird({ path: socketPath(), welcome: bird2.welcome, replies: bird2.replies, ...o })

const failure = <A, E>(exit: Exit.Exit<A, E>) => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  if (exit.cause._tag !== "Fail") throw new Error(`expected a typed failure, got ${exit.cause._tag}`)
  return exit.cause.error
}

describe("Bird over a fake BIRD 2", () => {
  it.scopedLive("parses protocols and routes into typed values and BgpPaths", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      const protocols = yield* bird.showProtocols
      expect(protocols.filter((p) => p.protocol === "BGP")).toHaveLength(4)
      const paths = yield* bird.bgpPaths
      expect(paths).toHaveLength(6)
      expect(paths.filter((p) => p.primary).map((p) => p.interface)).toEqual(["wg1.2_v4", "wg1.2_v4", "wg1.2_v4"])
      expect(yield* bird.versions).toEqual(["2.0.12"])
      expect(f.connectionsAccepted()).toBe(1)
    }),
  )

  it.scopedLive("the Layer provides the same service", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const paths = yield* Effect.flatMap(Bird, (b) => b.bgpPaths).pipe(
        Effect.provide(Bird.bird2({ socket: f.path, ...fast })),
      )
      expect(paths).toHaveLength(6)
    }),
  )

  it.scopedLive("a reply delivered in 7-byte chunks, with spontaneous lines mixed in, parses the same", () =>
    Effect.gen(function* () {
      const raw = bird2.replies["show route all"]!
      const withNoise = raw.replace("1008-\tType: BGP univ\n", "1008-\tType: BGP univ\n+Reconfiguring\n")
      const chunks = withNoise.match(/[\s\S]{1,7}/g)!
      const f = yield* fake({ replies: { "show route all": { _tag: "Chunked", chunks, delayMillis: 0 } } })
      const bird = yield* makeBird2({ socket: f.path, requestTimeout: "5 seconds" })
      expect(yield* bird.bgpPaths).toHaveLength(6)
    }),
  )

  it.scopedLive("8xxx and 9xxx replies are BirdReplyError and keep the connection", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      const e1 = failure(yield* Effect.exit(bird.request("show route for 10.255.0.0/16")))
      expect(e1).toMatchObject({ _tag: "BirdReplyError", code: 8001, text: "Network not found" })
      const e2 = failure(yield* Effect.exit(bird.request("show nonsense")))
      expect(e2).toMatchObject({ _tag: "BirdReplyError", code: 9001 })
      yield* bird.showProtocols
      expect(f.connectionsAccepted()).toBe(1)
    }),
  )

  it.scopedLive("a hung request times out (BirdTimeout) and the next request reconnects", () =>
    Effect.gen(function* () {
      const f = yield* fake({ replies: (c) => (c === "show route all" ? { _tag: "Hang" } : bird2.replies[c]) })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      const started = Date.now()
      const e = failure(yield* Effect.exit(bird.showRoutes))
      expect(e).toMatchObject({ _tag: "BirdTimeout", command: "show route all", timeoutMillis: 500 })
      expect(Date.now() - started).toBeLessThan(2000)
      expect((yield* bird.showProtocols).length).toBe(7)
      expect(f.connectionsAccepted()).toBe(2)
    }),
  )

  it.scopedLive("a stalled reply (half sent, then silence) times out", () =>
    Effect.gen(function* () {
      const raw = bird2.replies["show protocols"]!
      const f = yield* fake({
        replies: {
          "show protocols": { _tag: "Chunked", chunks: [raw.slice(0, 50), raw.slice(50)], delayMillis: 2000 },
        },
      })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      expect(failure(yield* Effect.exit(bird.showProtocols))).toMatchObject({ _tag: "BirdTimeout" })
    }),
  )

  it.scopedLive("a banner that never comes times out the connect step", () =>
    Effect.gen(function* () {
      const f = yield* fake({ welcome: "" })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      expect(failure(yield* Effect.exit(bird.showProtocols))).toMatchObject({ _tag: "BirdTimeout" })
    }),
  )

  it.scopedLive("hang-up in the middle of a reply is BirdUnavailable; the next request works", () =>
    Effect.gen(function* () {
      let first = true
      const f = yield* fake({
        replies: (c) => {
          if (c === "show route all" && first) {
            first = false
            return { _tag: "HangUp", partial: bird2.replies[c]!.slice(0, 300) }
          }
          return bird2.replies[c]
        },
      })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      const e = failure(yield* Effect.exit(bird.showRoutes))
      expect(e).toMatchObject({ _tag: "BirdUnavailable", socket: f.path })
      expect(yield* bird.bgpPaths).toHaveLength(6)
    }),
  )

  it.scopedLive("lines outside the protocol are a BirdParseError, not a crash; the client recovers", () =>
    Effect.gen(function* () {
      const f = yield* fake({
        replies: {
          "show protocols": "1002-fine\nthis is not bird\n0000 \n",
          "show status": bird2.replies["show status"]!,
        },
      })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      const e = failure(yield* Effect.exit(bird.showProtocols))
      expect(e).toMatchObject({ _tag: "BirdParseError", line: "this is not bird" })
      expect((yield* bird.request("show status")).code).toBe(13)
    }),
  )

  it.scopedLive("well-framed but wrong content is a BirdParseError from the Schema", () =>
    Effect.gen(function* () {
      const f = yield* fake({
        replies: { "show protocols": "1002-bgp1 BGP --- sideways 12:00:00 Established\n0000 \n" },
      })
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      expect(failure(yield* Effect.exit(bird.showProtocols))).toMatchObject({ _tag: "BirdParseError" })
    }),
  )

  it.scopedLive("an oversized reply is refused", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const sock = yield* makeBirdSocket({ socket: f.path, maxReplyBytes: 500, requestTimeout: "2 seconds" })
      expect(failure(yield* Effect.exit(sock.request("show route all")))).toMatchObject({ _tag: "BirdParseError" })
    }),
  )

  it.scopedLive("no socket: BirdUnavailable after the reconnect schedule, within the timeout", () =>
    Effect.gen(function* () {
      const path = socketPath()
      const bird = yield* makeBird2({ socket: path, ...fast })
      const e = failure(yield* Effect.exit(bird.showProtocols))
      expect(e).toMatchObject({ _tag: "BirdUnavailable", socket: path })
    }),
  )

  it.scopedLive("BIRD restarting while idle costs no failed request (reconnect on reuse)", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      yield* bird.showProtocols
      yield* f.stop
      yield* f.start
      expect((yield* bird.showProtocols).length).toBe(7)
      expect(f.connectionsAccepted()).toBe(2)
    }),
  )

  it.scopedLive("BIRD down, then back: the backoff reconnects once it listens again", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const bird = yield* makeBird2({
        socket: f.path,
        requestTimeout: "3 seconds",
        reconnect: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(40))),
      })
      yield* bird.showProtocols
      yield* f.stop
      const back = yield* Effect.fork(Effect.sleep("300 millis").pipe(Effect.zipRight(f.start)))
      expect((yield* bird.showProtocols).length).toBe(7)
      yield* back.await
    }),
  )

  it.scopedLive("concurrent requests are serialised: never two outstanding on one socket", () =>
    Effect.gen(function* () {
      const raw = bird2.replies["show protocols"]!
      const f = yield* fake({
        replies: { "show protocols": { _tag: "Chunked", chunks: [raw.slice(0, 40), raw.slice(40)], delayMillis: 5 } },
      })
      const bird = yield* makeBird2({ socket: f.path, requestTimeout: "5 seconds" })
      const results = yield* Effect.all(
        Array.from({ length: 12 }, () => bird.showProtocols),
        { concurrency: "unbounded" },
      )
      expect(results.every((r) => r.length === 7)).toBe(true)
      expect(f.maxInFlight()).toBe(1)
      expect(f.connectionsAccepted()).toBe(1)
    }),
  )

  it.scopedLive("a command with a newline is refused before it reaches BIRD", () =>
    Effect.gen(function* () {
      const f = yield* fake()
      const bird = yield* makeBird2({ socket: f.path, ...fast })
      expect(failure(yield* Effect.exit(bird.request("show status\nconfigure")))).toMatchObject({
        _tag: "BirdParseError",
      })
      expect(f.commands).toEqual([])
    }),
  )
})

describe("Bird over two fake BIRD 1.6 daemons", () => {
  const v4 = loadFixture("bird1", "bird")
  const v6 = loadFixture("bird1", "bird6")

  it.scopedLive("merges protocols and routes of bird and bird6", () =>
    Effect.gen(function* () {
      const f4 = yield* fake({ welcome: v4.welcome, replies: v4.replies })
      const f6 = yield* fake({ welcome: v6.welcome, replies: v6.replies })
      const bird = yield* makeBird1({ socket: f4.path, socket6: f6.path, ...fast })
      const protocols = yield* bird.showProtocols
      expect(protocols.map((p) => `${p.name}/${p.family}`)).toEqual([
        "device1/4",
        "st4/4",
        "l1v4/4",
        "l2v4/4",
        "device1/6",
        "st6/6",
        "l1v6/6",
        "l2v6/6",
      ])
      const paths = yield* bird.bgpPaths
      expect(paths.map((p) => p.prefix)).toEqual([
        "10.202.2.0/24",
        "10.202.2.0/24",
        "10.201.2.0/24",
        "10.201.2.0/24",
        "fdac:c9:2::/64",
        "fdac:c9:2::/64",
      ])
      expect(yield* bird.versions).toEqual(["1.6.8", "1.6.8"])
      expect((yield* bird.request("show status", 6)).code).toBe(13)
    }),
  )

  it.scopedLive("bird6 hanging times the whole query out, naming the bird6 socket", () =>
    Effect.gen(function* () {
      const f4 = yield* fake({ welcome: v4.welcome, replies: v4.replies })
      const f6 = yield* fake({ welcome: v6.welcome, replies: () => ({ _tag: "Hang" }) })
      const bird = yield* makeBird1({ socket: f4.path, socket6: f6.path, ...fast })
      expect(failure(yield* Effect.exit(bird.showRoutes))).toMatchObject({ _tag: "BirdTimeout", socket: f6.path })
    }),
  )
})

describe("BirdConfig", () => {
  it.scopedLive("decodes with defaults, names a bad field, and builds the matching Layer", () =>
    Effect.gen(function* () {
      expect(Schema.decodeUnknownSync(BirdConfig)({})).toMatchObject({
        generation: "bird2",
        socket: "/run/bird/bird.ctl",
        requestTimeoutMillis: 10_000,
      })
      const bad = Schema.decodeUnknownEither(BirdConfig)({ generation: "bird3" })
      expect(Either.isLeft(bad) && String(bad.left)).toMatch(/generation/)
      const v4 = loadFixture("bird1", "bird")
      const v6 = loadFixture("bird1", "bird6")
      const f4 = yield* fake({ welcome: v4.welcome, replies: v4.replies })
      const f6 = yield* fake({ welcome: v6.welcome, replies: v6.replies })
      const config = Schema.decodeUnknownSync(BirdConfig)({ generation: "bird1", socket: f4.path, socket6: f6.path })
      const [generation, paths] = yield* Effect.flatMap(Bird, (bird) =>
        Effect.map(bird.bgpPaths, (p) => [bird.generation, p] as const),
      ).pipe(Effect.provide(Bird.fromConfig(config)))
      expect(generation).toBe("bird1")
      expect(paths).toHaveLength(6)
    }),
  )
})
