/**
 * The engine configurations a model run compares, as factories of the engine's own NodeRouter:
 * the algorithms with default stability, the same with stability switched off, and the legacy
 * row (the original's cost model with no hysteresis). Every routing decision in a model run comes
 * from these routers; this module only chooses their settings.
 */
import {
  type AlgorithmName,
  encodeLinkStateMessage,
  type LinkStateMessage,
  NodeRouter,
  type NodeRouterConfigInput,
  type StabilityConfig,
} from "@net-perf/engine"
import type { MessageRoutes, SiteRouter } from "./ModelRun.js"

export interface EngineSettings {
  /** Row label in reports. */
  readonly label: string
  readonly algorithm: AlgorithmName
  /** "default" = the engine's documented margins; "none" = switch on any gain, no dwell. */
  readonly stability: "default" | "none" | Partial<StabilityConfig>
  readonly costModel: "default" | "legacy"
  /** Anything else for NodeRouter.make (aggregation, hold-down, …). */
  readonly extra?: Partial<Omit<NodeRouterConfigInput, "self">>
  /**
   * Start-up hold-down of an engine that replaces one lost in a restart. Default: the engine's
   * own default (link-state max age + 10 s), whatever `extra` sets for the cold start of the
   * whole mesh — a shortened hold-down is safe only when nobody remembers an earlier life.
   */
  readonly restartHoldDownMillis?: number
}

export const noHysteresis: StabilityConfig = { absoluteMarginMs: 0, relativeMargin: 0, noiseFactor: 0, dwellMillis: 0 }

export const defaultEngineSettings: EngineSettings = {
  label: "graph-least-cost",
  algorithm: "graph-least-cost",
  stability: "default",
  costModel: "default",
}

/** The original's behaviour: legacy cost formula (REFERENCE §5, defect fixed), no hysteresis or dwell. */
export const legacyEngineSettings: EngineSettings = {
  label: "legacy (cost §5, no hysteresis)",
  algorithm: "graph-least-cost",
  stability: "none",
  costModel: "legacy",
}

export const engineConfigInput = (settings: EngineSettings, self: number, restarted = false): NodeRouterConfigInput => {
  const stability =
    settings.stability === "default" ? undefined : settings.stability === "none" ? noHysteresis : settings.stability
  const { startupHoldDownMillis, ...extra } = settings.extra ?? {}
  const holdDown = restarted ? settings.restartHoldDownMillis : startupHoldDownMillis
  return {
    self,
    algorithm: settings.algorithm,
    ...(stability === undefined ? {} : { stability, tunnelStability: stability }),
    ...(settings.costModel === "legacy" ? { costModel: "legacy" as const } : {}),
    ...extra,
    ...(holdDown === undefined ? {} : { startupHoldDownMillis: holdDown }),
  } as NodeRouterConfigInput
}

/** A factory for `RunConfig.makeRouter`. */
export const engineRouters =
  (settings: EngineSettings) =>
  (self: number, restarted = false): SiteRouter<LinkStateMessage> =>
    NodeRouter.make(engineConfigInput(settings, self, restarted))

/** The routes of a link-state message, for the simulator's wake-ups. */
export const linkStateMessageRoutes = (message: LinkStateMessage): MessageRoutes => ({
  // The distance entries themselves (a retraction's null distance means no next hop): no copy per
  // advertisement (200 objects per message at N = 200).
  routes: message.distances,
})

/** Wire size of a link-state message as JSON (what the overhead figure reports). */
export const linkStateMessageBytes = (message: LinkStateMessage): number =>
  JSON.stringify(encodeLinkStateMessage(message)).length

/** Whether these settings need BGP paths from the model (the BGP algorithms, or a chain that falls back to them). */
export const needsBgpPaths = (settings: EngineSettings): boolean =>
  settings.algorithm === "shortest-bgp" || settings.algorithm === "least-cost-bgp"
