/**
 * The issue's "done when", on a real 3-site twin (root only): WireGuard (wireguard-go), BIRD 2
 * and the real `net-perf` daemon per site, each in its namespace. From site 0, the compiled
 * `perfc` shows every site's routes and `perfc --json` is complete, and `perfe --once` exports
 * the full matrix to the bulk-API-checking server (running in site 0's namespace too).
 * Needs the built binaries (`npx tsc -b`, which `npm test` runs first); skips with a reason otherwise.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { describe, expect, it } from "@effect/vitest"
import { makeTwin, parseScenarioText, type Twin } from "@net-perf/simulator"
import { Duration, Effect, Either } from "effect"

const repo = join(import.meta.dirname, "../../../..")
const bins = {
  daemon: join(repo, "packages/node-runtime/dist/src/bin/net-perf.js"),
  perfc: join(repo, "packages/cli/dist/src/bin/perfc.js"),
  perfe: join(repo, "packages/cli/dist/src/bin/perfe.js"),
  bulkServer: join(repo, "packages/cli/dist/test/perfe/bulkServerProcess.js"),
}
const isRoot = process.getuid?.() === 0
const missing = Object.values(bins).filter((p) => !existsSync(p))
const skipReason = !isRoot
  ? "they need root (network namespaces)"
  : missing.length > 0
    ? `built binaries missing (run npx tsc -b): ${missing.join(", ")}`
    : undefined
if (skipReason !== undefined) console.log(`skipping perfc/perfe twin tests: ${skipReason}`)

const sites = [0, 1, 2]
const scenario = Either.getOrThrow(
  parseScenarioText(`
name: perfc-triangle
sites: 3
durationSeconds: 60
bird: { holdTimeSeconds: 3 }
links: { default: { delayMs: 2 } }
`),
)

/** A process in the twin, stopped with SIGTERM (then SIGKILL) when the scope closes. */
const startProcess = (argv: ReadonlyArray<string>, logFile?: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] })
      const log: Array<string> = []
      child.stdout?.on("data", (b: Buffer) => log.push(b.toString()))
      child.stderr?.on("data", (b: Buffer) => log.push(b.toString()))
      return { child, log, logFile }
    }),
    ({ child, log }) =>
      Effect.async<void>((resume) => {
        if (logFile !== undefined) writeFileSync(logFile, log.join(""))
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        const force = setTimeout(() => child.kill("SIGKILL"), 10_000)
        child.once("exit", () => {
          clearTimeout(force)
          resume(Effect.void)
        })
        child.kill("SIGTERM")
      }),
  )

/** Runs a command to completion: exit code and stdout. */
const runToEnd = (argv: ReadonlyArray<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("exit", (code) => resume(Effect.succeed({ code: code ?? -1, stdout, stderr })))
  })

/** The real daemon in every site, configured from the twin's files. */
const startDaemons = (twin: Twin) =>
  Effect.forEach(sites, (site) => {
    const dir = twin.siteDir(site)
    const config = join(dir, "net-perf.yaml")
    writeFileSync(
      config,
      [
        `site: ${site}`,
        `discovery: { confDir: ${dir} }`,
        `controlSocket: ${join(dir, "net-perf.sock")}`,
        `bird: { socket: ${join(dir, "bird.ctl")} }`,
        "sysctl: { enabled: false }",
        "",
      ].join("\n"),
    )
    return startProcess(twin.siteCommand(site, ["node", bins.daemon, "--config", config]), join(dir, "net-perf.log"))
  })

interface PerfcView {
  summary: { sites: number; reachable: number; unreachable: Array<number> }
  sites: Array<{
    ok: boolean
    site: number
    routes: Array<{
      destination: number
      nextHop: number | null
      via: Array<number>
      viaStatus: string
      path: Array<number>
    }>
  }>
}

const perfcJson = (twin: Twin) =>
  runToEnd(twin.siteCommand(0, ["node", bins.perfc, "--sites", "0-2", "--json", "--timeout", "3000"])).pipe(
    Effect.map((r) => ({ ...r, view: r.stdout.trim() === "" ? undefined : (JSON.parse(r.stdout) as PerfcView) })),
  )

