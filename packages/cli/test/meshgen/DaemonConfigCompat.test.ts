// The generator writes each site's daemon config; the daemon must accept it as written.
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { MeshGen } from "@net-perf/engine"
import { decodeConfig } from "@net-perf/node-runtime"
import { Either } from "effect"
import { parse } from "yaml"
import { nodeKeyGenerator } from "../../src/meshgen/Keys.js"

describe("generated net-perf.json", () => {
  it("decodes with the daemon's own config schema, with every site's prefixes", () => {
    const text = readFileSync(join(import.meta.dirname, "../../examples/mesh-3site.yaml"), "utf8")
    const mesh = Either.getOrThrow(MeshGen.decodeMesh(parse(text)))
    for (const bird1 of [false, true]) {
      const secrets = MeshGen.fillSecrets(mesh, MeshGen.emptySecrets, nodeKeyGenerator).secrets
      const { files, plan } = Either.getOrThrow(MeshGen.generateMesh(mesh, secrets, { bird1 }))
      for (const site of plan.sites) {
        const json = JSON.parse(files.get(site.site.name)?.get("net-perf.json") ?? "null")
        const config = decodeConfig(`${site.site.name}/net-perf.json`, json)
        if (Either.isLeft(config)) throw new Error(config.left.message)
        expect(config.right.site).toBe(site.site.id)
        expect(config.right.bird.generation).toBe(bird1 ? "bird1" : "bird2")
        expect(config.right.mesh?.tunnels.map((t) => t.name)).toEqual(site.tunnels.map((t) => t.name))
        for (const other of plan.sites)
          expect(config.right.kernel.sitePrefixes?.[String(other.site.id)]).toEqual([
            other.overlay4,
            other.overlay6,
            ...other.lans4,
            ...other.lans6,
          ])
      }
    }
  })
})
