/**
 * Parsers of BIRD replies against output captured from real BIRD 2.0.12 and 1.6.8, plus
 * properties: wire framing round-trips, rendered routes parse back to the same paths in both
 * output generations, and arbitrary garbage yields a typed error, never a throw.
 */
import { fc, test } from "@fast-check/vitest"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { parseRawReplies } from "../../src/bird/Protocol.js"
import { isEstablished, parseProtocols, parseRoutes, toBgpPaths } from "../../src/bird/Replies.js"
import { loadFixture } from "./fixtures.js"

const reply = (raw: string) => {
  const { replies, invalid } = parseRawReplies(raw)
  expect(invalid).toEqual([])
  expect(replies).toHaveLength(1)
  return replies[0]!
}
const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got ${String(e.left)}`)
  return e.right
}

describe("captured BIRD 2.0.12 replies", () => {
  const f = loadFixture("bird2")
  it("show protocols: typed rows with states and BGP session info", () => {
    const protocols = right(parseProtocols(reply(f.replies["show protocols"]!), "show protocols", null))
    expect(protocols.map((p) => p.name)).toEqual(["device1", "st4", "st6", "l1v4", "l1v6", "l2v4", "l2v6"])
    const bgp = protocols.filter((p) => p.protocol === "BGP")
    expect(bgp.every(isEstablished)).toBe(true)
    expect(bgp[0]).toMatchObject({ table: null, state: "up", info: "Established", family: null })
    expect(protocols[1]).toMatchObject({ protocol: "Static", table: "master4" })
    expect(bgp[0]!.since).toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/)
  })
  it("show route all: both tables, every path, AS paths, primary marks", () => {
    const routes = right(parseRoutes(reply(f.replies["show route all"]!), "show route all"))
    expect(routes.map((r) => [r.table, r.prefix, r.protocol, r.primary])).toEqual([
      ["master4", "10.201.1.0/24", "st4", true],
      ["master4", "10.202.2.0/24", "l1v4", true],
      ["master4", "10.202.2.0/24", "l2v4", false],
      ["master4", "10.201.2.0/24", "l1v4", true],
      ["master4", "10.201.2.0/24", "l2v4", false],
      ["master6", "fdac:c9:1::/64", "st6", true],
      ["master6", "fdac:c9:2::/64", "l1v6", true],
      ["master6", "fdac:c9:2::/64", "l2v6", false],
    ])
    expect(routes[0]).toMatchObject({ kind: "blackhole", type: "static", nextHops: [], preference: 200 })
    expect(routes[2]).toMatchObject({
      kind: "unicast",
      type: "BGP",
      originAs: 64600,
      asPath: [64514, 64514, 64600],
      bgpNextHop: "10.99.0.6",
      localPref: 100,
      bgpOrigin: "IGP",
      nextHops: [{ gateway: "10.99.0.6", interface: "wg1.2_v6", weight: null }],
    })
    expect(toBgpPaths(routes)).toEqual([
      {
        prefix: "10.202.2.0/24",
        prefixFamily: 4,
        asPath: [64514, 64600],
        nextHop: "10.99.0.2",
        interface: "wg1.2_v4",
        primary: true,
      },
      {
        prefix: "10.202.2.0/24",
        prefixFamily: 4,
        asPath: [64514, 64514, 64600],
        nextHop: "10.99.0.6",
        interface: "wg1.2_v6",
        primary: false,
      },
      {
        prefix: "10.201.2.0/24",
        prefixFamily: 4,
        asPath: [64514],
        nextHop: "10.99.0.2",
        interface: "wg1.2_v4",
        primary: true,
      },
      {
        prefix: "10.201.2.0/24",
        prefixFamily: 4,
        asPath: [64514, 64514],
        nextHop: "10.99.0.6",
        interface: "wg1.2_v6",
        primary: false,
      },
      {
        prefix: "fdac:c9:2::/64",
        prefixFamily: 6,
        asPath: [64514],
        nextHop: "fd00:99:1::2",
        interface: "wg1.2_v4",
        primary: true,
      },
      {
        prefix: "fdac:c9:2::/64",
        prefixFamily: 6,
        asPath: [64514, 64514],
        nextHop: "fd00:99:2::2",
        interface: "wg1.2_v6",
        primary: false,
      },
    ])
  })
  it("error replies are frames with an 8xxx/9xxx final code", () => {
    expect(reply(f.replies["show route for 10.255.0.0/16"]!)).toMatchObject({ code: 8001, text: "Network not found" })
    expect(reply(f.replies["show nonsense"]!).code).toBe(9001)
    expect(reply(f.replies["show status"]!)).toMatchObject({ code: 13, text: "Daemon is up and running" })
  })
})

describe("captured BIRD 1.6.8 replies", () => {
  it("bird (IPv4): routes with the next hop in the route line", () => {
    const f = loadFixture("bird1", "bird")
    const protocols = right(parseProtocols(reply(f.replies["show protocols"]!), "show protocols", 4))
    expect(protocols.filter(isEstablished).map((p) => p.name)).toEqual(["l1v4", "l2v4"])
    expect(protocols[0]).toMatchObject({ table: "master", since: expect.stringMatching(/^\d\d:\d\d:\d\d$/), family: 4 })
    const routes = right(parseRoutes(reply(f.replies["show route all"]!), "show route all"))
    expect(routes).toHaveLength(5)
    expect(routes.every((r) => r.table === null)).toBe(true)
    const paths = toBgpPaths(routes).filter((p) => p.prefix === "10.201.2.0/24")
    expect(paths).toEqual([
      {
        prefix: "10.201.2.0/24",
        prefixFamily: 4,
        asPath: [64514],
        nextHop: "10.99.0.2",
        interface: "wg1.2_v4",
        primary: true,
      },
      {
        prefix: "10.201.2.0/24",
        prefixFamily: 4,
        asPath: [64514, 64514],
        nextHop: "10.99.0.6",
        interface: "wg1.2_v6",
        primary: false,
      },
    ])
    expect(routes.find((r) => r.protocol === "st4")).toMatchObject({ kind: "blackhole", type: "static" })
  })
  it("bird6: BGP.next_hop lists global and link-local, the first is kept", () => {
    const f = loadFixture("bird1", "bird6")
    const routes = right(parseRoutes(reply(f.replies["show route all"]!), "show route all"))
    const bgp = routes.filter((r) => r.type === "BGP")
    expect(bgp.map((r) => [r.bgpNextHop, r.nextHops[0]?.interface, r.primary])).toEqual([
      ["fd00:99:1::2", "wg1.2_v4", true],
      ["fd00:99:2::2", "wg1.2_v6", false],
    ])
    expect(bgp[0]!.attributes["BGP.next_hop"]).toMatch(/^fd00:99:1::2 fe80::/)
  })
})

// ---------------------------------------------------------------------------------------------
// properties

const textArb = fc.stringMatching(/^[ -~]{0,40}$/).filter((s) => !s.includes("\n"))
const entriesArb = fc.array(fc.record({ code: fc.integer({ min: 1000, max: 2999 }), text: textArb }), { maxLength: 30 })

/** Writes entries as BIRD does: a coded line when the code changes, otherwise a continuation. */
const renderReply = (entries: ReadonlyArray<{ code: number; text: string }>, finalCode: number, finalText: string) => {
  let out = ""
  let previous: number | undefined
  for (const e of entries) {
    out += e.code === previous ? ` ${e.text}\n` : `${String(e.code).padStart(4, "0")}-${e.text}\n`
    previous = e.code
  }
  return `${out}${String(finalCode).padStart(4, "0")} ${finalText}\n`
}

describe("framing", () => {
  test.prop([entriesArb, fc.constantFrom(0, 8001, 9001)])(
    "render → parse round-trips entries and final code",
    (entries, finalCode) => {
      const { replies, invalid } = parseRawReplies(renderReply(entries, finalCode, "done"))
      expect(invalid).toEqual([])
      expect(replies).toHaveLength(1)
      expect(replies[0]!.entries).toEqual(entries)
      expect(replies[0]!.code).toBe(finalCode)
    },
  )
  test.prop([fc.array(fc.string({ maxLength: 60 }), { maxLength: 40 })])("arbitrary lines never throw", (lines) => {
    expect(() => parseRawReplies(`${lines.join("\n")}\n0000 \n`)).not.toThrow()
  })
})

const v4Arb = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`)
const v6Arb = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
  .map((g) => `${g.map((x) => x.toString(16)).join(":")}/${g[0]! % 129}`)
