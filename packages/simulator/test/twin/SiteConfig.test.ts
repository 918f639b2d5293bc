import { fc, test } from "@fast-check/vitest"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import type { SiteKeys } from "../../src/twin/MeshConfig.js"
import { parseScenarioText } from "../../src/twin/Scenario.js"
import { builtinSource, meshgenSource, splitWgQuick } from "../../src/twin/SiteConfig.js"

const key = (site: number, f: number, kind: string) =>
  Buffer.alloc(32, site * 16 + f * 2 + (kind === "pub" ? 1 : 0)).toString("base64")
const keysFor = (n: number): SiteKeys[] =>
  Array.from({ length: n }, (_, s) => ({
    v4: { privateKey: key(s, 4, "priv"), publicKey: key(s, 4, "pub") },
    v6: { privateKey: key(s, 6, "priv"), publicKey: key(s, 6, "pub") },
  }))

const scenarioOf = (sites: number, families: ReadonlyArray<4 | 6>, bfd: boolean) =>
  Either.getOrThrow(
    parseScenarioText(JSON.stringify({ name: "cfg", sites, durationSeconds: 1, families, bird: { bfd } })),
  )

describe("site configuration generators", () => {
  test.prop([fc.integer({ min: 2, max: 7 }), fc.constantFrom<ReadonlyArray<4 | 6>>([4], [6], [4, 6]), fc.boolean()], {
    numRuns: 15,
  })("meshgen and the builtin generator agree on tunnels, ports, peers and sessions", (n, families, bfd) => {
    const s = scenarioOf(n, families, bfd)
    const keys = keysFor(n)
    const mg = Either.getOrThrow(meshgenSource(s, keys))
    const endpointOf = (a: number, b: number, f: number) =>
      f === 4 ? `10.200.0.1:${1000 + a * 50 + b}` : `[fd00:c8::1]:${2000 + a * 50 + b}`
    const logOf = (site: number) => `/run/netlab/test/s${site}/bird.log`
    for (const source of [mg, builtinSource(s, keys)]) {
      const sites = Either.getOrThrow(source.generate(endpointOf, logOf))
      expect(sites).toHaveLength(n)
      sites.forEach((files, site) => {
        expect(files.tunnels).toHaveLength((n - 1) * families.length)
        for (const t of files.tunnels) {
          const own = t.family === 4 ? keys[site]?.v4 : keys[site]?.v6
          const peer = t.family === 4 ? keys[t.remote]?.v4 : keys[t.remote]?.v6
          expect(t.setconf).toContain(`PrivateKey = ${own?.privateKey}`)
          expect(t.setconf).toContain(`PublicKey = ${peer?.publicKey}`)
          expect(t.setconf).toContain(`Endpoint = ${endpointOf(site, t.remote, t.family)}`)
          expect(t.setconf).toContain(`ListenPort = ${source.listenPort(site, t.remote, t.family)}`)
          expect(t.setconf).toMatch(/AllowedIPs = 0\.0\.0\.0\/0, ::\/0/)
          expect(t.setconf).not.toMatch(/PostUp|MTU|Table|^#/m)
          expect(t.postUp.join("\n")).toContain(
            `${`10.201.${site}.${t.family}`}/32 peer 10.201.${t.remote}.${t.family}/32 dev ${t.name}`,
          )
          expect(files.birdConf).toContain(`neighbor 10.201.${t.remote}.${t.family} as ${64512 + t.remote}`)
        }
        expect(files.birdConf).toContain(`"${logOf(site)}"`)
        expect(files.birdConf).toContain(`router id 10.201.${site}.1;`)
        expect(files.birdConf.includes("bfd on")).toBe(bfd)
      })
      // Listen ports are distinct within a site (they share one namespace).
      for (let site = 0; site < n; site++) {
        const ports = Array.from({ length: n }, (_, r) => r)
          .filter((r) => r !== site)
          .flatMap((r) => families.map((f) => source.listenPort(site, r, f)))
        expect(new Set(ports).size).toBe(ports.length)
      }
    }
  })

  it("splits a wg-quick file into setconf text, MTU and PostUp lines", () => {
    const text = [
      "# comment",
      "[Interface]",
      "PrivateKey = AAA=",
      "ListenPort = 51822",
      "MTU = 1400",
      "Table = off",
      "PostUp = ip addr add 10.201.0.4/32 peer 10.201.1.4/32 dev %i || echo .",
      "",
      "[Peer]",
      "# the peer",
      "PublicKey = BBB=",
      "Endpoint = 10.200.0.1:5555",
      "AllowedIPs = 0.0.0.0/0, ::/0",
    ].join("\n")
    expect(splitWgQuick(text, "wg0.1_v4")).toEqual({
      setconf:
        "[Interface]\nPrivateKey = AAA=\nListenPort = 51822\n[Peer]\nPublicKey = BBB=\nEndpoint = 10.200.0.1:5555\nAllowedIPs = 0.0.0.0/0, ::/0\n",
      mtu: 1400,
      postUp: ["ip addr add 10.201.0.4/32 peer 10.201.1.4/32 dev wg0.1_v4 || echo ."],
    })
  })
})

describe("PostUp batching", () => {
  it("turns `ip … || echo .` lines into ip -batch lines and keeps the rest as shell", async () => {
    const { batchablePostUp } = await import("../../src/twin/Twin.js")
    expect(
      batchablePostUp([
        "ip addr add 10.201.0.4/32 dev lo || echo .",
        "ip -6 addr add fdac:c9::4/128 peer fdac:c9:1::4/128 dev wg0.1_v4 nodad || echo .",
        "ip route add 10.201.1.4/32 dev wg0.1_v4 src 10.201.0.4",
        "nft add element inet netperf tunnels { wg0.1_v4 } || echo .",
        "ip addr add $(cat x) dev lo || echo .",
      ]),
    ).toEqual({
      batch: ["addr add 10.201.0.4/32 dev lo", "addr add fdac:c9::4/128 peer fdac:c9:1::4/128 dev wg0.1_v4 nodad"],
      shell: [
        "ip route add 10.201.1.4/32 dev wg0.1_v4 src 10.201.0.4",
        "nft add element inet netperf tunnels { wg0.1_v4 } || echo .",
        "ip addr add $(cat x) dev lo || echo .",
      ],
    })
  })
})
