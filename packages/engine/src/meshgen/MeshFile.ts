/**
 * The mesh file: one document describing every site of a WireGuard full mesh, decoded with
 * Schema so every error names its path and bad value. Cross-field rules (unique ids and names,
 * address-plan and port-range capacity, interface-name length, pairs naming real sites) are
 * checked here too, so the generator downstream never re-validates.
 *
 * Site ids are any non-negative integers; every number derived from them (ports, addresses,
 * ASNs, interface names) is a function of the ids alone, never of list positions.
 */
import { Schema } from "effect"
import { SiteId } from "../Domain.js"
import { type Cidr, contains, parseAddress, parseCidr, subnetCount } from "./Net.js"

const cidrOf =
  (family: 4 | 6 | undefined) =>
  (text: string): string | undefined => {
    const parsed = parseCidr(text)
    if (parsed === undefined) return `expected a CIDR prefix with no host bits set, got ${JSON.stringify(text)}`
    if (family !== undefined && parsed.family !== family) return `expected an IPv${family} prefix, got ${text}`
    return undefined
  }

/** A CIDR prefix of either family (`10.1.0.0/16`, `2001:db8:1::/48`). */
export const CidrText = Schema.String.pipe(Schema.filter(cidrOf(undefined)))
export const Cidr4Text = Schema.String.pipe(Schema.filter(cidrOf(4)))
export const Cidr6Text = Schema.String.pipe(Schema.filter(cidrOf(6)))

/** A UDP/TCP port. */
export const Port = Schema.Int.pipe(Schema.between(1, 65535))

/** Interface MTU in bytes (IPv6 needs at least 1280 inside the tunnel). */
export const Mtu = Schema.Int.pipe(Schema.between(1300, 9000))

/** WireGuard PersistentKeepalive in seconds; 0 turns it off. */
export const KeepaliveSeconds = Schema.Int.pipe(Schema.between(0, 65535))

/** Host index inside a site's /24 (router, probe endpoints). */
const HostIndex = Schema.Int.pipe(Schema.between(1, 254))

/** A site name: used as the output folder name, so a safe file name. */
export const SiteName = Schema.String.pipe(
  Schema.filter((text) =>
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(text)
      ? undefined
      : `a site name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(text)}`,
  ),
)

/** An underlay endpoint host: an IP literal (no brackets) or a DNS name. */
export const EndpointHost = Schema.String.pipe(
  Schema.filter((text) =>
    parseAddress(text) !== undefined ||
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(text)
      ? undefined
      : `expected an IP address or DNS name, got ${JSON.stringify(text)}`,
  ),
)

/** `host:port` a WireGuard peer is dialled at (`[v6]:port` for IPv6 literals). */
export const DialEndpoint = Schema.String.pipe(
  Schema.filter((text) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text)
    const port = Number(m?.[3])
    const host = m?.[1] ?? m?.[2]
    const hostOk = m?.[1] !== undefined ? parseAddress(m[1])?.family === 6 : host !== undefined
    return m !== null && hostOk && port >= 1 && port <= 65535
      ? undefined
      : `expected host:port or [IPv6]:port, got ${JSON.stringify(text)}`
  }),
)

/** One shell command line for wg-quick hooks (no line breaks: each becomes one `PostUp =` line). */
export const HookCommand = Schema.String.pipe(
  Schema.nonEmptyString(),
  Schema.filter((text) => (/[\r\n]/.test(text) ? "a hook command must be a single line" : undefined)),
)

const hookList = Schema.optionalWith(Schema.Array(HookCommand), { default: () => [] })

/** Custom wg-quick hook commands of a site, added after the generated ones (before them for PreUp). */
export const Hooks = Schema.Struct({
  preUp: hookList,
  postUp: hookList,
  preDown: hookList,
  postDown: hookList,
})
export type Hooks = typeof Hooks.Type

