/**
 * Test support: two sites (AS 64513 and AS 64514), each a namespace running real BIRD, joined
 * by two veths named like tunnels (`wg1.2_v4`, `wg1.2_v6`). Every link carries an IPv4 and an
 * IPv6 BGP session, so each site learns two paths per remote prefix; the second link's
 * exports are prepended once, which makes link 1 BIRD's primary path deterministically.
 * Site 2 also originates 10.202.2.0/24 behind a prepended AS 64600 (a two-AS path).
 * Works with BIRD 2 (one daemon, one socket) and BIRD 1.6 (`bird` + `bird6`, two sockets).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { execa } from "execa"
import { addAddress, type Child, netns, runPrefix, stopProcess, veth, waitForUnixSocket } from "../kernel/Netns.js"

export type BirdFlavour =
  /** `kernelExport`: BIRD also installs its best routes in the kernel (protocol bird, metric 32). */
  { readonly kind: "bird2"; readonly kernelExport?: boolean } | { readonly kind: "bird1"; readonly prefix: string }

export interface LabSite {
  readonly site: 1 | 2
  readonly ns: string
  readonly dir: string
  /** BIRD 2 socket, or BIRD 1.x IPv4 socket. */
  readonly socket: string
  /** BIRD 1.x IPv6 socket (same as `socket` for BIRD 2). */
  readonly socket6: string
}

export interface BirdLab {
  readonly sites: readonly [LabSite, LabSite]
  /** Stops a site's BIRD daemon(s) (SIGTERM, awaited). */
  readonly stopBird: (site: 1 | 2) => Effect.Effect<void>
  /** Starts a site's BIRD daemon(s) again with the same config and sockets. */
  readonly startBird: (site: 1 | 2) => Effect.Effect<void, Error>
}

const asn = (site: number) => 64512 + site
const peerOf = (site: 1 | 2): 1 | 2 => (site === 1 ? 2 : 1)

/** Link l (1|2): 10.99.0.(4(l-1)+site)/30 and fd00:99:l::site/64. */
const v4 = (link: number, site: number) => `10.99.0.${4 * (link - 1) + site}`
const v6 = (link: number, site: number) => `fd00:99:${link}::${site}`

const common = (site: 1 | 2) => `router id ${v4(1, site)};
log stderr { warning, error, fatal, bug };
protocol device { scan time 2; }
`
const timers = "connect retry time 1; connect delay time 1; error wait time 1, 4; hold time 9; keepalive time 3;"
const exportFilter = (site: 1 | 2, link: number, family: 4 | 6) => {
  const extra = site === 2 && family === 4 ? "if net = 10.202.2.0/24 then bgp_path.prepend(64600); " : ""
  const longer = link === 2 ? `bgp_path.prepend(${asn(site)}); ` : ""
  return `filter export_l${link}_v${family} { ${extra}${longer}accept; }\n`
}
const exportFilters = (site: 1 | 2, families: ReadonlyArray<4 | 6>) =>
  families.flatMap((f) => [exportFilter(site, 1, f), exportFilter(site, 2, f)]).join("")

const bird2Config = (site: 1 | 2, kernelExport: boolean) => {
  const peer = peerOf(site)
  const statics4 = [`route 10.201.${site}.0/24 blackhole;`, ...(site === 2 ? ["route 10.202.2.0/24 blackhole;"] : [])]
  const sessions = [1, 2].flatMap((link) => [
    `protocol bgp l${link}v4 { local as ${asn(site)}; neighbor ${v4(link, peer)} as ${asn(peer)}; ${timers} ipv4 { import all; export filter export_l${link}_v4; }; }`,
    `protocol bgp l${link}v6 { local as ${asn(site)}; neighbor ${v6(link, peer)} as ${asn(peer)}; ${timers} ipv6 { import all; export filter export_l${link}_v6; }; }`,
  ])
  const kernel = kernelExport
    ? "protocol kernel kv4 { ipv4 { export where source = RTS_BGP; }; }\nprotocol kernel kv6 { ipv6 { export where source = RTS_BGP; }; }\n"
    : ""
  return `${common(site)}${kernel}protocol static st4 { ipv4; ${statics4.join(" ")} }
protocol static st6 { ipv6; route fdac:c9:${site}::/64 blackhole; }
${exportFilters(site, [4, 6])}${sessions.join("\n")}
`
}

