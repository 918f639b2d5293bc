/**
 * Each site's configuration files for the twin, from one of two generators: the engine's mesh
 * config generator (meshgen, the default: what the twin tests is what operators deploy) or the
 * twin's built-in `MeshConfig` (kept as a fallback and for comparison). Both give the same
 * design: point-to-point overlay addresses per wg interface, one direct BGP session per tunnel.
 * meshgen's wg-quick files are split here into what `wg setconf` takes and the PostUp lines,
 * which the site's setup script runs as written (with %i replaced).
 */
import { randomBytes } from "node:crypto"
import { type Family, MeshGen } from "@net-perf/engine"
import { Either } from "effect"
import { overlayV6Base, routerV4, routerV6, tunnelName, underlayV4, underlayV6, wgListenPort } from "./Addressing.js"
import { birdConf, type MeshLayout, type SiteKeys, tunnelsOf, wgConf } from "./MeshConfig.js"
import type { Scenario } from "./Scenario.js"

export type ConfigGenerator = "meshgen" | "builtin"

export interface TunnelFiles {
  readonly name: string
  readonly remote: number
  readonly family: Family
  /** `wg setconf` text (keys, port, peer). */
  readonly setconf: string
  readonly mtu: number
  /** Shell lines to run after the interface exists (addresses, routes). */
  readonly postUp: ReadonlyArray<string>
}

export interface SiteFiles {
  readonly tunnels: ReadonlyArray<TunnelFiles>
  readonly birdConf: string
  /** `ip -batch` lines for lo (router addresses). */
  readonly loBatch: string
}

export interface SiteConfigSource {
  readonly generator: ConfigGenerator
  /** Listen port of site `local`'s tunnel towards `remote` (the relay forwards to it). */
  readonly listenPort: (local: number, remote: number, family: Family) => number
  /** Files of every site, once the peer endpoints are known. */
  readonly generate: (
    endpointOf: (local: number, remote: number, family: Family) => string,
    birdLogOf: (site: number) => string,
  ) => Either.Either<ReadonlyArray<SiteFiles>, string>
}

const loBatch = (site: number): string =>
  ["link set lo up", `addr add ${routerV4(site)}/32 dev lo`, `addr add ${routerV6(site)}/128 dev lo`, ""].join("\n")

/** The twin's own generator (MeshConfig). */
export const builtinSource = (s: Scenario, keys: ReadonlyArray<SiteKeys>): SiteConfigSource => ({
  generator: "builtin",
  listenPort: (_local, remote, family) => wgListenPort(remote, family),
  generate: (endpointOf, birdLogOf) => {
    const layout: MeshLayout = { sites: s.sites, families: s.families, keys, endpointOf }
    return Either.right(
      Array.from({ length: s.sites }, (_, site) => ({
        tunnels: tunnelsOf(layout, site).map((t) => ({
          name: t.name,
          remote: t.remote,
          family: t.family,
          setconf: wgConf(layout, site, t.remote, t.family),
          mtu: 1420,
          postUp: [
            `ip addr add 10.201.${site}.${t.family}/32 dev lo 2>/dev/null || true`,
            `ip addr add 10.201.${site}.${t.family}/32 peer 10.201.${t.remote}.${t.family}/32 dev ${t.name}`,
            `ip -6 addr add ${overlayV6Base(site)}${t.family}/128 peer ${overlayV6Base(t.remote)}${t.family}/128 dev ${t.name} nodad`,
          ],
        })),
        birdConf: birdConf(layout, site, { ...s.bird, logFile: birdLogOf(site) }),
        loBatch: loBatch(site),
      })),
    )
  },
})

