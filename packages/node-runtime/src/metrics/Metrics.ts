/**
 * The measurement plane's Prometheus metrics, in base units (seconds, ratios 0..1, `_total`
 * counters), on a private prom-client registry so several planes (tests, the twin) can live in one
 * process. Tunnel series carry `local`, `remote`, `family` and are removed when the tunnel goes away
 * (the original left NaN gauges behind forever).
 */
import type { TunnelId } from "@net-perf/engine"
import { Effect } from "effect"
import { Counter, Gauge, Histogram, type LabelValues, Registry } from "prom-client"

const tunnelLabels = ["local", "remote", "family"] as const
export type RttProbeLabel = "udp" | "icmp" | "tcp"
export type ProbeLabel = RttProbeLabel | "loss" | "path"
export type ServerLabel = "echo" | "pathping"

export const tunnelLabelValues = (t: TunnelId) => ({
  local: String(t.local),
  remote: String(t.remote),
  family: String(t.family),
})

const makeMetrics = () => {
  const registry = new Registry()
  const registers = [registry]
  const rtt = new Histogram({
    name: "netperf_tunnel_rtt_seconds",
    help: "Round-trip time of one probe over a tunnel",
    labelNames: [...tunnelLabels, "probe"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  })
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: tunnelLabels, registers })
  const lossRatio = gauge("netperf_tunnel_loss_ratio", "Decaying-memory loss ratio 0..1 (engine aggregation)")
  const jitter = gauge("netperf_tunnel_jitter_seconds", "RFC 3550 jitter of the tunnel RTT (engine aggregation)")
  const rttSmoothed = gauge("netperf_tunnel_rtt_smoothed_seconds", "Smoothed RTT (engine aggregation)")
  const up = gauge("netperf_tunnel_up", "1 when the tunnel answers probes, 0 when dead or unknown")
  const availability = gauge("netperf_tunnel_availability_ratio", "Share of recent time the tunnel was up")
  const cost = gauge("netperf_tunnel_cost", "Engine link cost in milliseconds-equivalent; +Inf when unusable")
  const lossTestLoss = gauge("netperf_loss_test_loss_ratio", "Loss ratio of the last loss/rate burst")
  const lossTestReorder = gauge("netperf_loss_test_reorder_ratio", "Share of received packets that arrived late")
  const lossTestJitter = gauge("netperf_loss_test_jitter_seconds", "RFC 3550 one-way jitter of the last burst")
  const lossTestRate = gauge("netperf_loss_test_rate_bits_per_second", "Achieved rate of the last burst")
  const probesSent = new Counter({
    name: "netperf_probes_sent_total",
    help: "Probes sent over a tunnel",
    labelNames: [...tunnelLabels, "probe"],
    registers,
  })
  const probesLost = new Counter({
    name: "netperf_probes_lost_total",
    help: "Probes that got no answer in time",
    labelNames: [...tunnelLabels, "probe"],
    registers,
  })
  const pathRtt = new Gauge({
    name: "netperf_path_rtt_seconds",
    help: "Mean RTT of the last pathping over a source-routed path (hop = the site where it turned back)",
    labelNames: ["path", "hop"],
    registers,
  })
  const pathLoss = new Gauge({
    name: "netperf_path_loss_ratio",
    help: "Loss ratio of the last pathping (hop = the site where it turned back)",
    labelNames: ["path", "hop"],
    registers,
  })
  const invalid = new Counter({
    name: "netperf_server_invalid_packets_total",
    help: "Datagrams a probe server dropped because they did not parse",
    labelNames: ["server"],
    registers,
  })
  const denied = new Counter({
    name: "netperf_server_denied_packets_total",
    help: "Datagrams a probe server dropped: source not on the allow list or over its rate limit",
    labelNames: ["server", "reason"],
    registers,
  })
  const tunnels = new Gauge({ name: "netperf_tunnels", help: "Tunnels being measured", registers })
  const discoveryErrors = new Counter({
    name: "netperf_discovery_errors_total",
    help: "WireGuard confs or command outputs that failed to parse",
    labelNames: ["source"],
    registers,
  })

  const tunnelGauges = [
    lossRatio,
    jitter,
    rttSmoothed,
    up,
    availability,
    cost,
    lossTestLoss,
    lossTestReorder,
    lossTestJitter,
    lossTestRate,
  ]
  const probeKinds: ReadonlyArray<ProbeLabel> = ["udp", "icmp", "tcp", "loss", "path"]

  return {
    registry,
    rtt,
    lossRatio,
    jitter,
    rttSmoothed,
    up,
    availability,
    cost,
    lossTestLoss,
    lossTestReorder,
    lossTestJitter,
    lossTestRate,
    probesSent,
    probesLost,
    pathRtt,
    pathLoss,
    invalid,
    denied,
    tunnels,
    discoveryErrors,
    /** Drops every series of one tunnel (called when its worker stops). */
    removeTunnel: (t: TunnelId) => {
      const labels = tunnelLabelValues(t)
      for (const g of tunnelGauges) g.remove(labels)
      for (const probe of probeKinds) {
        probesSent.remove({ ...labels, probe })
        probesLost.remove({ ...labels, probe })
        if (probe === "udp" || probe === "icmp" || probe === "tcp") rtt.remove({ ...labels, probe })
      }
    },
  }
}

