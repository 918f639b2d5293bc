/**
 * End to end over a real WireGuard tunnel: two namespaces, wireguard-go on each side, one
 * measurement plane per site as its own process inside its namespace. Checks discovery (conf +
 * live link, a bad conf reported and skipped), every probe kind producing samples, failure
 * detection when the underlay goes down, recovery, and WGDEL/WGADD/STATUS over the control socket.
 */
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { PlaneStatus, TunnelStatus } from "../../src/MeasurementPlane.js"
import { controlCommand } from "../control/ControlClient.js"
import { bundleAgent } from "./bundleAgent.js"
import { makeTunnelPair, type Site, type TunnelPair } from "./Netns.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.warn("Tunnel.e2e: skipped, needs root for network namespaces and wireguard-go")

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(!isRoot)("measurement plane over a real wireguard-go tunnel", () => {
  let pair: TunnelPair
  let cleanupBundle: (() => Promise<void>) | undefined
  const socketOf = (s: Site) => join(pair.root, `ctl${s.id}.sock`)

  const status = async (s: Site): Promise<PlaneStatus> => JSON.parse(await controlCommand(socketOf(s), "STATUS"))
  const tunnelOf = async (s: Site): Promise<TunnelStatus | undefined> =>
    (await status(s)).tunnels.find((t) => t.name === s.ifName)
  const waitFor = async (s: Site, cond: (t: TunnelStatus | undefined) => boolean, timeoutMillis: number) => {
    const start = Date.now()
    let last: TunnelStatus | undefined
    while (Date.now() - start < timeoutMillis) {
      last = await tunnelOf(s).catch(() => undefined)
      if (cond(last)) return { tunnel: last, elapsedMillis: Date.now() - start }
      await sleep(50)
    }
    throw new Error(`timeout waiting on ${s.ifName}; last status: ${JSON.stringify(last)}`)
  }

  beforeAll(async () => {
    pair = await makeTunnelPair(1, 2)
    const bundle = await bundleAgent()
    cleanupBundle = bundle.cleanup
    await writeFile(join(pair.a.confDir, "wg1.9_v4.conf"), "[Interface]\nPrivateKey = not-a-key\n")
    for (const s of [pair.a, pair.b]) {
      const config = {
        localSite: s.id,
        allowPrefixes: ["10.201.0.0/16"],
        discovery: { confDir: s.confDir, rescanIntervalMillis: 5000 },
        control: { path: socketOf(s) },
        http: { host: "127.0.0.1", port: 5120 },
        probes: {
          icmp: { intervalMillis: 500 },
          tcp: { intervalMillis: 1000 },
          lossTest: { packets: 200, intervalMillis: 3000 },
        },
      }
      pair.spawn(s, [process.execPath, bundle.file, JSON.stringify(config)])
    }
  }, 60_000)

  afterAll(async () => {
    await pair?.teardown()
    await cleanupBundle?.()
  }, 60_000)

  it("discovers the tunnel from conf and live link, and reports the bad conf", async () => {
    const { tunnel } = await waitFor(pair.a, (t) => t?.active === true, 15_000)
    expect(tunnel?.conf?.file).toBe(join(pair.a.confDir, "wg1.2_v4.conf"))
    expect(tunnel?.wg?.listenPort).toBe(51820)
    const s = await status(pair.a)
    expect(s.localSite).toBe(1)
    expect(s.confErrors).toHaveLength(1)
    expect(s.confErrors[0]?.file).toContain("wg1.9_v4.conf")
    expect(s.confErrors[0]?.line).toBe(2)
    // Only this namespace's tunnel: wg2.1_v4 lives in the other namespace.
    expect(s.tunnels.map((t) => t.name)).toEqual(["wg1.2_v4"])
  }, 30_000)

  it("measures the tunnel with every probe kind", async () => {
    const { tunnel } = await waitFor(
      pair.a,
      (t) =>
        t?.stats?.state === "up" &&
        (t.sampleCounts?.["udp-echo"] ?? 0) >= 3 &&
        (t.sampleCounts?.icmp ?? 0) >= 2 &&
        (t.sampleCounts?.tcp ?? 0) >= 1 &&
        (t.sampleCounts?.["loss-test"] ?? 0) >= 1,
      20_000,
    )
    expect(tunnel?.echo?.health).toBe("up")
    expect(tunnel?.stats?.rttMs).toBeGreaterThan(0)
    expect(tunnel?.stats?.rttMs).toBeLessThan(100)
    expect(tunnel?.costMs).not.toBeNull()
  }, 30_000)

  it("declares the tunnel dead when the underlay goes down, and up when it returns", async () => {
    await waitFor(pair.a, (t) => t?.echo?.health === "up", 10_000)
    const down = Date.now()
    const r = await import("execa").then(({ execa }) =>
      execa("ip", ["-n", pair.a.ns, "link", "set", pair.a.veth, "down"]),
    )
    expect(r.exitCode).toBe(0)
    const { tunnel } = await waitFor(pair.a, (t) => t?.echo?.health === "dead" && t.stats?.state === "dead", 10_000)
    // Detection budget 1.5 s at defaults, plus the status polling and a loaded machine.
    expect(Date.now() - down).toBeLessThan(3500)
    expect(tunnel?.costMs).toBeNull()
    await import("execa").then(({ execa }) => execa("ip", ["-n", pair.a.ns, "link", "set", pair.a.veth, "up"]))
    await waitFor(pair.a, (t) => t?.echo?.health === "up" && t.stats?.state === "up", 15_000)
  }, 40_000)

  it("WGDEL stops measuring, WGADD resumes, bad commands get an ERROR line", async () => {
    expect(await controlCommand(socketOf(pair.a), "WGDEL wg1.2_v4")).toBe("OK")
    await waitFor(pair.a, (t) => t?.active === false && t.echo === null, 5000)
    expect(await controlCommand(socketOf(pair.a), "WGADD wg1.2_v4")).toBe("OK")
    await waitFor(pair.a, (t) => t?.active === true && (t.echo?.received ?? 0) >= 1, 10_000)
    expect(await controlCommand(socketOf(pair.a), "WGRESTART wg1.2_v4")).toBe("OK")
    expect(await controlCommand(socketOf(pair.a), "WGADD eth0")).toMatch(/^ERROR: eth0: does not match/)
    expect(await controlCommand(socketOf(pair.a), "HELLO")).toMatch(/^ERROR: unknown command/)
  }, 30_000)
})