const ifArb = fc.tuple(fc.nat(99), fc.nat(99), fc.constantFrom(4, 6)).map(([a, b, f]) => `wg${a}.${b}_v${f}`)
const pathArb = fc.record({
  asPath: fc.array(fc.integer({ min: 1, max: 4_294_967_295 }), { minLength: 1, maxLength: 6 }),
  nextHop: fc.ipV4(),
  iface: ifArb,
})
const routeArb = fc.record({
  prefix: fc.oneof(v4Arb, v6Arb),
  paths: fc.array(pathArb, { minLength: 1, maxLength: 3 }),
})

const renderBird2 = (
  routes: ReadonlyArray<{
    prefix: string
    paths: ReadonlyArray<{ asPath: ReadonlyArray<number>; nextHop: string; iface: string }>
  }>,
) => {
  const entries: Array<{ code: number; text: string }> = [{ code: 1007, text: "Table master4:" }]
  for (const r of routes)
    r.paths.forEach((p, i) => {
      const head = `${i === 0 ? r.prefix.padEnd(20) : " ".repeat(20)} unicast [bgp${i} 12:00:00.000]${i === 0 ? " *" : ""} (100) [AS${p.asPath.at(-1)}i]`
      entries.push({ code: 1007, text: head }, { code: 1007, text: `\tvia ${p.nextHop} on ${p.iface}` })
      entries.push({ code: 1008, text: "\tType: BGP univ" }, { code: 1012, text: "\tBGP.origin: IGP" })
      entries.push(
        { code: 1012, text: `\tBGP.as_path: ${p.asPath.join(" ")}` },
        { code: 1012, text: `\tBGP.next_hop: ${p.nextHop}` },
      )
    })
  return renderReply(entries, 0, "")
}
const renderBird1 = (routes: Parameters<typeof renderBird2>[0]) => {
  const entries: Array<{ code: number; text: string }> = []
  for (const r of routes)
    r.paths.forEach((p, i) => {
      entries.push({
        code: 1007,
        text: `${i === 0 ? r.prefix.padEnd(18) : " ".repeat(18)} via ${p.nextHop} on ${p.iface} [bgp${i} 12:00:00]${i === 0 ? " *" : ""} (100) [AS${p.asPath.at(-1)}i]`,
      })
      entries.push({ code: 1008, text: "\tType: BGP unicast univ" }, { code: 1012, text: "\tBGP.origin: IGP" })
      entries.push(
        { code: 1012, text: `\tBGP.as_path: ${p.asPath.join(" ")}` },
        { code: 1012, text: `\tBGP.next_hop: ${p.nextHop}` },
      )
    })
  return renderReply(entries, 0, "")
}

