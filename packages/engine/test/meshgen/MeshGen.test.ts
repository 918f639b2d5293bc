import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import {
  decodeMesh,
  decodeSecrets,
  diffTrees,
  emptySecrets,
  fillSecrets,
  formatDrift,
  generateMesh,
  type KeyGenerator,
  type Mesh,
  type MeshFiles,
  type MeshInput,
  planMesh,
  requiredSecrets,
  rotateSecrets,
  type Secrets,
} from "../../src/meshgen/index.js"
import { formatAddress, parseAddress, parseCidr } from "../../src/meshgen/Net.js"

/** Deterministic stand-in for X25519 (the generator only copies keys): a counter in base64. */
const counterKeys = (seed = 0): KeyGenerator => {
  let n = seed
  const key = () => {
    n++
    const bytes = Array.from({ length: 32 }, (_, i) => (n * 131 + i * 17) & 255)
    bytes[31] = 0
    return btoa(String.fromCharCode(...bytes))
  }
  return { keyPair: () => ({ privateKey: key(), publicKey: key() }), presharedKey: key }
}

const decode = (input: unknown): Mesh => {
  const decoded = decodeMesh(input)
  if (Either.isLeft(decoded)) throw new Error(decoded.left)
  return decoded.right
}

const errorOf = (input: unknown): string => {
  const decoded = decodeMesh(input)
  if (Either.isRight(decoded)) throw new Error("expected a decode error")
  return decoded.left
}

const generate = (mesh: Mesh, secrets: Secrets): MeshFiles => {
  const out = generateMesh(mesh, secrets)
  if (Either.isLeft(out)) throw out.left
  return out.right.files
}

const example: MeshInput = {
  sites: [
    { id: 0, name: "ams", endpoints: { v4: "198.51.100.10", v6: "2001:db8:a::10" }, lans: ["10.0.0.0/16"] },
    { id: 1, name: "fra", stack: "v4", endpoints: { v4: "203.0.113.20" } },
    { id: 7, name: "sgp", endpoints: { v6: "2001:db8:c::70" } },
  ],
}

// Arbitrary valid sites: unique ids 0..255 (the default overlay /16 holds 256 /24s).
const siteArb = (id: number) =>
  fc
    .record({
      stack: fc.constantFrom("dual", "v4", "v6"),
      v4: fc.boolean(),
      v6: fc.boolean(),
      mtu: fc.option(fc.integer({ min: 1300, max: 1500 }), { nil: undefined }),
      keepaliveSeconds: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
      lan: fc.boolean(),
    })
    .map(({ stack, v4, v6, mtu, keepaliveSeconds, lan }) => ({
      id,
      name: `s${id}`,
      stack,
      endpoints: {
        ...(v4 && stack !== "v6" ? { v4: `192.0.2.${id}` } : {}),
        ...(v6 && stack !== "v4" ? { v6: `2001:db8::${id.toString(16)}` } : {}),
      },
      lans: lan ? [`172.16.${id}.0/24`] : [],
      ...(mtu === undefined ? {} : { mtu }),
      ...(keepaliveSeconds === undefined ? {} : { keepaliveSeconds }),
    }))

const sitesArb = (maxSites: number) =>
  fc
    .uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: maxSites })
    .chain((ids) => fc.tuple(...ids.map(siteArb)))

describe("meshgen address helpers", () => {
  it("prints IPv6 canonically (RFC 5952) and round-trips", () => {
    expect(formatAddress(6, parseAddress("fdac:00c9:0000:0000::4")?.address ?? 0n)).toBe("fdac:c9::4")
    expect(formatAddress(6, parseAddress("2001:db8:0:0:1:0:0:1")?.address ?? 0n)).toBe("2001:db8::1:0:0:1")
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (address) => {
        const text = formatAddress(6, address)
        expect(parseAddress(text)).toEqual({ family: 6, address })
      }),
    )
    expect(parseCidr("10.0.0.1/16")).toBeUndefined()
    expect(parseCidr("10.0.0.0/33")).toBeUndefined()
  })
})

