/**
 * What the fault tests observe in a running twin: managed routes, forwarding paths, the daemons'
 * /metrics and /healthz, and their logs — plus the invariants every fault must keep (no route via
 * a dead tunnel, no forwarding loop, every daemon alive and answering).
 *
 * Decision a reader must know: "dead" is judged twice. Against the ground truth (links the test
 * has cut) and against each daemon's own verdict (`netperf_tunnel_up`), because a daemon may
 * only act on what it has detected; forwarding is followed hop by hop with `ip route get`, so a
 * loop through BIRD's routes counts as much as one through ours.
 */
import { readFile, stat } from "node:fs/promises"
import { NetLab, type Twin } from "@net-perf/simulator"
import { Duration, Effect, Schedule } from "effect"
import { execa } from "execa"

export interface Route {
  readonly dst: string
  readonly dev: string
}

const tunnelOf = (dev: string) => {
  const m = /^wg(\d+)\.(\d+)_v([46])$/.exec(dev)
  return m === null ? undefined : { local: Number(m[1]), remote: Number(m[2]), family: Number(m[3]) }
}

/** Managed (protocol 201) routes of both families in a namespace. */
export const managedRoutes = (ns: string) =>
  Effect.promise(async () => {
    const out: Array<Route> = []
    for (const family of ["-4", "-6"]) {
      const r = await execa("ip", [family, "-n", ns, "-json", "route", "show", "proto", "201"], { reject: false })
      if (r.exitCode === 0) out.push(...(JSON.parse(r.stdout || "[]") as Array<Route>))
    }
    return out
  })

/** The device the kernel forwards `address` to (undefined: no route). */
const deviceFor = (ns: string, address: string) =>
  Effect.promise(async () => {
    const r = await execa("ip", ["-n", ns, "-json", "route", "get", address], { reject: false })
    if (r.exitCode !== 0) return undefined
    return (JSON.parse(r.stdout || "[]") as Array<{ dev?: string }>)[0]?.dev
  })

const routerAddress = (site: number, family: 4 | 6) =>
  family === 4 ? `10.201.${site}.1` : `fdac:c9:${site.toString(16)}::1`

/** One site's daemon over HTTP inside its namespace; undefined when it does not answer. */
const http = (twin: Twin, site: number, path: string) =>
  Effect.promise(async () => {
    const r = await execa(
      "ip",
      ["netns", "exec", twin.siteNs(site), "curl", "-sf", "-m", "3", `http://10.201.${site}.1:5120${path}`],
      { reject: false },
    )
    return r.exitCode === 0 ? r.stdout : undefined
  })

export const scrape = (twin: Twin, site: number) => http(twin, site, "/metrics")
export const healthz = (twin: Twin, site: number) => http(twin, site, "/healthz")

/** Sum of a metric's samples matching the labels (NaN when the daemon does not answer). */
export const metricAt = (twin: Twin, site: number, name: string, labels: Readonly<Record<string, string>> = {}) =>
  Effect.map(scrape(twin, site), (text) => (text === undefined ? Number.NaN : NetLab.sumCounter(text, name, labels)))

/** A daemon's log from a byte offset (its size when a fault began) on. */
export const logSize = (d: NetLab.DaemonHandle) =>
  Effect.promise(() =>
    stat(d.logFile).then(
      (s) => s.size,
      () => 0,
    ),
  )
export const logSince = (d: NetLab.DaemonHandle, offset: number) =>
  Effect.promise(() =>
    readFile(d.logFile).then(
      (b) => b.subarray(offset).toString("utf8"),
      () => "",
    ),
  )

/** Polls until `check` holds; fails after `seconds`. Returns how long it took (ms). */
export const waitFor = (what: string, seconds: number, check: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const started = Date.now()
    yield* check.pipe(
      Effect.filterOrFail(
        (ok) => ok,
        () => new Error(`not yet: ${what}`),
      ),
      Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(Duration.seconds(seconds)))),
      Effect.mapError(() => new Error(`timed out after ${seconds} s waiting for: ${what}`)),
    )
    return Date.now() - started
  })

