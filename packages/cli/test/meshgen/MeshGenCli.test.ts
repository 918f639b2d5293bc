import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import YAML from "yaml"
import { meshCommand, normalizeArgs, runMeshCommand } from "../../src/meshgen/Command.js"
import { x25519KeyPair } from "../../src/meshgen/Keys.js"
import { type MeshGenOptions, type MeshGenSummary, runMeshGen } from "../../src/meshgen/MeshGenCli.js"

const examplePath = join(import.meta.dirname, "../../examples/mesh-3site.yaml")
const dirs: Array<string> = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "np-meshgen-"))
  dirs.push(dir)
  const meshPath = join(dir, "mesh.yaml")
  writeFileSync(meshPath, readFileSync(examplePath, "utf8"))
  return { dir, meshPath, out: join(dir, "out"), secretsPath: join(dir, "mesh.secrets.json") }
}

const run = (options: Partial<MeshGenOptions> & { meshPath: string; outDir: string }, progress: Array<string> = []) =>
  runMeshGen({
    secretsPath: Option.none(),
    bird1: false,
    check: false,
    rotateKeys: Option.none(),
    progress: (line) => Effect.sync(() => progress.push(line)),
    ...options,
  }).pipe(Effect.provide(NodeContext.layer))

const treeOf = (root: string): Record<string, string> =>
  Object.fromEntries(
    (readdirSync(root, { recursive: true }) as Array<string>)
      .filter((p) => statSync(join(root, p)).isFile())
      .sort()
      .map((p) => [p, readFileSync(join(root, p), "utf8")]),
  )

const secretValues = (secretsPath: string): Array<string> => {
  const secrets = JSON.parse(readFileSync(secretsPath, "utf8"))
  return [
    ...Object.values(secrets.sites as Record<string, Record<string, { privateKey: string }>>).flatMap((s) =>
      Object.values(s).map((k) => k.privateKey),
    ),
    ...Object.values(secrets.presharedKeys as Record<string, string>),
  ]
}

