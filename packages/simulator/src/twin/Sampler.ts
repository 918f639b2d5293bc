/**
 * Observing a running twin: every site's IPv4 routing table (`ip -json route`, dumped by a small
 * shell loop inside the site on each `ip monitor` event, so Node spawns one process per site),
 * and overlay RTT between watched pairs (one long-lived `ping -n -O -D` per pair, parsed line
 * by line). Both stop with their scope. Only the next hop towards each site's overlay prefix
 * matters: it is read from the tunnel interface name, which names the neighbour.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { parseTunnelName } from "@net-perf/engine"
import { Effect, Schema, type Scope } from "effect"
import { type ForwardingSnapshot, snapshotOf } from "../analysis/NextHopGraph.js"
import { routerV4, siteOfOverlayV4 } from "./Addressing.js"
import { inNs } from "./Exec.js"

const Nexthop = Schema.Struct({ dev: Schema.optional(Schema.String) })
const KernelRoute = Schema.Struct({
  dst: Schema.String,
  metric: Schema.optional(Schema.Number),
  protocol: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  dev: Schema.optional(Schema.String),
  nexthops: Schema.optional(Schema.Array(Nexthop)),
})
const RouteTable = Schema.Array(KernelRoute)
const decodeTable = Schema.decodeUnknownEither(Schema.parseJson(RouteTable))

/** Protocol label of the daemon's managed routes. */
export const managedRouteProtocol = "201"

export interface SiteRoutes {
  /** Next hop site per destination site (the route the kernel uses: lowest metric). */
  readonly nextHops: Map<number, number>
  /** Destinations whose winning route is a managed (protocol 201) one. */
  readonly managed: Set<number>
}

/**
 * Next hops per destination site from one `ip -json route` dump (first nexthop of multipath).
 * With the daemon running a prefix has two routes (the daemon's, metric 20, and BIRD's): the
 * kernel forwards by the lowest metric, and so does this.
 */
export const routesFromDump = (jsonLine: string): SiteRoutes | undefined => {
  const table = decodeTable(jsonLine)
  if (table._tag === "Left") return undefined
  const best = new Map<number, { metric: number; via: number | undefined; managed: boolean }>()
  for (const r of table.right) {
    const dst = siteOfOverlayV4(r.dst)
    if (dst === undefined) continue
    const metric = r.metric ?? 0
    const prev = best.get(dst)
    if (prev !== undefined && prev.metric <= metric) continue
    const dev = r.dev ?? r.nexthops?.[0]?.dev
    const tunnel = dev === undefined ? undefined : parseTunnelName(dev)
    best.set(dst, { metric, via: tunnel?.remote, managed: String(r.protocol) === managedRouteProtocol })
  }
  const nextHops = new Map<number, number>()
  const managed = new Set<number>()
  for (const [dst, b] of best) {
    if (b.via !== undefined) nextHops.set(dst, b.via)
    if (b.managed) managed.add(dst)
  }
  return { nextHops, managed }
}

/** Next hop site per destination site from one `ip -json route` dump. */
export const nextHopsFromRoutes = (jsonLine: string): Map<number, number> | undefined =>
  routesFromDump(jsonLine)?.nextHops

/** Signals the child's whole process group (a shell pipeline's members outlive a signal to the shell alone). */
const signalGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

const killChild = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      signalGroup(child, "SIGKILL")
      return resume(Effect.void)
    }
    const t = setTimeout(() => signalGroup(child, "SIGKILL"), 2000)
    child.once("exit", () => {
      clearTimeout(t)
      signalGroup(child, "SIGKILL")
      resume(Effect.void)
    })
    signalGroup(child, "SIGTERM")
  })

const spawnLines = (argv: ReadonlyArray<string>, onLine: (line: string, atMillis: number) => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // Its own process group, so that killChild reaches every process of the pipeline.
      const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"], detached: true })
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => onLine(line, Date.now()))
      child.on("error", () => {})
      return child
    }),
    killChild,
  )

export interface RouteSampler {
  /** The latest table of every site combined into one snapshot, stamped now. */
  readonly snapshot: (atMillis: number) => ForwardingSnapshot
  /**
   * Every site's table as it was at `atMillis` by the watchers' stamps (a dump reaches Node
   * after its stamp: build a run's snapshots once the run is over, not live).
   */
  readonly snapshotAt: (atMillis: number) => ForwardingSnapshot
  /** Sites that have reported at least one table. */
  readonly reporting: () => number
  /** Destinations a site currently reaches by a managed (protocol 201) route. */
  readonly managed: (site: number) => number
}

