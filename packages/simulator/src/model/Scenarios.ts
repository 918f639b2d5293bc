/**
 * Scenario sets for the model simulator: random meshes (full and partial) with failures,
 * recoveries and latency steps, and the adversarial cases — near-equal paths under jitter (the
 * flap test), slowly oscillating latency, a link flapping every second, link-state messages
 * delayed by seconds. A scenario is plain data (a mesh with its timelines plus run settings);
 * `runScenario` pairs it with an engine configuration, so one scenario list runs side by side
 * under every configuration.
 */
import type { Family, LinkStateMessage } from "@net-perf/engine"
import {
  type EngineSettings,
  engineRouters,
  linkStateMessageBytes,
  linkStateMessageRoutes,
  needsBgpPaths,
} from "./EngineRouters.js"
import type { LinkEffect } from "./LinkTimeline.js"
import { type ModelLinkSpec, type ModelMesh, meshOf, randomMesh, withEffects, withEffectsEverywhere } from "./Mesh.js"
import { type ExchangeConfig, lookaheadMillis, type RunConfig, runModel, type SiteRestart } from "./ModelRun.js"
import { runScenarioOnThreads } from "./ModelThreads.js"
import { Prng } from "./Prng.js"
import type { ProbeModelConfig } from "./ProbeModel.js"
import type { RunReport } from "./Report.js"

export interface Scenario {
  readonly name: string
  readonly seed: number
  readonly mesh: ModelMesh
  readonly durationMillis: number
  readonly warmupMillis: number
  readonly exchange?: Partial<ExchangeConfig>
  readonly probe?: Partial<ProbeModelConfig>
  readonly decideIntervalMillis?: number
  readonly stretchSampleMillis?: number
  readonly restarts?: ReadonlyArray<SiteRestart>
}

/** The run configuration of a scenario under an engine configuration (what each worker of a two-thread run rebuilds). */
export const scenarioRunConfig = (
  scenario: Scenario,
  settings: EngineSettings,
  keepEventDetails = false,
): RunConfig<LinkStateMessage> => ({
  ...scenario,
  name: `${scenario.name} / ${settings.label}`,
  makeRouter: engineRouters(settings),
  describeMessage: linkStateMessageRoutes,
  // BIRD's paths are always there in a real site; the model computes them up to 60 sites (the
  // fallback chain then has them too) and beyond that only for the BGP algorithms themselves.
  bgpPaths: needsBgpPaths(settings) || scenario.mesh.sites <= 60,
  messageBytes: linkStateMessageBytes,
  keepEventDetails,
})

/**
 * Whether a scenario can run on two threads: a lookahead of ≥ 1 ms (link-state delay) and an
 * algorithm that does not send path probes through other sites' installed routes (measured-fastest
 * follows the kernel's routes hop by hop, i.e. another thread's table).
 */
export const threadsPossible = (scenario: Scenario, settings: EngineSettings): boolean =>
  lookaheadMillis(scenario.exchange) >= 1 && settings.algorithm !== "measured-fastest" && scenario.mesh.sites >= 2

/**
 * Runs a scenario under an engine configuration. `threads: 2` splits the sites over two worker
 * threads (`ModelThreads.ts`) when `threadsPossible`, else runs on one; the report is the same.
 */
export const runScenario = (
  scenario: Scenario,
  settings: EngineSettings,
  keepEventDetails = false,
  threads: 1 | 2 = 1,
): RunReport =>
  threads === 2 && threadsPossible(scenario, settings)
    ? runScenarioOnThreads(scenario, settings, keepEventDetails)
    : runModel(scenarioRunConfig(scenario, settings, keepEventDetails))

/**
 * Start-up excluded from the figures: the engine's start-up hold-down (link-state max age + 10 s
 * = 40 s by default), one dwell time (30 s) for first choices made on partial views, and margin.
 */
export const defaultWarmupMillis = 90_000

export interface RandomScenarioOptions {
  readonly sites: number
  readonly topology: "full" | "partial"
  readonly degree?: number
  readonly seed: number
  /** Measured time after warm-up. */
  readonly measuredMillis?: number
  readonly warmupMillis?: number
  readonly hardFailures?: number
  /** A failed tunnel recovers after a uniform delay in [min, max) ms (default 30–90 s). */
  readonly recoveryAfterMillis?: readonly [number, number]
  readonly latencySteps?: number
  /** Small latency random walk on every link (σ per second, bound). */
  readonly randomWalk?: { readonly sigmaMs: number; readonly maxDeviationMs: number } | false
  readonly families?: ReadonlyArray<Family>
  readonly exchange?: Partial<ExchangeConfig>
  readonly decideIntervalMillis?: number
  readonly stretchSampleMillis?: number
  /** Daemon restarts at random sites and instants after warm-up (engine state lost). */
  readonly siteRestarts?: number
  /** Downtime of a restart, uniform in [min, max) ms (default 2–10 s). */
  readonly restartDownMillis?: readonly [number, number]
}

