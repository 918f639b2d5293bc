/**
 * Probe settings with their defaults. Per tunnel and per end at defaults (both ends of a tunnel run
 * the same probes; payload bytes, add 28 B IPv4+UDP and ~60 B WireGuard + outer headers on the wire):
 *
 * | probe     | default                                   | packets/s        | bit/s on the wire |
 * |-----------|-------------------------------------------|------------------|-------------------|
 * | udp echo  | 1/s, 20 B, burst 100 ms after a miss      | 2 (req+reply)    | ≈ 1.7 k           |
 * | icmp      | `ping -i 4`, 56 B                         | 0.5 (req+reply)  | ≈ 0.6 k           |
 * | tcp       | connect every 60 s to :5122               | ≈ 0.03           | ≈ 0.05 k          |
 * | loss test | 1000 × 500 B at 1 Mbit/s every 60 min,    | 0.28 (bursty)    | ≈ 1.3 k (avg)     |
 * |           | in clumps of 10 every 40 ms               |                  |                   |
 * | loss burst| 200 × 64 B in 0.8 s after a lost probe,   | 0 if lossless,   | 0 if lossless,    |
 * |  (trigger)| confirmed 2 s later, then every 10 s while | ≤ 20 while lossy | ≤ 25 k while lossy|
 * |           | lossy (long-run average; see below)       |                  |                   |
 *
 * What it buys: the echo detects a hard failure in ≤ 1 s typically, ≤ 1.5 s worst case (the peer's
 * requests and ours alternate every half interval, see EchoProber; then 3 misses of ≥ 100 ms
 * timeouts spaced 100 ms) and gives 3600 RTT and loss samples/h: a 1 ms RTT difference is resolved
 * within minutes even with several ms of jitter, and loss at 5 % to ±0.5 % (95 %, σ ≤ 0.25 %:
 * ≈ 7600 samples) in ≈ 2 h. The loss burst is the cross-check and the jitter/rate figure: σ ≈ 0.7 %
 * per burst of 1000 packets at 5 % loss, ±0.5 % (95 %) after ≈ 8 bursts (8 h at the default hourly
 * cadence; 2.7 h at the 20 min it had until 27 Nov).
 *
 * Cost (overhead bench, one process serving and probing 100 tunnels): CPU goes per datagram, so the
 * loss test's cadence is what costs: the original's 1249 packets every 60 s (≈ 21 pkt/s sent and as
 * many served per tunnel) took more CPU than every other probe together; at 1000 per 60 min it is
 * 0.28 pkt/s. A burst costs ≈ 50–60 ms of CPU (both ends, bench/lossBurst.ts), so a 100-tunnel node
 * pays ≈ 0.14 % of a core on average for the hourly test (≈ 0.43 % every 20 min, the default until
 * 27 Nov: a third of the plane's budget of 1 % per 100 tunnels). Trade-off: the cross-check needs
 * hours, not minutes, to reach ±0.5 % (the original: ≈ 6 min). For a faster cross-check shorten
 * `lossTest.intervalMillis` (CPU grows in proportion; see the package README for the measured cost
 * at 120 s); the 100 kbit/s average budget of the rate
 * test allows down to ≈ 50 s.
 */
import { Schema } from "effect"

const Millis = Schema.Number.pipe(Schema.positive())
const Port = Schema.Int.pipe(Schema.between(1, 65535))
const field = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: () => value })

export const EchoProbeConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  port: field(Port, 5121),
  intervalMillis: field(Millis, 1000),
  /** Probe spacing after a missed echo, until an answer or the dead verdict. */
  burstIntervalMillis: field(Millis.pipe(Schema.between(20, 1000)), 100),
  deadAfterMisses: field(Schema.Int.pipe(Schema.between(1, 20)), 3),
  /** A probe is lost after clamp(1.5·srtt + 4·rttvar, min, max) (max before the first reply). */
  minMissTimeoutMillis: field(Millis, 100),
  maxMissTimeoutMillis: field(Millis, 1000),
  payloadBytes: field(Schema.Int.pipe(Schema.between(20, 1472)), 20),
  /**
   * The peer's echo requests reaching our server are evidence too: once they arrive regularly, one
   * missing past its expected time + slack pulls our next probe in (no extra probe).
   */
  watchPeerRequests: field(Schema.Boolean, true),
  /** The end with the lower site id sends half-way between the peer's requests. */
  alignToPeer: field(Schema.Boolean, true),
})
export type EchoProbeConfig = typeof EchoProbeConfig.Type

