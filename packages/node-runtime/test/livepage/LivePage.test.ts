/**
 * The live mesh page: pure rendering checks everywhere, and as root a browser test against a
 * live site. Two namespaces joined by a real wireguard-go tunnel each run a measurement plane,
 * an engine and the page's HTTP server (LiveAgent.ts); headless Chromium runs INSIDE site 1's
 * namespace (so "127.0.0.1:5120" is that site's server), loads `/`, waits until the page shows
 * the measured tunnel and the engine's route, checks there was no console error and saves a
 * screenshot to a temp folder (kept, path printed, with NETPERF_KEEP_SCREENSHOTS=1).
 */
import { existsSync } from "node:fs"
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { livePageHeaders, liveStatusOf, renderLivePage } from "../../src/livepage/LivePage.js"
import type { PlaneStatus } from "../../src/MeasurementPlane.js"
import { makeTunnelPair, type TunnelPair } from "../probes/Netns.js"

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, "../../../..")
const chromiumPath = "/usr/bin/chromium"
const isRoot = process.getuid?.() === 0
if (!isRoot) console.warn("live page browser test: skipped, needs root for namespaces and wireguard-go")

describe("renderLivePage", () => {
  it("is one page with inline style and script, no external asset, polling the configured path", () => {
    const html = renderLivePage({ statusPath: "status", refreshMillis: 2000 })
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true)
    expect(html).not.toMatch(/(src|href)\s*=/i)
    expect(html).not.toMatch(/https?:\/\//)
    expect(html).toContain('{"statusPath":"status","refreshMillis":2000}')
    expect(livePageHeaders["content-security-policy"]).toContain("connect-src 'self'")
  })

  it("cannot be broken out of by its options", () => {
    const html = renderLivePage({ statusPath: "</script><script>alert(1)</script>", title: "<b>x</b>" })
    expect(html.match(/<script/g)).toHaveLength(2)
    expect(html).not.toContain("<b>x</b>")
  })

  it("liveStatusOf keeps the plane's status and adds routes, Infinity cost as null", () => {
    const plane: PlaneStatus = { localSite: 1, atMillis: 5, tunnels: [], confErrors: [] }
    expect(liveStatusOf(plane)).toEqual(plane)
    const s = liveStatusOf(plane, { configuredAlgorithm: "graph-least-cost", mesh: [] })
    expect(s.configuredAlgorithm).toBe("graph-least-cost")
    expect(s.routes).toBeUndefined()
  })
})

