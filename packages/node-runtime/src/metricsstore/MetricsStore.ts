/**
 * The daemon's metrics-store fallback: the periodic source (MetricsStoreSource.ts) feeding the
 * merge rule (Fallback.ts) into the router's graph. One call from the daemon composition.
 *
 * Decision a reader must know: after every refresh — failed ones included, so old samples age
 * out while the store is down — the rule is re-applied; a routing decision is triggered only
 * when the graph rows it wrote changed.
 */
import type { CostModel, SiteId } from "@net-perf/engine"
import { Effect, type Scope } from "effect"
import type { Registry } from "prom-client"
import { type GraphRows, makeFallbackApplier } from "./Fallback.js"
import { type MetricsStoreSource, makeMetricsStoreMetrics, makeMetricsStoreSource } from "./MetricsStoreSource.js"

export interface MetricsStoreSettings {
  /** Base URL of Prometheus or VictoriaMetrics (its Prometheus-compatible query API). */
  readonly url: string
  readonly intervalMillis: number
  readonly timeoutMillis: number
  /** A sample older than this (by its scrape time) no longer makes a link usable. */
  readonly maxSampleAgeMillis: number
}

export interface MetricsStoreFallbackOptions {
  readonly settings: MetricsStoreSettings
  readonly self: SiteId
  readonly registry: Registry
  /** The router's graph (`NodeRouter.graph`). */
  readonly graph: GraphRows
  /** Whether the link-state exchange has fresh data from an origin (the daemon's last-heard times). */
  readonly exchangeFresh: (origin: SiteId, nowMillis: number) => boolean
  readonly costModel: CostModel
  /** Called when the rows written changed (the daemon wakes its decision loop). */
  readonly onChange: Effect.Effect<void>
  readonly now?: () => number
}

export const runMetricsStoreFallback = (
  options: MetricsStoreFallbackOptions,
): Effect.Effect<MetricsStoreSource, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = options.now ?? Date.now
    const applier = makeFallbackApplier({
      self: options.self,
      graph: options.graph,
      exchangeFresh: options.exchangeFresh,
      maxSampleAgeMillis: options.settings.maxSampleAgeMillis,
      costModel: options.costModel,
    })
    // Get-or-create: the same metrics the source registers (its first refresh may run before it returns).
    const metrics = makeMetricsStoreMetrics(options.registry)
    let previousFilled = ""
    return yield* makeMetricsStoreSource({
      url: options.settings.url,
      intervalMillis: options.settings.intervalMillis,
      timeoutMillis: options.settings.timeoutMillis,
      registry: options.registry,
      now,
      onRefresh: (snapshot) =>
        Effect.gen(function* () {
          const { changed, plan } = applier.apply(snapshot.tunnels, now())
          metrics.fallbackLinks.set(plan.links)
          const filledKey = [...plan.filled].join(",")
          if (filledKey !== previousFilled)
            yield* Effect.logInfo(
              plan.filled.size === 0
                ? "metrics store: no links from the store in use (the link-state exchange covers every origin it knows)"
                : `metrics store: links of site(s) ${filledKey} come from the store (no fresh link state from them)`,
            )
          previousFilled = filledKey
          if (changed) yield* options.onChange
        }),
    })
  })