export const IcmpProbeConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  /**
   * `ping -i` (below 0.2 s needs root). 4 s since 27 Nov (was 2 s): the daemon's RTT comes from ICMP,
   * and with the echo as level-shift witness a step moves it at the first ping beyond the threshold
   * (engine `levelShiftWitnessKinds`), so the faster cadence bought nothing the echo does not; each
   * ping wake-up costs ≈ 60–170 µs of CPU on the 2-core VM (100 pings at 2 s: 0.32 % of a core).
   */
  intervalMillis: field(Millis, 4000),
  payloadBytes: field(Schema.Int.pipe(Schema.between(16, 1472)), 56),
  command: field(Schema.String, "ping"),
  restartDelayMillis: field(Millis, 5000),
  /**
   * Start each ping on the wall-clock grid of `intervalMillis` (via `sh -c 'sleep …; exec ping'`),
   * so all tunnels' pings send and print together: one wake-up of the plane per interval instead
   * of one per tunnel (≈ 0.1 ms of CPU each here). Same cadence per tunnel.
   */
  alignToGrid: field(Schema.Boolean, true),
})
export type IcmpProbeConfig = typeof IcmpProbeConfig.Type

export const TcpProbeConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  /** The peer daemon's gRPC port; a RST (connection refused) also yields a valid RTT. */
  port: field(Port, 5122),
  /**
   * 60 s (30 s until 27 Nov): the TCP RTT only cross-checks the echo and ICMP; a connect costs
   * ≈ 5–10× an echo datagram in the plane (a socket, a connect, the refusal's error object).
   */
  intervalMillis: field(Millis, 60_000),
  timeoutMillis: field(Millis, 2000),
})
export type TcpProbeConfig = typeof TcpProbeConfig.Type

export const LossTestConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  port: field(Port, 5121),
  packets: field(Schema.Int.pipe(Schema.between(10, 100_000)), 1000),
  packetBytes: field(Schema.Int.pipe(Schema.between(24, 1472)), 500),
  rateBitsPerSecond: field(Schema.Number.pipe(Schema.between(8_000, 1e9)), 1_000_000),
  /**
   * Every 60 min (20 min until 27 Nov, 60 s in the original). The echo measures loss all the time
   * (3600 samples/h) and the loss trigger runs a burst as soon as a probe is lost, so this scheduled
   * burst is only the slow cross-check and the rate/jitter figure of a clean link: hourly it costs
   * ≈ 0.14 % of a core per 100 tunnels instead of ≈ 0.43 %, and its ±0.5 % (95 %) at 5 % loss takes
   * ≈ 8 h of bursts instead of 2.7 h (per burst the figures are unchanged: σ ≈ 0.7 % at 5 %).
   */
  intervalMillis: field(Millis, 3_600_000),
  /** The burst is abandoned if the server stays silent (no STATS/FINAL) this long. */
  silenceTimeoutMillis: field(Millis, 3000),
  endRetries: field(Schema.Int.pipe(Schema.between(1, 10)), 4),
  endRetryMillis: field(Millis, 250),
  /**
   * The pacer's tick: each tick sends what is due by then (the mean rate is exact at any tick), so
   * packets leave in clumps of rate·tick (at 1 Mbit/s and 500 B: 10 per 40 ms tick, 5 KB). Every
   * tick is a wake-up of the sender, and the clumps are the receiver's wake-ups: a burst's CPU is
   * ≈ 0.22 ms per clump (the wake-up, with caches cold after 20–40 ms asleep) + ≈ 20–27 µs per
   * packet (send + receive, Node's dgram floor), both ends together. Measured per default burst
   * (bench/lossBurst.ts, both ends in one process): 10 ms ≈ 127 ms of CPU, 20 ms ≈ 71–80 ms,
   * 40 ms ≈ 49–55 ms. The price of 40 ms: 5 KB clumps instead of 2.5 KB, so on a link slower than
   * ≈ 10 Mbit/s, where a clump queues, the RFC 3550 jitter reads the clump's serialisation a little
   * more (over clumps of k packets the mean |D| is 2(k−1)/k serialisation times: 1.6 for k = 5,
   * 1.8 for k = 10, +12 %); loss, reordering and the achieved rate are unchanged. `20` restores the
   * old pacing.
   */
  pacingTickMillis: field(Schema.Number.pipe(Schema.between(1, 1000)), 40),
})
export type LossTestConfig = typeof LossTestConfig.Type

/**
 * Suspicion-triggered loss bursts (`LossTrigger`): a short loss test started when an up tunnel
 * loses an echo or ICMP probe, or the peer's regular echo request does not come, repeated while
 * the loss stays above `continueAboveRatio`. What it buys: 5 % loss on a link moves the route
 * ≈ 2–4 s after the first lost probe (≈ 3–8 s after the loss starts at the default probe rates;
 * the twin's figures are in the engine README, "5 % loss"), and a repaired link is seen clean by
 * the next repeat (≤ `minGapMillis` later), where
 * the echo and ICMP alone cannot tell 5 % from 0 % within 10 s and the 20-minute loss test is too
 * rare. Cost, per tunnel and end: nothing on a lossless tunnel (no lost probe, no burst); at most
 * one burst per `minGapMillis`: 200 × 64 B every 10 s is 20 datagrams/s and ≈ 25 kbit/s on the
 * wire (≈ 156 B per datagram with IPv4 + WireGuard headers; IPv6 ≈ 28 kbit/s) for a link losing
 * probes all the time, twice that for the tunnel with both ends probing, against the 100 kbit/s
 * budget of the loss test. Each burst lasts `packets·packetBytes·8/rateBitsPerSecond` (0.8 s).
 */