/**
 * One site's table watcher, run by bash inside the site: a dump at start, then a dump after each
 * burst of `ip monitor route` events (events within 5 ms coalesced: an install of many routes is
 * one dump) and at least every `refreshSeconds` (the safety net if an event were missed). A quiet
 * twin spawns one `ip` per site per `refreshSeconds` instead of one per sample (six sites at 4 Hz
 * were 24 processes a second beside the daemons being measured).
 *
 * Each dump is preceded by its stamp: `@T<local time>`, the time `ip -ts monitor` printed the
 * last event the dump follows (it waits in the kernel's netlink socket, so it prints as the route
 * changes), or `@E<epoch seconds>` for a refresh. Dating a dump when it reached Node instead
 * was up to 0.3 s late at load 8–10 (a daemon logged its install at 49.845, the dump said
 * 50.158), and dating it when bash read the event still carried bash's own scheduling delay. A
 * dump that a later event overtook (one came while it ran) is not emitted: it may or may not
 * hold that change; the watcher dumps again, dated by the later event.
 */
export const routeWatchScript = (refreshSeconds: number): string =>
  [
    // The monitor starts first (its side of the pipe); the first dump waits 50 ms so that a change
    // right after it is an event, not only the next refresh (the consumer starts reading at once).
    // LC_ALL=C: EPOCHREALTIME's decimal point follows the locale.
    "export LC_ALL=C",
    // Reads a burst of events (5 ms coalesced); `at` = the last stamped line's time (a multipath
    // route's nexthop lines carry none).
    "take() {",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    '  case "$1" in "["*) stamp=${1%%]*}; at="T${stamp#[}" ;; esac',
    "  while IFS= read -r -t 0.005 next; do",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
    '    case "$next" in "["*) stamp=${next%%]*}; at="T${stamp#[}" ;; esac',
    "  done",
    "}",
    // The monitor under SCHED_FIFO where allowed (root): it sleeps in the kernel until a route
    // changes and stamps the event when it wakes, so its stamp is what must not wait for a CPU.
    'if chrt -f 5 true 2>/dev/null; then rt="chrt -f 5"; else rt=""; fi',
    "$rt ip -ts -4 monitor route | {",
    "  sleep 0.05",
    '  at="E$EPOCHREALTIME"',
    "  while :; do",
    "    out=$(ip -json -4 route show) || exit 1",
    "    if IFS= read -r -t 0; then",
    "      IFS= read -r line",
    '      take "$line"',
    "      continue",
    "    fi",
    `    printf '@%s\\n%s\\n' "$at" "$out"`,
    `    if IFS= read -r -t ${refreshSeconds} line; then`,
    '      take "$line"',
    "    elif [ $? -le 128 ]; then exit 1",
    '    else at="E$EPOCHREALTIME"',
    "    fi",
    "  done",
    "}",
  ].join("\n")

/**
 * The watcher's stamp line → epoch ms: `@E1795761288.152345` (epoch seconds) or
 * `@T2026-11-27T06:39:04.773223` (`ip -ts`: local time, as JavaScript reads a date-time without
 * an offset); undefined for any other line.
 */
