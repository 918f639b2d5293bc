/**
 * Benchmark: how long `generateMesh` takes for full meshes of growing size, and what one X25519
 * key pair costs. Prints a table, or JSON with `--json`. Run after a build:
 *   node packages/cli/dist/src/meshgen/bench.js [--json]
 * Median of 5 runs per size; keys for the generation runs come from node:crypto once per size.
 */
import { performance } from "node:perf_hooks"
import { MeshGen } from "@net-perf/engine"
import { Either } from "effect"
import { nodeKeyGenerator } from "./Keys.js"

const median = (xs: Array<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const meshOf = (sites: number): MeshGen.Mesh => {
  const decoded = MeshGen.decodeMesh({
    sites: Array.from({ length: sites }, (_, id) => ({
      id,
      name: `site${id}`,
      endpoints: { v4: `192.0.2.${id}`, v6: `2001:db8::${id.toString(16)}` },
      lans: [`172.16.${id}.0/24`],
    })),
  })
  if (Either.isLeft(decoded)) throw new Error(decoded.left)
  return decoded.right
}

const rows = [3, 20, 50, 100, 200].map((sites) => {
  const mesh = meshOf(sites)
  const secrets = MeshGen.fillSecrets(mesh, MeshGen.emptySecrets, nodeKeyGenerator).secrets
  const timesMs: Array<number> = []
  let files = 0
  let bytes = 0
  for (let run = 0; run < 5; run++) {
    const start = performance.now()
    const out = MeshGen.generateMesh(mesh, secrets)
    timesMs.push(performance.now() - start)
    if (Either.isLeft(out)) throw out.left
    files = [...out.right.files.values()].reduce((n, f) => n + f.size, 0)
    bytes = [...out.right.files.values()].reduce((n, f) => n + [...f.values()].reduce((m, c) => m + c.length, 0), 0)
  }
  return { sites, tunnelEnds: sites * (sites - 1) * 2, files, megabytes: bytes / 1e6, generateMs: median(timesMs) }
})

const keyStart = performance.now()
for (let i = 0; i < 1000; i++) nodeKeyGenerator.keyPair()
const keyPairMicros = ((performance.now() - keyStart) / 1000) * 1000

if (process.argv.includes("--json")) {
  console.log(JSON.stringify({ rows, keyPairMicros }, null, 2))
} else {
  console.log("sites  tunnel-ends  files   MB     generate-ms (median of 5)")
  for (const r of rows) {
    console.log(
      `${String(r.sites).padStart(5)}  ${String(r.tunnelEnds).padStart(11)}  ${String(r.files).padStart(5)}  ${r.megabytes.toFixed(2).padStart(5)}  ${r.generateMs.toFixed(1).padStart(8)}`,
    )
  }
  console.log(`X25519 key pair (node:crypto): ${keyPairMicros.toFixed(0)} µs each (1000 pairs)`)
}
