/**
 * Which secrets a mesh needs, and filling/rotating them with an injected key generator (the engine
 * has no crypto; the CLI passes X25519 from node:crypto). Filling only adds what is missing, so
 * existing keys are stable across runs and adding a site never changes another pair's keys.
 */
import type { Family } from "../Domain.js"
import type { KeyPair, Mesh, Secrets } from "./MeshFile.js"
import { type MeshPlan, planMesh } from "./Plan.js"

export interface KeyGenerator {
  /** A fresh X25519 pair, base64 as WireGuard prints it. */
  readonly keyPair: () => KeyPair
  /** 32 random bytes, base64 (a WireGuard pre-shared key). */
  readonly presharedKey: () => string
}

export interface RequiredSecrets {
  readonly siteKeys: ReadonlyArray<{ readonly site: number; readonly family: Family }>
  readonly presharedKeys: ReadonlyArray<string>
}

/** Key pairs and PSKs the mesh's tunnels use (sorted, deduplicated). */
export const requiredSecrets = (mesh: Mesh): RequiredSecrets => requiredSecretsOfPlan(planMesh(mesh))

export const requiredSecretsOfPlan = (plan: MeshPlan): RequiredSecrets => {
  const siteKeys = new Map<string, { site: number; family: Family }>()
  const psks = new Set<string>()
  for (const site of plan.sites) {
    for (const t of site.tunnels) {
      siteKeys.set(`${t.id.local}_v${t.id.family}`, { site: t.id.local, family: t.id.family })
      psks.add(t.presharedKeyName)
    }
  }
  return {
    siteKeys: [...siteKeys.values()].sort((a, b) => a.site - b.site || a.family - b.family),
    presharedKeys: [...psks].sort(),
  }
}

/** What `fillSecrets` added, by name (never the key material). */
export interface SecretsChange {
  readonly addedSiteKeys: ReadonlyArray<string>
  readonly addedPresharedKeys: ReadonlyArray<string>
}

/** Adds every missing secret; existing entries are kept as they are. */
export const fillSecrets = (
  mesh: Mesh,
  secrets: Secrets,
  generate: KeyGenerator,
): { readonly secrets: Secrets; readonly change: SecretsChange } => {
  const required = requiredSecrets(mesh)
  const sites: Record<string, { v4?: KeyPair | undefined; v6?: KeyPair | undefined }> = {}
  for (const [id, entry] of Object.entries(secrets.sites)) sites[id] = { ...entry }
  const presharedKeys: Record<string, string> = { ...secrets.presharedKeys }
  const addedSiteKeys: Array<string> = []
  const addedPresharedKeys: Array<string> = []
  for (const { site, family } of required.siteKeys) {
    const entry = sites[String(site)] ?? {}
    const slot = family === 4 ? "v4" : "v6"
    if (entry[slot] === undefined) {
      entry[slot] = generate.keyPair()
      addedSiteKeys.push(`${site}_v${family}`)
    }
    sites[String(site)] = entry
  }
  for (const name of required.presharedKeys) {
    if (presharedKeys[name] === undefined) {
      presharedKeys[name] = generate.presharedKey()
      addedPresharedKeys.push(name)
    }
  }
  return { secrets: { version: 1, sites, presharedKeys }, change: { addedSiteKeys, addedPresharedKeys } }
}

/**
 * Drops the keys of one site (both families, and the PSKs of its pairs) or of every site
 * (`site` undefined), then refills: the site gets new key pairs and its tunnels new PSKs.
 */
export const rotateSecrets = (
  mesh: Mesh,
  secrets: Secrets,
  site: number | undefined,
  generate: KeyGenerator,
): { readonly secrets: Secrets; readonly change: SecretsChange } => {
  const touches = (name: string) => {
    const m = /^(\d+)\.(\d+)_v[46]$/.exec(name)
    return m !== null && (Number(m[1]) === site || Number(m[2]) === site)
  }
  const kept: Secrets =
    site === undefined
      ? { version: 1, sites: {}, presharedKeys: {} }
      : {
          version: 1,
          sites: Object.fromEntries(Object.entries(secrets.sites).filter(([id]) => Number(id) !== site)),
          presharedKeys: Object.fromEntries(Object.entries(secrets.presharedKeys).filter(([name]) => !touches(name))),
        }
  return fillSecrets(mesh, kept, generate)
}