const bundle = async (): Promise<{ readonly file: string; readonly cleanup: () => Promise<void> }> => {
  // Under node_modules so the bundle's npm imports resolve from the repository.
  const dir = join(repoRoot, "node_modules", ".cache", `net-perf-live-${process.pid}-${Date.now().toString(36)}`)
  await mkdir(dir, { recursive: true })
  const file = join(dir, "live-agent.mjs")
  await build({
    entryPoints: [join(here, "LiveAgent.ts")],
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

describe.skipIf(!isRoot)("live page of a site in a namespace, in headless Chromium", () => {
  let pair: TunnelPair | undefined
  let agent: { readonly file: string; readonly cleanup: () => Promise<void> } | undefined
  let work: string | undefined

  beforeAll(async () => {
    if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} missing: run scripts/setup.sh as root`)
    work = await mkdtemp(join(tmpdir(), "np-livepage-"))
    pair = await makeTunnelPair(1, 2)
    agent = await bundle()
    for (const s of [pair.a, pair.b]) {
      const config = {
        localSite: s.id,
        allowPrefixes: ["10.201.0.0/16"],
        discovery: { confDir: s.confDir, rescanIntervalMillis: 5000 },
        control: null,
        http: null,
        probes: { icmp: { intervalMillis: 500 }, tcp: { intervalMillis: 1000 } },
      }
      pair.spawn(s, [process.execPath, agent.file, JSON.stringify(config), "127.0.0.1", "5120"])
    }
  }, 60_000)

  afterAll(async () => {
    await pair?.teardown()
    await agent?.cleanup()
    // Screenshots stay for a person to look at only when asked (NETPERF_KEEP_SCREENSHOTS=1):
    // tests leave no files behind.
    if (work !== undefined) {
      if (process.env.NETPERF_KEEP_SCREENSHOTS === "1") {
        await rm(join(work, "profile"), { recursive: true, force: true })
        console.log(`live page browser test: screenshot in ${work}`)
      } else await rm(work, { recursive: true, force: true })
    }
  }, 60_000)

  it("shows the measured tunnel and the engine's route, without console errors", async () => {
    if (pair === undefined || work === undefined) throw new Error("no twin")
    // Chromium in site 1's namespace; playwright talks to it over inherited pipes, not the network.
    const wrapper = join(work, "chromium-in-site")
    await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${pair.a.ns} ${chromiumPath} "$@"\n`)
    await chmod(wrapper, 0o755)
    const profile = join(work, "profile")
    await mkdir(profile)
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: wrapper,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      viewport: { width: 1200, height: 900 },
    })
    try {
      const page = await context.newPage()
      const problems: string[] = []
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console error: ${m.text()}`)
      })
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
      // The agent needs a moment to listen; retry the first load.
      for (let i = 0; ; i++) {
        const ok = await page
          .goto("http://127.0.0.1:5120/", { waitUntil: "load" })
          .then((r) => r?.ok() === true)
          .catch(() => false)
        if (ok) break
        if (i > 40) throw new Error("live page never answered")
        await new Promise((r) => setTimeout(r, 250))
      }
      // Let failed fetches during start-up not count: only what happens once the page loaded.
      problems.length = 0
      // The page's CSP forbids eval, so the predicate is a function; this package has no DOM types.
      type Doc = { getElementById(id: string): { textContent: string | null } | null }
      await page.waitForFunction(
        () => {
          const doc = (globalThis as unknown as { document: Doc }).document
          const t = doc.getElementById("tunnels")?.textContent ?? ""
          const r = doc.getElementById("routes")?.textContent ?? ""
          return (
            t.includes("wg1.2_v4") &&
            /\d+\.\d+ s ago/.test(t) &&
            t.includes("up") &&
            // The route's row names the tunnel only once the engine has the measured link: before
            // that the row is BIRD's fallback, whose reason text also mentions graph-least-cost.
            r.includes("wg1.2_v4") &&
            r.includes("graph-least-cost")
          )
        },
        undefined,
        { timeout: 30_000, polling: 500 },
      )
      const matrixCell = await page.$eval("#matrix tbody tr td:not(.self)", (td) => ({
        text: td.textContent ?? "",
        title: td.getAttribute("title") ?? "",
        style: td.getAttribute("style") ?? "",
      }))
      expect(matrixCell.title).toMatch(/1 → 2/)
      expect(matrixCell.title).toMatch(/RTT \d+\.\d ms/)
      expect(matrixCell.style).toContain("background")
      const routes = await page.$eval("#routes", (t) => t.textContent ?? "")
      expect(routes).toContain("wg1.2_v4")
      expect(await page.$eval("#error", (e) => e.getAttribute("style") ?? "")).not.toContain("block")
      const shot = join(work, "live-page.png")
      await page.screenshot({ path: shot, fullPage: true })
      console.log(`live page browser test: screenshot ${shot}`)

      // The page follows the site without a reload: cut the underlay, the tunnel turns dead.
      const { execa } = await import("execa")
      await execa("ip", ["-n", pair.a.ns, "link", "set", pair.a.veth, "down"])
      await page.waitForFunction(
        () => {
          const doc = (globalThis as unknown as { document: Doc }).document
          return (doc.getElementById("tunnels")?.textContent ?? "").includes("dead")
        },
        undefined,
        { timeout: 20_000, polling: 500 },
      )
      const deadCell = await page.$eval("#matrix tbody tr td:not(.self)", (td) => td.textContent ?? "")
      expect(deadCell).toContain("dead")
      const shotDead = join(work, "live-page-dead.png")
      await page.screenshot({ path: shotDead, fullPage: true })
      console.log(`live page browser test: screenshot after the link failed ${shotDead}`)
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  }, 90_000)
})
