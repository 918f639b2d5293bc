/**
 * Overlay addresses of sites, from a template (default `10.201.{site}.{role}`): role 4 and 6 are the
 * probe endpoints of a site's IPv4- and IPv6-underlay tunnels, role 1 its router. Probes of tunnel
 * `wgL.R_vV` run from role V of L to role V of R, so each crosses exactly that tunnel.
 */
import type { Family, TunnelId } from "@net-perf/engine"

export type AddressRole = 0 | Family

export interface Addressing {
  /** The overlay address of `site` for a role (0 = router, 4/6 = tunnel probe endpoints). */
  readonly address: (site: number, role: AddressRole) => string
}

export const DEFAULT_ADDRESS_TEMPLATE = "10.201.{site}.{role}"

/**
 * `{site}` is the decimal site id, `{siteHex}` the hex one (for `fdac:c9:{siteHex}::{role}`), `{role}`
 * is 1 for the router and 4 or 6 for the probe endpoints.
 */
export const templateAddressing = (template: string = DEFAULT_ADDRESS_TEMPLATE): Addressing => ({
  address: (site, role) => fillTemplate(template, site, role === 0 ? 1 : role),
})

/** Fills `{site}`, `{siteHex}` and `{role}` (default 1, the router) in an address or prefix template. */
export const fillTemplate = (template: string, site: number, role = 1): string =>
  template
    .replaceAll("{siteHex}", site.toString(16))
    .replaceAll("{site}", String(site))
    .replaceAll("{role}", String(role))

export const tunnelEndpoints = (addressing: Addressing, t: TunnelId) => ({
  localAddress: addressing.address(t.local, t.family),
  remoteAddress: addressing.address(t.remote, t.family),
})
