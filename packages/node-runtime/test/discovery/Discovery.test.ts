import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tunnelId } from "@net-perf/engine"
import { Duration, Effect, Either, Stream, SubscriptionRef } from "effect"
import { execa } from "execa"
import * as fc from "fast-check"
import { makeDiscovery, makeTunnelNameParser, reconcile } from "../../src/discovery/Discovery.js"
import {
  type LiveLink,
  parseIpAddrOutput,
  parseIpAddrOutputSchema,
  parseIpOutput,
  parseWgDump,
  readLiveLinks,
} from "../../src/discovery/LiveLinks.js"
import { makeIpScoped } from "../../src/kernel/Ip.js"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"

const isRoot = process.getuid?.() === 0
const link = (name: string, up: boolean): LiveLink => ({ ifindex: 1, name, up, mtu: 1420, addresses: [] })
const noAdmin = { disabled: new Set<string>(), generations: new Map<string, number>() }

describe("live state parsers", () => {
  it.effect("parses this host's real `ip -json link`/`addr` output", () =>
    Effect.gen(function* () {
      const links = yield* readLiveLinks({ prefix: [], ip: "ip", wg: "wg" })
      const lo = links.find((l) => l.name === "lo")
      expect(lo?.up).toBe(true)
      expect(lo?.addresses).toContain("127.0.0.1")
    }),
  )

  it("rejects malformed ip JSON with a typed error", () => {
    expect(Either.isLeft(parseIpOutput("{", "[]"))).toBe(true)
    expect(Either.isLeft(parseIpOutput('[{"ifname":"x"}]', "[]"))).toBe(true)
  })

  it("reads `ip -json addr` by hand exactly as through the Schema (value, or both rejecting)", () => {
    // ip's own entries (optional fields present or not, extra fields), then one field of one
    // entry or address deleted or replaced by any JSON value, and random JSON or text.
    const addr = fc.record(
      {
        family: fc.constantFrom("inet", "inet6"),
        local: fc.oneof(fc.ipV4(), fc.ipV6()),
        prefixlen: fc.nat(128),
        scope: fc.constantFrom("host", "global"),
      },
      { requiredKeys: ["family", "local", "prefixlen"] },
    )
    const entry = fc.record(
      {
        ifindex: fc.nat(),
        ifname: fc.string({ maxLength: 15 }),
        flags: fc.array(fc.constantFrom("UP", "LOWER_UP", "BROADCAST", "NOARP")),
        operstate: fc.constantFrom("UP", "DOWN", "UNKNOWN"),
        mtu: fc.nat(65536),
        addr_info: fc.array(addr, { maxLength: 3 }),
        link_type: fc.constantFrom("ether", "none"),
      },
      { requiredKeys: ["ifindex", "ifname", "flags", "addr_info"] },
    )
    const odd = fc.oneof(fc.jsonValue(), fc.constantFrom(1.5, -1, 2 ** 60, null, "7", [], {}, ["UP", 1], [{}]))
    const mutated = fc
      .tuple(fc.array(entry, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(), fc.nat(), fc.boolean(), odd)
      .map(([entries, e, a, k, remove, value]) => {
        const copy = structuredClone(entries) as Array<Record<string, unknown>>
        const target = copy[e % copy.length]!
        const infos = target.addr_info as Array<Record<string, unknown>>
        const obj = infos.length > 0 && a % 2 === 0 ? infos[a % infos.length]! : target
        const keys = Object.keys(obj)
        const key = keys[k % keys.length]!
        if (remove) delete obj[key]
        else obj[key] = value
        return JSON.stringify(copy)
      })
    const text = fc.oneof(
      fc.array(entry, { maxLength: 4 }).map((x) => JSON.stringify(x)),
      mutated,
      fc.jsonValue().map((x) => JSON.stringify(x)),
      fc.string(),
    )
    let accepted = 0
    let rejected = 0
    fc.assert(
      fc.property(text, (t) => {
        const fast = parseIpAddrOutput(t)
        expect(fast).toEqual(parseIpAddrOutputSchema(t))
        if (Either.isRight(fast)) accepted++
        else rejected++
      }),
      { numRuns: 20_000 },
    )
    // Both verdicts occur often enough to mean something.
    expect(accepted).toBeGreaterThan(2000)
    expect(rejected).toBeGreaterThan(2000)
  })

  it("parses `wg show all dump` and never throws on garbage", () => {
    const dump = [
      "wg1.2_v4\tPRIV\tPUB1\t51820\toff",
      "wg1.2_v4\tPEER2\t(none)\t192.0.2.2:51820\t0.0.0.0/0,::/0\t1795700000\t1234\t5678\t25",
      "wg1.3_v4\tPRIV\tPUB1\t0\toff",
      "wg1.3_v4\tPEER3\t(none)\t(none)\t(none)\t0\t0\t0\toff",
    ].join("\n")
    const parsed = Either.getOrThrow(parseWgDump(dump))
    expect(parsed.map((w) => [w.name, w.listenPort])).toEqual([
      ["wg1.2_v4", 51820],
      ["wg1.3_v4", null],
    ])
    expect(parsed[0]?.peers[0]).toEqual({
      publicKey: "PEER2",
      endpoint: "192.0.2.2:51820",
      allowedIps: ["0.0.0.0/0", "::/0"],
      latestHandshakeSeconds: 1795700000,
      rxBytes: 1234,
      txBytes: 5678,
    })
    expect(parsed[1]?.peers[0]?.latestHandshakeSeconds).toBeNull()
    fc.assert(fc.property(fc.string(), (s) => Either.isLeft(parseWgDump(s)) || Either.isRight(parseWgDump(s))))
  })
})

describe("reconciliation", () => {
  it("a tunnel is active iff its link is here, up and not disabled; foreign wg state is dropped", () => {
    const names = fc.constantFrom<string>("wg1.2_v4", "wg1.2_v6", "wg1.3_v4", "eth0", "wg1.1_v4")
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(names, fc.boolean()), { selector: ([n]) => n }),
        fc.uniqueArray(names),
        fc.uniqueArray(names),
        fc.uniqueArray(names),
        (links, confNames, wgNames, disabledNames) => {
          const out = reconcile(
            makeTunnelNameParser(undefined),
            {
              links: links.map(([n, up]) => link(n, up)),
              confs: confNames.map((n) => ({
                file: `/c/${n}.conf`,
                interfaceName: n,
                privateKey: "k" as never,
                peers: [],
              })),
              wg: wgNames.map((n) => ({ name: n, publicKey: "p", listenPort: 1, peers: [] })),
            },
            { disabled: new Set(disabledNames), generations: new Map() },
          )
          for (const [name, t] of out) {
            const l = links.find(([n]) => n === name)
            expect(t.active).toBe((l?.[1] ?? false) && !disabledNames.includes(name))
            expect(t.wg === null).toBe(!(wgNames.includes(name) && l !== undefined))
            expect(t.conf === null).toBe(!confNames.includes(name))
          }
          expect(out.has("eth0")).toBe(false)
          expect(out.has("wg1.1_v4")).toBe(false)
        },
      ),
    )
  })

  it("accepts a configured name pattern", () => {
    const parse = makeTunnelNameParser("^tun-(?<local>\\d+)-(?<remote>\\d+)-(?<family>[46])$")
    expect(parse("tun-3-7-6")).toEqual(tunnelId(3, 7, 6))
    expect(parse("tun-3-3-6")).toBeUndefined()
    expect(parse("wg3.7_v6")).toBeUndefined()
    expect(
      reconcile(parse, { links: [link("tun-1-2-4", true)], confs: [], wg: [] }, noAdmin).get("tun-1-2-4")?.key,
    ).toBe("wg1.2_v4")
  })
})

