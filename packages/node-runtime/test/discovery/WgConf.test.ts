import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fc from "fast-check"
import { loadWgConfs, parseWgConf } from "../../src/discovery/WgConf.js"

const key = (c: string) => `${c.repeat(42)}A=`
const generated = [
  "# IPv4 interface for site-b",
  "[Interface]",
  "Table = off",
  `PrivateKey = ${key("a")}`,
  "PreUp = echo pre",
  "PostUp = ip a add 10.201.1.4/32 dev lo || echo .",
  "PostUp = ip route add 10.201.2.4/32 dev wg1.2_v4 src 10.201.1.4 || echo .",
  "MTU = 1400",
  "ListenPort = 51821",
  "",
  "[Peer]",
  `PublicKey = ${key("b")}`,
  `PresharedKey = ${key("c")}`,
  "Endpoint = v4.site-b.example:51822",
  "AllowedIPs = 0.0.0.0/0, ::/0",
  "PersistentKeepalive = 25",
].join("\n")

describe("WireGuard conf parser", () => {
  it("parses a generator-style conf", () => {
    const conf = Either.getOrThrow(parseWgConf("/etc/wireguard/wg1.2_v4.conf", generated))
    expect(conf.interfaceName).toBe("wg1.2_v4")
    expect(conf.listenPort).toBe(51821)
    expect(conf.mtu).toBe(1400)
    expect(conf.peers).toEqual([
      {
        publicKey: key("b"),
        presharedKey: key("c"),
        endpoint: { host: "v4.site-b.example", port: 51822 },
        allowedIps: ["0.0.0.0/0", "::/0"],
        persistentKeepaliveSeconds: 25,
      },
    ])
  })

  it("names the file and line of the first error", () => {
    const cases: Array<[string, number, RegExp]> = [
      [generated.replace("ListenPort = 51821", "ListenPort = 99999"), 9, /ListenPort/],
      [generated.replace("Endpoint = v4.site-b.example:51822", "Endpoint = nowhere"), 14, /not host:port/],
      [generated.replace("AllowedIPs = 0.0.0.0/0, ::/0", "AllowedIPs = 10.0.0.0/33"), 15, /CIDR/],
      [generated.replace("Table = off", "Bogus = 1"), 3, /unknown key "Bogus"/],
      [generated.replace(`PrivateKey = ${key("a")}`, "PrivateKey = short"), 4, /PrivateKey/],
      ["[Interface]\nListenPort = 1\n", 3, /no PrivateKey/],
      [`[Interface]\nPrivateKey = ${key("a")}\n[Peer]\nEndpoint = a:1\n`, 3, /no PublicKey/],
      ["PrivateKey = x\n", 1, /outside of a section/],
      ["[Wat]\n", 1, /unknown section/],
    ]
    for (const [text, line, reason] of cases) {
      const e = Either.flip(parseWgConf("/x/wg1.2_v4.conf", text)).pipe(Either.getOrThrow)
      expect(e.file).toBe("/x/wg1.2_v4.conf")
      expect(e.line).toBe(line)
      expect(e.reason).toMatch(reason)
    }
  })

  it("round-trips generated confs and never throws on garbage", () => {
    const b64 = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    const wgKey = fc
      .tuple(fc.string({ unit: b64, minLength: 42, maxLength: 42 }), fc.constantFrom("A", "E", "Q", "g", "w", "0"))
      .map(([a, b]) => `${a}${b}=`)
    const peer = fc.record({
      publicKey: wgKey,
      port: fc.integer({ min: 1, max: 65535 }),
      host: fc.constantFrom("v4.a.example", "192.0.2.1", "[2001:db8::1]"),
      keepalive: fc.integer({ min: 1, max: 600 }),
    })
    fc.assert(
      fc.property(
        wgKey,
        fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        fc.array(peer, { maxLength: 4 }),
        (priv, listenPort, peers) => {
          const text = [
            "[Interface]",
            `PrivateKey = ${priv}`,
            ...(listenPort === undefined ? [] : [`ListenPort = ${listenPort}`]),
            ...peers.flatMap((p) => [
              "",
              "[Peer]",
              `PublicKey = ${p.publicKey}`,
              `Endpoint = ${p.host}:${p.port}`,
              "AllowedIPs = 10.201.0.0/16",
              `PersistentKeepalive = ${p.keepalive}`,
            ]),
          ].join("\n")
          const conf = Either.getOrThrow(parseWgConf("wg0.1_v4.conf", text))
          expect(conf.privateKey).toBe(priv)
          expect(conf.listenPort).toBe(listenPort)
          expect(conf.peers.map((p) => [p.publicKey, p.endpoint?.port, p.persistentKeepaliveSeconds])).toEqual(
            peers.map((p) => [p.publicKey, p.port, p.keepalive]),
          )
          expect(conf.peers.map((p) => p.endpoint?.host)).toEqual(peers.map((p) => p.host.replace(/^\[|\]$/g, "")))
        },
      ),
    )
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const r = parseWgConf("wg0.1_v4.conf", text)
        return Either.isLeft(r) ? r.left.line >= 0 : true
      }),
      { numRuns: 2000 },
    )
  })

  it.effect("loads a directory: good files parsed, a bad file reported and skipped, no dir = no confs", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "npconf-")))
      yield* Effect.addFinalizer(() => Effect.promise(() => rm(dir, { recursive: true, force: true })))
      yield* Effect.promise(() => writeFile(join(dir, "wg1.2_v4.conf"), generated))
      yield* Effect.promise(() => writeFile(join(dir, "wg1.3_v4.conf"), "[Interface]\nPrivateKey = nope\n"))
      yield* Effect.promise(() => writeFile(join(dir, "README"), "not a conf"))
      const { confs, errors } = yield* loadWgConfs(dir)
      expect(confs.map((c) => c.interfaceName)).toEqual(["wg1.2_v4"])
      expect(errors).toHaveLength(1)
      expect(errors[0]?.message).toMatch(/wg1\.3_v4\.conf:2: PrivateKey/)
      expect(yield* loadWgConfs(join(dir, "missing"))).toEqual({ confs: [], errors: [] })
    }).pipe(Effect.scoped),
  )
})
