/**
 * The observability pack against the real daemon and real tools: every metric the dashboard and
 * the alert rules query is one the daemon's registry exports (or is listed as requested in
 * metrics-pending.json), every dashboard query is valid PromQL (promtool parses it as a recording
 * rule), the scrape config and rules pass `promtool check`, the alert unit tests pass, and the
 * systemd unit passes `systemd-analyze verify`.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { decodeConfig, MeasurementMetrics, makeControlMetrics } from "@net-perf/node-runtime"
import { Effect, Either } from "effect"
import { parse as parseYaml } from "yaml"

const root = join(import.meta.dirname, "../../../../observability")
const read = (path: string) => readFileSync(join(root, path), "utf8")

const has = (command: string) => spawnSync("sh", ["-c", `command -v ${command}`]).status === 0
const hasPromtool = has("promtool")
const hasSystemdAnalyze = has("systemd-analyze")
if (!hasPromtool)
  console.warn("skipping promtool checks: promtool not installed (scripts/setup.sh installs Debian prometheus)")
if (!hasSystemdAnalyze) console.warn("skipping the systemd unit check: systemd-analyze not installed")

interface Panel {
  readonly type: string
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
  readonly panels?: ReadonlyArray<Panel>
}
const dashboard = JSON.parse(read("grafana/net-perf.json")) as {
  panels: ReadonlyArray<Panel>
  templating: { list: ReadonlyArray<{ query?: unknown; definition?: string }> }
}
const dashboardExprs = dashboard.panels
  .flatMap((p) => [p, ...(p.panels ?? [])])
  .flatMap((p) => (p.targets ?? []).map((t) => t.expr))
const variableQueries = dashboard.templating.list.flatMap((v) =>
  typeof v.definition === "string" ? [v.definition] : [],
)

const rules = parseYaml(read("prometheus/alerts.yml")) as {
  groups: ReadonlyArray<{ rules: ReadonlyArray<{ alert: string; expr: string }> }>
}
const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr))

const pending = (JSON.parse(read("metrics-pending.json")) as { metrics: ReadonlyArray<{ name: string }> }).metrics.map(
  (m) => m.name,
)

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
export const metricNames = (expr: string): ReadonlyArray<string> => {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  const withoutMatchers = withoutStrings.replace(/\{[^}]*\}/g, "{}")
  const withoutGrouping = withoutMatchers.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "")
  const withoutRanges = withoutGrouping.replace(/\[[^\]]*\]/g, "[]")
  const keywords = new Set([
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "group_left",
    "group_right",
    "on",
    "ignoring",
    "by",
    "without",
  ])
  return [...withoutRanges.matchAll(/(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()/g)]
    .map((m) => m[1] as string)
    .filter((name) => !keywords.has(name.toLowerCase()))
}

/** Exported series names: histograms also expose _bucket, _sum and _count. */
const exportedNames = Effect.gen(function* () {
  const metrics = yield* MeasurementMetrics
  // The daemon registers its control-plane metrics on the measurement plane's registry.
  makeControlMetrics(metrics.registry)
  const json = yield* Effect.promise(() => metrics.registry.getMetricsAsJSON())
  return new Set(
    json.flatMap((m) =>
      String(m.type) === "histogram" ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
    ),
  )
}).pipe(Effect.provide(MeasurementMetrics.Default))

// Prometheus's own series about each scrape.
const prometheusSynthetic = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"])