describe("route parsing properties", () => {
  test.prop([fc.array(routeArb, { maxLength: 8 }), fc.constantFrom(renderBird2, renderBird1)])(
    "rendered routes parse back to the same BGP paths (BIRD 2 and 1.x layouts)",
    (routes, render) => {
      const parsed = right(parseRoutes(reply(render(routes)), "show route all"))
      expect(toBgpPaths(parsed)).toEqual(
        routes.flatMap((r) =>
          r.paths.map((p, i) => ({
            prefix: r.prefix,
            prefixFamily: r.prefix.includes(":") ? 6 : 4,
            asPath: p.asPath,
            nextHop: p.nextHop,
            interface: p.iface,
            primary: i === 0,
          })),
        ),
      )
    },
  )
  test.prop([
    fc.array(fc.tuple(fc.constantFrom(1007, 1008, 1012, 1002, 2002), fc.string({ maxLength: 50 })), { maxLength: 20 }),
  ])("garbage yields routes or a typed BirdParseError, never a throw", (lines) => {
    const r = { entries: lines.map(([code, text]) => ({ code, text })), code: 0, text: "" }
    const routes = parseRoutes(r, "show route all")
    const protocols = parseProtocols(r, "show protocols", null)
    if (Either.isLeft(routes)) expect(routes.left._tag).toBe("BirdParseError")
    if (Either.isLeft(protocols)) expect(protocols.left._tag).toBe("BirdParseError")
  })
  it("a malformed protocol state is a BirdParseError naming the line", () => {
    const e = parseProtocols(reply("1002-bgp1 BGP --- sideways 12:00:00 Established\n0000 \n"), "show protocols", null)
    expect(Either.isLeft(e) && e.left).toMatchObject({
      _tag: "BirdParseError",
      line: "bgp1 BGP --- sideways 12:00:00 Established",
    })
  })
  it("an AS path with a set keeps its members; a non-numeric AS is a parse error", () => {
    const ok = parseRoutes(
      reply(
        renderBird2([
          { prefix: "10.0.0.0/8", paths: [{ asPath: [1, 2], nextHop: "10.1.1.1", iface: "wg0.1_v4" }] },
        ]).replace("BGP.as_path: 1 2", "BGP.as_path: 1 2 {3 4}"),
      ),
      "x",
    )
    expect(right(ok)[0]!.asPath).toEqual([1, 2, 3, 4])
    const bad = parseRoutes(
      reply(
        renderBird2([
          { prefix: "10.0.0.0/8", paths: [{ asPath: [1], nextHop: "10.1.1.1", iface: "wg0.1_v4" }] },
        ]).replace("BGP.as_path: 1", "BGP.as_path: one"),
      ),
      "x",
    )
    expect(Either.isLeft(bad) && bad.left).toMatchObject({ _tag: "BirdParseError", line: "10.0.0.0/8 [bgp0]" })
  })
})