/** The mesh file the twin hands to meshgen (dial overrides = relay sockets, when given). */
export const meshInputOf = (
  s: Scenario,
  dial?: (local: number, remote: number, family: Family) => string,
): MeshGen.MeshInput => {
  const stack = s.families.length === 2 ? "dual" : s.families[0] === 4 ? "v4" : "v6"
  const sites = Array.from({ length: s.sites }, (_, id) => ({
    id,
    name: `s${id}`,
    stack,
    endpoints: {
      ...(s.families.includes(4) ? { v4: underlayV4(id) } : {}),
      ...(s.families.includes(6) ? { v6: underlayV6(id) } : {}),
    },
  })) as MeshGen.MeshInput["sites"]
  const pairs: Array<NonNullable<MeshGen.MeshInput["pairs"]>[number]> = []
  if (dial !== undefined)
    for (let a = 0; a < s.sites; a++)
      for (let b = a + 1; b < s.sites; b++)
        pairs.push({
          sites: [a, b],
          dial: s.families.flatMap((family) => [
            { from: a, family, endpoint: dial(a, b, family) },
            { from: b, family, endpoint: dial(b, a, family) },
          ]),
        })
  const keepaliveSeconds = Math.max(1, Math.floor(s.bird.holdTimeSeconds / 3))
  return {
    defaults: {
      firewall: "none",
      bfd: s.bird.bfd,
      bfdIntervalMs: s.bird.bfdIntervalMs,
      bfdMultiplier: s.bird.bfdMultiplier,
      bgp: {
        holdTimeSeconds: s.bird.holdTimeSeconds,
        keepaliveSeconds,
        connectDelaySeconds: 1,
        connectRetrySeconds: 2,
        errorWaitSeconds: [1, 5],
      },
      birdLog: birdLogPlaceholder,
    },
    sites,
    pairs,
  } as MeshGen.MeshInput
}

/** meshgen has one BIRD log target for every site: generated with this, then made per site. */
const birdLogPlaceholder = "/netlab-bird-log-placeholder"

/** Splits a wg-quick file into `wg setconf` text, MTU and PostUp lines. */
export const splitWgQuick = (text: string, iface: string): { setconf: string; mtu: number; postUp: string[] } => {
  const keep: string[] = []
  const postUp: string[] = []
  let mtu = 1420
  let section = ""
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    if (/^\[.*\]$/.test(line)) {
      section = line
      keep.push(line)
      continue
    }
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line)
    if (m === null) continue
    const [, key = "", value = ""] = m
    if (section === "[Interface]") {
      if (key === "MTU") mtu = Number(value)
      else if (key === "PostUp") postUp.push(value.replaceAll("%i", iface))
      else if (["PrivateKey", "ListenPort", "FwMark"].includes(key)) keep.push(line)
    } else keep.push(line)
  }
  return { setconf: `${keep.join("\n")}\n`, mtu, postUp }
}

export const meshgenSource = (s: Scenario, keys: ReadonlyArray<SiteKeys>): Either.Either<SiteConfigSource, string> =>
  Either.gen(function* () {
    const planned = yield* MeshGen.decodeMesh(meshInputOf(s))
    const plan = MeshGen.planMesh(planned)
    const ports = new Map<string, number>()
    for (const site of plan.sites)
      for (const t of site.tunnels)
        if (t.listenPort !== undefined) ports.set(tunnelName(t.id.local, t.id.remote, t.id.family), t.listenPort)
    const pskNames = MeshGen.requiredSecrets(planned).presharedKeys
    // Per-run pre-shared keys: 32 random bytes, as `wg genpsk` makes them.
    const presharedKeys = Object.fromEntries(pskNames.map((n) => [n, randomBytes(32).toString("base64")]))
    const secrets: MeshGen.Secrets = {
      version: 1,
      sites: Object.fromEntries(keys.map((k, site) => [String(site), { v4: k.v4, v6: k.v6 }])),
      presharedKeys,
    }
    return {
      generator: "meshgen" as const,
      listenPort: (local, remote, family) => ports.get(tunnelName(local, remote, family)) ?? 0,
      generate: (endpointOf, birdLogOf) =>
        Either.gen(function* () {
          const mesh = yield* MeshGen.decodeMesh(meshInputOf(s, endpointOf))
          const generated = yield* MeshGen.generateMesh(mesh, secrets).pipe(Either.mapLeft((e) => e.message))
          const out: SiteFiles[] = []
          for (let site = 0; site < s.sites; site++) {
            const files = generated.files.get(`s${site}`)
            if (files === undefined) return yield* Either.left(`meshgen produced no files for site ${site}`)
            const tunnels: TunnelFiles[] = []
            for (let remote = 0; remote < s.sites; remote++)
              for (const family of s.families) {
                if (remote === site) continue
                const name = tunnelName(site, remote, family)
                const text = files.get(`${name}.conf`)
                if (text === undefined) return yield* Either.left(`meshgen produced no ${name}.conf`)
                tunnels.push({ name, remote, family, ...splitWgQuick(text, name) })
              }
            const bird = files.get(MeshGen.bird2ConfPath)
            if (bird === undefined) return yield* Either.left(`meshgen produced no bird.conf for site ${site}`)
            out.push({
              tunnels,
              birdConf: bird.replaceAll(birdLogPlaceholder, birdLogOf(site)),
              loBatch: loBatch(site),
            })
          }
          return out
        }),
    } satisfies SiteConfigSource
  })
