/**
 * Scenario files for the digital twin: sites, base impairments per link, a timeline of events
 * and the routing each site runs. YAML or JSON, decoded with Schema at the edge; every error
 * names the field (and the line, for YAML/JSON text) and nothing is created for a bad file.
 * Links are named "A-B" (both directions) or "A>B" (one direction); times are seconds from t=0,
 * the moment the twin has converged after bring-up.
 */
import { readFile } from "node:fs/promises"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { isMap, isSeq, LineCounter, parseDocument } from "yaml"

const NonNegative = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
const SiteNumber = Schema.Int.pipe(Schema.between(0, 250))
const UnderlayFamily = Schema.Literal(4, 6)

/** Impairment fields (all optional; unset = keep / default 0). Mirrors the link emulator's. */
export const ImpairmentFields = {
  delayMs: Schema.optional(NonNegative),
  jitterMs: Schema.optional(NonNegative),
  lossRatio: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  rateBitsPerSecond: Schema.optional(NonNegative),
  down: Schema.optional(Schema.Boolean),
}
export const Impairment = Schema.Struct(ImpairmentFields)
export type Impairment = typeof Impairment.Type

/** "0-1" = both directions of the 0/1 link, "0>1" = only 0 towards 1. */
export const LinkSelector = Schema.String.pipe(
  Schema.pattern(/^\d+[->]\d+$/, { message: () => 'expected a link like "0-1" (both ways) or "0>1" (one way)' }),
)

export const LinkOverride = Schema.Struct({
  link: LinkSelector,
  family: Schema.optional(UnderlayFamily),
  ...ImpairmentFields,
})
export type LinkOverride = typeof LinkOverride.Type

export const RoutingMode = Schema.Literal("bird", "net-perf")
export type RoutingMode = typeof RoutingMode.Type

const At = { at: NonNegative }
const OnLink = { link: LinkSelector, family: Schema.optional(UnderlayFamily) }
export const ScenarioEvent = Schema.Union(
  Schema.Struct({ ...At, action: Schema.Literal("set-impairment"), ...OnLink, ...ImpairmentFields }),
  Schema.Struct({ ...At, action: Schema.Literal("link-down"), ...OnLink }),
  Schema.Struct({ ...At, action: Schema.Literal("link-up"), ...OnLink }),
  Schema.Struct({ ...At, action: Schema.Literal("kill-bird", "restart-bird"), site: SiteNumber }),
  // kill-daemon = SIGKILL (a crash: its routes stay until the next start reconciles them),
  // stop-daemon = SIGTERM (graceful: it withdraws its routes), restart-daemon = stop if running, start.
  Schema.Struct({ ...At, action: Schema.Literal("kill-daemon", "stop-daemon", "restart-daemon"), site: SiteNumber }),
  // The scenario's metrics store (`metricsStore`): stop = SIGTERM to Prometheus, start = again.
  Schema.Struct({ ...At, action: Schema.Literal("stop-metrics-store", "start-metrics-store") }),
)
export type ScenarioEvent = typeof ScenarioEvent.Type