describe("layout variants BIRD prints in other configurations", () => {
  it("multipath next hops, device routes, `from` in the source column, long time formats", () => {
    const raw = [
      "1007-Table master4:",
      " 10.0.0.0/24          unicast [bgp1 2026-11-26 14:55:08 from 10.9.9.9] * (100/20) [AS65001i]",
      " \tvia 10.1.0.1 on eth0 weight 1",
      " \tvia 10.2.0.1 on eth1 weight 3",
      "1008-\tType: BGP univ",
      "1012-\tBGP.origin: IGP",
      " \tBGP.as_path: 65001",
      " \tBGP.next_hop: 10.9.9.9",
      " \tBGP.community: (65000,1) (65000,2)",
      " \t\t(65000,3)",
      "1007-10.99.0.0/30         unicast [direct1 14:55:08.071] * (240)",
      " \tdev wg1.2_v4",
      "1008-\tType: device univ",
      "0000 ",
    ].join("\n")
    const routes = right(parseRoutes(reply(`${raw}\n`), "show route all"))
    expect(routes[0]).toMatchObject({
      protocol: "bgp1",
      since: "2026-11-26 14:55:08",
      from: "10.9.9.9",
      igpMetric: "20",
      nextHops: [
        { gateway: "10.1.0.1", interface: "eth0", weight: 1 },
        { gateway: "10.2.0.1", interface: "eth1", weight: 3 },
      ],
    })
    expect(routes[0]!.attributes["BGP.community"]).toBe("(65000,1) (65000,2) (65000,3)")
    expect(routes[1]).toMatchObject({ type: "device", nextHops: [{ gateway: null, interface: "wg1.2_v4" }] })
    expect(toBgpPaths(routes)).toEqual([
      {
        prefix: "10.0.0.0/24",
        prefixFamily: 4,
        asPath: [65001],
        nextHop: "10.1.0.1",
        interface: "eth0",
        primary: true,
      },
    ])
    const protocols = right(
      parseProtocols(
        reply("1002-bgp1       BGP        ---        up     2026-11-26 14:55:08  Established   \n0000 \n"),
        "show protocols",
        null,
      ),
    )
    expect(protocols[0]).toMatchObject({ since: "2026-11-26 14:55:08", info: "Established" })
    const down = right(
      parseProtocols(
        reply(
          "1002-bgp2       BGP        ---        start  14:55:08.071  Active        Socket: Connection refused\n0000 \n",
        ),
        "show protocols",
        null,
      ),
    )
    expect(down[0]).toMatchObject({ state: "start", info: "Active Socket: Connection refused" })
    expect(isEstablished(down[0]!)).toBe(false)
  })
})