describe("net-perf-mesh I/O", () => {
  it.effect("creates 0600 secrets once, keeps them stable, and writes identical trees", () =>
    Effect.gen(function* () {
      const ws = workspace()
      const progress: Array<string> = []
      const first = yield* run({ meshPath: ws.meshPath, outDir: ws.out }, progress)
      expect(first.secretsCreated).toBe(true)
      expect(first.secretsFile).toBe(ws.secretsPath)
      expect(statSync(ws.secretsPath).mode & 0o777).toBe(0o600)
      expect(statSync(join(ws.out, "ams/wg0.1_v4.conf")).mode & 0o777).toBe(0o600)
      expect(statSync(join(ws.out, "ams/bird.conf")).mode & 0o777).toBe(0o644)
      const secretsText = readFileSync(ws.secretsPath, "utf8")
      const tree = treeOf(ws.out)
      expect(Object.keys(tree)).toEqual([
        "ams/bird.conf",
        "ams/net-perf.json",
        "ams/wg0.1_v4.conf",
        "ams/wg0.7_v4.conf",
        "ams/wg0.7_v6.conf",
        "fra/bird.conf",
        "fra/net-perf.json",
        "fra/wg1.0_v4.conf",
        "fra/wg1.7_v4.conf",
        "sgp/bird.conf",
        "sgp/net-perf.json",
        "sgp/wg7.0_v4.conf",
        "sgp/wg7.0_v6.conf",
        "sgp/wg7.1_v4.conf",
      ])
      const second = yield* run({ meshPath: ws.meshPath, outDir: ws.out }, progress)
      expect(second.secretsCreated).toBe(false)
      expect(second.keysAdded).toEqual([])
      expect(second.files.every((f) => f.action === "unchanged")).toBe(true)
      expect(readFileSync(ws.secretsPath, "utf8")).toBe(secretsText)
      expect(treeOf(ws.out)).toEqual(tree)
      // Nothing the command says contains key material.
      const said = [...progress, JSON.stringify(first), JSON.stringify(second)].join("\n")
      for (const secret of secretValues(ws.secretsPath)) expect(said).not.toContain(secret)
    }),
  )

  it.effect("tightens a secrets file that others can read", () =>
    Effect.gen(function* () {
      const ws = workspace()
      yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      chmodSync(ws.secretsPath, 0o644)
      const checked = yield* run({ meshPath: ws.meshPath, outDir: ws.out, check: true })
      expect(checked.warnings.join()).toContain("run without --check to fix")
      expect(statSync(ws.secretsPath).mode & 0o777).toBe(0o644)
      const summary = yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      expect(statSync(ws.secretsPath).mode & 0o777).toBe(0o600)
      expect(summary.warnings.join()).toContain("set to 600")
    }),
  )

  it.effect("adding a site keeps every existing WireGuard file; removing it deletes its tunnels' files", () =>
    Effect.gen(function* () {
      const ws = workspace()
      yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      const before = treeOf(ws.out)
      const mesh = YAML.parse(readFileSync(ws.meshPath, "utf8"))
      mesh.sites.push({ id: 42, name: "nyc", endpoints: { v4: "192.0.2.42", v6: "2001:db8::42" } })
      writeFileSync(ws.meshPath, YAML.stringify(mesh))
      const grown = yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      expect(grown.keysAdded).toContain("site 42_v4")
      const after = treeOf(ws.out)
      for (const [file, contents] of Object.entries(before)) if (/\/wg/.test(file)) expect(after[file]).toBe(contents)
      expect(after["nyc/wg42.7_v6.conf"]).toContain("Endpoint = [2001:db8:c::70]:51905")
      mesh.sites.pop()
      writeFileSync(ws.meshPath, YAML.stringify(mesh))
      const shrunk = yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      expect(shrunk.files.filter((f) => f.action === "removed").map((f) => f.path)).toEqual([
        "ams/wg0.42_v4.conf",
        "ams/wg0.42_v6.conf",
        "fra/wg1.42_v4.conf",
        "sgp/wg7.42_v4.conf",
        "sgp/wg7.42_v6.conf",
      ])
      expect(shrunk.warnings.join()).toContain("nyc is not a site of the mesh")
      expect(treeOf(ws.out)["ams/wg0.42_v4.conf"]).toBeUndefined()
      const { "nyc/bird.conf": _a, "nyc/net-perf.json": _b, ...rest } = treeOf(ws.out)
      expect(Object.keys(rest).filter((k) => !k.startsWith("nyc/"))).toEqual(Object.keys(before))
    }),
  )

  it.effect("rotates one site's keys: only its tunnels' files change", () =>
    Effect.gen(function* () {
      const ws = workspace()
      yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      const before = treeOf(ws.out)
      const rotated = yield* run({ meshPath: ws.meshPath, outDir: ws.out, rotateKeys: Option.some("fra") })
      expect(rotated.keysAdded).toEqual(["site 1_v4", "psk 0.1_v4", "psk 1.7_v4"])
      const written = rotated.files.filter((f) => f.action === "written").map((f) => f.path)
      expect(written).toEqual(["ams/wg0.1_v4.conf", "fra/wg1.0_v4.conf", "fra/wg1.7_v4.conf", "sgp/wg7.1_v4.conf"])
      expect(treeOf(ws.out)["ams/wg0.7_v6.conf"]).toBe(before["ams/wg0.7_v6.conf"])
      const bad = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out, rotateKeys: Option.some("zzz") }))
      expect(bad.message).toContain('no site has id or name "zzz"')
    }),
  )

  it.effect("--check reports drift (missing, changed, unexpected) and never writes", () =>
    Effect.gen(function* () {
      const ws = workspace()
      const missing = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out, check: true }))
      expect(missing.message).toContain("does not exist")
      yield* run({ meshPath: ws.meshPath, outDir: ws.out })
      const clean = yield* run({ meshPath: ws.meshPath, outDir: ws.out, check: true })
      expect(clean.drift).toEqual([])
      writeFileSync(
        join(ws.out, "ams/wg0.1_v4.conf"),
        readFileSync(join(ws.out, "ams/wg0.1_v4.conf"), "utf8").replace("MTU = 1400", "MTU = 1280"),
      )
      rmSync(join(ws.out, "fra/bird.conf"))
      writeFileSync(join(ws.out, "sgp/wg7.9_v4.conf"), "[Interface]\n")
      const before = treeOf(ws.out)
      const dirty = yield* run({ meshPath: ws.meshPath, outDir: ws.out, check: true })
      expect(dirty.drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toEqual([
        "changed ams/wg0.1_v4.conf",
        "missing fra/bird.conf",
        "unexpected sgp/wg7.9_v4.conf",
      ])
      expect(dirty.drift[0]?.lines).toEqual([{ line: 6, expected: "MTU = 1400", actual: "MTU = 1280" }])
      expect(treeOf(ws.out)).toEqual(before)
      chmodSync(join(ws.out, "sgp/wg7.0_v6.conf"), 0o644)
      const exposed = yield* run({ meshPath: ws.meshPath, outDir: ws.out, check: true })
      expect(exposed.drift.map((d) => `${d.kind} ${d.site}/${d.file}`)).toContain("mode sgp/wg7.0_v6.conf")
      // Through the command: drift fails with DriftFound (the bin maps it to exit code 1).
      const args = ["node", "net-perf-mesh", "--mesh", ws.meshPath, "--out", ws.out, "--check", "--json"]
      const failure = yield* Effect.flip(runMeshCommand(args).pipe(Effect.provide(NodeContext.layer)))
      expect(failure._tag).toBe("DriftFound")
    }),
  )

  it.effect("bad mesh files fail naming the file, the path and the value", () =>
    Effect.gen(function* () {
      const ws = workspace()
      writeFileSync(ws.meshPath, "sites:\n  - id: 3\n    name: a\n    stack: v5\n  - id: 3\n    name: b\n")
      const error = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out }))
      expect(error.message).toContain(`mesh file ${ws.meshPath} is invalid`)
      expect(error.message).toContain('sites[0].stack: expected "dual", "v4" or "v6", got "v5"')
      // Cross-field rules run once every field decodes.
      writeFileSync(ws.meshPath, "sites:\n  - id: 3\n    name: a\n  - id: 3\n    name: b\n")
      const duplicate = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out }))
      expect(duplicate.message).toContain("sites[1].id: duplicate site id 3 (also sites[0])")
      writeFileSync(ws.meshPath, "sites: [\n")
      const syntax = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out }))
      expect(syntax.message).toMatch(/line 2/)
      writeFileSync(join(ws.dir, "mesh.json"), '{"sites": [{"id": 0, "name": "a", "mtu": 99}]}')
      const json = yield* Effect.flip(run({ meshPath: join(ws.dir, "mesh.json"), outDir: ws.out }))
      expect(json.message).toContain("sites[0].mtu: Expected a number between 1300 and 9000, actual 99")
      writeFileSync(
        ws.secretsPath,
        '{"version":1,"sites":{"0":{"v4":{"privateKey":"x","publicKey":"y"}}},"presharedKeys":{}}',
      )
      writeFileSync(ws.meshPath, readFileSync(examplePath, "utf8"))
      const secrets = yield* Effect.flip(run({ meshPath: ws.meshPath, outDir: ws.out }))
      expect(secrets.message).toContain("sites.0.v4.privateKey: expected a base64 WireGuard key")
    }),
  )

  it.effect("--json prints a summary; --rotate-keys without a value means every site", () =>
    Effect.gen(function* () {
      expect(normalizeArgs(["node", "x", "--rotate-keys"])).toEqual(["node", "x", "--rotate-keys", "all"])
      expect(normalizeArgs(["node", "x", "--rotate-keys", "--json"])).toEqual([
        "node",
        "x",
        "--rotate-keys",
        "all",
        "--json",
      ])
      expect(normalizeArgs(["node", "x", "--rotate-keys", "sgp"])).toEqual(["node", "x", "--rotate-keys", "sgp"])
      const ws = workspace()
      const logged: Array<string> = []
      const original = console.log
      console.log = (...args: Array<unknown>) => logged.push(args.join(" "))
      yield* runMeshCommand(
        normalizeArgs(["node", "net-perf-mesh", "-m", ws.meshPath, "-o", ws.out, "--json", "--rotate-keys"]),
      ).pipe(Effect.provide(NodeContext.layer), Effect.ensuring(Effect.sync(() => (console.log = original))))
      const summary = JSON.parse(logged.join("\n")) as MeshGenSummary
      expect(summary.sites.map((s) => s.name)).toEqual(["ams", "fra", "sgp"])
      expect(summary.keysAdded).toHaveLength(9)
      expect(summary.sites[0]?.tunnels[0]).toEqual({
        name: "wg0.1_v4",
        listenPort: 51822,
        endpoint: "203.0.113.20:51820",
      })
      expect(meshCommand.descriptor).toBeDefined()
    }),
  )
})

