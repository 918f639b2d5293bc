/**
 * Runs a scenario on a fresh twin: bring-up, wait for the initial convergence (t0), play the
 * timeline of events while sampling routes and RTT, then build the report. The twin is torn
 * down when the run's scope closes, whether the run finished, failed or was interrupted.
 */
import type { Family } from "@net-perf/engine"
import { Duration, Effect, Schedule, type Scope } from "effect"
import type { ForwardingSnapshot } from "../analysis/NextHopGraph.js"
import { isFullyDelivering, sameForwarding } from "../analysis/NextHopGraph.js"
import { allPairs } from "./Addressing.js"
import { startTwinMetricsStore, twinMetricsStoreOf } from "./MetricsStore.js"
import { type AppliedEvent, buildReport, type ImpairmentState, type TwinReport } from "./Report.js"
import { startPinger, startRouteSampler } from "./Sampler.js"
import {
  type Impairment,
  parseLinkSelector,
  routingOf,
  type Scenario,
  type ScenarioEvent,
  watchedPairs,
} from "./Scenario.js"
import { baseImpairment, makeTwin, type Twin, type TwinError, TwinOperationFailed, type TwinOptions } from "./Twin.js"

export const eventLabel = (e: ScenarioEvent): string => {
  switch (e.action) {
    case "kill-bird":
    case "restart-bird":
    case "kill-daemon":
    case "stop-daemon":
    case "restart-daemon":
      return `${e.action} site ${e.site}`
    case "stop-metrics-store":
    case "start-metrics-store":
      return e.action
    case "link-down":
    case "link-up":
      return `${e.action} ${e.link}${e.family === undefined ? "" : ` v${e.family}`}`
    case "set-impairment": {
      const { at: _a, action: _b, link, family, ...fields } = e
      return `impair ${link}${family === undefined ? "" : ` v${family}`} ${Object.entries(fields)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ")}`
    }
  }
}

const initialState = (s: Scenario): Map<string, Map<Family, Impairment>> => {
  const m = new Map<string, Map<Family, Impairment>>()
  for (const [a, b] of allPairs(s.sites))
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      const byFamily = new Map<Family, Impairment>()
      for (const f of s.families) byFamily.set(f, baseImpairment(s, x, y, f))
      m.set(`${x}>${y}`, byFamily)
    }
  return m
}

const cloneState = (m: ReadonlyMap<string, ReadonlyMap<Family, Impairment>>): Map<string, Map<Family, Impairment>> =>
  new Map([...m].map(([k, v]) => [k, new Map(v)]))

const patchState = (
  m: Map<string, Map<Family, Impairment>>,
  link: string,
  family: Family | undefined,
  patch: Impairment,
) => {
  const { a, b, bothWays } = parseLinkSelector(link)
  for (const key of bothWays ? [`${a}>${b}`, `${b}>${a}`] : [`${a}>${b}`]) {
    const byFamily = m.get(key)
    if (byFamily === undefined) continue
    for (const [f, i] of byFamily) if (family === undefined || f === family) byFamily.set(f, { ...i, ...patch })
  }
}

/** BGP sessions of a site that can be Established at start: tunnels whose link is not down. */
const expectedSessionsOf = (s: Scenario, site: number): number => {
  let n = 0
  for (let peer = 0; peer < s.sites; peer++)
    for (const f of s.families)
      if (peer !== site && !baseImpairment(s, site, peer, f).down && !baseImpairment(s, peer, site, f).down) n++
  return n
}

/** Applies one event; resolves to a note when the event had nothing to act on. */
const applyEvent = (twin: Twin, e: ScenarioEvent): Effect.Effect<string | undefined, TwinOperationFailed> =>
  "site" in e && e.action.endsWith("-daemon") && !twin.daemons.has(e.site)
    ? Effect.succeed(`no daemon at site ${e.site}: it runs plain BIRD`)
    : Effect.as(applyEventNow(twin, e), undefined)

