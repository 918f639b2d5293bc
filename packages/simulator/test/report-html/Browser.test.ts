/**
 * The generated reports in a real browser: headless Chromium (Debian `chromium`, driven by
 * playwright-core, which downloads nothing) opens each page from file://, with every network
 * request refused, and must see no console error, no failed request and every chart drawn. A
 * full-page screenshot of each lands in a temp folder whose path is printed for a person to look.
 * Skipped with a reason when chromium is missing and we are not root; as root (CI) it must run.
 */
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { gunzipSync } from "node:zlib"
import { type BrowserContext, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { renderModelReportHtml, renderTwinComparisonHtml, renderTwinReportHtml } from "../../src/report-html/index.js"

const chromiumPath = "/usr/bin/chromium"
const isRoot = process.getuid?.() === 0
const haveChromium = existsSync(chromiumPath)
if (!haveChromium && !isRoot)
  console.warn(`report-html browser test: skipped, ${chromiumPath} is missing (install it: scripts/setup.sh as root)`)

const fixture = async (name: string) => {
  const bytes = await readFile(new URL(`./fixtures/${name}`, import.meta.url))
  return JSON.parse((name.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8"))
}

const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

describe.skipIf(!haveChromium && !isRoot)("HTML reports in headless Chromium", () => {
  let context: BrowserContext | undefined
  let profile: string
  let out: string

  beforeAll(async () => {
    profile = await mkdtemp(join(tmpdir(), "np-chromium-profile-"))
    out = await mkdtemp(join(tmpdir(), "np-report-html-"))
    // A fresh, empty profile per run; persistent context is how playwright takes a user-data-dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: { width: 1280, height: 900 },
    })
  }, 60_000)

  afterAll(async () => {
    await context?.close()
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
    // Pages and screenshots stay for a person only when asked (NETPERF_KEEP_SCREENSHOTS=1).
    if (out !== undefined) {
      if (process.env.NETPERF_KEEP_SCREENSHOTS === "1")
        console.log(`report-html browser test: pages and screenshots in ${out}`)
      else await rm(out, { recursive: true, force: true })
    }
  }, 30_000)

  const open = async (name: string, html: string) => {
    if (context === undefined) throw new Error("no browser context")
    const file = join(out, `${name}.html`)
    await writeFile(file, html)
    const page = await context.newPage()
    const problems: string[] = []
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`)
    })
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
    const requests: string[] = []
    await page.route("**/*", (route) => {
      const url = route.request().url()
      if (url.startsWith("file:")) return route.continue()
      requests.push(url)
      return route.abort()
    })
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" })
    const shot = join(out, `${name}.png`)
    await page.screenshot({ path: shot, fullPage: true })
    const charts = await page.$$eval("figure.chart svg", (svgs) =>
      svgs.map((s) => {
        const r = s.getBoundingClientRect()
        return { width: r.width, height: r.height, shapes: s.querySelectorAll("path, rect, text").length }
      }),
    )
    await page.close()
    console.log(`report-html browser test: ${name}: ${charts.length} charts, screenshot ${shot}`)
    return { problems, requests, charts }
  }

  it("twin report with timeline: no console errors, nothing fetched, every chart drawn", async () => {
    // The BFD run: loops and blackholes shaded, a baseline beside it.
    const html = renderTwinReportHtml(await fixture("twin-six-site-failure-bfd.json.gz"), {
      label: "BIRD + BFD",
      baseline: await fixture("twin-six-site-failure.json.gz"),
      baselineLabel: "plain BIRD",
    })
    const r = await open("twin-six-site-failure", html)
    expect(r.problems).toEqual([])
    expect(r.requests).toEqual([])
    expect(r.charts.length).toBeGreaterThanOrEqual(5)
    for (const c of r.charts) {
      expect(c.width).toBeGreaterThan(300)
      expect(c.shapes).toBeGreaterThan(10)
    }
  }, 60_000)

  it("net-perf beside plain BIRD (netlab run --compare)", async () => {
    const r = await open(
      "twin-compare",
      renderTwinComparisonHtml(await fixture("twin-six-site-failure-compare.json.gz")),
    )
    expect(r.problems).toEqual([])
    expect(r.requests).toEqual([])
    expect(r.charts.length).toBeGreaterThanOrEqual(5)
  }, 60_000)

  it("model runs and the bench document", async () => {
    for (const [name, input] of [
      ["model-runs", await fixture("model-runs.json")],
      ["model-bench", await fixture("model-bench.json")],
    ] as const) {
      const r = await open(name, renderModelReportHtml(input))
      expect(r.problems).toEqual([])
      expect(r.requests).toEqual([])
      expect(r.charts.length).toBeGreaterThan(0)
    }
  }, 60_000)
})