export const LossTriggerConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  packets: field(Schema.Int.pipe(Schema.between(50, 10_000)), 200),
  packetBytes: field(Schema.Int.pipe(Schema.between(24, 1472)), 64),
  /** 200 × 64 B in 0.8 s (250 datagrams/s): gentle on small links and on a busy host. */
  rateBitsPerSecond: field(Schema.Number.pipe(Schema.between(8_000, 1e9)), 128_000),
  /** Bursts running at once per daemon, over all tunnels (a starved host loses probes everywhere). */
  maxConcurrentBursts: field(Schema.Int.pipe(Schema.between(1, 1000)), 2),
  /**
   * Wait after the first lost probe before the burst: a tunnel that is dying is declared dead
   * by then (the echo's three misses ≈ 0.2–0.4 s at 10–50 ms RTT) and gets no burst.
   */
  graceMillis: field(Schema.Number.pipe(Schema.between(0, 10_000)), 600),
  /**
   * The rate limit: a token bucket of `burstTokens`, one token per burst, one token back per
   * `minGapMillis` (so ≤ 1 burst per minGap in the long run); also the repeat spacing.
   */
  minGapMillis: field(Schema.Number.pipe(Schema.between(1000, 3_600_000)), 10_000),
  burstTokens: field(Schema.Int.pipe(Schema.between(1, 10)), 2),
  /**
   * A first burst that found loss is confirmed this long after it ended (at 5 % loss one burst
   * of 200 reads below 3 % one time in 16, two pooled one time in 50).
   */
  confirmAfterMillis: field(Schema.Number.pipe(Schema.between(0, 3_600_000)), 2000),
  /** Repeat while the last burst's loss or the engine's loss estimate is above this. */
  continueAboveRatio: field(Schema.Number.pipe(Schema.between(0, 1)), 0.005),
  /** At most this many bursts per suspicion (a chronically lossy link starts new series on new losses). */
  maxSeriesBursts: field(Schema.Int.pipe(Schema.between(1, 1000)), 12),
  /**
   * After a burst that failed (no FINAL: an old peer, a tunnel dying, a host too loaded to answer
   * in time) no burst for `minGapMillis`, doubling with each further failure up to this.
   */
  failureBackoffMillis: field(Millis, 60_000),
})
export type LossTriggerConfig = typeof LossTriggerConfig.Type

export const PathPingConfig = Schema.Struct({
  port: field(Port, 5124),
  count: field(Schema.Int.pipe(Schema.between(1, 100)), 10),
  intervalMillis: field(Millis, 100),
  /** Wait after the last send; count·interval + timeout must stay ≤ 5 s. */
  timeoutMillis: field(Millis, 1000),
  /**
   * The 5124 sockets live in a small stamping thread (PathRelay): a stall of the daemon's main loop
   * counts as relay residence, not as network RTT. Default true (27 Nov): in the 6-site twin at load
   * 2–6, pathping read 1.33× the kernel-answered ping between the same routers with main-loop
   * stamps and 0.93× with the thread (medians; the cost's RTT part / pathping 0.67 → 0.98). Costs
   * ≈ 10 MB RSS and nothing while no pathping runs.
   */
  stampThread: field(Schema.Boolean, true),
  /**
   * The stamping thread runs under SCHED_FIFO at this priority (0 = normal scheduling). It sleeps
   * until a 5124 datagram arrives, so it costs nothing while no pathping runs; at normal priority a
   * busy host lets it wake late and the wait counts as network RTT. Needs root (CAP_SYS_NICE);
   * without it the thread stays normal and the daemon says so at start. Default 5: below the
   * twin's link emulator (10), whose wires must not wait for it.
   */
  stampThreadFifoPriority: field(Schema.Int.pipe(Schema.between(0, 99)), 5),
})
export type PathPingConfig = typeof PathPingConfig.Type

export const ProbesConfig = Schema.Struct({
  echo: field(EchoProbeConfig, Schema.decodeSync(EchoProbeConfig)({})),
  icmp: field(IcmpProbeConfig, Schema.decodeSync(IcmpProbeConfig)({})),
  tcp: field(TcpProbeConfig, Schema.decodeSync(TcpProbeConfig)({})),
  lossTest: field(LossTestConfig, Schema.decodeSync(LossTestConfig)({})),
  lossTrigger: field(LossTriggerConfig, Schema.decodeSync(LossTriggerConfig)({})),
  pathPing: field(PathPingConfig, Schema.decodeSync(PathPingConfig)({})),
})
export type ProbesConfig = typeof ProbesConfig.Type
