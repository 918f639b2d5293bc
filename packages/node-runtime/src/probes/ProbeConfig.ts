/**
 * Probe settings with their defaults. Per tunnel at defaults (payload bytes; add 28 B IPv4+UDP and
 * ~32 B WireGuard + outer headers on the wire):
 *
 * | probe     | default                                   | packets/s      | bit/s on the wire |
 * |-----------|-------------------------------------------|----------------|-------------------|
 * | udp echo  | 1/s, 20 B, burst 100 ms after a miss      | 2 (req+reply)  | ≈ 1.3 k           |
 * | icmp      | `ping -i 2`, 56 B                         | 1              | ≈ 1.1 k           |
 * | tcp       | connect every 10 s to :5122               | ≈ 0.5          | ≈ 0.3 k           |
 * | loss test | 1250 × 500 B at 1 Mbit/s every 120 s      | 10.4 (bursty)  | ≈ 47 k (avg)      |
 *
 * What it buys: the echo detects a hard failure in ≤ 1.4 s (1 s interval + 3 misses of ≥ 100 ms
 * timeouts spaced 100 ms) and gives 3600 RTT samples/h, so a 1 ms RTT difference is resolved within
 * minutes even with several ms of jitter; the loss burst measures 0.5 % loss differences at 5 % loss
 * within ≈ 10 bursts (σ ≈ 0.6 % per burst of 1250 packets) and reports one-way jitter and the rate.
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
  /** `ping -i`: below 0.2 s needs root. */
  intervalMillis: field(Millis, 2000),
  payloadBytes: field(Schema.Int.pipe(Schema.between(16, 1472)), 56),
  command: field(Schema.String, "ping"),
  restartDelayMillis: field(Millis, 5000),
})
export type IcmpProbeConfig = typeof IcmpProbeConfig.Type

export const TcpProbeConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  /** The peer daemon's gRPC port; a RST (connection refused) also yields a valid RTT. */
  port: field(Port, 5122),
  intervalMillis: field(Millis, 30_000),
  timeoutMillis: field(Millis, 2000),
})
export type TcpProbeConfig = typeof TcpProbeConfig.Type

export const LossTestConfig = Schema.Struct({
  enabled: field(Schema.Boolean, true),
  port: field(Port, 5121),
  packets: field(Schema.Int.pipe(Schema.between(10, 100_000)), 1000),
  packetBytes: field(Schema.Int.pipe(Schema.between(24, 1472)), 500),
  rateBitsPerSecond: field(Schema.Number.pipe(Schema.between(8_000, 1e9)), 1_000_000),
  intervalMillis: field(Millis, 1_200_000),
  /** The burst is abandoned if the server stays silent (no STATS/FINAL) this long. */
  silenceTimeoutMillis: field(Millis, 3000),
  endRetries: field(Schema.Int.pipe(Schema.between(1, 10)), 4),
  endRetryMillis: field(Millis, 250),
})
export type LossTestConfig = typeof LossTestConfig.Type

export const PathPingConfig = Schema.Struct({
  port: field(Port, 5124),
  count: field(Schema.Int.pipe(Schema.between(1, 100)), 10),
  intervalMillis: field(Millis, 100),
  /** Wait after the last send; count·interval + timeout must stay ≤ 5 s. */
  timeoutMillis: field(Millis, 1000),
})
export type PathPingConfig = typeof PathPingConfig.Type

export const ProbesConfig = Schema.Struct({
  echo: field(EchoProbeConfig, Schema.decodeSync(EchoProbeConfig)({})),
  icmp: field(IcmpProbeConfig, Schema.decodeSync(IcmpProbeConfig)({})),
  tcp: field(TcpProbeConfig, Schema.decodeSync(TcpProbeConfig)({})),
  lossTest: field(LossTestConfig, Schema.decodeSync(LossTestConfig)({})),
  pathPing: field(PathPingConfig, Schema.decodeSync(PathPingConfig)({})),
})
export type ProbesConfig = typeof ProbesConfig.Type
