import { execFileSync } from "node:child_process"
import { fc, test } from "@fast-check/vitest"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import {
  nextHopsFromRoutes,
  parsePingLine,
  parseWatchStamp,
  routesFromDump,
  startRouteSampler,
} from "../../src/twin/Sampler.js"

describe("route dump parsing", () => {
  test.prop([
    fc.dictionary(
      fc.integer({ min: 0, max: 250 }).map(String),
      fc.tuple(fc.integer({ min: 1, max: 250 }), fc.constantFrom(4, 6), fc.boolean()),
    ),
  ])("the next hop towards each overlay /24 is the tunnel's remote site", (routes) => {
    const table = [
      { dst: "10.200.0.0/16", dev: "eth0", protocol: "kernel" },
      ...Object.entries(routes).map(([dst, [via, f, multipath]]) =>
        multipath
          ? { dst: `10.201.${dst}.0/24`, nexthops: [{ gateway: "x", dev: `wg0.${via}_v${f}` }, { dev: "wg0.99_v4" }] }
          : { dst: `10.201.${dst}.0/24`, gateway: `10.201.${via}.4`, dev: `wg0.${via}_v${f}`, protocol: "bird" },
      ),
      { dst: "10.201.9.4", dev: "wg0.9_v4", protocol: "kernel" },
    ]
    const hops = nextHopsFromRoutes(JSON.stringify(table))
    expect(hops?.size).toBe(Object.keys(routes).length)
    for (const [dst, [via]] of Object.entries(routes)) expect(hops?.get(Number(dst))).toBe(via)
  })

  it("ignores lines that are not a route dump", () => {
    expect(nextHopsFromRoutes("Cannot open network namespace")).toBeUndefined()
  })
})

describe("route watcher stamps", () => {
  test.prop([fc.integer({ min: 1_000_000_000_000, max: 4_000_000_000_000 }), fc.integer({ min: 0, max: 999 })])(
    "an @E<epoch seconds> line is the dump's time in ms",
    (ms, us) => {
      const line = `@E${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, "0")}${String(us).padStart(3, "0")}`
      expect(parseWatchStamp(line)).toBe(ms + Math.round(us / 1000))
    },
  )
  test.prop([
    fc.date({ min: new Date("2001-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }),
  ])("an @T<local time> line (ip -ts) is the same instant", (at) => {
    const pad = (n: number, w = 2) => String(n).padStart(w, "0")
    const local = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}417`
    expect(parseWatchStamp(`@T${local}`)).toBe(at.getTime())
  })
  test.prop([fc.string()])("anything else is not a stamp", (text) => {
    fc.pre(!/^@(E\d|T\d{4}-)/.test(text))
    expect(parseWatchStamp(text)).toBeUndefined()
  })
})

describe("ping line parsing", () => {
  test.prop([
    fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }),
    fc.integer({ min: 0, max: 999_999 }),
    fc.integer({ min: 1, max: 65535 }),
    fc.double({ min: 0.01, max: 9999, noNaN: true }),
  ])("replies carry their timestamp and RTT, losses carry null", (sec, usec, seq, rtt) => {
    const ts = `${sec}.${String(usec).padStart(6, "0")}`
    const r = parsePingLine(`[${ts}] 64 bytes from 10.201.1.1: icmp_seq=${seq} ttl=63 time=${rtt.toFixed(3)} ms`)
    expect(r?.rttMs).toBeCloseTo(Number(rtt.toFixed(3)), 6)
    expect(r?.atMillis).toBe(Math.round(Number(ts) * 1000))
    expect(parsePingLine(`[${ts}] no answer yet for icmp_seq=${seq}`)).toEqual({
      atMillis: Math.round(Number(ts) * 1000),
      seq,
      rttMs: null,
    })
    expect(parsePingLine(`PING 10.201.1.1 (10.201.1.1) from 10.201.0.1 : 56(84) bytes of data.`)).toBeUndefined()
  })
})

describe("routes with the daemon running", () => {
  const managed = { dst: "10.201.1.0/24", dev: "wg0.2_v4", protocol: "201", metric: 20 }
  const bird = { dst: "10.201.1.0/24", dev: "wg0.1_v4", protocol: "bird", metric: 4096 }
  const other = { dst: "10.201.2.0/24", dev: "wg0.2_v4", protocol: "bird", metric: 4096 }
  it("follows the lowest metric, as the kernel does, whatever the listing order", () => {
    for (const table of [
      [managed, bird, other],
      [bird, managed, other],
    ]) {
      const r = routesFromDump(JSON.stringify(table))
      expect(r?.nextHops.get(1)).toBe(2)
      expect(r?.nextHops.get(2)).toBe(2)
      expect([...(r?.managed ?? [])]).toEqual([1])
    }
  })
})

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping the route watcher test: needs root (network namespaces)")

describe.skipIf(!isRoot)("route watcher in a namespace", () => {
  const ns = `npsw${Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, "0")}`
  const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", ["-n", ns, ...args])

  it("sees a route change within a fraction of a second and leaves no process behind", async () => {
    execFileSync("ip", ["netns", "add", ns])
    try {
      ip("link", "add", "wg0.1_v4", "type", "veth", "peer", "name", "wg0.2_v4")
      ip("link", "set", "wg0.1_v4", "up")
      ip("link", "set", "wg0.2_v4", "up")
      ip("route", "add", "10.201.5.0/24", "dev", "wg0.1_v4")
      const changes: Array<number> = []
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sampler = yield* startRouteSampler([0], () => ns, {
              refreshSeconds: 10, // a change seen within 500 ms is then surely an event
              onChange: (at) => changes.push(at),
            })
            const nextHopTo5 = () => sampler.snapshot(Date.now()).nextHops.get(0)?.get(5)
            yield* waitUntil(() => nextHopTo5() === 1, 3000)
            // (On a loaded host the monitor may subscribe after the first dump: past one refresh
            // it surely listens, and the change below must be seen by its event, not a refresh.)
            yield* Effect.sleep("1200 millis")
            const changedAt = Date.now()
            ip("route", "replace", "10.201.5.0/24", "dev", "wg0.2_v4", "proto", "201")
            yield* waitUntil(() => nextHopTo5() === 2, 3000)
            const seenAfterMs = Date.now() - changedAt
            console.log(`route change seen after ${seenAfterMs} ms`)
            expect(seenAfterMs).toBeLessThan(500)
            expect(changes.length).toBe(2)
            expect(sampler.managed(0)).toBe(1)
            // The change is dated when the watcher read the kernel's event, not when its dump
            // arrived; the stamped history answers for any instant.
            const stamp = changes[1] as number
            expect(stamp).toBeGreaterThanOrEqual(changedAt - 2)
            expect(stamp).toBeLessThanOrEqual(changedAt + seenAfterMs)
            expect(
              sampler
                .snapshotAt(stamp - 1)
                .nextHops.get(0)
                ?.get(5),
            ).toBe(1)
            expect(sampler.snapshotAt(stamp).nextHops.get(0)?.get(5)).toBe(2)
          }),
        ),
      )
      // Every process of the watcher's pipeline is gone with its scope.
      expect(execFileSync("ip", ["netns", "pids", ns]).toString().trim()).toBe("")
    } finally {
      execFileSync("ip", ["netns", "del", ns])
    }
  }, 20_000)
})

const waitUntil = (ok: () => boolean, timeoutMs: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!ok()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`not within ${timeoutMs} ms`))
      yield* Effect.sleep("5 millis")
    }
  })