const applyEventNow = (twin: Twin, e: ScenarioEvent): Effect.Effect<void, TwinOperationFailed> => {
  switch (e.action) {
    case "kill-daemon":
      return twin.killDaemon(e.site)
    case "stop-daemon":
      return twin.stopDaemon(e.site)
    case "restart-daemon":
      return twin.restartDaemon(e.site)
    case "kill-bird":
      return twin.killBird(e.site)
    case "restart-bird":
      return twin.startBird(e.site)
    case "stop-metrics-store":
    case "start-metrics-store": {
      const store = twinMetricsStoreOf(twin)
      if (store === undefined)
        return Effect.fail(
          new TwinOperationFailed({ operation: e.action, cause: "no metrics store running in this twin" }),
        )
      return e.action === "stop-metrics-store"
        ? store.stop
        : store.start.pipe(Effect.mapError((cause) => new TwinOperationFailed({ operation: e.action, cause })))
    }
    case "link-down":
      return twin.impair(e.link, { down: true }, e.family)
    case "link-up":
      return twin.impair(e.link, { down: false }, e.family)
    case "set-impairment": {
      const { at: _a, action: _b, link, family, ...fields } = e
      return twin.impair(link, fields, family)
    }
  }
}

const impairmentOf = (e: ScenarioEvent): Impairment | undefined => {
  switch (e.action) {
    case "link-down":
      return { down: true }
    case "link-up":
      return { down: false }
    case "set-impairment": {
      const { at: _a, action: _b, link: _l, family: _f, ...fields } = e
      return fields
    }
    default:
      return undefined
  }
}

export interface RunOptions extends Omit<TwinOptions, "scenario" | "keep"> {
  /** Ping interval of watched pairs. */
  readonly pingIntervalMs?: number
}

/** Plays `scenario` on a twin made for the run and returns its report. */
export const runScenario = (scenario: Scenario, options: RunOptions = {}): Effect.Effect<TwinReport, TwinError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const twin = yield* makeTwin({ ...options, scenario })
      return yield* runOnTwin(twin, options)
    }),
  )

