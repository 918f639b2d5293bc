/**
 * The net-perf daemon config of one site (`net-perf.json`): who the site is, where its tunnels
 * and BIRD live, which ports to use, and its expected tunnels. Plain JSON with sorted, fixed
 * keys so it is byte-stable; the daemon decodes it with `DaemonConfig` below.
 */
import { Schema } from "effect"
import { Family, SiteId } from "../Domain.js"
import type { Defaults } from "./MeshFile.js"
import type { SitePlan } from "./Plan.js"

export const DaemonConfig = Schema.Struct({
  version: Schema.Literal(1),
  siteId: SiteId,
  siteName: Schema.String,
  asn: Schema.Int,
  /** Interface names: `{local}`, `{remote}`, `{family}` replaced by ids and 4|6. */
  tunnelPattern: Schema.String,
  wireguardDir: Schema.String,
  bird: Schema.Struct({
    /** Major version of the BIRD the site runs: 2 (one socket) or 1 (IPv4 and IPv6 sockets). */
    version: Schema.Literal(1, 2),
    socket: Schema.String,
    socket6: Schema.optional(Schema.String),
  }),
  controlSocket: Schema.String,
  ports: Schema.Struct({ http: Schema.Int, probe: Schema.Int, grpc: Schema.Int, pathping: Schema.Int }),
  overlay: Schema.Struct({
    prefix4: Schema.String,
    prefix6: Schema.String,
    router4: Schema.String,
    router6: Schema.String,
    /** Probe address on lo used by the IPv4-underlay / IPv6-underlay tunnels. */
    probeV4Tunnel: Schema.String,
    probeV6Tunnel: Schema.String,
  }),
  lans: Schema.Array(Schema.String),
  tunnels: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      peerId: SiteId,
      peerName: Schema.String,
      peerAsn: Schema.Int,
      family: Family,
      localAddress: Schema.String,
      peerAddress: Schema.String,
      listenPort: Schema.NullOr(Schema.Int),
      mtu: Schema.Int,
    }),
  ),
})
export type DaemonConfig = typeof DaemonConfig.Type

export const renderDaemonConfig = (site: SitePlan, defaults: Defaults): string => {
  const { daemon } = defaults
  const config: typeof DaemonConfig.Encoded = {
    version: 1,
    siteId: site.site.id,
    siteName: site.site.name,
    asn: site.asn,
    tunnelPattern: "wg{local}.{remote}_v{family}",
    wireguardDir: daemon.wireguardDir,
    bird: defaults.bird1
      ? { version: 1, socket: daemon.birdSocket, socket6: daemon.bird6Socket }
      : { version: 2, socket: daemon.birdSocket },
    controlSocket: daemon.controlSocket,
    ports: { http: daemon.httpPort, probe: daemon.probePort, grpc: daemon.grpcPort, pathping: daemon.pathpingPort },
    overlay: {
      prefix4: site.overlay4,
      prefix6: site.overlay6,
      router4: site.router4,
      router6: site.router6,
      probeV4Tunnel: site.probeV4Tunnel,
      probeV6Tunnel: site.probeV6Tunnel,
    },
    lans: [...site.lans4, ...site.lans6],
    tunnels: site.tunnels.map((t) => ({
      name: t.name,
      peerId: t.id.remote,
      peerName: t.remoteName,
      peerAsn: t.remoteAsn,
      family: t.id.family,
      localAddress: t.localProbe4,
      peerAddress: t.remoteProbe4,
      listenPort: t.listenPort ?? null,
      mtu: t.mtu,
    })),
  }
  return `${JSON.stringify(config, null, 2)}\n`
}