/** Which underlay families a site has. */
export const Stack = Schema.Literal("dual", "v4", "v6").annotations({
  message: (issue) => ({
    message: `expected "dual", "v4" or "v6", got ${JSON.stringify(issue.actual)}`,
    override: true,
  }),
})
export type Stack = typeof Stack.Type

/** Firewall backend of the generated PostUp/PostDown rules (see README for why nftables). */
export const Firewall = Schema.Literal("nftables", "iptables", "none").annotations({
  message: (issue) => ({
    message: `expected "nftables", "iptables" or "none", got ${JSON.stringify(issue.actual)}`,
    override: true,
  }),
})
export type Firewall = typeof Firewall.Type

export const Site = Schema.Struct({
  id: SiteId,
  name: SiteName,
  stack: Schema.optionalWith(Stack, { default: () => "dual" as const }),
  /** Public underlay address per family; a family without one is behind NAT (peers cannot dial it). */
  endpoints: Schema.optionalWith(
    Schema.Struct({ v4: Schema.optional(EndpointHost), v6: Schema.optional(EndpointHost) }),
    { default: () => ({}) },
  ),
  /** LAN prefixes behind the site, announced in BGP. */
  lans: Schema.optionalWith(Schema.Array(CidrText), { default: () => [] }),
  mtu: Schema.optional(Mtu),
  keepaliveSeconds: Schema.optional(KeepaliveSeconds),
  /** Overrides the global base port for the ports this site listens on. */
  basePort: Schema.optional(Port),
  hooks: Schema.optionalWith(Hooks, { default: () => ({ preUp: [], postUp: [], preDown: [], postDown: [] }) }),
})
export type Site = typeof Site.Type

/** Overrides for the tunnels between two sites. */
export const PairOverride = Schema.Struct({
  sites: Schema.Tuple(SiteId, SiteId),
  /** false: no tunnel at all between these sites (partial mesh). */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  /** Underlay families allowed for this pair (default: every family both sites have). */
  families: Schema.optional(Schema.Array(Schema.Literal(4, 6))),
  mtu: Schema.optional(Mtu),
  keepaliveSeconds: Schema.optional(KeepaliveSeconds),
  bfd: Schema.optional(Schema.Boolean),
  /**
   * Where a site dials the other over a family, replacing the peer's endpoint (e.g. a relay or
   * NAT forward in front of it). A dial override also makes a tunnel possible when neither site
   * has an endpoint in that family.
   */
  dial: Schema.optionalWith(
    Schema.Array(Schema.Struct({ from: SiteId, family: Schema.Literal(4, 6), endpoint: DialEndpoint })),
    { default: () => [] },
  ),
})
export type PairOverride = typeof PairOverride.Type

export const AddressPlan = Schema.Struct({
  /** Site X gets the X-th /24 of this prefix (default 10.201.X.0/24). */
  overlayV4: Schema.optionalWith(Cidr4Text, { default: () => "10.201.0.0/16" }),
  /** Site X gets the first /64 of the X-th /48 of this prefix (default fdac:c9:X::/64, X in hex). */
  overlayV6: Schema.optionalWith(Cidr6Text, { default: () => "fdac:c9::/32" }),
  routerHost: Schema.optionalWith(HostIndex, { default: () => 1 }),
  /** Probe endpoint of a site's IPv4-underlay tunnels (10.201.X.4), on lo. */
  probeHostV4Tunnel: Schema.optionalWith(HostIndex, { default: () => 4 }),
  /** Probe endpoint of a site's IPv6-underlay tunnels (10.201.X.6), on lo. */
  probeHostV6Tunnel: Schema.optionalWith(HostIndex, { default: () => 6 }),
})
export type AddressPlan = typeof AddressPlan.Type