/** Every site answers and routes every other site through a managed route. */
const complete = (view: PerfcView | undefined): boolean =>
  view !== undefined &&
  view.summary.reachable === sites.length &&
  view.sites.every(
    (s) => s.routes.length === sites.length - 1 && s.routes.every((r) => r.nextHop !== null && r.viaStatus === "ok"),
  )

describe.skipIf(skipReason !== undefined)("perfc and perfe on a 3-site twin running the real daemon", () => {
  it.scopedLive(
    "perfc shows every site's routes, --json is complete, perfe exports the full matrix",
    () =>
      Effect.gen(function* () {
        const twin = yield* makeTwin({ scenario, mode: "test" })
        yield* startDaemons(twin)
        const daemonsStartedAt = Date.now()

        // Converged: every site routes every other one through a managed route.
        const deadline = Date.now() + 90_000
        let last = yield* perfcJson(twin)
        while (!complete(last.view) && Date.now() < deadline) {
          yield* Effect.sleep(Duration.seconds(2))
          last = yield* perfcJson(twin)
        }
        const convergedMs = Date.now() - daemonsStartedAt
        const perfcStartedAt = Date.now()
        last = yield* perfcJson(twin)
        const perfcMs = Date.now() - perfcStartedAt
        expect(last.stderr).toBe("")
        expect(last.code).toBe(0)
        const view = last.view as PerfcView
        expect(view.summary).toEqual({ sites: 3, reachable: 3, unreachable: [] })
        for (const site of view.sites) {
          expect(site.ok).toBe(true)
          expect(site.routes.map((r) => r.destination)).toEqual(sites.filter((d) => d !== site.site))
          for (const r of site.routes) {
            expect(r.viaStatus).toBe("ok")
            expect(r.via.at(-1)).toBe(r.destination)
          }
        }

        const table = yield* runToEnd(twin.siteCommand(0, ["node", bins.perfc, "--sites", "0-2"]))
        expect(table.code).toBe(0)
        for (const site of sites) expect(table.stdout).toContain(`Source: ${site} at 10.201.${site}.1:5122`)
        expect(table.stdout).toContain("3 of 3 sites answered.")

        // perfe from site 0 to the bulk-API-checking server in the same namespace.
        const server = yield* startProcess(twin.siteCommand(0, ["node", bins.bulkServer]))
        const lines = createInterface({ input: (server.child as ChildProcess).stdout as NodeJS.ReadableStream })
        const nextLine = Effect.async<string>((resume) => {
          lines.once("line", (line) => resume(Effect.succeed(line)))
        })
        const { port } = JSON.parse(yield* nextLine) as { port: number }
        const perfeStartedAt = Date.now()
        const perfe = yield* runToEnd(
          twin.siteCommand(0, [
            "node",
            bins.perfe,
            "--sites",
            "0-2",
            "--elastic-scheme",
            "http",
            "--elastic-host",
            "127.0.0.1",
            "--elastic-port",
            String(port),
            "--once",
          ]),
        )
        const perfeMs = Date.now() - perfeStartedAt
        console.log(
          `twin figures: all routes managed ${convergedMs} ms after the daemons started; perfc --json ${perfcMs} ms, perfe --once ${perfeMs} ms (wall, incl. node start-up)`,
        )
        expect(perfe.stderr).toMatch(/indexed 6\/6 documents from 3\/3 sites/)
        expect(perfe.code).toBe(0)
        server.child.stdin?.end()
        const report = JSON.parse(yield* nextLine) as {
          violations: Array<string>
          documents: Array<{ pair: string; path: Array<number> }>
        }
        expect(report.violations).toEqual([])
        expect(report.documents.map((d) => d.pair).sort()).toEqual(["0-1", "0-2", "1-0", "1-2", "2-0", "2-1"])
      }),
    180_000,
  )
})