const bird1Config = (site: 1 | 2, family: 4 | 6) => {
  const peer = peerOf(site)
  const statics =
    family === 4
      ? [`route 10.201.${site}.0/24 blackhole;`, ...(site === 2 ? ["route 10.202.2.0/24 blackhole;"] : [])]
      : [`route fdac:c9:${site}::/64 blackhole;`]
  const addr = family === 4 ? v4 : v6
  const sessions = [1, 2].map(
    (link) =>
      `protocol bgp l${link}v${family} { local as ${asn(site)}; neighbor ${addr(link, peer)} as ${asn(peer)}; ${timers} import all; export filter export_l${link}_v${family}; }`,
  )
  return `${common(site)}protocol static st${family} { ${statics.join(" ")} }
${exportFilters(site, [family])}${sessions.join("\n")}
`
}

/** Builds the lab in the current scope; everything is torn down when the scope closes. */
export const makeBirdLab = (flavour: BirdFlavour) =>
  Effect.gen(function* () {
    const prefix = runPrefix()
    const nsOf = (site: 1 | 2) => `${prefix}s${site}`
    yield* netns(nsOf(1))
    yield* netns(nsOf(2))
    for (const link of [1, 2]) {
      const name = (site: 1 | 2) => `wg${site}.${peerOf(site)}_v${link === 1 ? 4 : 6}`
      yield* veth(nsOf(1), name(1), nsOf(2), name(2))
      for (const site of [1, 2] as const) {
        yield* addAddress(nsOf(site), name(site), `${v4(link, site)}/30`)
        yield* addAddress(nsOf(site), name(site), `${v6(link, site)}/64`)
      }
    }
    const dirs = yield* Effect.acquireRelease(
      Effect.promise(async () => [
        await mkdtemp(join(tmpdir(), `${prefix}-`)),
        await mkdtemp(join(tmpdir(), `${prefix}-`)),
      ]),
      (ds) => Effect.promise(() => Promise.all(ds.map((d) => rm(d, { recursive: true, force: true })))),
    )
    const sites = ([1, 2] as const).map(
      (site): LabSite => ({
        site,
        ns: nsOf(site),
        dir: dirs[site - 1]!,
        socket: join(dirs[site - 1]!, "bird.ctl"),
        socket6: join(dirs[site - 1]!, flavour.kind === "bird2" ? "bird.ctl" : "bird6.ctl"),
      }),
    ) as unknown as readonly [LabSite, LabSite]

    for (const s of sites) {
      if (flavour.kind === "bird2") {
        const conf = bird2Config(s.site, flavour.kernelExport ?? false)
        yield* Effect.promise(() => writeFile(join(s.dir, "bird.conf"), conf))
      } else {
        yield* Effect.promise(() => writeFile(join(s.dir, "bird.conf"), bird1Config(s.site, 4)))
        yield* Effect.promise(() => writeFile(join(s.dir, "bird6.conf"), bird1Config(s.site, 6)))
      }
    }

    const running = new Map<1 | 2, Array<Child>>()
    const daemons = (s: LabSite): ReadonlyArray<{ bin: string; conf: string; socket: string }> =>
      flavour.kind === "bird2"
        ? [{ bin: "bird", conf: join(s.dir, "bird.conf"), socket: s.socket }]
        : [
            { bin: join(flavour.prefix, "usr/sbin/bird"), conf: join(s.dir, "bird.conf"), socket: s.socket },
            { bin: join(flavour.prefix, "usr/sbin/bird6"), conf: join(s.dir, "bird6.conf"), socket: s.socket6 },
          ]

    const stopBird = (site: 1 | 2) =>
      Effect.gen(function* () {
        const procs = running.get(site) ?? []
        running.delete(site)
        yield* Effect.forEach(procs, stopProcess, { discard: true })
      })

    const startBird = (site: 1 | 2) =>
      Effect.gen(function* () {
        const s = sites[site - 1]!
        const procs = daemons(s).map((d) =>
          execa("ip", ["netns", "exec", s.ns, d.bin, "-f", "-c", d.conf, "-s", d.socket, "-P", `${d.socket}.pid`], {
            reject: false,
            stdin: "ignore",
          }),
        )
        running.set(site, procs)
        // Ready when every control socket accepts a connection.
        for (const d of daemons(s)) yield* waitForUnixSocket(d.socket)
      })

    yield* Effect.addFinalizer(() => Effect.forEach([1, 2] as const, stopBird, { discard: true }))
    yield* startBird(1)
    yield* startBird(2)
    return { sites, stopBird, startBird } satisfies BirdLab
  })