/** What the net-perf daemon config of each site says (paths and ports). */
export const DaemonDefaults = Schema.Struct({
  wireguardDir: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/etc/wireguard" }),
  birdSocket: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/run/bird/bird.ctl" }),
  bird6Socket: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/run/bird/bird6.ctl" }),
  controlSocket: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/opt/wg-mesh/net-perf.sock" }),
  httpPort: Schema.optionalWith(Port, { default: () => 5120 }),
  probePort: Schema.optionalWith(Port, { default: () => 5121 }),
  grpcPort: Schema.optionalWith(Port, { default: () => 5122 }),
  pathpingPort: Schema.optionalWith(Port, { default: () => 5124 }),
})
export type DaemonDefaults = typeof DaemonDefaults.Type

const Seconds = Schema.Int.pipe(Schema.between(1, 65535))

export const BgpTimers = Schema.Struct({
  /** Hold time (3..65535 s); keepalive is a third of it unless given. */
  holdTimeSeconds: Schema.optional(Schema.Int.pipe(Schema.between(3, 65535))),
  keepaliveSeconds: Schema.optional(Seconds),
  connectDelaySeconds: Schema.optional(Seconds),
  connectRetrySeconds: Schema.optional(Seconds),
  /** Wait after an error: [minimum, maximum] seconds (BIRD doubles it up to the maximum). */
  errorWaitSeconds: Schema.optional(Schema.Tuple(Seconds, Seconds)),
})
export type BgpTimers = typeof BgpTimers.Type

export const BirdLog = Schema.String.pipe(
  Schema.filter((text) =>
    text === "syslog" || text === "stderr" || /^\/[^"\r\n]*$/.test(text)
      ? undefined
      : `expected syslog, stderr or an absolute file path without quotes, got ${JSON.stringify(text)}`,
  ),
)

export const Defaults = Schema.Struct({
  /** Site S listens for peer P on basePort + 2·P (+1 for the IPv6 tunnel). */
  basePort: Schema.optionalWith(Port, { default: () => 51820 }),
  mtu: Schema.optionalWith(Mtu, { default: () => 1420 }),
  keepaliveSeconds: Schema.optionalWith(KeepaliveSeconds, { default: () => 25 }),
  bfd: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  bfdIntervalMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(10, 60000)), { default: () => 200 }),
  bfdMultiplier: Schema.optionalWith(Schema.Int.pipe(Schema.between(2, 255)), { default: () => 5 }),
  /** BGP timers; each one absent leaves BIRD's default. */
  bgp: Schema.optionalWith(BgpTimers, { default: () => ({}) }),
  /** BIRD log target: `syslog`, `stderr` or a file path. */
  birdLog: Schema.optionalWith(BirdLog, { default: () => "syslog" }),
  firewall: Schema.optionalWith(Firewall, { default: () => "nftables" as const }),
  asnBase: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 4294967294)), { default: () => 64512 }),
  /** Metric of the routes BIRD writes to the kernel; net-perf's proto-201 routes must stay below it. */
  birdKernelMetric: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 4294967295)), { default: () => 4096 }),
  /** Also write BIRD 1.x `bird1/bird.conf` + `bird1/bird6.conf`. */
  bird1: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  addressPlan: Schema.optionalWith(AddressPlan, { default: () => Schema.decodeSync(AddressPlan)({}) }),
  daemon: Schema.optionalWith(DaemonDefaults, { default: () => Schema.decodeSync(DaemonDefaults)({}) }),
})
export type Defaults = typeof Defaults.Type

const MeshFields = Schema.Struct({
  version: Schema.optionalWith(Schema.Literal(1), { default: () => 1 as const }),
  defaults: Schema.optionalWith(Defaults, { default: () => Schema.decodeSync(Defaults)({}) }),
  sites: Schema.Array(Site).pipe(Schema.minItems(1)),
  pairs: Schema.optionalWith(Schema.Array(PairOverride), { default: () => [] }),
})

/** IFNAMSIZ - 1: Linux interface names are at most 15 bytes. */
export const maxInterfaceNameLength = 15