/** Plays the twin's scenario on an already running twin (within the caller's scope). */
export const runOnTwin = (twin: Twin, options: RunOptions = {}): Effect.Effect<TwinReport, never, Scope.Scope> =>
  Effect.gen(function* () {
    const s = twin.scenario
    const progress = options.onProgress ?? (() => {})
    const sites = Array.from({ length: s.sites }, (_, i) => i)
    // The scenario's metrics store (MetricsStore.ts), in the run's scope; the daemons already use
    // its URL and report it down until it answers.
    if (s.metricsStore !== undefined) {
      const store = yield* Effect.either(startTwinMetricsStore(twin))
      progress(
        store._tag === "Right"
          ? `metrics store: prometheus at ${store.right.url}, scraping every daemon site each second`
          : `metrics store NOT started (daemons route on link state only): ${store.left.message}`,
      )
    }
    // Snapshot instants: every table change (dated by `ip -ts monitor`'s stamp of the kernel event
    // the site's dump follows, see routeWatchScript) and `sampleHz` ones between. The snapshots are built when the run is over,
    // from each site's stamped history: a dump reaches us after its stamp, so one taken live
    // would show a site's old table at instants after its change.
    const sampleTimes: number[] = []
    const sampler = yield* startRouteSampler(sites, twin.siteNs, {
      onChange: (atMillis) => {
        sampleTimes.push(atMillis)
      },
    })
    const periodMs = Math.round(1000 / s.sampleHz)
    yield* Effect.sync(() => {
      sampleTimes.push(Date.now())
    }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(periodMs))), Effect.forkScoped)

    // t0: every BGP session that can come up is Established, every site reaches every other
    // site, and forwarding has not changed for two seconds (or the settle timeout passed).
    const settleStart = Date.now()
    const settleDeadline = settleStart + s.settleTimeoutSeconds * 1000
    const expectedSessions = sites.map((x) => expectedSessionsOf(s, x))
    const daemonSites = [...twin.daemons.keys()]
    let initialConvergenceMs: number | null = null
    let stableSince: { at: number; snap: ForwardingSnapshot } | undefined
    let lastSessionCheck = 0
    let sessionsUp = false
    while (Date.now() < settleDeadline) {
      const now = Date.now()
      const snap = sampler.snapshot(now)
      if (stableSince === undefined || !sameForwarding(stableSince.snap, snap)) stableSince = { at: now, snap }
      if (!sessionsUp && now - lastSessionCheck >= 1000) {
        lastSessionCheck = now
        const counts = yield* Effect.forEach(
          sites,
          (x) =>
            twin.birdc(x, "show protocols").pipe(
              Effect.map((out) => (out.match(/Established/g) ?? []).length),
              Effect.orElseSucceed(() => -1),
            ),
          { concurrency: 4 },
        )
        sessionsUp = counts.every((c, i) => c >= (expectedSessions[i] as number))
      }
      // A daemon site has converged when its managed routes reach every other site (after its
      // start-up hold-down); until then BIRD's routes forward.
      const daemonsReady = daemonSites.every((x) => sampler.managed(x) >= s.sites - 1)
      if (
        sessionsUp &&
        daemonsReady &&
        sampler.reporting() === s.sites &&
        isFullyDelivering(snap) &&
        now - stableSince.at >= 2000
      ) {
        initialConvergenceMs = stableSince.at - settleStart
        break
      }
      yield* Effect.sleep(Duration.millis(periodMs))
    }
    progress(
      initialConvergenceMs === null
        ? `initial convergence NOT reached within ${s.settleTimeoutSeconds} s; starting the timeline anyway`
        : `initial convergence after ${(initialConvergenceMs / 1000).toFixed(1)} s (every site reaches every site${daemonSites.length > 0 ? ", daemons' routes installed" : ""})`,
    )

    const pingers = yield* Effect.forEach(watchedPairs(s), ([a, b]) =>
      startPinger(a, b, twin.siteNs, options.pingIntervalMs ?? 200).pipe(Effect.map((samples) => ({ a, b, samples }))),
    )
    const t0 = Date.now()
    const initialImpairments = initialState(s)
    let current = cloneState(initialImpairments)
    const applied: AppliedEvent[] = []
    const events = [...s.events].sort((x, y) => x.at - y.at)
    for (const e of events) {
      const wait = t0 + e.at * 1000 - Date.now()
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
      const appliedAtMillis = Date.now()
      const label = eventLabel(e)
      const result = yield* Effect.either(applyEvent(twin, e))
      const note = result._tag === "Right" ? result.right : undefined
      const patch = impairmentOf(e)
      if (patch !== undefined && result._tag === "Right" && "link" in e) {
        current = cloneState(current)
        patchState(current, e.link, e.family, patch)
      }
      progress(
        `t=${e.at}s ${label}${result._tag === "Left" ? `: FAILED ${result.left.message}` : note === undefined ? "" : ` (${note})`}`,
      )
      applied.push({
        label,
        atSeconds: e.at,
        appliedAtMillis,
        impairmentsAfter: current as ImpairmentState,
        ...(result._tag === "Left" ? { error: result.left.message } : {}),
        ...(note === undefined ? {} : { note }),
      })
    }
    const endWait = t0 + s.durationSeconds * 1000 - Date.now()
    if (endWait > 0) yield* Effect.sleep(Duration.millis(endWait))
    const endMillis = Date.now()
    sampleTimes.push(endMillis)
    const snapshots = sampleTimes.sort((a, b) => a - b).map((at) => sampler.snapshotAt(at))
    const modes = new Set(sites.map((x) => routingOf(s, x)))
    return buildReport({
      scenario: s.name,
      routing: modes.size === 1 ? ([...modes][0] as string) : "mixed",
      prefix: twin.prefix,
      sites: s.sites,
      backends: { ...twin.backends },
      bird: { ...s.bird },
      bringUpMs: twin.bringUpMs,
      initialConvergenceMs,
      t0Millis: t0,
      endMillis,
      initialImpairments,
      events: applied,
      snapshots: [...snapshots],
      rtt: pingers.map((p) => ({ a: p.a, b: p.b, samples: [...p.samples] })),
    })
  })
