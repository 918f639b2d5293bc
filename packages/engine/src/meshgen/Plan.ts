/**
 * The resolved mesh: every site's addresses, ASN and tunnels with their ports, MTU and keepalive,
 * computed from the decoded mesh file alone (no keys). Renderers and the twin read this plan.
 *
 * Port rule: site S listens for peer P on `base(S) + 2·P + (family = 6 ? 1 : 0)`. It depends on
 * the peer id and family only, so it is unique on S (distinct peers/families give distinct ports)
 * and stable: adding or removing a site never moves another pair's port. Limit: base + 2·maxId + 1
 * ≤ 65535 (ids up to 6857 with the default base 51820), checked when the mesh is decoded.
 */
import { type Family, type SiteId, type TunnelId, tunnelId, tunnelKey } from "../Domain.js"
import type { Mesh, PairOverride, Site } from "./MeshFile.js"
import { type Cidr, formatAddress, formatCidr, hostAddress, parseAddress, parseCidr, subnet } from "./Net.js"

export interface TunnelPlan {
  readonly id: TunnelId
  /** Interface name and file stem: `wgX.Y_vF`. */
  readonly name: string
  readonly localName: string
  readonly remoteName: string
  readonly remoteAsn: number
  /** Present only when the local site has an endpoint in this family (peers dial it). */
  readonly listenPort: number | undefined
  /** `host:port` of the remote end; undefined when the remote is behind NAT in this family. */
  readonly endpoint: string | undefined
  readonly mtu: number
  readonly keepaliveSeconds: number
  readonly bfd: boolean
  /** Probe / BGP addresses of this tunnel: IPv4 on lo and on the tunnel (point-to-point). */
  readonly localProbe4: string
  readonly remoteProbe4: string
  /** IPv6 point-to-point addresses of this tunnel (next hops for IPv6 overlay routes). */
  readonly localProbe6: string
  readonly remoteProbe6: string
  /** Key of the pre-shared key in the secrets: `<low>.<high>_v<family>`. */
  readonly presharedKeyName: string
}

export interface SitePlan {
  readonly site: Site
  readonly asn: number
  readonly overlay4: string
  readonly overlay6: string
  readonly router4: string
  readonly router6: string
  /** Probe addresses on lo: of the IPv4-underlay tunnels (10.201.X.4) and IPv6-underlay ones (.6). */
  readonly probeV4Tunnel: string
  readonly probeV6Tunnel: string
  readonly lans4: ReadonlyArray<string>
  readonly lans6: ReadonlyArray<string>
  /** Sorted by remote id, then family. */
  readonly tunnels: ReadonlyArray<TunnelPlan>
}

export interface SkippedTunnel {
  readonly sites: readonly [SiteId, SiteId]
  readonly family: Family
  readonly reason: string
}

export interface MeshPlan {
  readonly mesh: Mesh
  /** Sorted by site id. */
  readonly sites: ReadonlyArray<SitePlan>
  /** Pairs/families with no tunnel, and why (single-stack, disabled, both behind NAT). */
  readonly skipped: ReadonlyArray<SkippedTunnel>
  /** Every site's overlay and LAN prefixes, per family, sorted: what BGP may carry. */
  readonly meshPrefixes4: ReadonlyArray<string>
  readonly meshPrefixes6: ReadonlyArray<string>
}

export const presharedKeyName = (a: number, b: number, family: Family): string =>
  `${Math.min(a, b)}.${Math.max(a, b)}_v${family}`

/** Port on which `site` listens for `peer` over `family` (see the module comment). */
export const listenPortFor = (base: number, peer: number, family: Family): number =>
  base + 2 * peer + (family === 6 ? 1 : 0)

const hasFamily = (site: Site, family: Family): boolean => site.stack === "dual" || site.stack === `v${family}`
const endpointOf = (site: Site, family: Family): string | undefined =>
  family === 4 ? site.endpoints.v4 : site.endpoints.v6

/** `host` as it goes before `:port` (IPv6 literals in brackets). */
const endpointHost = (host: string): string => (parseAddress(host)?.family === 6 ? `[${host}]` : host)

const pairKey = (a: number, b: number): string => `${Math.min(a, b)}-${Math.max(a, b)}`

const byCidr = (a: string, b: string): number => {
  const x = parseCidr(a) as Cidr
  const y = parseCidr(b) as Cidr
  return x.address < y.address ? -1 : x.address > y.address ? 1 : x.length - y.length
}

