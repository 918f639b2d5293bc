/**
 * `generateMesh`: decoded mesh + secrets → every site's files, as a pure function. The output is
 * a map from site name to (relative path → contents); iteration order and contents depend only
 * on the inputs, so the same input always gives byte-identical files.
 */
import { Data, Either } from "effect"
import { renderBird1Conf, renderBird2Conf } from "./BirdConf.js"
import { renderDaemonConfig } from "./DaemonConf.js"
import type { Mesh, Secrets } from "./MeshFile.js"
import { type MeshPlan, planMesh, type SkippedTunnel } from "./Plan.js"
import { requiredSecretsOfPlan } from "./Secrets.js"
import { renderWireGuardConf } from "./WireGuardConf.js"

/** Site name → (path relative to the site folder → file contents). */
export type MeshFiles = ReadonlyMap<string, ReadonlyMap<string, string>>

export interface GenerateOptions {
  /** Also write BIRD 1.x configs (overrides `defaults.bird1` when set). */
  readonly bird1?: boolean
}

export interface GeneratedMesh {
  readonly plan: MeshPlan
  readonly files: MeshFiles
  readonly skipped: ReadonlyArray<SkippedTunnel>
}

/** The secrets lack keys the mesh needs (names only, never key material). */
export class MissingSecrets extends Data.TaggedError("MissingSecrets")<{ readonly missing: ReadonlyArray<string> }> {
  override get message(): string {
    return `secrets lack ${this.missing.length} key(s): ${this.missing.slice(0, 10).join(", ")}${this.missing.length > 10 ? ", …" : ""}`
  }
}

/** Files whose contents include private keys (write them 0600). */
export const isSecretFile = (path: string): boolean => /(^|\/)wg\d+\.\d+_v[46]\.conf$/.test(path)

export const bird2ConfPath = "bird.conf"
export const bird1ConfPaths = { 4: "bird1/bird.conf", 6: "bird1/bird6.conf" } as const
export const daemonConfigPath = "net-perf.json"

export const generateMesh = (
  mesh: Mesh,
  secrets: Secrets,
  options: GenerateOptions = {},
): Either.Either<GeneratedMesh, MissingSecrets> => {
  const plan = planMesh(mesh)
  const required = requiredSecretsOfPlan(plan)
  const missing = [
    ...required.siteKeys
      .filter(({ site, family }) => secrets.sites[String(site)]?.[family === 4 ? "v4" : "v6"] === undefined)
      .map(({ site, family }) => `site ${site} IPv${family} key pair`),
    ...required.presharedKeys
      .filter((name) => secrets.presharedKeys[name] === undefined)
      .map((n) => `pre-shared key ${n}`),
  ]
  if (missing.length > 0) return Either.left(new MissingSecrets({ missing }))
  const { defaults } = mesh
  const withBird1 = options.bird1 ?? defaults.bird1
  const keyPair = (site: number, family: 4 | 6) => secrets.sites[String(site)]?.[family === 4 ? "v4" : "v6"]
  const files = new Map<string, ReadonlyMap<string, string>>()
  for (const site of plan.sites) {
    const siteFiles = new Map<string, string>()
    for (const t of site.tunnels) {
      siteFiles.set(
        `${t.name}.conf`,
        renderWireGuardConf(
          t,
          {
            privateKey: keyPair(t.id.local, t.id.family)?.privateKey ?? "",
            peerPublicKey: keyPair(t.id.remote, t.id.family)?.publicKey ?? "",
            presharedKey: secrets.presharedKeys[t.presharedKeyName] ?? "",
          },
          { firewall: defaults.firewall, hooks: site.site.hooks },
        ),
      )
    }
    siteFiles.set(bird2ConfPath, renderBird2Conf(plan, site))
    if (withBird1) {
      siteFiles.set(bird1ConfPaths[4], renderBird1Conf(plan, site, 4))
      siteFiles.set(bird1ConfPaths[6], renderBird1Conf(plan, site, 6))
    }
    siteFiles.set(daemonConfigPath, renderDaemonConfig(site, plan.sites, { ...defaults, bird1: withBird1 }))
    files.set(site.site.name, siteFiles)
  }
  return Either.right({ plan, files, skipped: plan.skipped })
}