/** Every cross-field rule of a mesh; each issue carries the path of the offending value. */
const meshIssues = (mesh: typeof MeshFields.Type): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  const { defaults, sites } = mesh
  const plan = defaults.addressPlan
  const overlayV4 = parseCidr(plan.overlayV4) as Cidr
  const overlayV6 = parseCidr(plan.overlayV6) as Cidr
  if (overlayV4.length > 24) {
    issues.push({
      path: ["defaults", "addressPlan", "overlayV4"],
      message: "must be /24 or shorter (one /24 per site)",
    })
  }
  if (overlayV6.length > 48) {
    issues.push({
      path: ["defaults", "addressPlan", "overlayV6"],
      message: "must be /48 or shorter (one /48 per site)",
    })
  }
  const hosts = [plan.routerHost, plan.probeHostV4Tunnel, plan.probeHostV6Tunnel]
  if (new Set(hosts).size !== hosts.length) {
    issues.push({
      path: ["defaults", "addressPlan"],
      message: "routerHost, probeHostV4Tunnel, probeHostV6Tunnel must differ",
    })
  }
  const maxId = Math.max(...sites.map((s) => s.id))
  const secondMaxId = Math.max(-1, ...sites.filter((s) => s.id !== maxId).map((s) => s.id))
  const daemonUdpPorts = [defaults.daemon.probePort, defaults.daemon.pathpingPort]
  const byId = new Map<number, number>()
  const byName = new Map<string, number>()
  sites.forEach((site, i) => {
    const at = (...rest: Array<PropertyKey>) => ["sites", i, ...rest]
    const sameId = byId.get(site.id)
    if (sameId !== undefined)
      issues.push({ path: at("id"), message: `duplicate site id ${site.id} (also sites[${sameId}])` })
    byId.set(site.id, i)
    const key = site.name.toLowerCase()
    const sameName = byName.get(key)
    if (sameName !== undefined) {
      issues.push({
        path: at("name"),
        message: `duplicate site name ${JSON.stringify(site.name)} (also sites[${sameName}])`,
      })
    }
    byName.set(key, i)
    if (overlayV4.length <= 24 && BigInt(site.id) >= subnetCount(overlayV4, 24)) {
      issues.push({ path: at("id"), message: `site id ${site.id} has no /24 in overlayV4 ${plan.overlayV4}` })
    }
    if (overlayV6.length <= 48 && BigInt(site.id) >= subnetCount(overlayV6, 48)) {
      issues.push({ path: at("id"), message: `site id ${site.id} has no /48 in overlayV6 ${plan.overlayV6}` })
    }
    if (defaults.asnBase + site.id > 4294967294) {
      issues.push({ path: at("id"), message: `ASN ${defaults.asnBase}+${site.id} exceeds 4294967294` })
    }
    // The highest peer id decides the highest port this site listens on.
    const highestPeer = site.id === maxId ? secondMaxId : maxId
    const base = site.basePort ?? defaults.basePort
    const basePath = site.basePort === undefined ? ["defaults", "basePort"] : at("basePort")
    if (highestPeer >= 0) {
      const lastPort = base + 2 * highestPeer + 1
      if (lastPort > 65535) {
        issues.push({
          path: basePath,
          message: `site ${site.id} listens on ports ${base}..${lastPort} (base + 2·peer id + 1) exceed 65535; lower the base port or the ids`,
        })
      }
      const clash = daemonUdpPorts.find((p) => p >= base && p <= lastPort)
      if (clash !== undefined) {
        issues.push({
          path: at("basePort"),
          message: `tunnel ports ${base}..${lastPort} include the daemon's UDP port ${clash}`,
        })
      }
      const nameLength = `wg${site.id}.${highestPeer}_v4`.length
      if (nameLength > maxInterfaceNameLength) {
        issues.push({
          path: at("id"),
          message: `interface name wg${site.id}.${highestPeer}_v4 is ${nameLength} bytes, over Linux's ${maxInterfaceNameLength}`,
        })
      }
    }
    if (site.stack === "v4" && site.endpoints.v6 !== undefined) {
      issues.push({ path: at("endpoints", "v6"), message: "site is v4-only (stack: v4) but has an IPv6 endpoint" })
    }
    if (site.stack === "v6" && site.endpoints.v4 !== undefined) {
      issues.push({ path: at("endpoints", "v4"), message: "site is v6-only (stack: v6) but has an IPv4 endpoint" })
    }
    for (const family of [4, 6] as const) {
      const host = family === 4 ? site.endpoints.v4 : site.endpoints.v6
      const literal = host === undefined ? undefined : parseAddress(host)
      if (literal !== undefined && literal.family !== family) {
        issues.push({ path: at("endpoints", `v${family}`), message: `${host} is not an IPv${family} address` })
      }
    }
    site.lans.forEach((lan, j) => {
      const cidr = parseCidr(lan) as Cidr
      if (
        contains(cidr.family === 4 ? overlayV4 : overlayV6, cidr) ||
        contains(cidr, cidr.family === 4 ? overlayV4 : overlayV6)
      ) {
        issues.push({ path: at("lans", j), message: `${lan} overlaps the overlay prefix` })
      }
    })
  })
  const seenPairs = new Map<string, number>()
  mesh.pairs.forEach((pair, i) => {
    const [a, b] = pair.sites
    if (a === b)
      issues.push({ path: ["pairs", i, "sites"], message: `a pair needs two different sites, got ${a} twice` })
    for (const [k, id] of [a, b].entries()) {
      if (!byId.has(id)) issues.push({ path: ["pairs", i, "sites", k], message: `no site has id ${id}` })
    }
    pair.dial.forEach((d, k) => {
      if (d.from !== a && d.from !== b) {
        issues.push({
          path: ["pairs", i, "dial", k, "from"],
          message: `site ${d.from} is not one of this pair's sites`,
        })
      }
    })
    const key = `${Math.min(a, b)}-${Math.max(a, b)}`
    const same = seenPairs.get(key)
    if (same !== undefined)
      issues.push({ path: ["pairs", i, "sites"], message: `pair ${key} already overridden in pairs[${same}]` })
    seenPairs.set(key, i)
  })
  return issues
}