export const Scenario = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1)),
  description: Schema.optional(Schema.String),
  /** Number of sites, ids 0..sites-1. */
  sites: Schema.Int.pipe(Schema.between(2, 250)),
  /** Length of the timeline after t=0. */
  durationSeconds: Schema.Number.pipe(Schema.finite(), Schema.positive()),
  /** Underlay families that get a tunnel per pair. */
  families: Schema.optionalWith(Schema.Array(UnderlayFamily).pipe(Schema.minItems(1)), {
    default: () => [4, 6] as const,
  }),
  routing: Schema.optionalWith(RoutingMode, { default: () => "bird" as const }),
  /** Per-site override of `routing`, keyed by site id. */
  siteRouting: Schema.optional(Schema.Record({ key: Schema.String.pipe(Schema.pattern(/^\d+$/)), value: RoutingMode })),
  bird: Schema.optionalWith(
    Schema.Struct({
      bfd: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      holdTimeSeconds: Schema.optionalWith(Schema.Int.pipe(Schema.between(3, 65535)), { default: () => 9 }),
      bfdIntervalMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(10, 10000)), { default: () => 100 }),
      bfdMultiplier: Schema.optionalWith(Schema.Int.pipe(Schema.between(2, 255)), { default: () => 3 }),
    }),
    { default: () => ({ bfd: false, holdTimeSeconds: 9, bfdIntervalMs: 100, bfdMultiplier: 3 }) },
  ),
  /** The net-perf daemon at `net-perf` sites: config overrides (the daemon's schema) and log level. */
  daemon: Schema.optional(
    Schema.Struct({
      config: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      logLevel: Schema.optional(Schema.Literal("debug", "info", "warning", "error")),
    }),
  ),
  links: Schema.optionalWith(
    Schema.Struct({
      default: Schema.optional(Impairment),
      overrides: Schema.optional(Schema.Array(LinkOverride)),
    }),
    { default: () => ({}) },
  ),
  /** Site pairs ("0-3") whose overlay RTT is measured; default: every pair when sites <= 6. */
  watch: Schema.optional(Schema.Array(LinkSelector)),
  /** Forwarding snapshots per second between the ones taken at every route change (Sampler). */
  sampleHz: Schema.optionalWith(Schema.Number.pipe(Schema.between(0.5, 20)), { default: () => 4 }),
  /** Longest wait for initial convergence before t=0. */
  settleTimeoutSeconds: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 90 }),
  events: Schema.optionalWith(Schema.Array(ScenarioEvent), { default: () => [] }),
  /** A real Prometheus scraping every daemon site, given to each daemon as its metrics store (MetricsStore.ts). */
  metricsStore: Schema.optional(Schema.Literal("prometheus")),
})
export type Scenario = typeof Scenario.Type
export type ScenarioInput = typeof Scenario.Encoded

export interface ScenarioIssue {
  /** Field path, e.g. `events[2].link`. */
  readonly path: string
  readonly message: string
  /** 1-based line in the file, when known. */
  readonly line?: number
}

export class ScenarioInvalid extends Data.TaggedError("ScenarioInvalid")<{
  readonly source: string
  readonly issues: ReadonlyArray<ScenarioIssue>
}> {
  override get message(): string {
    return `invalid scenario ${this.source}:\n${this.issues
      .map((i) => `  ${i.path || "(root)"}${i.line === undefined ? "" : ` (line ${i.line})`}: ${i.message}`)
      .join("\n")}`
  }
}