describe("meshgen plan", () => {
  it("follows the mesh conventions: addresses, ASN, ports, MTU, skipped families", () => {
    const plan = planMesh(decode(example))
    const ams = plan.sites[0]!
    expect(ams.overlay4).toBe("10.201.0.0/24")
    expect(ams.overlay6).toBe("fdac:c9::/64")
    expect(plan.sites[2]?.overlay6).toBe("fdac:c9:7::/64")
    expect(ams.asn).toBe(64512)
    expect(ams.tunnels.map((t) => t.name)).toEqual(["wg0.1_v4", "wg0.7_v4", "wg0.7_v6"])
    const [toFra, toSgp4, toSgp6] = ams.tunnels
    expect(toFra?.listenPort).toBe(51820 + 2 * 1)
    expect(toFra?.endpoint).toBe("203.0.113.20:51820")
    expect(toSgp4?.listenPort).toBe(51820 + 2 * 7)
    expect(toSgp4?.endpoint).toBeUndefined() // sgp is behind NAT in IPv4
    expect(toSgp6?.endpoint).toBe("[2001:db8:c::70]:51821")
    expect(toSgp6?.mtu).toBe(1400)
    expect(toSgp6?.localProbe4).toBe("10.201.0.6")
    expect(toSgp6?.remoteProbe6).toBe("fdac:c9:7::6")
    // fra is v4-only: no IPv6 tunnels to it; sgp has no IPv4 endpoint and fra none... fra has one.
    expect(plan.skipped).toEqual([
      { sites: [0, 1], family: 6, reason: "fra has no IPv6 underlay (stack: v4)" },
      { sites: [1, 7], family: 6, reason: "fra has no IPv6 underlay (stack: v4)" },
    ])
  })

  it("dial overrides replace the endpoint, make the dialled side listen, and rescue NAT-NAT pairs", () => {
    const plan = planMesh(
      decode({
        sites: [
          { id: 2, name: "a", stack: "v4" },
          { id: 5, name: "b", stack: "v4" },
          { id: 9, name: "c", stack: "v4", endpoints: { v4: "192.0.2.9" } },
        ],
        pairs: [
          { sites: [2, 5], dial: [{ from: 2, family: 4, endpoint: "relay.example:30005" }] },
          { sites: [2, 9], dial: [{ from: 9, family: 4, endpoint: "[2001:db8::1]:30002" }] },
        ],
      }),
    )
    const tunnel = (name: string) => plan.sites.flatMap((s) => s.tunnels).find((t) => t.name === name)
    expect(tunnel("wg2.5_v4")?.endpoint).toBe("relay.example:30005")
    expect(tunnel("wg5.2_v4")?.endpoint).toBeUndefined()
    expect(tunnel("wg5.2_v4")?.listenPort).toBe(51820 + 2 * 2)
    expect(tunnel("wg2.5_v4")?.listenPort).toBeUndefined()
    expect(tunnel("wg9.2_v4")?.endpoint).toBe("[2001:db8::1]:30002")
    expect(tunnel("wg2.9_v4")?.endpoint).toBe("192.0.2.9:51824")
    expect(plan.skipped.filter((s) => s.family === 4)).toEqual([])
  })

  it("gives every site distinct listen ports that match what its peers dial", () => {
    fc.assert(
      fc.property(sitesArb(12), (sites) => {
        const plan = planMesh(decode({ sites }))
        const byName = new Map(plan.sites.flatMap((s) => s.tunnels.map((t) => [t.name, t] as const)))
        for (const site of plan.sites) {
          const ports = site.tunnels.flatMap((t) => (t.listenPort === undefined ? [] : [t.listenPort]))
          expect(new Set(ports).size).toBe(ports.length)
          for (const t of site.tunnels) {
            const back = byName.get(`wg${t.id.remote}.${t.id.local}_v${t.id.family}`)
            expect(back).toBeDefined()
            if (t.endpoint !== undefined) expect(t.endpoint.endsWith(`:${back?.listenPort}`)).toBe(true)
            expect(t.endpoint !== undefined || back?.endpoint !== undefined).toBe(true)
          }
        }
      }),
    )
  })
})

