/**
 * Names and addresses of a twin, all derived from the run prefix and site ids (pure).
 * Namespaces carry the prefix (`nl3fa2-s4`, `nl3fa2-u`) so parallel and crashed runs never
 * collide; interfaces live inside those namespaces, so their names need no prefix. Overlay
 * follows the mesh conventions (10.201.X.0/24, fdac:c9:X::/64 with X in hex); the underlay is a
 * bridge in the underlay namespace ("the internet") with 10.200.0.0/16 and fd00:c8::/64.
 */
import { type Family, tunnelId, tunnelKey } from "@net-perf/engine"

export const runPrefixPattern = /^nl[0-9a-f]{4}$/

export const newRunPrefix = (): string =>
  `nl${Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, "0")}`

export const underlayNs = (prefix: string): string => `${prefix}-u`
export const siteNs = (prefix: string, site: number): string => `${prefix}-s${site}`
/** Site id of a namespace of this run, or undefined. */
export const siteOfNs = (prefix: string, ns: string): number | undefined => {
  const m = new RegExp(`^${prefix}-s(\\d+)$`).exec(ns)
  return m === null ? undefined : Number(m[1])
}

export const tunnelName = (local: number, remote: number, family: Family): string =>
  tunnelKey(tunnelId(local, remote, family))

/** Underlay bridge addresses in the underlay namespace; the link emulator's sockets bind here. */
export const underlayHub = { v4: "10.200.0.1", v6: "fd00:c8::1", v4Prefix: 16, v6Prefix: 64 } as const

export const underlayV4 = (site: number): string => `10.200.${1 + Math.floor(site / 256)}.${site % 256}`
export const underlayV6 = (site: number): string => `fd00:c8::1:${site.toString(16)}`
export const underlayAddress = (site: number, family: Family): string =>
  family === 4 ? underlayV4(site) : underlayV6(site)

/** WireGuard listen port of site X's tunnel towards Y (ports are per namespace). */
export const wgListenPort = (remote: number, family: Family): number => (family === 4 ? 20000 : 40000) + remote

export const routerV4 = (site: number): string => `10.201.${site}.1`
/** Tunnel probe endpoint for the v4- or v6-underlay tunnel (10.201.X.4 / 10.201.X.6). */
export const probeV4 = (site: number, family: Family): string => `10.201.${site}.${family}`
export const overlayV4Prefix = (site: number): string => `10.201.${site}.0/24`
export const overlayV6Base = (site: number): string => `fdac:c9:${site.toString(16)}::`
export const overlayV6Prefix = (site: number): string => `${overlayV6Base(site)}/64`
export const routerV6 = (site: number): string => `${overlayV6Base(site)}1`
/** IPv6 tunnel endpoint (point-to-point address on the wg interface; BGP needs it as IPv6 next hop). */
export const probeV6 = (site: number, family: Family): string => `${overlayV6Base(site)}${family}`

/** Inverse of overlayV4Prefix for a route destination, e.g. "10.201.3.0/24" → 3. */
export const siteOfOverlayV4 = (dst: string): number | undefined => {
  const m = /^10\.201\.(\d+)\.0\/24$/.exec(dst)
  return m === null ? undefined : Number(m[1])
}

/** All unordered pairs a < b. */
export const allPairs = (sites: number): ReadonlyArray<readonly [number, number]> => {
  const out: Array<readonly [number, number]> = []
  for (let a = 0; a < sites; a++) for (let b = a + 1; b < sites; b++) out.push([a, b])
  return out
}

/** Id of the link emulator pair for sites a<b and a family. */
export const relayPairId = (a: number, b: number, family: Family): string =>
  `${Math.min(a, b)}-${Math.max(a, b)}-v${family}`
