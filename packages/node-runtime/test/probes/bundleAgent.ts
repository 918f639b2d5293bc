/**
 * Bundles PlaneAgent.ts (and our workspace sources) into one ESM file that plain `node` can run
 * inside a namespace; npm dependencies stay external and resolve from the repo's node_modules,
 * which is why the bundle is written under node_modules/.cache.
 */
import { mkdir, rm } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, "../../../..")

export const bundleAgent = async (): Promise<{ readonly file: string; readonly cleanup: () => Promise<void> }> => {
  const dir = join(repoRoot, "node_modules", ".cache", `net-perf-agent-${process.pid}-${Date.now().toString(36)}`)
  await mkdir(dir, { recursive: true })
  const file = join(dir, "agent.mjs")
  await build({
    entryPoints: [join(here, "PlaneAgent.ts")],
    outfile: file,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["source"],
    logLevel: "error",
    plugins: [
      {
        name: "externalize-npm",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@net-perf/") ? undefined : { path: args.path, external: true },
          )
        },
      },
    ],
  })
  return { file, cleanup: () => rm(dir, { recursive: true, force: true }) }
}
