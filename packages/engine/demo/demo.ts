/**
 * Engine demo: a mesh from a JSON file, one NodeRouter per site, synthetic probe samples from
 * the file's RTT/loss/jitter per tunnel family, a full link-state exchange every second, and the
 * resulting plan per algorithm for every site, with costs and fallback reasons.
 *
 * Randomness (loss, jitter) comes from a seeded generator, so every run prints the same plan.
 */
import { readFileSync } from "node:fs"
import {
  type AlgorithmName,
  type BgpPath,
  desiredRoutes,
  type Family,
  LossTestSample,
  mulberry32,
  NodeRouter,
  PathSample,
  type RouteChoice,
  type RoutingDecision,
  RttSample,
  SiteId,
  siteAsn,
  tunnelId,
} from "@net-perf/engine"
import { Either, Schema } from "effect"

const help = `usage: demo [--json] [--seconds N] [--seed N] [--algorithm NAME] MESH.json

Simulates the mesh for N seconds (default: the file's "seconds", else 150) with one NodeRouter
per site and prints every site's plan for each algorithm (or only --algorithm NAME):
next hop per destination, tunnel family, cost, and why earlier algorithms of the fallback chain
could not route. --json prints the same as JSON (+Infinity as null).

Mesh file: { "sites": [{ "id": 0, "name": "fra" }, ...],
             "links": [{ "a": 0, "b": 1, "v4": { "rttMs": 10, "lossRatio": 0, "jitterMs": 0 }, "v6": {...} }, ...] }
A missing "v4"/"v6" means no tunnel of that family.
`

const Quality = Schema.Struct({
  rttMs: Schema.Number.pipe(Schema.positive()),
  lossRatio: Schema.optionalWith(Schema.Number.pipe(Schema.between(0, 1)), { default: () => 0 }),
  jitterMs: Schema.optionalWith(Schema.Number.pipe(Schema.nonNegative()), { default: () => 0 }),
})
const MeshFile = Schema.Struct({
  description: Schema.optional(Schema.String),
  seconds: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** Sites whose BIRD offers no paths (to show the fallback chain at work). */
  noBgpAt: Schema.optionalWith(Schema.Array(SiteId), { default: () => [] }),
  sites: Schema.Array(Schema.Struct({ id: SiteId, name: Schema.String })),
  links: Schema.Array(
    Schema.Struct({ a: SiteId, b: SiteId, v4: Schema.optional(Quality), v6: Schema.optional(Quality) }),
  ),
})
type MeshFile = typeof MeshFile.Type
type Quality = typeof Quality.Type

const fail = (message: string): never => {
  process.stderr.write(`demo: ${message}\n`)
  process.exit(2)
}

const args = process.argv.slice(2)
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(help)
  process.exit(0)
}
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  if (i < 0) return undefined
  const v = args[i + 1]
  if (v === undefined) fail(`${name} needs a value`)
  args.splice(i, 2)
  return v
}
const json = args.includes("--json")
if (json) args.splice(args.indexOf("--json"), 1)
const secondsFlag = flag("--seconds")
const seed = Number(flag("--seed") ?? 1)
const only = flag("--algorithm") as AlgorithmName | undefined
const file = args[0] ?? fail(`no mesh file given\n\n${help}`)