describe("meshgen generate", () => {
  it("is deterministic and independent of the order of sites in the file", () => {
    fc.assert(
      fc.property(sitesArb(8), fc.integer(), (sites, seed) => {
        const mesh = decode({ sites })
        const { secrets } = fillSecrets(mesh, emptySecrets, counterKeys(seed))
        const first = generate(mesh, secrets)
        const again = generate(decode({ sites: [...sites].reverse() }), secrets)
        expect([...again.entries()].map(([k, v]) => [k, [...v.entries()]])).toEqual(
          [...first.entries()].map(([k, v]) => [k, [...v.entries()]]),
        )
        expect(diffTrees(first, again)).toEqual([])
      }),
      { numRuns: 60 },
    )
  })

  it("adding a site changes no existing pair's ports, keys or WireGuard files", () => {
    fc.assert(
      fc.property(
        sitesArb(8).chain((sites) =>
          fc
            .integer({ min: 0, max: 255 })
            .filter((id) => !sites.some((s) => s.id === id))
            .chain((id) => siteArb(id).map((added) => [sites, added] as const)),
        ),
        ([sites, added]) => {
          const before = decode({ sites })
          const filled = fillSecrets(before, emptySecrets, counterKeys(1)).secrets
          const after = decode({ sites: [...sites, added] })
          const grown = fillSecrets(after, filled, counterKeys(1000))
          // Existing keys never change; new PSKs belong to the new site's pairs only.
          for (const [id, entry] of Object.entries(filled.sites)) {
            if (entry.v4 !== undefined) expect(grown.secrets.sites[id]?.v4).toEqual(entry.v4)
            if (entry.v6 !== undefined) expect(grown.secrets.sites[id]?.v6).toEqual(entry.v6)
          }
          for (const [name, psk] of Object.entries(filled.presharedKeys)) {
            expect(grown.secrets.presharedKeys[name]).toBe(psk)
          }
          expect(
            grown.change.addedPresharedKeys.every((k) => k.split("_")[0]?.split(".").includes(String(added.id))),
          ).toBe(true)
          const oldFiles = generate(before, filled)
          const newFiles = generate(after, grown.secrets)
          for (const [site, files] of oldFiles) {
            for (const [path, contents] of files) {
              if (path.endsWith(".conf") && path.startsWith("wg")) expect(newFiles.get(site)?.get(path)).toBe(contents)
              // Ports are a function of the ids: the daemon config's tunnels keep theirs too.
              if (path === "net-perf.json") {
                const ports = (text: string | undefined) =>
                  new Map<string, unknown>(
                    JSON.parse(text ?? "{}").mesh.tunnels.map((t: { name: string; listenPort: number | null }) => [
                      t.name,
                      t.listenPort,
                    ]),
                  )
                const newPorts = ports(newFiles.get(site)?.get(path))
                for (const [name, port] of ports(contents)) expect(newPorts.get(name)).toBe(port)
              }
            }
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it("writes the expected file set and only tunnels both sides can carry", () => {
    const mesh = decode({ ...example, defaults: { bird1: true } })
    const files = generate(mesh, fillSecrets(mesh, emptySecrets, counterKeys()).secrets)
    expect([...files.keys()]).toEqual(["ams", "fra", "sgp"])
    expect([...(files.get("fra")?.keys() ?? [])]).toEqual([
      "wg1.0_v4.conf",
      "wg1.7_v4.conf",
      "bird.conf",
      "bird1/bird.conf",
      "bird1/bird6.conf",
      "net-perf.json",
    ])
    const conf = files.get("ams")?.get("wg0.7_v6.conf") ?? ""
    expect(conf).toContain("Table = off\n")
    expect(conf).toContain("ListenPort = 51835\n")
    expect(conf).toContain("MTU = 1400\n")
    expect(conf).toContain("Endpoint = [2001:db8:c::70]:51821\n")
    expect(conf).toContain("AllowedIPs = 0.0.0.0/0, ::/0\n")
    expect(conf).toContain("PostUp = ip addr add 10.201.0.6/32 dev lo || echo .\n")
    expect(conf).toContain("PostUp = ip route add 10.201.7.6/32 dev %i src 10.201.0.6 || echo .\n")
    // sgp has no IPv4 endpoint: it does not listen on IPv4, and ams does not dial it.
    expect(files.get("sgp")?.get("wg7.0_v4.conf")).not.toContain("ListenPort")
    expect(files.get("ams")?.get("wg0.7_v4.conf")).not.toContain("Endpoint")
    const bird = files.get("ams")?.get("bird.conf") ?? ""
    expect(bird).toMatch(/^\s*local as 64512;$/m)
    expect(bird).toContain("neighbor 10.201.7.6 as 64519;")
    expect(JSON.parse(files.get("sgp")?.get("net-perf.json") ?? "").mesh.tunnels).toHaveLength(3)
  })

  it("writes BGP timers, BFD timing and the log target when given", () => {
    const mesh = decode({
      ...example,
      defaults: {
        bfd: true,
        bfdIntervalMs: 100,
        bfdMultiplier: 3,
        birdLog: "/var/log/bird-net-perf.log",
        bgp: { holdTimeSeconds: 9, connectRetrySeconds: 2, errorWaitSeconds: [1, 5] },
        bird1: true,
      },
    })
    const files = generate(mesh, fillSecrets(mesh, emptySecrets, counterKeys()).secrets)
    for (const path of ["bird.conf", "bird1/bird.conf", "bird1/bird6.conf"]) {
      const conf = files.get("ams")?.get(path) ?? ""
      expect(conf).toContain('log "/var/log/bird-net-perf.log" all;')
      expect(conf).toContain("  hold time 9;\n  keepalive time 3;\n  connect retry time 2;\n  error wait time 1, 5;\n")
      expect(conf).toContain('interface "wg0.7_v6" { interval 100 ms; multiplier 3; };')
    }
    expect(
      generate(decode(example), fillSecrets(decode(example), emptySecrets, counterKeys()).secrets)
        .get("ams")
        ?.get("bird.conf"),
    ).not.toContain("hold time")
  })

  it("names the missing secrets, never their values", () => {
    const mesh = decode(example)
    const { secrets } = fillSecrets(mesh, emptySecrets, counterKeys())
    const { "0.7_v6": _dropped, ...rest } = secrets.presharedKeys
    const out = generateMesh(mesh, { ...secrets, presharedKeys: rest })
    expect(Either.isLeft(out) && out.left.missing).toEqual(["pre-shared key 0.7_v6"])
    expect(requiredSecrets(mesh).presharedKeys).toEqual(["0.1_v4", "0.7_v4", "0.7_v6", "1.7_v4"])
  })

  it("rotates one site's keys and the PSKs of its pairs only", () => {
    const mesh = decode(example)
    const { secrets } = fillSecrets(mesh, emptySecrets, counterKeys())
    const rotated = rotateSecrets(mesh, secrets, 7, counterKeys(5000)).secrets
    expect(rotated.sites["0"]).toEqual(secrets.sites["0"])
    expect(rotated.sites["7"]?.v4).not.toEqual(secrets.sites["7"]?.v4)
    expect(rotated.presharedKeys["0.1_v4"]).toBe(secrets.presharedKeys["0.1_v4"])
    expect(rotated.presharedKeys["0.7_v6"]).not.toBe(secrets.presharedKeys["0.7_v6"])
    expect(Either.isRight(decodeSecrets(rotated))).toBe(true)
  })
})

describe("meshgen schema", () => {
  it("accepts the longest interface names Linux allows (15 bytes)", () => {
    const mesh = decode({
      sites: [
        { id: 1000, name: "a", endpoints: { v4: "192.0.2.1", v6: "2001:db8::1" } },
        { id: 10000, name: "b" },
      ],
      defaults: { basePort: 30000, addressPlan: { overlayV4: "10.0.0.0/8" } },
    })
    expect(planMesh(mesh).sites[1]?.tunnels.map((t) => t.name)).toEqual(["wg10000.1000_v4", "wg10000.1000_v6"])
    expect(planMesh(mesh).sites[1]?.overlay4).toBe("10.39.16.0/24")
  })

  it("applies defaults", () => {
    const mesh = decode(example)
    expect(mesh.defaults.basePort).toBe(51820)
    expect(mesh.defaults.firewall).toBe("nftables")
    expect(mesh.defaults.addressPlan.overlayV4).toBe("10.201.0.0/16")
    expect(mesh.sites[1]?.hooks.postUp).toEqual([])
  })

  it.each([
    [{ sites: [] }, "sites"],
    [{ sites: [{ id: -1, name: "a" }] }, "sites[0].id: Expected a non-negative number, actual -1"],
    [{ sites: [{ id: 1.5, name: "a" }] }, "1.5"],
    [{ sites: [{ id: 0, name: "a/b" }] }, '"a/b"'],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 0, name: "b" },
        ],
      },
      "duplicate site id 0",
    ],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 1, name: "A" },
        ],
      },
      'duplicate site name "A"',
    ],
    [{ sites: [{ id: 0, name: "a", stack: "v4", endpoints: { v6: "2001:db8::1" } }] }, "sites[0].endpoints.v6"],
    [{ sites: [{ id: 0, name: "a", endpoints: { v4: "2001:db8::1" } }] }, "is not an IPv4 address"],
    [{ sites: [{ id: 0, name: "a", endpoints: { v4: "bad host!" } }] }, '"bad host!"'],
    [{ sites: [{ id: 0, name: "a", lans: ["10.0.0.1/16"] }] }, '"10.0.0.1/16"'],
    [{ sites: [{ id: 0, name: "a", lans: ["10.201.3.0/24"] }] }, "overlaps the overlay"],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 256, name: "b" },
        ],
      },
      "has no /24 in overlayV4",
    ],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 200, name: "b" },
        ],
        defaults: { basePort: 65200 },
      },
      "exceed 65535",
    ],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 3, name: "b" },
        ],
        defaults: { basePort: 5115 },
      },
      "daemon's UDP port 5121",
    ],
    [{ sites: [{ id: 0, name: "a" }], pairs: [{ sites: [0, 9] }] }, "no site has id 9"],
    [
      {
        sites: [
          { id: 10000, name: "a" },
          { id: 10001, name: "b" },
        ],
        defaults: { basePort: 30000, addressPlan: { overlayV4: "10.0.0.0/8" } },
      },
      "interface name wg10000.10001_v4 is 16 bytes, over Linux's 15",
    ],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 1, name: "b" },
        ],
        pairs: [{ sites: [0, 1], dial: [{ from: 3, family: 4, endpoint: "h:1" }] }],
      },
      "pairs[0].dial[0].from: site 3 is not one of this pair's sites",
    ],
    [
      {
        sites: [
          { id: 0, name: "a" },
          { id: 1, name: "b" },
        ],
        pairs: [{ sites: [0, 1], dial: [{ from: 0, family: 4, endpoint: "2001:db8::1:80" }] }],
      },
      'pairs[0].dial[0].endpoint: expected host:port or [IPv6]:port, got "2001:db8::1:80"',
    ],
    [
      { sites: [{ id: 0, name: "a" }], defaults: { birdLog: 'x"y' } },
      "defaults.birdLog: expected syslog, stderr or an absolute file path",
    ],
    [{ sites: [{ id: 0, name: "a" }], unknownKey: 1 }, "unknownKey: is unexpected"],
    [{ sites: [{ id: 0, name: "a", stack: "v5" }] }, 'sites[0].stack: expected "dual", "v4" or "v6", got "v5"'],
    [{ sites: [{ id: 0, name: "a", hooks: { postUp: ["a\nb"] } }] }, "single line"],
    [
      { sites: [{ id: 0, name: "a" }], defaults: { mtu: 100 } },
      "defaults.mtu: Expected a number between 1300 and 9000, actual 100",
    ],
  ])("rejects %j naming %s", (input, needle) => {
    expect(errorOf(input)).toContain(needle)
  })

  it("rejects malformed secrets", () => {
    const bad = decodeSecrets({
      version: 1,
      sites: { "0": { v4: { privateKey: "nope", publicKey: "x" } } },
      presharedKeys: {},
    })
    expect(Either.isLeft(bad) && bad.left).toContain("WireGuard key")
  })
})

