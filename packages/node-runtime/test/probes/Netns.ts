/**
 * Test fixture: two network namespaces joined by a veth underlay and a real wireguard-go tunnel
 * (wgA.B_v4 / wgB.A_v4), each side with its probe endpoint 10.201.X.4/32 on lo. wireguard-go and
 * everything that talks to it run under `unshare --mount` with a private /var/run/wireguard bind
 * mount, so parallel runs (and the twin) never share control sockets. `teardown` removes every
 * process, namespace and directory, and waits for wireguard-go to exit.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { execa } from "execa"

const startChild = (argv: ReadonlyArray<string>) =>
  execa(argv[0]!, argv.slice(1), { reject: false, stdin: "ignore", stdout: "pipe", stderr: "pipe", buffer: false })
export type Child = ReturnType<typeof startChild>

const sh = async (cmd: string, args: ReadonlyArray<string>) => {
  const r = await execa(cmd, args, { reject: false, stdin: "ignore" })
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`)
  return String(r.stdout).trim()
}

export interface Site {
  readonly id: number
  readonly ns: string
  readonly wgDir: string
  readonly confDir: string
  readonly ifName: string
  readonly underlay: string
  readonly veth: string
}

export interface TunnelPair {
  readonly a: Site
  readonly b: Site
  readonly root: string
  /** Runs argv inside a site's namespace and private /var/run/wireguard. */
  readonly inSite: (site: Site, argv: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Starts argv in a site; its output is drained unless `captureStdout` (then read `stdout`). */
  readonly spawn: (site: Site, argv: ReadonlyArray<string>, options?: { readonly captureStdout?: boolean }) => Child
  readonly teardown: () => Promise<void>
}

export const wrapInSite = (site: Site, argv: ReadonlyArray<string>): ReadonlyArray<string> => [
  "unshare",
  "--mount",
  "--propagation",
  "private",
  "sh",
  "-c",
  `mount --bind "$0" /var/run/wireguard && ns="$1" && shift && exec ip netns exec "$ns" "$@"`,
  site.wgDir,
  site.ns,
  ...argv,
]

export const makeTunnelPair = async (siteA = 1, siteB = 2): Promise<TunnelPair> => {
  const tag = `np${Math.floor(Math.random() * 0xffff)
    .toString(16)
    .padStart(4, "0")}`
  const root = await mkdtemp(join(tmpdir(), `${tag}-`))
  const processes: Array<Child> = []
  const mk = (id: number, peer: number, n: number): Site => ({
    id,
    ns: `${tag}s${id}`,
    wgDir: join(root, `wg${id}`),
    confDir: join(root, `conf${id}`),
    ifName: `wg${id}.${peer}_v4`,
    underlay: `192.168.${200 + (parseInt(tag.slice(2), 16) % 50)}.${n}`,
    veth: `${tag}v${n}`,
  })
  const a = mk(siteA, siteB, 1)
  const b = mk(siteB, siteA, 2)
  const spawn = (site: Site, argv: ReadonlyArray<string>, options: { readonly captureStdout?: boolean } = {}) => {
    const p = startChild(wrapInSite(site, argv))
    // An unread pipe fills up and blocks the child.
    if (options.captureStdout !== true) p.stdout?.resume()
    p.stderr?.resume()
    processes.push(p)
    return p
  }
  const teardown = async () => {
    for (const p of processes) p.kill("SIGTERM")
    await Promise.race([Promise.all(processes), new Promise((r) => setTimeout(r, 8000))])
    for (const p of processes) p.kill("SIGKILL")
    await Promise.all(processes)
    for (const s of [a, b]) await execa("ip", ["netns", "del", s.ns], { reject: false })
    await execa("ip", ["link", "del", a.veth], { reject: false })
    await rm(root, { recursive: true, force: true })
  }
  try {
    for (const s of [a, b]) {
      await sh("mkdir", ["-p", s.wgDir, s.confDir])
      await sh("ip", ["netns", "add", s.ns])
      await sh("ip", ["-n", s.ns, "link", "set", "lo", "up"])
      await sh("ip", ["-n", s.ns, "addr", "add", `10.201.${s.id}.4/32`, "dev", "lo"])
    }
    await sh("ip", ["link", "add", a.veth, "netns", a.ns, "type", "veth", "peer", "name", b.veth, "netns", b.ns])
    const keys = new Map<Site, { priv: string; pub: string }>()
    for (const s of [a, b]) {
      await sh("ip", ["-n", s.ns, "addr", "add", `${s.underlay}/24`, "dev", s.veth])
      await sh("ip", ["-n", s.ns, "link", "set", s.veth, "up"])
      const priv = await sh("wg", ["genkey"])
      const pub = (await execa("wg", ["pubkey"], { input: priv })).stdout.trim()
      keys.set(s, { priv, pub })
      await writeFile(join(s.confDir, "priv.key"), `${priv}\n`, { mode: 0o600 })
      const wgGo = spawn(s, ["wireguard-go", "-f", s.ifName])
      void wgGo
    }
    // wireguard-go creates its socket asynchronously.
    for (const s of [a, b]) {
      for (let i = 0; ; i++) {
        const probe = wrapInSite(s, ["wg", "show", s.ifName])
        const r = await execa(probe[0]!, probe.slice(1), { reject: false })
        if (r.exitCode === 0) break
        if (i > 100) throw new Error(`wireguard-go for ${s.ifName} did not come up: ${r.stderr}`)
        await new Promise((res) => setTimeout(res, 50))
      }
    }
    for (const [s, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      const k = keys.get(s)!
      const pk = keys.get(peer)!
      const wgSet = wrapInSite(s, [
        "wg",
        "set",
        s.ifName,
        "private-key",
        join(s.confDir, "priv.key"),
        "listen-port",
        "51820",
        "peer",
        pk.pub,
        "endpoint",
        `${peer.underlay}:51820`,
        "allowed-ips",
        "0.0.0.0/0,::/0",
      ])
      await sh(wgSet[0]!, wgSet.slice(1))
      await sh("ip", ["-n", s.ns, "link", "set", s.ifName, "up"])
      await sh("ip", ["-n", s.ns, "route", "add", `10.201.${peer.id}.4/32`, "dev", s.ifName, "src", `10.201.${s.id}.4`])
      await writeFile(
        join(s.confDir, `${s.ifName}.conf`),
        [
          `# IPv4 interface for site ${peer.id}`,
          "[Interface]",
          "Table = off",
          `PrivateKey = ${k.priv}`,
          "ListenPort = 51820",
          "",
          "[Peer]",
          `PublicKey = ${pk.pub}`,
          `Endpoint = ${peer.underlay}:51820`,
          "AllowedIPs = 0.0.0.0/0, ::/0",
          "PersistentKeepalive = 25",
          "",
        ].join("\n"),
      )
    }
    return { a, b, root, inSite: wrapInSite, spawn, teardown }
  } catch (e) {
    await teardown()
    throw e
  }
}