describe.skipIf(!isRoot)("discovery in a namespace", () => {
  it.scopedLive("follows `ip monitor` events without waiting for the periodic rescan", () =>
    Effect.gen(function* () {
      const ns = `np${Math.floor(Math.random() * 0xffff).toString(16)}d`
      yield* Effect.acquireRelease(
        Effect.promise(() => execa("ip", ["netns", "add", ns])),
        () => Effect.promise(() => execa("ip", ["netns", "del", ns], { reject: false })),
      )
      yield* Effect.promise(() =>
        execa("ip", ["-n", ns, "link", "add", "wg1.2_v4", "type", "veth", "peer", "name", "wg1.3_v4"]),
      )
      const discovery = yield* makeDiscovery({
        confDir: "/nonexistent",
        namePattern: undefined,
        commands: { prefix: ["ip", "netns", "exec", ns], ip: "ip", wg: "wg" },
        rescanIntervalMillis: 600_000,
        debounceMillis: 50,
        monitor: true,
      })
      const first = yield* SubscriptionRef.get(discovery.tunnels)
      expect([...first.keys()]).toEqual(["wg1.2_v4", "wg1.3_v4"])
      expect(first.get("wg1.2_v4")?.active).toBe(false)
      // Give the monitor process a moment to subscribe, then change the link.
      yield* Effect.sleep(Duration.millis(300))
      yield* Effect.promise(() => execa("ip", ["-n", ns, "link", "set", "wg1.2_v4", "up"]))
      const active = yield* discovery.tunnels.changes.pipe(
        Stream.filter((t) => t.get("wg1.2_v4")?.active === true),
        Stream.runHead,
        Effect.timeout(Duration.seconds(5)),
      )
      expect(active._tag).toBe("Some")
      yield* discovery.remove("wg1.2_v4")
      expect((yield* SubscriptionRef.get(discovery.tunnels)).get("wg1.2_v4")?.active).toBe(false)
      yield* discovery.add("wg1.2_v4")
      expect((yield* SubscriptionRef.get(discovery.tunnels)).get("wg1.2_v4")?.active).toBe(true)
      expect(Either.isLeft(yield* Effect.either(discovery.add("eth0")))).toBe(true)
    }).pipe(Effect.provide(MeasurementMetrics.Default)),
  )
})