/** The decoded mesh file. */
export const Mesh = MeshFields.pipe(Schema.filter((mesh) => meshIssues(mesh)))
export type Mesh = typeof Mesh.Type
/** The mesh file as written (JSON/YAML object) before defaults are applied. */
export type MeshInput = typeof Mesh.Encoded

/** A base64 WireGuard key (32 bytes). */
export const WireGuardKey = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, {
    message: () => "expected a base64 WireGuard key (32 bytes)",
  }),
)

export const KeyPair = Schema.Struct({ privateKey: WireGuardKey, publicKey: WireGuardKey })
export type KeyPair = typeof KeyPair.Type

/**
 * Secrets: per site (by id) per underlay family an X25519 key pair, and one pre-shared key per
 * tunnel pair keyed `<low id>.<high id>_v<family>`. Kept apart from the mesh file (mode 0600).
 * Entries for sites no longer in the mesh are kept, so re-adding a site keeps its keys.
 */
export const Secrets = Schema.Struct({
  version: Schema.Literal(1),
  sites: Schema.Record({
    key: Schema.String.pipe(Schema.pattern(/^(0|[1-9]\d*)$/)),
    value: Schema.Struct({ v4: Schema.optional(KeyPair), v6: Schema.optional(KeyPair) }),
  }),
  presharedKeys: Schema.Record({ key: Schema.String.pipe(Schema.pattern(/^\d+\.\d+_v[46]$/)), value: WireGuardKey }),
})
export type Secrets = typeof Secrets.Type

export const emptySecrets: Secrets = { version: 1, sites: {}, presharedKeys: {} }