export interface MeshExpectation {
  readonly sites: ReadonlyArray<number>
  readonly daemons: ReadonlyMap<number, NetLab.DaemonHandle>
  /** Sites whose daemon the test has stopped or killed. */
  readonly daemonsDown?: ReadonlySet<number>
  /** Links the test has cut ("0-1"): no managed route may use them. */
  readonly deadLinks?: ReadonlySet<string>
}

export const pidAlive = (pid: number | undefined) => {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const linkKey = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`)

/**
 * Every invariant violation visible now (empty = healthy): a running daemon dead or not answering
 * /healthz, a managed route via a cut link or via a tunnel its own daemon reports down (unless the
 * far end's daemon is the one stopped: then its echo verdict is meaningless), a forwarding loop.
 */
export const meshViolations = (twin: Twin, expect: MeshExpectation) =>
  Effect.gen(function* () {
    const down = expect.daemonsDown ?? new Set<number>()
    // Sites concurrently: one sample should be a snapshot, not a slow walk.
    const perSite = yield* Effect.forEach(expect.sites, (site) => siteViolations(twin, expect, site, !down.has(site)), {
      concurrency: "unbounded",
    })
    return [...perSite.flat(), ...(yield* forwardingLoops(twin, expect.sites))]
  })

const siteViolations = (twin: Twin, expect: MeshExpectation, site: number, running: boolean) =>
  Effect.gen(function* () {
    const violations: Array<string> = []
    const [routes, health, text] = yield* Effect.all(
      [
        managedRoutes(twin.siteNs(site)),
        running ? healthz(twin, site) : Effect.succeed(undefined),
        running ? scrape(twin, site) : Effect.succeed(undefined),
      ],
      { concurrency: "unbounded" },
    )
    if (running) {
      if (!pidAlive(expect.daemons.get(site)?.pid())) violations.push(`site ${site}: daemon process gone`)
      if (health === undefined) violations.push(`site ${site}: /healthz does not answer`)
    }
    const down = expect.daemonsDown ?? new Set<number>()
    for (const r of routes) {
      const t = tunnelOf(r.dev)
      if (t === undefined) continue
      if (expect.deadLinks?.has(linkKey(t.local, t.remote)))
        violations.push(`site ${site}: ${r.dst} via cut link ${r.dev}`)
      // Toward a stopped daemon the echo has no responder, so its "dead" verdict says nothing about
      // the tunnel (which the test left intact): there only the ground truth above applies.
      if (down.has(t.remote)) continue
      if (
        text !== undefined &&
        NetLab.sumCounter(text, "netperf_tunnel_up", {
          local: String(t.local),
          remote: String(t.remote),
          family: String(t.family),
        }) !== 1
      )
        violations.push(`site ${site}: ${r.dst} via ${r.dev}, which its daemon reports down`)
    }
    return violations
  })

/** Follows next hops from every site to every other site's router address; reports loops. */
export const forwardingLoops = (twin: Twin, sites: ReadonlyArray<number>) => {
  const follow = (family: 4 | 6, src: number, dst: number) =>
    Effect.gen(function* () {
      const path = [src]
      let at = src
      while (at !== dst) {
        const dev = yield* deviceFor(twin.siteNs(at), routerAddress(dst, family))
        const next = dev === undefined ? undefined : tunnelOf(dev)?.remote
        if (next === undefined) return undefined // delivered locally, or no route: not a loop
        if (path.includes(next)) return `IPv${family} ${src}→${dst} loops: ${[...path, next].join(" → ")}`
        path.push(next)
        at = next
      }
      return undefined
    })
  const pairs = ([4, 6] as const).flatMap((family) =>
    sites.flatMap((src) => sites.filter((dst) => dst !== src).map((dst) => follow(family, src, dst))),
  )
  return Effect.map(Effect.all(pairs, { concurrency: "unbounded" }), (found) =>
    found.filter((l): l is string => l !== undefined),
  )
}

/** Waits until the mesh has no violation; the error lists what was still wrong. */
export const waitHealthy = (twin: Twin, what: string, seconds: number, expect: MeshExpectation) =>
  Effect.gen(function* () {
    let last: ReadonlyArray<string> = []
    return yield* waitFor(
      what,
      seconds,
      Effect.map(meshViolations(twin, expect), (v) => {
        last = v
        return v.length === 0
      }),
    ).pipe(Effect.mapError((e) => new Error(`${e.message}\n  still: ${last.join("\n  still: ")}`)))
  })
