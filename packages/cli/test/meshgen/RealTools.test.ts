/**
 * The generated files against the real tools: `wg-quick strip`, `bird -p` (BIRD 2), BIRD 1.6's
 * `bird -p` / `bird6 -p`, and, as root, a live 3-site mesh in namespaces the test creates
 * (wg-quick + wireguard-go + BIRD 2 per site) that must bring every BGP session up.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { NetLab } from "@net-perf/simulator"
import { Effect, Option } from "effect"
import YAML from "yaml"
import { runMeshGen } from "../../src/meshgen/MeshGenCli.js"

const repoRoot = join(import.meta.dirname, "../../../..")
const isRoot = process.getuid?.() === 0
const sh = (cmd: string, args: ReadonlyArray<string>, input?: string) => {
  const r = spawnSync(cmd, args, {
    input,
    encoding: "utf8",
    env: { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: "wireguard-go" },
  })
  return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" }
}
const must = (cmd: string, args: ReadonlyArray<string>) => {
  const r = sh(cmd, args)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.err}`)
  return r.out
}

const generate = (mesh: unknown, dir: string) => {
  const meshPath = join(dir, "mesh.yaml")
  writeFileSync(meshPath, YAML.stringify(mesh))
  const out = join(dir, "out")
  return runMeshGen({
    meshPath,
    outDir: out,
    secretsPath: Option.none(),
    bird1: true,
    check: false,
    rotateKeys: Option.none(),
    progress: () => Effect.void,
  }).pipe(
    Effect.provide(NodeContext.layer),
    Effect.map((summary) => ({ summary, out })),
    Effect.runPromise,
  )
}

const tmp = mkdtempSync(join(tmpdir(), "np-meshgen-tools-"))
let bird1Prefix = ""
const bird1Sbin = () => {
  if (bird1Prefix === "")
    bird1Prefix = execFileSync("bash", [join(repoRoot, "scripts/bird1.sh")], { encoding: "utf8" }).trim()
  return join(bird1Prefix, "usr/sbin")
}
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe("generated configs and the real tools", () => {
  const exampleMesh = YAML.parse(readFileSync(join(repoRoot, "packages/cli/examples/mesh-3site.yaml"), "utf8"))
  // Every option that changes the output: bird1, BFD, iptables, hooks, NAT sites, LANs of both families.
  const variants = {
    example: exampleMesh,
    iptables: {
      ...exampleMesh,
      defaults: {
        ...exampleMesh.defaults,
        firewall: "iptables",
        bfd: true,
        bfdIntervalMs: 100,
        bfdMultiplier: 3,
        birdLog: join(tmp, "bird.log"),
        bgp: { holdTimeSeconds: 9, connectDelaySeconds: 1, connectRetrySeconds: 2, errorWaitSeconds: [1, 5] },
      },
    },
    none: { ...exampleMesh, defaults: { firewall: "none", keepaliveSeconds: 0 } },
  }
  const trees: Record<string, string> = {}

  beforeAll(async () => {
    bird1Sbin()
    for (const [name, mesh] of Object.entries(variants)) {
      mkdirSync(join(tmp, name))
      trees[name] = (await generate(mesh, join(tmp, name))).out
    }
  })

  const files = (name: string, pattern: RegExp): Array<string> =>
    (execFileSync("find", [trees[name] ?? "/nonexistent", "-type", "f"], { encoding: "utf8" }) as string)
      .split("\n")
      .filter((f) => pattern.test(f))
      .sort()

  it.each(Object.keys(variants))("%s: every WireGuard conf passes wg-quick strip", (name) => {
    const confs = files(name, /\/wg\d+\.\d+_v[46]\.conf$/)
    expect(confs.length).toBe(8)
    for (const conf of confs) {
      const stripped = sh("wg-quick", ["strip", conf])
      expect(stripped.err).toBe("")
      expect(stripped.code).toBe(0)
      expect(stripped.out).not.toMatch(/PostUp|Table|MTU/)
      expect(stripped.out).toMatch(/PresharedKey = /)
    }
  })

  it.each(Object.keys(variants))("%s: BIRD 2 accepts every bird.conf (bird -p)", (name) => {
    const confs = files(name, /\/[^/]+\/bird\.conf$/).filter((f) => !f.includes("/bird1/"))
    expect(confs.length).toBe(3)
    for (const conf of confs) expect(sh("bird", ["-p", "-c", conf])).toMatchObject({ code: 0, err: "" })
  })

  it.each(Object.keys(variants))("%s: BIRD 1.6 accepts bird1/bird.conf and bird6 accepts bird1/bird6.conf", (name) => {
    const confs = files(name, /\/bird1\/bird6?\.conf$/)
    expect(confs.length).toBe(6)
    for (const conf of confs) {
      const binary = join(bird1Prefix, "usr/sbin", conf.endsWith("bird6.conf") ? "bird6" : "bird")
      expect(sh(binary, ["-p", "-c", conf])).toMatchObject({ code: 0, err: "" })
    }
  })

  it.skipIf(!isRoot)("every stripped conf is accepted by `wg setconf` on a real wireguard-go interface", async () => {
    const ns = `np${Math.floor(Math.random() * 0xffff)
      .toString(16)
      .padStart(4, "0")}w`
    const wgRun = join(tmp, "setconf-run")
    mkdirSync(wgRun, { recursive: true })
    mkdirSync("/var/run/wireguard", { recursive: true })
    // The twin's per-site wrapper: a private /var/run/wireguard inside the namespace.
    const inNs = (args: ReadonlyArray<string>, input?: string) => {
      const [command, ...rest] = NetLab.inSite(ns, wgRun, args)
      return sh(command!, rest, input)
    }
    must("ip", ["netns", "add", ns])
    try {
      expect(inNs(["wireguard-go", "wgtest0"]).code).toBe(0)
      let checked = 0
      for (const name of Object.keys(variants)) {
        for (const conf of files(name, /\/wg\d+\.\d+_v[46]\.conf$/)) {
          const stripped = join(tmp, "stripped.conf")
          writeFileSync(stripped, sh("wg-quick", ["strip", conf]).out, { mode: 0o600 })
          const set = inNs(["wg", "setconf", "wgtest0", stripped])
          expect(set.err).toBe("")
          expect(set.code).toBe(0)
          // The device now holds exactly the file's peer and listen port.
          const dump = inNs(["wg", "show", "wgtest0", "dump"]).out.trim().split("\n")
          expect(dump).toHaveLength(2)
          const port = /^ListenPort = (\d+)$/m.exec(readFileSync(conf, "utf8"))?.[1]
          if (port !== undefined) expect(dump[0]?.split("\t")[2]).toBe(port)
          expect(dump[1]?.split("\t")[2]).toBe(/^Endpoint = (.*)$/m.exec(readFileSync(conf, "utf8"))?.[1] ?? "(none)")
          checked++
        }
      }
      expect(checked).toBe(24)
    } finally {
      const pids = sh("ip", ["netns", "pids", ns])
        .out.split("\n")
        .filter((p) => p !== "")
      for (const pid of pids) sh("kill", [pid])
      sh("ip", ["netns", "del", ns])
      for (let i = 0; i < 100 && pids.some((p) => existsSync(`/proc/${p}`)); i++)
        await new Promise((r) => setTimeout(r, 100))
    }
  })

  it("a broken config is rejected by the same checks (the checks can fail)", () => {
    const broken = join(tmp, "broken.conf")
    writeFileSync(broken, "[Interface]\nPrivateKey = nope\n")
    expect(sh("wg", ["setconf", "nonexistent0", broken]).code).not.toBe(0)
    writeFileSync(broken, "protocol bgp x { neighbor 1.2.3.4 as; }\n")
    expect(sh("bird", ["-p", "-c", broken]).code).not.toBe(0)
    expect(sh(join(bird1Prefix, "usr/sbin/bird6"), ["-p", "-c", broken]).code).not.toBe(0)
  })
})

/** A live mesh: one namespace per site on a shared underlay bridge, wg-quick + wireguard-go + BIRD. */
describe.skipIf(!isRoot).each(["2", "1"] as const)(
  "a generated 3-site mesh running in namespaces with BIRD %s",
  (flavor) => {
    const prefix = `np${flavor}${Math.floor(Math.random() * 0xffff)
      .toString(16)
      .padStart(4, "0")}`
    const sites = [
      { id: 0, name: "ams", endpoints: { v4: "192.0.2.1", v6: "2001:db8:ff::1" }, lans: ["10.0.0.0/16"] },
      { id: 1, name: "fra", stack: "v4", endpoints: { v4: "192.0.2.2" }, lans: ["10.1.0.0/16"] },
      { id: 7, name: "sgp", endpoints: { v6: "2001:db8:ff::8" }, lans: ["10.7.0.0/16", "2001:db8:c:100::/56"] },
    ] as const
    const underlay = `${prefix}u`
    const ns = (id: number) => `${prefix}s${id}`
    const dir = join(tmp, `live${flavor}`)
    let out = ""
    const created: Array<string> = []

    const inSite = (id: number, args: ReadonlyArray<string>) => {
      // Private /var/run/wireguard per site: wireguard-go's sockets would otherwise be shared.
      const [command, ...rest] = NetLab.inSite(ns(id), join(dir, `run${id}`), args)
      return sh(command!, rest)
    }

    beforeAll(async () => {
      mkdirSync(dir, { recursive: true })
      mkdirSync("/var/run/wireguard", { recursive: true })
      out = (await generate({ defaults: { bfd: false }, sites, pairs: [{ sites: [0, 7], bfd: true }] }, dir)).out
      must("ip", ["netns", "add", underlay])
      created.push(underlay)
      must("ip", ["-n", underlay, "link", "add", `${prefix}br`, "type", "bridge"])
      must("ip", ["-n", underlay, "link", "set", `${prefix}br`, "up"])
      for (const [i, site] of sites.entries()) {
        must("ip", ["netns", "add", ns(site.id)])
        created.push(ns(site.id))
        mkdirSync(join(dir, `run${site.id}`))
        must("ip", [
          "link",
          "add",
          `${prefix}v${site.id}`,
          "netns",
          ns(site.id),
          "type",
          "veth",
          "peer",
          "name",
          `${prefix}b${site.id}`,
          "netns",
          underlay,
        ])
        must("ip", ["-n", underlay, "link", "set", `${prefix}b${site.id}`, "master", `${prefix}br`, "up"])
        must("ip", ["-n", ns(site.id), "link", "set", "lo", "up"])
        must("ip", ["-n", ns(site.id), "link", "set", `${prefix}v${site.id}`, "up"])
        // Every site gets both underlay families on the wire; the mesh file decides what is used.
        must("ip", ["-n", ns(site.id), "addr", "add", `192.0.2.${i + 1}/24`, "dev", `${prefix}v${site.id}`])
        must("ip", [
          "-n",
          ns(site.id),
          "addr",
          "add",
          `2001:db8:ff::${i === 2 ? 8 : i + 1}/64`,
          "dev",
          `${prefix}v${site.id}`,
          "nodad",
        ])
      }
      // net-perf's own route (protocol 201) must survive BIRD: put one in before BIRD starts.
      for (const site of sites) {
        const confs = readFileSync(join(out, site.name, "net-perf.json"), "utf8")
        for (const t of JSON.parse(confs).mesh.tunnels as Array<{ name: string }>) {
          const up = inSite(site.id, ["wg-quick", "up", join(out, site.name, `${t.name}.conf`)])
          if (up.code !== 0) throw new Error(`wg-quick up ${site.name}/${t.name} failed: ${up.err}`)
        }
      }
      must("ip", ["-n", ns(0), "route", "add", "10.201.1.0/24", "dev", "wg0.1_v4", "proto", "201"])
      for (const site of sites) {
        const daemons: Array<[string, string, string]> =
          flavor === "2"
            ? [["bird", join(out, site.name, "bird.conf"), `bird${site.id}`]]
            : [
                [join(bird1Sbin(), "bird"), join(out, site.name, "bird1/bird.conf"), `bird${site.id}`],
                [join(bird1Sbin(), "bird6"), join(out, site.name, "bird1/bird6.conf"), `bird6-${site.id}`],
              ]
        for (const [binary, conf, name] of daemons) {
          must("ip", [
            "netns",
            "exec",
            ns(site.id),
            binary,
            "-c",
            conf,
            "-s",
            join(dir, `${name}.ctl`),
            "-P",
            join(dir, `${name}.pid`),
          ])
        }
      }
    })

    afterAll(async () => {
      const pids = created.flatMap((name) =>
        sh("ip", ["netns", "pids", name])
          .out.split("\n")
          .filter((p) => p !== ""),
      )
      for (const pid of pids) sh("kill", [pid])
      for (const name of created.reverse()) sh("ip", ["netns", "del", name])
      // wireguard-go needs a few seconds to exit.
      for (let i = 0; i < 100 && pids.some((p) => existsSync(`/proc/${p}`)); i++)
        await new Promise((r) => setTimeout(r, 100))
      for (const pid of pids) if (existsSync(`/proc/${pid}`)) sh("kill", ["-9", pid])
    })

    it("brings every BGP session up and installs the other sites' prefixes", async () => {
      const sockets = (id: number) => (flavor === "2" ? [`bird${id}`] : [`bird${id}`, `bird6-${id}`])
      const bgpStates = (id: number) =>
        sockets(id).flatMap((name) =>
          sh("birdc", ["-s", join(dir, `${name}.ctl`), "show", "protocols"])
            .out.split("\n")
            .filter((l) => /\sBGP\s/.test(l)),
        )
      const deadline = Date.now() + 60_000
      while (Date.now() < deadline && !sites.every((s) => bgpStates(s.id).every((l) => l.includes("Established")))) {
        await new Promise((r) => setTimeout(r, 500))
      }
      for (const site of sites) {
        const states = bgpStates(site.id)
        expect(states.length).toBe((site.id === 1 ? 2 : 3) * (flavor === "2" ? 1 : 2))
        for (const line of states) expect(line).toContain("Established")
      }
      // Converged routes: poll until sgp's prefixes show up at fra (two hops of BGP propagation at most).
      const routes = (id: number, family: "-4" | "-6") =>
        sh("ip", [family, "-n", ns(id), "route", "show", "proto", "bird"]).out
      while (Date.now() < deadline && !routes(1, "-6").includes("fdac:c9:7::/64"))
        await new Promise((r) => setTimeout(r, 500))
      const fra4 = routes(1, "-4")
      expect(fra4).toMatch(/10\.201\.0\.0\/24 via 10\.201\.0\.4 dev wg1\.0_v4 .*metric 4096/)
      expect(fra4).toMatch(/10\.7\.0\.0\/16 via 10\.201\.7\.4 dev wg1\.7_v4/)
      expect(routes(1, "-6")).toMatch(/fdac:c9:7::\/64 via fdac:c9:7::4 dev wg1\.7_v4/)
      expect(routes(0, "-6")).toContain("2001:db8:c:100::/56")
      // BIRD left net-perf's protocol-201 route alone and sits behind it by metric.
      const ams = sh("ip", ["-n", ns(0), "route", "show", "10.201.1.0/24"]).out
      expect(ams).toContain("dev wg0.1_v4 proto 201")
      expect(ams).toContain("proto bird metric 4096")
      // The probe addresses answer through the tunnels, over both underlays.
      expect(sh("ip", ["netns", "exec", ns(0), "ping", "-c1", "-W2", "-I", "10.201.0.4", "10.201.1.4"]).code).toBe(0)
      expect(sh("ip", ["netns", "exec", ns(0), "ping", "-c1", "-W2", "-I", "10.201.0.6", "10.201.7.6"]).code).toBe(0)
      // wg-quick applied what the files say (wg setconf on a real interface), ports included.
      expect(inSite(0, ["wg", "show", "wg0.7_v6", "listen-port"]).out.trim()).toBe(String(51820 + 2 * 7 + 1))
      expect(inSite(7, ["wg", "show", "wg7.0_v4", "listen-port"]).out.trim()).not.toBe(String(51820 + 1))
      // BFD runs on the pair that asked for it.
      expect(sh("birdc", ["-s", join(dir, "bird0.ctl"), "show", "bfd", "sessions"]).out).toMatch(
        /10\.201\.7\.4\s+wg0\.7_v4\s+Up/,
      )
      // The nftables PostUp ran: the tunnels are in the set.
      expect(sh("ip", ["netns", "exec", ns(0), "nft", "list", "set", "inet", "netperf", "tunnels"]).out).toContain(
        "wg0.7_v6",
      )
    }, 90_000)
  },
)
