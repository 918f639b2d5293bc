/**
 * The daemon's configuration: one Schema, filled from a file (JSON or YAML), then flags and
 * environment, validated once at start.
 *
 * Decision a reader must know: a site needs only its id (and its WireGuard confs); everything else
 * has a documented default. Listening sockets default to the site's overlay router address and
 * loopback, never to the underlay. Errors name the field and the bad value (Schema's tree format).
 */
import { type AggregationConfig, algorithmNames, MeshGen, RttProbeKind, SiteId } from "@net-perf/engine"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { parse as parseYaml } from "yaml"
import { fillTemplate } from "../discovery/Addressing.js"
import { ProbesConfig } from "../probes/ProbeConfig.js"
import { SysctlConfig } from "../sysctl/Sysctl.js"

const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: () => value })
const Millis = Schema.Number.pipe(Schema.positive())
const Port = Schema.Int.pipe(Schema.between(1, 65535))
const Algorithm = Schema.Literal(...algorithmNames)
const NonEmpty = Schema.String.pipe(Schema.minLength(1))

export const DiscoverySection = Schema.Struct({
  /** Directory of `wgX.Y_vZ.conf` files (parsed for keys, endpoints, allowed IPs). */
  confDir: field(NonEmpty, "/etc/wireguard"),
  /** Regex with named groups `local`, `remote`, `family`; default: the mesh's `wgX.Y_vZ`. */
  namePattern: Schema.optional(NonEmpty),
  rescanIntervalMillis: field(Millis, 15_000),
  /** Follow `ip monitor` link/address events. */
  monitor: field(Schema.Boolean, true),
})

export const ListenSection = (port: number) =>
  Schema.Struct({
    /** Addresses to bind; default: the site's router address (overlay) and 127.0.0.1. */
    hosts: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1))),
    port: field(Port, port),
  })

export const TlsSection = Schema.Struct({
  caFile: NonEmpty,
  certFile: NonEmpty,
  keyFile: NonEmpty,
})

export const BirdSection = Schema.Struct({
  generation: field(Schema.Literal("bird2", "bird1"), "bird2"),
  /** BIRD 2 socket, or BIRD 1.x's IPv4 socket. */
  socket: field(NonEmpty, "/run/bird/bird.ctl"),
  /** BIRD 1.x's IPv6 socket. */
  socket6: field(NonEmpty, "/run/bird/bird6.ctl"),
  requestTimeoutMillis: field(Millis, 5_000),
  /** How often BGP paths are re-read (BIRD has no push interface). */
  pollIntervalMillis: field(Millis, 2_000),
})

export const RoutingSection = Schema.Struct({
  algorithm: field(Algorithm, "graph-least-cost"),
  /** Tried in order when the algorithm has nothing for a destination; default: the other three. */
  fallback: Schema.optional(Schema.Array(Algorithm)),
  costModel: field(Schema.Literal("default", "legacy"), "default"),
  /** How often routes are recomputed (and immediately after a tunnel changes state). */
  decideIntervalMillis: field(Millis, 250),
  /**
   * Periodic link-state advertisement. Changes go out at once as well (a route's next hop, seqno or
   * starvation; a metric moved by more than max(1 ms, 5 %); a new seqno request), so the period
   * only refreshes: 2 s (1 s until 27 Nov) halves the flooded traffic, N² messages across the mesh,
   * at no cost to reaction in the model (simulator README, "Speed, session 7") or the twin.
   */
  advertiseIntervalMillis: field(Millis, 2_000),
  /** A peer silent this long ages out: its links count as unknown. */
  linkStateMaxAgeMillis: field(Millis, 10_000),
  /**
   * A tunnel whose far end reports it dead in its link state counts as dead here at once, until one
   * of our own probes over it is answered (engine NodeRouter `peerVerdicts`): both ends then move
   * their routes when the first of them detects the failure, not the second.
   */
  peerVerdicts: field(Schema.Boolean, true),
  /**
   * Our own seqno is raised at the first lost echo on an up tunnel, at most once per this many ms
   * (engine `suspicionSeqnoGapMillis`): sites that reach us over a failing link then find their
   * detours feasible when it is declared dead, instead of starving until our raise arrives.
   */
  suspicionSeqnoGapMillis: field(Millis, 5_000),
  /**
   * No managed routes right after start (BIRD's apply), until peers have dropped what they learnt
   * from our previous incarnation; default = linkStateMaxAgeMillis + 10 s (the engine's default:
   * the loop-freedom argument needs at least the max age, the 10 s cover peers' first probes; see the
   * engine README).
   */
  startupHoldDownMillis: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  /**
   * Probe kinds whose RTTs feed the smoothed RTT and jitter, and whose losses feed the loss ratio
   * (loss-test bursts always count). Default: `icmp` when ICMP probing is on — ping timestamps in
   * its own process, so a busy daemon does not inflate its RTTs — else every kind. Echo misses
   * always drive failure detection.
   */
  rttProbeKinds: Schema.optional(Schema.Array(RttProbeKind).pipe(Schema.minItems(1))),
  lossProbeKinds: Schema.optional(Schema.Array(RttProbeKind).pipe(Schema.minItems(1))),
  /**
   * Kinds outside `rttProbeKinds` whose own level-shift test backs a timed step after one timed
   * sample (engine `levelShiftWitnessKinds`). Default: `udp-echo` when the RTT comes from ICMP only —
   * the echo (1/s) sees a latency step within ≈ 3 s, so ICMP every 4 s moves the cost at its first
   * ping beyond the threshold instead of its third (8–12 s); `[]` turns it off.
   */
  levelShiftWitnessKinds: Schema.optional(Schema.Array(RttProbeKind)),
  stability: Schema.optional(
    Schema.Struct({
      absoluteMarginMs: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
      relativeMargin: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
      noiseFactor: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
      dwellMillis: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
      /** Engine Stability: a gain above this many thresholds waits only urgentDwellMillis (default 3, 5 s). */
      urgentGainFactor: Schema.optional(Schema.Number.pipe(Schema.positive())),
      urgentDwellMillis: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
    }),
  ),
})