export class ScenarioUnreadable extends Data.TaggedError("ScenarioUnreadable")<{
  readonly source: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot read scenario ${this.source}: ${String(this.cause)}`
  }
}

export const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("")

/** A link selector as directed site pairs. */
export const parseLinkSelector = (sel: string): { a: number; b: number; bothWays: boolean } => {
  const m = /^(\d+)([->])(\d+)$/.exec(sel)
  if (m === null) throw new Error(`bad link selector ${sel}`)
  return { a: Number(m[1]), b: Number(m[3]), bothWays: m[2] === "-" }
}

/** Checks what Schema cannot see on its own: site ids in range, links between distinct sites, times. */
const crossCheck = (s: Scenario): ScenarioIssue[] => {
  const issues: ScenarioIssue[] = []
  const checkLink = (path: string, sel: string) => {
    const { a, b } = parseLinkSelector(sel)
    if (a >= s.sites || b >= s.sites) issues.push({ path, message: `site out of range 0..${s.sites - 1} in "${sel}"` })
    if (a === b) issues.push({ path, message: `a link needs two different sites ("${sel}")` })
  }
  s.links.overrides?.forEach((o, i) => {
    checkLink(`links.overrides[${i}].link`, o.link)
    if (o.family !== undefined && !s.families.includes(o.family))
      issues.push({
        path: `links.overrides[${i}].family`,
        message: `family ${o.family} has no tunnels (families: ${s.families.join(",")})`,
      })
  })
  s.watch?.forEach((w, i) => {
    checkLink(`watch[${i}]`, w)
  })
  s.events.forEach((e, i) => {
    if (e.at > s.durationSeconds)
      issues.push({ path: `events[${i}].at`, message: `${e.at} s is after durationSeconds ${s.durationSeconds}` })
    if ("link" in e) checkLink(`events[${i}].link`, e.link)
    if ("site" in e && e.site >= s.sites)
      issues.push({ path: `events[${i}].site`, message: `site ${e.site} out of range 0..${s.sites - 1}` })
    if (e.action.endsWith("-metrics-store") && s.metricsStore === undefined)
      issues.push({
        path: `events[${i}].action`,
        message: `${e.action} needs a metrics store (metricsStore: prometheus)`,
      })
  })
  for (const k of Object.keys(s.siteRouting ?? {}))
    if (Number(k) >= s.sites)
      issues.push({ path: `siteRouting.${k}`, message: `site ${k} out of range 0..${s.sites - 1}` })
  return issues
}

/** Decodes an already-parsed value (e.g. from JSON.parse) into a Scenario. */
export const decodeScenario = (
  input: unknown,
  source = "<input>",
  lineOf: (path: ReadonlyArray<PropertyKey>) => number | undefined = () => undefined,
): Either.Either<Scenario, ScenarioInvalid> => {
  const decoded = Schema.decodeUnknownEither(Scenario, { errors: "all", onExcessProperty: "error" })(input)
  if (Either.isLeft(decoded)) {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((i) => {
      const line = lineOf(i.path)
      return {
        path: formatPath(i.path),
        message: i.message,
        ...(line === undefined ? {} : { line }),
      }
    })
    return Either.left(new ScenarioInvalid({ source, issues }))
  }
  const issues = crossCheck(decoded.right).map((i) => {
    const path = i.path
      .split(/[.[\]]+/)
      .filter((p) => p !== "")
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p))
    const line = lineOf(path)
    return line === undefined ? i : { ...i, line }
  })
  return issues.length > 0 ? Either.left(new ScenarioInvalid({ source, issues })) : Either.right(decoded.right)
}

/** Parses YAML or JSON text (JSON is YAML) and decodes it, with line numbers in errors. */
export const parseScenarioText = (text: string, source = "<input>"): Either.Either<Scenario, ScenarioInvalid> => {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  if (doc.errors.length > 0)
    return Either.left(
      new ScenarioInvalid({
        source,
        issues: doc.errors.map((e) => ({
          path: "",
          message: e.message.split("\n")[0] ?? e.message,
          line: lineCounter.linePos(e.pos[0]).line,
        })),
      }),
    )
  const lineOf = (path: ReadonlyArray<PropertyKey>): number | undefined => {
    // Walk down as far as the path exists; an absent field is reported at its parent.
    let node: unknown = doc.contents
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => {
          const k = p.key as { value?: unknown } | null
          return k !== null && String(k.value) === String(key)
        })
        if (pair === undefined) break
        node = pair.value ?? pair.key
      } else if (isSeq(node) && typeof key === "number" && node.items[key] !== undefined) node = node.items[key]
      else break
    }
    const range = (node as { range?: [number, number, number] } | null)?.range
    return range === undefined ? undefined : lineCounter.linePos(range[0]).line
  }
  return decodeScenario(doc.toJS(), source, lineOf)
}

export const loadScenario = (file: string): Effect.Effect<Scenario, ScenarioInvalid | ScenarioUnreadable> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (cause) => new ScenarioUnreadable({ source: file, cause }),
  }).pipe(Effect.flatMap((text) => parseScenarioText(text, file)))

/**
 * The same scenario with every site on one routing (for baseline comparisons). Daemon events
 * stay in the timeline: at a `bird` site they are recorded as no-ops, so both runs' events line up.
 */
export const withRouting = (s: Scenario, routing: RoutingMode): Scenario => {
  const { siteRouting: _sr, ...rest } = s
  return { ...rest, routing }
}

/** Routing mode of one site. */
export const routingOf = (s: Scenario, site: number): RoutingMode => s.siteRouting?.[String(site)] ?? s.routing

/** Pairs whose RTT is measured: the `watch` list, or every pair for small meshes. */
export const watchedPairs = (s: Scenario): ReadonlyArray<readonly [number, number]> => {
  if (s.watch !== undefined)
    return s.watch.map((w) => {
      const { a, b } = parseLinkSelector(w)
      return [a, b] as const
    })
  if (s.sites > 6) return []
  const out: Array<readonly [number, number]> = []
  for (let a = 0; a < s.sites; a++) for (let b = a + 1; b < s.sites; b++) out.push([a, b])
  return out
}