type Labels = LabelValues<string>
const sameLabels = (a: Labels, b: Labels) => {
  const keys = Object.keys(b)
  return Object.keys(a).length === keys.length && keys.every((k) => String(a[k]) === String(b[k]))
}

/**
 * The series entry prom-client 15 keeps for `labels` (its internal `hashMap`), or undefined.
 * Found once per child; each use checks it is still the live entry (a `remove`/`reset` replaces it).
 */
const liveEntry = <E extends { labels: Labels }>(metric: unknown, labels: Labels) => {
  let key: string | undefined
  let entry: E | undefined
  const map = () => (metric as { hashMap?: Record<string, E> }).hashMap
  return {
    get: (): E | undefined => {
      const m = map()
      return entry !== undefined && key !== undefined && m?.[key] === entry ? entry : undefined
    },
    find: () => {
      entry = undefined
      for (const [k, e] of Object.entries(map() ?? {}))
        if (sameLabels(e.labels, labels)) {
          key = k
          entry = e
          return
        }
    },
  }
}

/**
 * A histogram child for per-sample use. prom-client's `labels(...).observe` re-validates and
 * re-hashes the label set on every call (≈ 1–3 µs, ~15 % of the plane's CPU at 250 samples/s in
 * a profile); this one updates the series' entry directly — the same arithmetic as prom-client's
 * observe (first upper bound ≥ v, sum, count) — and falls back to `observe` whenever the entry is
 * not (or no longer) there. Property-tested against plain `observe` in test/metrics.
 */
export const histogramChild = (histogram: Histogram<string>, labels: Labels): { observe: (v: number) => void } => {
  const child = histogram.labels(labels)
  const bounds = (histogram as unknown as { upperBounds?: ReadonlyArray<number> }).upperBounds
  // The entry's bucket keys are the bounds as strings: converted once here, not per observation
  // (a fractional bound like 0.0005 costs a number-to-string conversion on every keyed access).
  const boundKeys = bounds?.map(String)
  const series = liveEntry<{ labels: Labels; sum: number; count: number; bucketValues: Record<string, number> }>(
    histogram,
    labels,
  )
  return {
    observe: (v) => {
      const e = series.get()
      if (e === undefined || bounds === undefined || boundKeys === undefined || !Number.isFinite(v)) {
        child.observe(v)
        series.find()
        return
      }
      e.sum += v
      e.count += 1
      for (let i = 0; i < bounds.length; i++)
        if (v <= bounds[i]!) {
          const k = boundKeys[i]!
          if (Object.hasOwn(e.bucketValues, k)) e.bucketValues[k]! += 1
          break
        }
    },
  }
}

/** A counter child for per-probe use (see `histogramChild`): adds to the series' entry directly. */
export const counterChild = (counter: Counter<string>, labels: Labels): { inc: (n?: number) => void } => {
  const child = counter.labels(labels)
  const series = liveEntry<{ labels: Labels; value: number }>(counter, labels)
  return {
    inc: (n = 1) => {
      const e = series.get()
      if (e === undefined || !Number.isFinite(n) || n < 0) {
        child.inc(n)
        series.find()
        return
      }
      e.value += n
    },
  }
}

/**
 * A gauge child for periodic use (see `histogramChild`): prom-client's `set` re-validates the
 * labels, re-hashes them (a sort and a join) and replaces the series' entry with a new object on
 * every call (≈ 90 KB/s of garbage for the plane's 600 gauge updates per 5 s at 100 tunnels);
 * this one writes the live entry's value.
 */
export const gaugeChild = (gauge: Gauge<string>, labels: Labels): { set: (v: number) => void } => {
  const child = gauge.labels(labels)
  const series = liveEntry<{ labels: Labels; value: number }>(gauge, labels)
  return {
    set: (v) => {
      const e = series.get()
      if (e === undefined || typeof v !== "number") {
        child.set(v)
        series.find()
        return
      }
      e.value = v
    },
  }
}

/**
 * `gaugeChild` per value of one label, made at first use: for gauges set per destination or
 * per origin on every decide (4/s × N series), where a labelled `set` costs a label check, a
 * sort-and-join hash and a new entry object each time.
 */
export const gaugeChildren = (
  gauge: Gauge<string>,
  label: string,
): ((value: string) => { set: (v: number) => void }) => {
  const children = new Map<string, { set: (v: number) => void }>()
  return (value) => {
    let child = children.get(value)
    if (child === undefined) {
      child = gaugeChild(gauge, { [label]: value })
      children.set(value, child)
    }
    return child
  }
}

/** prom-client metrics of one measurement plane. */
export class MeasurementMetrics extends Effect.Service<MeasurementMetrics>()("net-perf/MeasurementMetrics", {
  sync: makeMetrics,
}) {}