export const KernelSection = Schema.Struct({
  /** Below BIRD 2's kernel-protocol metric (32), so managed routes win while present. */
  metric: field(Schema.Int.pipe(Schema.between(0, 4_294_967_295)), 20),
  watchdogIntervalMillis: field(Millis, 5_000),
  /** Graceful shutdown deletes every protocol-201 route so BIRD's routes take over. */
  withdrawOnExit: field(Schema.Boolean, true),
  /** Destination prefixes per site; `{site}`/`{siteHex}` are replaced. */
  prefixTemplates: field(Schema.Array(NonEmpty), ["10.201.{site}.0/24", "fdac:c9:{siteHex}::/64"]),
  /** Explicit prefixes per site id (overlay + LANs, as the mesh generator writes them); wins over the templates. */
  sitePrefixes: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Array(NonEmpty) })),
})

/**
 * Optional Prometheus/VictoriaMetrics source (off unless present): fills the routing graph's links
 * of origins the link-state exchange has no fresh data for (metricsstore/Fallback.ts). `kind` is
 * informational: both serve the same query API.
 */
export const MetricsStoreSection = Schema.Struct({
  kind: field(Schema.Literal("prometheus", "victoriametrics"), "prometheus"),
  /** Base URL, e.g. `http://10.201.0.10:9090`. */
  url: NonEmpty,
  timeoutMillis: field(Millis, 2_000),
  intervalMillis: field(Millis, 15_000),
  /** A sample older than this (its scrape time) no longer makes a link usable; keep it above 2× the scrape interval. */
  maxSampleAgeMillis: field(Millis, 60_000),
})

export const DaemonConfig = Schema.Struct({
  site: SiteId,
  /** Overlay addresses: `{site}`, `{siteHex}`, `{role}` (1 router, 4/6 tunnel probe endpoints). */
  addressTemplate: field(NonEmpty, "10.201.{site}.{role}"),
  discovery: field(DiscoverySection, Schema.decodeSync(DiscoverySection)({})),
  controlSocket: field(NonEmpty, "/opt/wg-mesh/net-perf.sock"),
  probes: field(ProbesConfig, Schema.decodeSync(ProbesConfig)({})),
  http: field(ListenSection(5120), { port: 5120 }),
  grpc: field(Schema.Struct({ ...ListenSection(5122).fields, tls: Schema.optional(TlsSection) }), { port: 5122 }),
  bird: field(BirdSection, Schema.decodeSync(BirdSection)({})),
  routing: field(RoutingSection, Schema.decodeSync(RoutingSection)({})),
  kernel: field(KernelSection, Schema.decodeSync(KernelSection)({})),
  sysctl: field(SysctlConfig, Schema.decodeSync(SysctlConfig)({})),
  metricsStore: Schema.optional(MetricsStoreSection),
  logLevel: field(Schema.Literal("debug", "info", "warning", "error"), "info"),
  /** Written by the mesh generator: the site's name, ASN, LANs and expected tunnels (reported). */
  mesh: Schema.optional(MeshGen.MeshSection),
})
export type DaemonConfig = typeof DaemonConfig.Type
export type DaemonConfigInput = typeof DaemonConfig.Encoded

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly source: string
  readonly detail: string
}> {
  override get message(): string {
    return `invalid configuration (${this.source}):\n${this.detail}`
  }
}

/** Parses a config file's text (YAML is a superset of JSON). */
export const parseConfigText = (source: string, text: string): Either.Either<unknown, ConfigError> =>
  Either.try({
    try: () => parseYaml(text) ?? {},
    catch: (cause) => new ConfigError({ source, detail: String(cause) }),
  })