const tunnelPairs = (mesh: ModelMesh): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  mesh.neighbours.forEach((ns, a) => {
    for (const b of ns) if (a < b) out.push([a, b])
  })
  return out
}

/**
 * A random mesh with `hardFailures` tunnel failures (half cut the whole pair, both families; half
 * one family only, which tunnel choice must handle) recovering 30–90 s later, and `latencySteps`
 * latency steps (×0.5 … ×3) on random links, all at random instants after warm-up.
 */
export const randomScenario = (o: RandomScenarioOptions): Scenario => {
  const warmup = o.warmupMillis ?? defaultWarmupMillis
  const measured = o.measuredMillis ?? 600_000
  const end = warmup + measured
  let mesh = randomMesh(
    {
      sites: o.sites,
      topology: o.topology,
      ...(o.degree === undefined ? {} : { degree: o.degree }),
      families: o.families ?? [4, 6],
    },
    o.seed,
  )
  const prng = Prng.derive(o.seed, "events")
  const pairs = tunnelPairs(mesh)
  // Events fall in the first two thirds of the measured window, so most can settle before the end.
  const at = () => Math.floor(warmup + 2_000 + prng.next() * Math.max(1, (2 * measured) / 3 - 2_000))
  const [recoverMin, recoverMax] = o.recoveryAfterMillis ?? [30_000, 90_000]
  for (let i = 0; i < (o.hardFailures ?? 0) && pairs.length > 0; i++) {
    const [a, b] = pairs[prng.int(pairs.length)]!
    const down = at()
    const up = down + recoverMin + prng.int(Math.max(1, recoverMax - recoverMin))
    const family: Family | "both" = prng.chance(0.5) ? "both" : (mesh.families[prng.int(mesh.families.length)] ?? 4)
    mesh = withEffects(mesh, a, b, family, [
      { kind: "failure", atMillis: down },
      { kind: "recovery", atMillis: up },
    ])
  }
  for (let i = 0; i < (o.latencySteps ?? 0) && pairs.length > 0; i++) {
    const [a, b] = pairs[prng.int(pairs.length)]!
    const link = mesh.links.find((l) => l.from === a && l.to === b)!
    const factor = [0.5, 1.5, 2, 3][prng.int(4)]!
    mesh = withEffects(mesh, a, b, "both", [
      { kind: "step", atMillis: at(), latencyMs: link.timeline.base.latencyMs * factor },
    ])
  }
  const walk = o.randomWalk ?? { sigmaMs: 0.05, maxDeviationMs: 0.5 }
  if (walk !== false) mesh = withEffectsEverywhere(mesh, [{ kind: "random-walk", stepMillis: 1000, ...walk }])
  // Own stream, so adding restarts leaves every other draw of a seed as it was.
  const prngRestarts = Prng.derive(o.seed, "restarts")
  const [downMin, downMax] = o.restartDownMillis ?? [2_000, 10_000]
  const restarts: SiteRestart[] = []
  for (let i = 0; i < (o.siteRestarts ?? 0); i++) {
    const site = prngRestarts.int(o.sites)
    const atMillis = Math.floor(warmup + 2_000 + prngRestarts.next() * Math.max(1, (2 * measured) / 3 - 2_000))
    restarts.push({ site, atMillis, downMillis: downMin + prngRestarts.int(Math.max(1, downMax - downMin)) })
  }
  return {
    name: `random ${o.topology} N=${o.sites} seed=${o.seed}`,
    seed: o.seed,
    mesh,
    durationMillis: end,
    warmupMillis: warmup,
    ...(o.exchange === undefined ? {} : { exchange: o.exchange }),
    ...(o.decideIntervalMillis === undefined ? {} : { decideIntervalMillis: o.decideIntervalMillis }),
    ...(o.stretchSampleMillis === undefined ? {} : { stretchSampleMillis: o.stretchSampleMillis }),
    ...(restarts.length === 0 ? {} : { restarts }),
  }
}

const link = (
  from: number,
  to: number,
  family: Family,
  latencyMs: number,
  jitterMs: number,
  effects: LinkEffect[] = [],
): ModelLinkSpec => ({
  from,
  to,
  family,
  timeline: { base: { latencyMs, jitterMs, lossRatio: 0 }, effects },
})

/** Both directions of a tunnel with the same profile. */
const both = (
  a: number,
  b: number,
  family: Family,
  latencyMs: number,
  jitterMs: number,
  effects: LinkEffect[] = [],
) => [link(a, b, family, latencyMs, jitterMs, effects), link(b, a, family, latencyMs, jitterMs, effects)]

/**
 * Flap test: a full mesh where every link costs ≈10 ms except a random set of "long" pairs whose
 * direct tunnel costs ≈20 ms, so each long pair has the direct tunnel and N−2 two-hop relays all
 * within a fraction of a millisecond of each other, with 1 ms jitter and a small random walk. Any
 * route switch after warm-up is a flap; the goal is none.
 */