describe("meshgen drift", () => {
  it("aligns lines: one inserted line is one difference", () => {
    const expected = new Map([["a", new Map([["f", "one\ntwo\nthree\nfour\n"]])]])
    const inserted = new Map([["a", new Map([["f", "one\nextra\ntwo\nthree\nfour\n"]])]])
    const changed = new Map([["a", new Map([["f", "one\nTWO\nthree\nfour\n"]])]])
    const deleted = new Map([["a", new Map([["f", "one\nthree\nfour\n"]])]])
    expect(diffTrees(expected, inserted)[0]?.lines).toEqual([{ line: 2, expected: "<absent>", actual: "extra" }])
    expect(diffTrees(expected, changed)[0]?.lines).toEqual([{ line: 2, expected: "two", actual: "TWO" }])
    expect(diffTrees(expected, deleted)[0]?.lines).toEqual([{ line: 2, expected: "two", actual: "<absent>" }])
  })

  it("finds a difference whenever two files differ (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "c", "")),
        fc.array(fc.constantFrom("a", "b", "c", "")),
        (x, y) => {
          const drift = diffTrees(
            new Map([["s", new Map([["f", x.join("\n")]])]]),
            new Map([["s", new Map([["f", y.join("\n")]])]]),
          )
          expect(drift.length).toBe(x.join("\n") === y.join("\n") ? 0 : 1)
          if (drift.length === 1) expect(drift[0]?.lines.length).toBeGreaterThan(0)
        },
      ),
    )
  })

  it("reports missing, changed and unexpected files with keys redacted", () => {
    const mesh = decode(example)
    const secrets = fillSecrets(mesh, emptySecrets, counterKeys()).secrets
    const expected = generate(mesh, secrets)
    const other = generate(mesh, rotateSecrets(mesh, secrets, 0, counterKeys(77)).secrets)
    const actual = new Map([...other].map(([site, files]) => [site, new Map(files)]))
    actual.get("fra")?.delete("bird.conf")
    actual.get("fra")?.set("wg1.9_v4.conf", "stale")
    actual.delete("sgp")
    actual.set("old", new Map())
    const drift = diffTrees(expected, actual)
    const text = formatDrift(drift)
    expect(drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("missing fra/bird.conf")
    expect(drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("unexpected fra/wg1.9_v4.conf")
    expect(drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("missing-site sgp/")
    expect(drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("unexpected-site old/")
    expect(drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("changed ams/wg0.1_v4.conf")
    expect(text).toContain("PrivateKey = <redacted>")
    for (const pair of Object.values(secrets.sites)) expect(text).not.toContain(pair.v4?.privateKey ?? "\u0000")
    for (const psk of Object.values(secrets.presharedKeys)) expect(text).not.toContain(psk)
  })
})