export const parseWatchStamp = (line: string): number | undefined => {
  if (/^@E\d+(?:\.\d+)?$/.test(line)) return Math.round(Number(line.slice(2)) * 1000)
  const local = /^@T(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?$/.exec(line)
  if (local === null) return undefined
  const wholeSeconds = new Date(local[1] as string).getTime()
  if (Number.isNaN(wholeSeconds)) return undefined
  const fraction = local[2] === undefined ? 0 : Number(`0.${local[2]}`)
  return Math.round(wholeSeconds + fraction * 1000)
}

/**
 * Starts one table watcher per site (routeWatchScript); `onChange` is called with the stamp of
 * each dump that changed a site's next hops (`snapshotAt` that instant, once the run is over).
 */
export const startRouteSampler = (
  sites: ReadonlyArray<number>,
  nsOf: (site: number) => string,
  options: { readonly refreshSeconds?: number; readonly onChange?: (atMillis: number) => void } = {},
): Effect.Effect<RouteSampler, never, Scope.Scope> =>
  Effect.gen(function* () {
    /** Each site's next hops from each stamp on (stamps made non-decreasing per site); the last is the latest. */
    const history = new Map<number, Array<{ readonly atMillis: number; readonly nextHops: Map<number, number> }>>()
    const managed = new Map<number, number>()
    const script = routeWatchScript(options.refreshSeconds ?? 1)
    yield* Effect.forEach(
      sites,
      (site) => {
        let stampedAt: number | undefined
        return spawnLines(inNs(nsOf(site), ["bash", "-c", script]), (line, arrivedAtMillis) => {
          const stamp = parseWatchStamp(line)
          if (stamp !== undefined) {
            stampedAt = stamp
            return
          }
          const routes = routesFromDump(line)
          // The dump's own stamp (a line without one, an older watcher's: its arrival).
          const atMillis = stampedAt ?? arrivedAtMillis
          stampedAt = undefined
          if (routes === undefined) return
          managed.set(site, routes.managed.size)
          const past = history.get(site) ?? []
          const before = past.at(-1)
          if (before !== undefined && sameNextHops(before.nextHops, routes.nextHops)) return
          const at = Math.max(atMillis, before?.atMillis ?? Number.NEGATIVE_INFINITY)
          past.push({ atMillis: at, nextHops: routes.nextHops })
          history.set(site, past)
          options.onChange?.(at)
        })
      },
      { discard: true },
    )
    const stateAt = (site: number, atMillis: number): Map<number, number> => {
      const past = history.get(site) ?? []
      // The last entry stamped at or before atMillis (binary search: entries are in stamp order).
      let lo = 0
      let hi = past.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (past[mid]!.atMillis <= atMillis) lo = mid + 1
        else hi = mid
      }
      return lo === 0 ? new Map() : past[lo - 1]!.nextHops
    }
    const snapshotFrom = (atMillis: number, tableOf: (site: number) => ReadonlyMap<number, number>) =>
      snapshotOf(
        atMillis,
        sites,
        sites.flatMap((src) => [...tableOf(src)].map(([dst, via]) => [src, dst, via] as const)),
      )
    return {
      snapshotAt: (atMillis) => snapshotFrom(atMillis, (site) => stateAt(site, atMillis)),
      snapshot: (atMillis) => snapshotFrom(atMillis, (site) => history.get(site)?.at(-1)?.nextHops ?? new Map()),
      reporting: () => history.size,
      managed: (site) => managed.get(site) ?? 0,
    }
  })

const sameNextHops = (a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean => {
  if (a.size !== b.size) return false
  for (const [dst, via] of a) if (b.get(dst) !== via) return false
  return true
}

export interface RttSampleLine {
  readonly atMillis: number
  readonly seq: number
  readonly rttMs: number | null
}

const replyPattern = /^\[(\d+\.\d+)\] .*icmp_seq=(\d+).* time=([\d.]+) ms/
const lostPattern = /^\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)/

/** Parses one line of `ping -n -O -D`; undefined for lines that are neither a reply nor a loss. */
export const parsePingLine = (line: string): RttSampleLine | undefined => {
  const r = replyPattern.exec(line)
  if (r !== null) return { atMillis: Math.round(Number(r[1]) * 1000), seq: Number(r[2]), rttMs: Number(r[3]) }
  const l = lostPattern.exec(line)
  if (l !== null) return { atMillis: Math.round(Number(l[1]) * 1000), seq: Number(l[2]), rttMs: null }
  return undefined
}

/**
 * Pings b's router address from a's, every `intervalMs`; samples accumulate in the returned
 * array, one per sequence number. `-O` reports a probe as unanswered when the next one is sent;
 * a reply that still arrives later replaces that entry, so only real losses stay null.
 */
export const startPinger = (
  a: number,
  b: number,
  nsOf: (site: number) => string,
  intervalMs: number,
): Effect.Effect<ReadonlyArray<RttSampleLine>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const samples: RttSampleLine[] = []
    const indexOfSeq = new Map<number, number>()
    yield* spawnLines(
      inNs(nsOf(a), [
        "ping",
        "-n",
        "-O",
        "-D",
        "-W",
        "1",
        "-i",
        String(intervalMs / 1000),
        "-I",
        routerV4(a),
        routerV4(b),
      ]),
      (line) => {
        const s = parsePingLine(line)
        if (s === undefined) return
        const i = indexOfSeq.get(s.seq)
        if (i === undefined) {
          indexOfSeq.set(s.seq, samples.length)
          samples.push(s)
        } else if (s.rttMs !== null) samples[i] = { ...(samples[i] as RttSampleLine), rttMs: s.rttMs }
      },
    )
    return samples
  })