export const nearEqualPathsScenario = (seed: number, sites = 10, measuredMillis = 600_000): Scenario => {
  const prng = Prng.derive(seed, "near-equal")
  const links: ModelLinkSpec[] = []
  const walk: LinkEffect = { kind: "random-walk", stepMillis: 1000, sigmaMs: 0.05, maxDeviationMs: 0.3 }
  for (let a = 0; a < sites; a++)
    for (let b = a + 1; b < sites; b++) {
      const long = prng.chance(0.3)
      for (const family of [4, 6] as const) {
        const lat = (long ? 20 : 10) + prng.between(-0.2, 0.2)
        links.push(...both(a, b, family, lat, 1, [walk]))
      }
    }
  return {
    name: `near-equal paths N=${sites} seed=${seed}`,
    seed,
    mesh: meshOf(sites, [4, 6], links),
    durationMillis: defaultWarmupMillis + measuredMillis,
    warmupMillis: defaultWarmupMillis,
  }
}

/**
 * Slow oscillation: a random full mesh where a third of the tunnels swing ±40 % of their latency
 * with periods of 4–10 minutes, so best paths cross over slowly and repeatedly.
 */
export const slowOscillationScenario = (seed: number, sites = 12, measuredMillis = 1_200_000): Scenario => {
  let mesh = randomMesh({ sites, topology: "full" }, seed)
  const prng = Prng.derive(seed, "oscillation")
  for (const [a, b] of tunnelPairs(mesh)) {
    if (!prng.chance(1 / 3)) continue
    const base = mesh.links.find((l) => l.from === a && l.to === b)!.timeline.base.latencyMs
    mesh = withEffects(mesh, a, b, "both", [
      {
        kind: "diurnal",
        periodMillis: 240_000 + prng.int(360_000),
        amplitudeMs: 0.4 * base,
        phaseMillis: prng.int(600_000),
      },
    ])
  }
  return {
    name: `slow oscillation N=${sites} seed=${seed}`,
    seed,
    mesh,
    durationMillis: defaultWarmupMillis + measuredMillis,
    warmupMillis: defaultWarmupMillis,
  }
}

/**
 * A link flapping every second: the fastest tunnel of the mesh (both families) goes down for
 * 500 ms of every second for five minutes, then stays up.
 */
export const flappingLinkScenario = (seed: number, sites = 10, measuredMillis = 600_000): Scenario => {
  let mesh = randomMesh({ sites, topology: "full" }, seed)
  const fastest = [...mesh.links].sort((x, y) => x.timeline.base.latencyMs - y.timeline.base.latencyMs)[0]!
  const from = defaultWarmupMillis + 30_000
  mesh = withEffects(mesh, fastest.from, fastest.to, "both", [
    { kind: "flapping", fromMillis: from, untilMillis: from + 300_000, periodMillis: 1000, downMillis: 500 },
  ])
  return {
    name: `link flapping every second N=${sites} seed=${seed}`,
    seed,
    mesh,
    durationMillis: defaultWarmupMillis + measuredMillis,
    warmupMillis: defaultWarmupMillis,
  }
}

/**
 * Link-state messages delayed by seconds (3 s ± 2 s, so they also arrive out of order, and 10 %
 * are lost) while tunnels fail and recover: stale views everywhere, the loop-freedom stress case.
 */
export const delayedLinkStateScenario = (seed: number, sites = 20, measuredMillis = 600_000): Scenario => ({
  ...randomScenario({ sites, topology: "partial", degree: 5, seed, measuredMillis, hardFailures: 8, latencySteps: 4 }),
  name: `link state delayed 1-5 s N=${sites} seed=${seed}`,
  // Direct: each message is late once (relayed copies would add up the delay per hop).
  exchange: { delayMillis: 1000, delayJitterMillis: 4000, lossRatio: 0.1, relay: "direct" },
})

/**
 * A small random scenario for property tests: random size, topology, failures, steps and
 * exchange impairments, short measured time. Everything derives from the seed. The warm-up must
 * cover the engines' start-up hold-down (30 s by default; the loop-freedom bench shortens both).
 */
export const randomSmallScenario = (seed: number, measuredMillis = 60_000, warmupMillis = 40_000): Scenario => {
  const prng = Prng.derive(seed, "small")
  const sites = 4 + prng.int(7)
  const base = randomScenario({
    sites,
    topology: prng.chance(0.5) ? "full" : "partial",
    degree: 2 + prng.int(3),
    seed,
    measuredMillis,
    warmupMillis,
    hardFailures: prng.int(5),
    recoveryAfterMillis: [Math.min(30_000, measuredMillis / 4), Math.min(90_000, measuredMillis / 2)],
    latencySteps: prng.int(3),
    siteRestarts: Prng.derive(seed, "small-restarts").chance(0.5) ? 1 : 0,
    restartDownMillis: [500, 5_000],
  })
  const impaired = prng.chance(0.5)
  return {
    ...base,
    name: `small random seed=${seed}`,
    ...(impaired
      ? { exchange: { delayMillis: prng.int(2000), delayJitterMillis: prng.int(3000), lossRatio: prng.next() * 0.3 } }
      : {}),
    stretchSampleMillis: 5_000,
  }
}