describe.skipIf(!isRoot)("ip -json addr alone", () => {
  it.scopedLive("gives the view joined from `ip -json link` and `ip -json addr`", () =>
    Effect.gen(function* () {
      const ns = `np${Math.floor(Math.random() * 0xffff).toString(16)}a`
      yield* Effect.acquireRelease(
        Effect.promise(() => execa("ip", ["netns", "add", ns])),
        () => Effect.promise(() => execa("ip", ["netns", "del", ns], { reject: false })),
      )
      const batch = [
        "link set lo up",
        "link add wg1.2_v4 type veth peer name wg1.3_v6",
        "link set wg1.2_v4 up mtu 1420",
        "addr add 10.201.1.4/32 dev wg1.2_v4",
        "addr add fdac:c9::1:4/128 dev wg1.3_v6 nodad",
        "link add vx7 type veth peer name vy7",
      ]
      yield* Effect.promise(() => execa("ip", ["-n", ns, "-batch", "-"], { input: `${batch.join("\n")}\n` }))
      const ip = (what: string) =>
        Effect.promise(async () => (await execa("ip", ["-n", ns, "-json", what, "show"])).stdout)
      const joined = Either.getOrThrow(parseIpOutput(yield* ip("link"), yield* ip("addr")))
      const alone = Either.getOrThrow(parseIpAddrOutput(yield* ip("addr")))
      expect(alone).toEqual(joined)
      expect(alone.find((l) => l.name === "wg1.2_v4")).toMatchObject({ up: true, mtu: 1420, addresses: ["10.201.1.4"] })
      expect(alone.find((l) => l.name === "wg1.3_v6")?.addresses).toEqual(["fdac:c9::1:4"])
      expect(alone.find((l) => l.name === "vx7")).toMatchObject({ up: false, addresses: [] })
      // The same read through a long-lived `ip -batch` session (the plane's discovery): the same
      // view, and a later read sees a change (an answer, not a stale line).
      const session = yield* makeIpScoped({ namespace: ns })
      const commands = { prefix: [], ip: "ip", wg: "wg" }
      expect(yield* readLiveLinks(commands, session)).toEqual(alone)
      yield* Effect.promise(() => execa("ip", ["-n", ns, "link", "set", "vx7", "up"]))
      const again = yield* readLiveLinks(commands, session)
      expect(again.find((l) => l.name === "vx7")?.up).toBe(true)
      expect(again).toEqual(Either.getOrThrow(parseIpAddrOutput(yield* ip("addr"))))
    }),
  )
})

describe.skipIf(!isRoot)("discovery rescan cadence", () => {
  // A conf file appearing is no `ip monitor` event: only a rescan sees it, so it shows which
  // periodic cadence applies — the slow safety rescan while the monitor runs, polling otherwise.
  const key = (c: string) => `${c.repeat(42)}A=`
  const conf = `[Interface]\nPrivateKey = ${key("a")}\nListenPort = 51821\n`
  const seesNewConfWithin = (settings: { monitor: boolean; rescanMillis: number; monitorRescanMillis: number }) =>
    Effect.gen(function* () {
      const ns = `np${Math.floor(Math.random() * 0xffff).toString(16)}c`
      yield* Effect.acquireRelease(
        Effect.promise(() => execa("ip", ["netns", "add", ns])),
        () => Effect.promise(() => execa("ip", ["netns", "del", ns], { reject: false })),
      )
      const dir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "np-disc-"))),
        (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
      )
      const discovery = yield* makeDiscovery({
        confDir: dir,
        namePattern: undefined,
        commands: { prefix: ["ip", "netns", "exec", ns], ip: "ip", wg: "wg" },
        rescanIntervalMillis: settings.rescanMillis,
        monitorRescanIntervalMillis: settings.monitorRescanMillis,
        debounceMillis: 20,
        monitor: settings.monitor,
      })
      yield* Effect.sleep(Duration.millis(300))
      yield* Effect.promise(() => writeFile(join(dir, "wg1.4_v4.conf"), conf))
      const seen = yield* discovery.tunnels.changes.pipe(
        Stream.filter((t) => t.has("wg1.4_v4")),
        Stream.runHead,
        Effect.timeout(Duration.millis(2500)),
        Effect.option,
      )
      return seen._tag === "Some"
    }).pipe(Effect.scoped, Effect.provide(MeasurementMetrics.Default))

  it.live("polls at rescanIntervalMillis without the monitor, at the slow safety interval with it", () =>
    Effect.gen(function* () {
      expect(yield* seesNewConfWithin({ monitor: false, rescanMillis: 300, monitorRescanMillis: 600_000 })).toBe(true)
      expect(yield* seesNewConfWithin({ monitor: true, rescanMillis: 300, monitorRescanMillis: 600_000 })).toBe(false)
      expect(yield* seesNewConfWithin({ monitor: true, rescanMillis: 600_000, monitorRescanMillis: 300 })).toBe(true)
    }),
  )
})
