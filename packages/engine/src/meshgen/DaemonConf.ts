/**
 * The net-perf daemon config of one site (`net-perf.json`): who the site is, where its tunnels
 * and BIRD live, which ports to use, and its expected tunnels. Plain JSON with sorted, fixed
 * keys so it is byte-stable; the daemon decodes it with its own Config schema (node-runtime).
 */
import { Schema } from "effect"
import { Family, SiteId } from "../Domain.js"
import type { Defaults } from "./MeshFile.js"
import type { SitePlan } from "./Plan.js"

/**
 * The mesh-specific part of the file: the daemon ignores it for routing but reports it and uses
 * the tunnel list to say which expected tunnels are missing.
 */
export const MeshSection = Schema.Struct({
  name: Schema.String,
  asn: Schema.Int,
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
export type MeshSection = typeof MeshSection.Type

/**
 * The overlay address template the daemon uses (`{site}`, `{role}`): this generator's plans give
 * each site a /24 of a /16, so the site id is the third octet; role 1 is the router and 4/6 the
 * tunnel probe endpoints, matching the default address plan (other host indexes are reported).
 */
const addressTemplateOf = (site: SitePlan): string => {
  const [a, b] = site.overlay4.split(".")
  return `${a}.${b}.{site}.{role}`
}

export const renderDaemonConfig = (site: SitePlan, allSites: ReadonlyArray<SitePlan>, defaults: Defaults): string => {
  const { daemon } = defaults
  // Keys and shape follow the daemon's own Config schema (packages/node-runtime/src/daemon/Config.ts);
  // a test in packages/cli decodes every generated file with it.
  const config = {
    site: site.site.id,
    addressTemplate: addressTemplateOf(site),
    discovery: { confDir: daemon.wireguardDir },
    controlSocket: daemon.controlSocket,
    http: { port: daemon.httpPort },
    grpc: { port: daemon.grpcPort },
    probes: {
      echo: { port: daemon.probePort },
      lossTest: { port: daemon.probePort },
      tcp: { port: daemon.grpcPort },
      pathPing: { port: daemon.pathpingPort },
    },
    bird: defaults.bird1
      ? { generation: "bird1", socket: daemon.birdSocket, socket6: daemon.bird6Socket }
      : { generation: "bird2", socket: daemon.birdSocket },
    kernel: {
      sitePrefixes: Object.fromEntries(
        allSites.map((s) => [String(s.site.id), [s.overlay4, s.overlay6, ...s.lans4, ...s.lans6]]),
      ),
    },
    mesh: {
      name: site.site.name,
      asn: site.asn,
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
    } satisfies typeof MeshSection.Encoded,
  }
  return `${JSON.stringify(config, null, 2)}\n`
}