/** Resolves a decoded mesh into per-site plans. Total: every decoded mesh has a plan. */
export const planMesh = (mesh: Mesh): MeshPlan => {
  const { defaults } = mesh
  const plan = defaults.addressPlan
  const overlayV4 = parseCidr(plan.overlayV4) as Cidr
  const overlayV6 = parseCidr(plan.overlayV6) as Cidr
  const sites = [...mesh.sites].sort((a, b) => a.id - b.id)
  const overrides = new Map<string, PairOverride>(mesh.pairs.map((p) => [pairKey(p.sites[0], p.sites[1]), p]))
  const site4 = (id: number) => subnet(overlayV4, 24, id)
  // fdac:c9:X::/64: the X-th /48, narrowed to its first /64.
  const site6 = (id: number) => ({ ...subnet(overlayV6, 48, id), length: 64 })
  // Addresses per (site, family), computed once: bigint formatting dominates large meshes otherwise.
  const probes = new Map<number, { 4: readonly [string, string]; 6: readonly [string, string] }>(
    sites.map((s) => {
      const at = (cidr: Cidr, family: Family) =>
        hostAddress(cidr, family === 4 ? plan.probeHostV4Tunnel : plan.probeHostV6Tunnel)
      const v4 = site4(s.id)
      const v6 = site6(s.id)
      return [s.id, { 4: [at(v4, 4), at(v6, 4)], 6: [at(v4, 6), at(v6, 6)] }] as const
    }),
  )
  const probe4 = (id: number, family: Family) => probes.get(id)?.[family][0] ?? ""
  const probe6 = (id: number, family: Family) => probes.get(id)?.[family][1] ?? ""

  const endpointHosts = new Map(
    sites.map((s) => {
      const of = (host: string | undefined) => (host === undefined ? undefined : endpointHost(host))
      return [s.id, { 4: of(s.endpoints.v4), 6: of(s.endpoints.v6) }] as const
    }),
  )
  const skipped: Array<SkippedTunnel> = []
  const tunnelsOf = new Map<number, Array<TunnelPlan>>(sites.map((s) => [s.id, []]))
  for (const [i, a] of sites.entries()) {
    for (const b of sites.slice(i + 1)) {
      const override = overrides.get(pairKey(a.id, b.id))
      for (const family of [4, 6] as const) {
        const skip = (reason: string) => skipped.push({ sites: [a.id, b.id], family, reason })
        if (override !== undefined && !override.enabled) {
          skip("disabled by a pair override")
          continue
        }
        if (override?.families !== undefined && !override.families.includes(family)) {
          skip(`IPv${family} not in the pair override's families`)
          continue
        }
        const missing = [a, b].find((s) => !hasFamily(s, family))
        if (missing !== undefined) {
          skip(`${missing.name} has no IPv${family} underlay (stack: ${missing.stack})`)
          continue
        }
        const dialOf = (from: number) => override?.dial.find((d) => d.from === from && d.family === family)?.endpoint
        if (
          endpointOf(a, family) === undefined &&
          endpointOf(b, family) === undefined &&
          dialOf(a.id) === undefined &&
          dialOf(b.id) === undefined
        ) {
          skip(`neither site has an IPv${family} endpoint (both behind NAT)`)
          continue
        }
        const baseMtu = override?.mtu ?? Math.min(a.mtu ?? defaults.mtu, b.mtu ?? defaults.mtu, defaults.mtu)
        // The IPv6 underlay header is 20 bytes longer than IPv4's.
        const mtu = family === 6 ? baseMtu - 20 : baseMtu
        const keepaliveSeconds =
          override?.keepaliveSeconds ??
          Math.min(
            a.keepaliveSeconds ?? defaults.keepaliveSeconds,
            b.keepaliveSeconds ?? defaults.keepaliveSeconds,
            defaults.keepaliveSeconds,
          )
        const bfd = override?.bfd ?? defaults.bfd
        for (const [local, remote] of [
          [a, b],
          [b, a],
        ] as const) {
          const localEndpoint = endpointOf(local, family)
          const remoteEndpoint = endpointHosts.get(remote.id)?.[family]
          const id = tunnelId(local.id, remote.id, family)
          tunnelsOf.get(local.id)?.push({
            id,
            name: tunnelKey(id),
            localName: local.name,
            remoteName: remote.name,
            remoteAsn: defaults.asnBase + remote.id,
            // A site listens when peers can reach it: its own endpoint, or a dial override towards it.
            listenPort:
              localEndpoint === undefined && dialOf(remote.id) === undefined
                ? undefined
                : listenPortFor(local.basePort ?? defaults.basePort, remote.id, family),
            endpoint:
              dialOf(local.id) ??
              (remoteEndpoint === undefined
                ? undefined
                : `${remoteEndpoint}:${listenPortFor(remote.basePort ?? defaults.basePort, local.id, family)}`),
            mtu,
            keepaliveSeconds,
            bfd,
            localProbe4: probe4(local.id, family),
            remoteProbe4: probe4(remote.id, family),
            localProbe6: probe6(local.id, family),
            remoteProbe6: probe6(remote.id, family),
            presharedKeyName: presharedKeyName(local.id, remote.id, family),
          })
        }
      }
    }
  }
  const sitePlans = sites.map((site): SitePlan => {
    const lans = site.lans.map((l) => parseCidr(l) as Cidr)
    const tunnels = (tunnelsOf.get(site.id) ?? []).sort(
      (x, y) => x.id.remote - y.id.remote || x.id.family - y.id.family,
    )
    return {
      site,
      asn: defaults.asnBase + site.id,
      overlay4: formatCidr(site4(site.id)),
      overlay6: formatCidr(site6(site.id)),
      router4: hostAddress(site4(site.id), plan.routerHost),
      router6: hostAddress(site6(site.id), plan.routerHost),
      probeV4Tunnel: probe4(site.id, 4),
      probeV6Tunnel: probe4(site.id, 6),
      lans4: lans
        .filter((c) => c.family === 4)
        .map(formatCidr)
        .sort(byCidr),
      lans6: lans
        .filter((c) => c.family === 6)
        .map(formatCidr)
        .sort(byCidr),
      tunnels,
    }
  })
  const unique = (xs: Array<string>) => [...new Set(xs)].sort(byCidr)
  return {
    mesh,
    sites: sitePlans,
    skipped,
    meshPrefixes4: unique(sitePlans.flatMap((s) => [s.overlay4, ...s.lans4])),
    meshPrefixes6: unique(sitePlans.flatMap((s) => [s.overlay6, ...s.lans6])),
  }
}

/** Canonical text of an address literal (for comparing user input). */
export const canonicalAddress = (text: string): string | undefined => {
  const parsed = parseAddress(text)
  return parsed === undefined ? undefined : formatAddress(parsed.family, parsed.address)
}