/** Deep merge of plain objects: later layers win; arrays are replaced, not merged. */
export const mergeLayers = (...layers: ReadonlyArray<unknown>): unknown => {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v)
  let merged: unknown = {}
  for (const layer of layers) {
    if (layer === undefined) continue
    if (!isObject(merged) || !isObject(layer)) {
      merged = layer
      continue
    }
    const out: Record<string, unknown> = { ...merged }
    for (const [k, v] of Object.entries(layer)) out[k] = k in out ? mergeLayers(out[k], v) : v
    merged = out
  }
  return merged
}

/**
 * Environment overrides: `NETPERF_<PATH>` with `__` between levels, e.g. `NETPERF_SITE=3`,
 * `NETPERF_ROUTING__ALGORITHM=measured-fastest`, `NETPERF_GRPC__PORT=6122`. Values are YAML
 * scalars (numbers and booleans come out typed).
 */
export const environmentLayer = (env: Readonly<Record<string, string | undefined>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  const camel = (s: string) => s.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("NETPERF_") || value === undefined) continue
    const path = name.slice("NETPERF_".length).split("__").map(camel)
    // Other tools share the prefix (NETPERF_DEMO_SCENARIO, NETPERF_BIRD1_PREFIX…): only names
    // whose first level is a config section are configuration.
    if (!(path[0]! in DaemonConfig.fields)) continue
    let node = out
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== "object" || node[key] === null) node[key] = {}
      node = node[key] as Record<string, unknown>
    }
    node[path[path.length - 1]!] = parseYaml(value)
  }
  return out
}

/** One line per bad field: `routing.algorithm: Expected …, actual "nope"` (union branches merged). */
const formatIssues = (error: ParseResult.ParseError): string => {
  const byPath = new Map<string, Array<string>>()
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  // An optional field's "or undefined" branch repeats every real issue: keep only the real ones.
  const real = issues.filter((i) => !i.message.startsWith("Expected undefined"))
  for (const issue of real.length > 0 ? real : issues) {
    const path = issue.path.length === 0 ? "(root)" : issue.path.map(String).join(".")
    const messages = byPath.get(path) ?? []
    if (!messages.includes(issue.message)) messages.push(issue.message)
    byPath.set(path, messages)
  }
  return [...byPath].map(([path, messages]) => `  - ${path}: ${messages.join("; ")}`).join("\n")
}

/** Validates merged input; the error lists every bad field with its path and value. */
export const decodeConfig = (source: string, input: unknown): Either.Either<DaemonConfig, ConfigError> =>
  Schema.decodeUnknownEither(DaemonConfig, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Either.mapLeft((e) => new ConfigError({ source, detail: formatIssues(e) })),
  )

export const loadConfig = (options: {
  readonly file?: string | undefined
  readonly readFile: (path: string) => Effect.Effect<string, unknown>
  readonly flags?: unknown
  readonly env?: Readonly<Record<string, string | undefined>>
}): Effect.Effect<DaemonConfig, ConfigError> =>
  Effect.gen(function* () {
    const fromFile =
      options.file === undefined
        ? {}
        : yield* options.readFile(options.file).pipe(
            Effect.mapError(
              (cause) => new ConfigError({ source: options.file!, detail: `cannot read: ${String(cause)}` }),
            ),
            Effect.flatMap((text) => parseConfigText(options.file!, text)),
          )
    const merged = mergeLayers(fromFile, environmentLayer(options.env ?? {}), options.flags)
    const sources = [options.file, "environment", "flags"].filter((s) => s !== undefined).join(" + ")
    return yield* decodeConfig(sources, merged)
  })

/** Destination prefixes of a site: explicit ones from the config, else the templates. */
export const prefixesOf = (config: DaemonConfig, site: number): ReadonlyArray<string> =>
  config.kernel.sitePrefixes?.[String(site)] ?? config.kernel.prefixTemplates.map((t) => fillTemplate(t, site))

/** The engine's aggregation settings the config implies (probe kinds trusted for RTT and loss). */
export const aggregationOf = (config: DaemonConfig): Partial<AggregationConfig> => {
  const fallback = config.probes.icmp.enabled ? (["icmp"] as const) : (["udp-echo", "icmp", "tcp"] as const)
  const rttProbeKinds = config.routing.rttProbeKinds ?? fallback
  return {
    rttProbeKinds,
    lossProbeKinds: config.routing.lossProbeKinds ?? fallback,
    levelShiftWitnessKinds:
      config.routing.levelShiftWitnessKinds ?? (rttProbeKinds.includes("udp-echo") ? [] : ["udp-echo"]),
  }
}

/** Addresses the daemon's HTTP/gRPC servers bind by default: overlay router + loopback. */
export const defaultListenHosts = (config: DaemonConfig): ReadonlyArray<string> => [
  fillTemplate(config.addressTemplate, config.site, 1),
  "127.0.0.1",
]