describe("X25519 keys", () => {
  it("match `wg pubkey` and use WireGuard's base64 form", () => {
    for (let i = 0; i < 5; i++) {
      const pair = x25519KeyPair()
      expect(pair.privateKey).toMatch(/^[A-Za-z0-9+/]{43}=$/)
      expect(execFileSync("wg", ["pubkey"], { input: pair.privateKey }).toString().trim()).toBe(pair.publicKey)
    }
  })
})

describe("the net-perf-mesh executable", () => {
  const repoRoot = join(import.meta.dirname, "../../../..")
  // vite-node runs the TypeScript bin with the workspace's source conditions (no build needed).
  const runBin = (args: ReadonlyArray<string>) => {
    const r = spawnSync(
      "npx",
      [
        "vite-node",
        "--config",
        join(repoRoot, "vitest.config.ts"),
        join(repoRoot, "packages/cli/src/bin/net-perf-mesh.ts"),
        ...args,
      ],
      { cwd: repoRoot, encoding: "utf8" },
    )
    return { code: r.status, stdout: r.stdout, stderr: r.stderr }
  }

  it("exits 0 after generating, 1 on drift, 2 on a bad mesh file", () => {
    const ws = workspace()
    const generated = runBin(["--mesh", ws.meshPath, "--out", ws.out, "--json"])
    expect(generated.code).toBe(0)
    expect(JSON.parse(generated.stdout).sites).toHaveLength(3)
    expect(generated.stderr).toContain("created secrets")
    rmSync(join(ws.out, "ams/bird.conf"))
    const drift = runBin(["--mesh", ws.meshPath, "--out", ws.out, "--check"])
    expect(drift.code).toBe(1)
    expect(drift.stdout).toContain("missing         ams/bird.conf")
    writeFileSync(ws.meshPath, "sites:\n  - { id: 0, name: a, mtu: 99 }\n")
    const bad = runBin(["--mesh", ws.meshPath, "--out", ws.out])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("sites[0].mtu: Expected a number between 1300 and 9000, actual 99")
  }, 120_000)
})