const readJson = (path: string): unknown => {
  try {
    return JSON.parse(readFileSync(path, "utf8"))
  } catch (cause) {
    return fail(`cannot read ${path}: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}
const decoded = Schema.decodeUnknownEither(MeshFile)(readJson(file))
const mesh: MeshFile = Either.isLeft(decoded) ? fail(`${file}: ${decoded.left.message}`) : decoded.right
const seconds = secondsFlag !== undefined ? Number(secondsFlag) : (mesh.seconds ?? 150)
const names = new Map(mesh.sites.map((s) => [s.id as number, s.name]))
const siteIds = mesh.sites.map((s) => s.id)

/** Tunnel quality per direction and family ("a>b/4"). */
const quality = new Map<string, Quality>()
for (const l of mesh.links) {
  for (const f of [4, 6] as const) {
    const q = f === 4 ? l.v4 : l.v6
    if (q === undefined) continue
    quality.set(`${l.a}>${l.b}/${f}`, q)
    quality.set(`${l.b}>${l.a}/${f}`, q)
  }
}
const bestRtt = (a: number, b: number) =>
  Math.min(
    quality.get(`${a}>${b}/4`)?.rttMs ?? Number.POSITIVE_INFINITY,
    quality.get(`${a}>${b}/6`)?.rttMs ?? Number.POSITIVE_INFINITY,
  )

/** BIRD's view in a full mesh: the direct path (primary) and every two-AS path. */
const bgpPathsOf = (self: number): Array<BgpPath> => {
  const out: Array<BgpPath> = []
  for (const d of siteIds) {
    if (d === self) continue
    for (const via of siteIds) {
      if (via === self || !Number.isFinite(bestRtt(self, via))) continue
      if (via !== d && !Number.isFinite(bestRtt(via, d))) continue
      out.push({
        prefix: `10.201.${d}.0/24`,
        prefixFamily: 4,
        asPath: via === d ? [siteAsn(d)] : [siteAsn(via), siteAsn(d)],
        nextHop: `10.201.${via}.1`,
        interface: `wg${self}.${via}_v4`,
        primary: via === d,
      })
    }
  }
  return out
}

const algorithms: ReadonlyArray<AlgorithmName> =
  only !== undefined ? [only] : ["shortest-bgp", "least-cost-bgp", "graph-least-cost", "measured-fastest"]

const run = (algorithm: AlgorithmName): Map<number, RoutingDecision> => {
  const rand = mulberry32(seed)
  const start = 1_700_000_000_000
  const routers = new Map(siteIds.map((s) => [s as number, NodeRouter.make({ self: s, algorithm })]))
  for (const [s, r] of routers) r.setBgpPaths(mesh.noBgpAt.includes(SiteId.make(s)) ? [] : bgpPathsOf(s))
  const probe = (q: Quality) => (rand() < q.lossRatio ? null : Math.max(0.05, q.rttMs + (rand() * 2 - 1) * q.jitterMs))
  for (let t = 0; t <= seconds; t++) {
    const now = start + t * 1000
    for (const [key, q] of quality) {
      const m = /^(\d+)>(\d+)\/([46])$/.exec(key)!
      const tunnel = tunnelId(Number(m[1]), Number(m[2]), Number(m[3]) as Family)
      const router = routers.get(tunnel.local)!
      router.observe(new RttSample({ tunnel, kind: "udp-echo", atMillis: now, rttMs: probe(q) }))
      if (t % 10 === 0) {
        let received = 0
        for (let i = 0; i < 100; i++) if (rand() >= q.lossRatio) received++
        router.observe(
          new LossTestSample({
            tunnel,
            atMillis: now,
            sent: 100,
            received,
            reordered: 0,
            jitterMs: q.jitterMs,
            rateBitsPerSecond: 1e6,
          }),
        )
      }
    }
    for (const [s, r] of routers) {
      // Pathping: 10 probes over the cycle, each hop on the requested family (else the best),
      // each lost with that hop's loss ratio and delayed by its RTT/2 plus jitter.
      for (const req of r.pathProbeRequests(now)) {
        const rtts: Array<number> = []
        for (let p = 0; p < 10; p++) {
          let rtt = 0
          let lost = false
          for (let i = 0; i + 1 < req.path.length; i++) {
            const a = req.path[i]!
            const b = req.path[i + 1]!
            const fam = req.families[i]
            const q = quality.get(`${a}>${b}/${fam === 6 ? 6 : 4}`) ?? quality.get(`${a}>${b}/${fam === 6 ? 4 : 6}`)
            if (q === undefined || rand() < q.lossRatio) lost = true
            else rtt += q.rttMs / 2 + rand() * q.jitterMs
          }
          if (!lost) rtts.push(rtt)
        }
        const rttMs = rtts.length === 0 ? null : rtts.reduce((x, y) => x + y, 0) / rtts.length
        r.observe(
          new PathSample({
            path: req.path,
            families: req.families,
            atMillis: now,
            rttMs,
            sent: 10,
            received: rtts.length,
          }),
        )
      }
      void s
    }
    for (const r of routers.values()) r.decide(now)
    const messages = [...routers.values()].map((r) => r.advertise(now))
    for (const msg of messages) for (const r of routers.values()) r.receiveLinkState(msg, now)
  }
  return new Map([...routers].map(([s, r]) => [s, r.lastDecision!]))
}

const routersChain = (algorithm: AlgorithmName) => NodeRouter.make({ self: 0, algorithm }).config.chain

const label = (s: number) => `${s} ${names.get(s) ?? ""}`.trim()
const finite = (x: number) => (Number.isFinite(x) ? x : null)
const cell = (r: RouteChoice | undefined): string => {
  if (r === undefined) return "-"
  if (r.nextHop === null) return r.starved ? "starved" : "none"
  const via = r.nextHop === r.destination ? "direct" : `via ${r.nextHop}`
  return `${via} v${r.tunnel!.family} ${r.algorithm === "shortest-bgp" ? `${r.costMs} AS` : `${r.costMs.toFixed(1)}ms`}`
}

const results = algorithms.map((a) => ({ algorithm: a, decisions: run(a) }))

if (json) {
  const out = results.map(({ algorithm, decisions }) => ({
    algorithm,
    sites: [...decisions].map(([site, d]) => ({
      site,
      name: names.get(site),
      routes: d.routes.map((r) => ({
        destination: r.destination,
        nextHop: r.nextHop,
        interfaceName: r.interfaceName,
        costMs: finite(r.costMs),
        metricMs: finite(r.metricMs),
        seqno: r.seqno,
        path: r.path,
        algorithm: r.algorithm,
        fallbacks: r.fallbacks,
        stability: r.stability,
        starved: r.starved,
      })),
      kernelRoutes: desiredRoutes(d),
    })),
  }))
  process.stdout.write(`${JSON.stringify({ file, seconds, seed, results: out }, null, 2)}\n`)
} else {
  const width = 20
  const pad = (s: string) => s.padEnd(width)
  process.stdout.write(`net-perf engine demo: ${file}\n`)
  if (mesh.description !== undefined) process.stdout.write(`${mesh.description}\n`)
  process.stdout.write(`${siteIds.length} sites, ${quality.size / 2} tunnels, ${seconds} s simulated, seed ${seed}\n`)
  for (const { algorithm, decisions } of results) {
    const chain = [...routersChain(algorithm)].join(" → ")
    process.stdout.write(
      `\n== ${algorithm} ==   fallback chain ${chain}; row: from, column: to; cost in the algorithm's own measure\n`,
    )
    process.stdout.write(`${pad("from \\ to")}${siteIds.map((d) => pad(label(d))).join("")}\n`)
    const notes: Array<string> = []
    for (const s of siteIds) {
      const d = decisions.get(s)!
      process.stdout.write(
        `${pad(label(s))}${siteIds.map((t) => pad(t === s ? "." : cell(d.byDestination.get(t)))).join("")}\n`,
      )
      for (const r of d.routes) {
        if (r.algorithm !== algorithm || r.nextHop === null) {
          const why = r.fallbacks.map((f) => `${f.algorithm}: ${f.reason}`).join("; ")
          notes.push(`  ${label(s)} → ${label(r.destination)}: by ${r.algorithm ?? "nothing"} because ${why}`)
        }
      }
    }
    process.stdout.write(notes.length > 0 ? `fallbacks:\n${notes.join("\n")}\n` : "no fallbacks needed\n")
  }
  const sample = results.find((x) => x.algorithm === "graph-least-cost") ?? results[0]!
  const first = sample.decisions.get(siteIds[0]!)!
  process.stdout.write(
    `\nkernel routes wanted by site ${label(siteIds[0]!)} (${sample.algorithm}), protocol 201:\n${desiredRoutes(first)
      .map((k) => `  ${k.prefix} dev ${k.device} metric ${k.metric} proto ${k.protocol}`)
      .join("\n")}\n`,
  )
}
