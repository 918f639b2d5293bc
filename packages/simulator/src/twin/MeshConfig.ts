/**
 * Per-site WireGuard and BIRD 2 configuration of the twin, as text (pure). Kept in one small
 * module so the mesh-config generator in @net-perf/engine (meshgen) can replace it.
 *
 * BGP runs one session per tunnel, over IPv4 between the tunnel endpoints (10.201.X.F ↔
 * 10.201.Y.F), carrying both the IPv4 and the IPv6 channel. Each wg interface gets point-to-point
 * addresses (10.201.X.F peer 10.201.Y.F, fdac:c9:X::F peer fdac:c9:Y::F): BIRD's direct sessions
 * need the neighbour on a connected prefix, and an IPv6 channel over an IPv4 session takes its
 * next hop from the interface's global IPv6 address (without one BIRD says "Missing next hop").
 */
import type { Family } from "@net-perf/engine"
import {
  overlayV4Prefix,
  overlayV6Prefix,
  probeV4,
  probeV6,
  routerV4,
  routerV6,
  tunnelName,
  underlayHub,
  underlayV4,
  underlayV6,
  wgListenPort,
} from "./Addressing.js"

export interface KeyPair {
  readonly privateKey: string
  readonly publicKey: string
}

export interface SiteKeys {
  readonly v4: KeyPair
  readonly v6: KeyPair
}

export interface MeshLayout {
  readonly sites: number
  readonly families: ReadonlyArray<Family>
  readonly keys: ReadonlyArray<SiteKeys>
  /** Peer endpoint of site X's tunnel to Y (the relay socket, or Y's own listen address). */
  readonly endpointOf: (local: number, remote: number, family: Family) => string
}

export interface BirdOptions {
  readonly bfd: boolean
  readonly holdTimeSeconds: number
  readonly bfdIntervalMs: number
  readonly bfdMultiplier: number
  readonly logFile: string
}

const keyOf = (keys: SiteKeys, family: Family): KeyPair => (family === 4 ? keys.v4 : keys.v6)

export const peersOf = (layout: MeshLayout, site: number): ReadonlyArray<number> =>
  Array.from({ length: layout.sites }, (_, i) => i).filter((i) => i !== site)

export const tunnelsOf = (
  layout: MeshLayout,
  site: number,
): ReadonlyArray<{ name: string; remote: number; family: Family }> =>
  peersOf(layout, site).flatMap((remote) =>
    layout.families.map((family) => ({ name: tunnelName(site, remote, family), remote, family })),
  )

/** `wg setconf` text of site X's tunnel to Y. */
export const wgConf = (layout: MeshLayout, site: number, remote: number, family: Family): string => {
  const own = keyOf(layout.keys[site] as SiteKeys, family)
  const peer = keyOf(layout.keys[remote] as SiteKeys, family)
  return [
    "[Interface]",
    `PrivateKey = ${own.privateKey}`,
    `ListenPort = ${wgListenPort(remote, family)}`,
    "",
    "[Peer]",
    `PublicKey = ${peer.publicKey}`,
    // One peer per interface: routing, not WireGuard, decides what goes where.
    "AllowedIPs = 0.0.0.0/0, ::/0",
    `Endpoint = ${layout.endpointOf(site, remote, family)}`,
    "PersistentKeepalive = 25",
    "",
  ].join("\n")
}

/** `ip -batch` lines for a site's namespace (run inside it) after its wg interfaces exist. */
export const siteIpBatch = (layout: MeshLayout, site: number): string => {
  const lines = [
    "link set lo up",
    `addr add ${routerV4(site)}/32 dev lo`,
    ...layout.families.map((f) => `addr add ${probeV4(site, f)}/32 dev lo`),
    `addr add ${routerV6(site)}/128 dev lo`,
  ]
  for (const t of tunnelsOf(layout, site)) {
    lines.push(
      `link set ${t.name} mtu 1420 up`,
      `addr add ${probeV4(site, t.family)}/32 peer ${probeV4(t.remote, t.family)}/32 dev ${t.name}`,
      `addr add ${probeV6(site, t.family)}/128 peer ${probeV6(t.remote, t.family)}/128 dev ${t.name} nodad`,
    )
  }
  return `${lines.join("\n")}\n`
}

/** `ip -batch` lines for the site's underlay side (eth0 inside the site namespace). */
export const siteUnderlayBatch = (site: number): string =>
  [
    `addr add ${underlayV4(site)}/${underlayHub.v4Prefix} dev eth0`,
    `addr add ${underlayV6(site)}/${underlayHub.v6Prefix} dev eth0 nodad`,
    "link set eth0 up",
    "",
  ].join("\n")

export const birdProtocolName = (remote: number, family: Family): string => `t${remote}v${family}`

/** BIRD 2 config of one site: ASN 64512+X, one BGP session per tunnel, exports its overlay prefixes. */
export const birdConf = (layout: MeshLayout, site: number, o: BirdOptions): string => {
  const keepalive = Math.max(1, Math.floor(o.holdTimeSeconds / 3))
  const lines = [
    `# net-perf twin, site ${site} (generated)`,
    `log "${o.logFile}" { info, remote, warning, error, auth, fatal, bug };`,
    `router id ${routerV4(site)};`,
    "protocol device { scan time 10; }",
    // BIRD's BGP routes go to the kernel; nothing is learnt from it.
    "protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }",
    "protocol kernel k6 { ipv6 { import none; export where source = RTS_BGP; }; }",
    `protocol static own4 { ipv4; route ${overlayV4Prefix(site)} unreachable; }`,
    `protocol static own6 { ipv6; route ${overlayV6Prefix(site)} unreachable; }`,
  ]
  if (o.bfd)
    lines.push(
      `protocol bfd { interface "wg*" { min rx interval ${o.bfdIntervalMs} ms; min tx interval ${o.bfdIntervalMs} ms; multiplier ${o.bfdMultiplier}; }; }`,
    )
  lines.push(
    "template bgp mesh {",
    `  local as ${64512 + site};`,
    "  direct;",
    `  hold time ${o.holdTimeSeconds}; keepalive time ${keepalive};`,
    // Short retry/error waits so a recovered link comes back in seconds, not minutes.
    "  connect delay time 1; connect retry time 2; error wait time 1, 5;",
    ...(o.bfd ? ["  bfd on;"] : []),
    "  ipv4 { import all; export where source ~ [RTS_STATIC, RTS_BGP]; next hop self; };",
    "  ipv6 { import all; export where source ~ [RTS_STATIC, RTS_BGP]; next hop self; };",
    "}",
  )
  for (const t of tunnelsOf(layout, site))
    lines.push(
      `protocol bgp ${birdProtocolName(t.remote, t.family)} from mesh {`,
      `  neighbor ${probeV4(t.remote, t.family)} as ${64512 + t.remote};`,
      `  source address ${probeV4(site, t.family)};`,
      `  interface "${t.name}";`,
      "}",
    )
  return `${lines.join("\n")}\n`
}

/** Direct endpoints (no link emulator): the peer's own underlay address and listen port. */
export const directEndpoint = (local: number, remote: number, family: Family): string =>
  family === 4 ? `${underlayV4(remote)}:${wgListenPort(local, 4)}` : `[${underlayV6(remote)}]:${wgListenPort(local, 6)}`