describe("observability pack", () => {
  it("extracts metric names from PromQL", () => {
    expect(
      metricNames(
        'sum by (le, probe) (rate(netperf_tunnel_rtt_seconds_bucket{local=~"$local", probe="udp"}[$__rate_interval])) / on (x) group_left up == 0 and changes(netperf_tunnel_up[15m]) > 4',
      ),
    ).toEqual(["netperf_tunnel_rtt_seconds_bucket", "up", "netperf_tunnel_up"])
    expect(metricNames("label_values(netperf_tunnel_up, local)")).toEqual(["netperf_tunnel_up", "local"])
  })

  it.effect("the dashboard and the alert rules query only metrics the daemon exports (or has been asked to)", () =>
    Effect.gen(function* () {
      const exported = yield* exportedNames
      expect(exported.has("netperf_tunnel_up")).toBe(true)
      const referenced = new Set([...dashboardExprs, ...ruleExprs].flatMap(metricNames))
      // label_values(metric, label): only the first argument is a metric.
      for (const q of variableQueries) {
        const m = /label_values\(\s*([a-zA-Z_:][\w:]*)/.exec(q)
        if (m?.[1] !== undefined) referenced.add(m[1])
      }
      const unknown = [...referenced].filter(
        (n) => !exported.has(n) && !prometheusSynthetic.has(n) && !pending.includes(n),
      )
      expect(unknown).toEqual([])
      const stillPending = pending.filter((n) => !exported.has(n))
      if (stillPending.length > 0) console.info(`requested, not yet exported by the daemon: ${stillPending.join(", ")}`)
      const landed = pending.filter((n) => exported.has(n))
      if (landed.length > 0) console.info(`exported now, remove from metrics-pending.json: ${landed.join(", ")}`)
      // Every pending metric must be one we actually use.
      expect(pending.filter((n) => !referenced.has(n))).toEqual([])
      // The dashboard covers the required views.
      for (const name of [
        "netperf_tunnel_rtt_seconds_bucket",
        "netperf_tunnel_loss_ratio",
        "netperf_tunnel_jitter_seconds",
        "netperf_route_switches_total",
        "netperf_route_fallbacks_total",
        "netperf_probes_sent_total",
      ]) {
        expect(dashboardExprs.some((e) => metricNames(e).includes(name))).toBe(true)
      }
    }),
  )

  it.runIf(hasPromtool)("promtool accepts the scrape config and the rules, and the alert unit tests pass", () => {
    const dir = join(root, "prometheus")
    execFileSync("promtool", ["check", "config", "prometheus.yml"], { cwd: dir, stdio: "pipe" })
    execFileSync("promtool", ["check", "rules", "alerts.yml"], { cwd: dir, stdio: "pipe" })
    const out = execFileSync("promtool", ["test", "rules", "alerts.test.yml"], { cwd: dir, stdio: "pipe" }).toString()
    expect(out).toContain("SUCCESS")
    const names = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.alert)))
    for (const alert of [
      "NetPerfTunnelDown",
      "NetPerfTunnelLossHigh",
      "NetPerfRouteFlapping",
      "NetPerfTunnelFlapping",
      "NetPerfLinkStateStale",
      "NetPerfBirdUnreachable",
    ]) {
      expect(names.has(alert)).toBe(true)
    }
  })

  it.runIf(hasPromtool)("every dashboard query is valid PromQL (checked by promtool as recording rules)", () => {
    const dir = mkdtempSync(join(tmpdir(), "np-dash-"))
    try {
      const substitute = (e: string) =>
        e
          .replaceAll("$__rate_interval", "1m")
          .replaceAll("$__interval", "1m")
          .replaceAll("$__range", "1h")
          .replace(/\$(local|remote|family|probe)\b/g, ".*")
      const exprs = dashboardExprs.map(substitute)
      expect(exprs.length).toBeGreaterThan(15)
      const file = join(dir, "dashboard-rules.yml")
      const recording = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }))
      writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules: recording }] }))
      const result = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" })
      expect(result.stdout + result.stderr).toContain(`SUCCESS: ${exprs.length} rules found`)
      expect(result.status).toBe(0)
      // A broken expression is caught (the check can fail).
      writeFileSync(
        file,
        JSON.stringify({ groups: [{ name: "bad", rules: [{ record: "x:y", expr: "sum(rate(a[1m])" }] }] }),
      )
      expect(spawnSync("promtool", ["check", "rules", file]).status).not.toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.runIf(hasSystemdAnalyze)("the systemd unit verifies and keeps only CAP_NET_ADMIN and CAP_NET_RAW", () => {
    const unit = read("systemd/net-perf.service")
    expect(unit).toMatch(/^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW$/m)
    expect(unit).toMatch(/^AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW$/m)
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m)
    expect(unit).toMatch(/^ProtectSystem=strict$/m)
    const dir = mkdtempSync(join(tmpdir(), "np-unit-"))
    try {
      // The binary is not installed here: point ExecStart at an existing one, keep everything else.
      const file = join(dir, "net-perf.service")
      writeFileSync(file, unit.replace(/^ExecStart=\S+/m, "ExecStart=/bin/true"))
      const verify = spawnSync("systemd-analyze", ["verify", "--man=no", file], { encoding: "utf8" })
      expect(verify.stderr).toBe("")
      expect(verify.status).toBe(0)
      const security = spawnSync("systemd-analyze", ["security", "--offline=true", file], { encoding: "utf8" })
      const exposure = /Overall exposure level for net-perf\.service: ([\d.]+)/.exec(security.stdout)
      expect(Number(exposure?.[1])).toBeLessThanOrEqual(3)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the example daemon config decodes with the daemon's Config schema", () => {
    const config = parseYaml(read("examples/net-perf.yaml")) as Record<string, unknown>
    expect(config).toMatchObject({
      site: 0,
      discovery: { confDir: "/etc/wireguard" },
      bird: { generation: "bird2", socket: "/run/bird/bird.ctl" },
    })
    const decoded = decodeConfig("examples/net-perf.yaml", config)
    if (Either.isLeft(decoded)) expect.fail(decoded.left.message)
    else expect(decoded.right).toMatchObject({ site: 0, bird: { generation: "bird2", socket: "/run/bird/bird.ctl" } })
    // A broken example would be caught.
    expect(Either.isLeft(decodeConfig("x", { ...config, site: -1 }))).toBe(true)
  })
})
