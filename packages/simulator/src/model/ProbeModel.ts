/**
 * What a real prober would see of the truth: the fast UDP echo, a periodic loss test, and pathping
 * over multi-hop cycles. The echo mirrors the daemon's EchoProber (node-runtime
 * `probes/EchoProber.ts`, defaults from its ProbeConfig): one probe per interval; a probe
 * unanswered after the miss timeout clamp(1.5·srtt + 4·rttvar, min, max) starts a burst (one probe
 * per `burstIntervalMillis`) until a reply or `deadAfterMisses` misses; burst probes are paid back
 * by stretching the interval ×1.5; a probe unanswered at its miss timeout reaches the engine as
 * lost at that moment, stamped with its send time, and a late reply still arrives as a sample (the
 * daemon's behaviour since 16:10; before, losses were reported after a fixed 2 s, which made the
 * model's failure reaction ~2 s slower than the daemon's). A reply slower than `lossTimeoutMillis`
 * never arrives. RTTs carry the links' jitter plus host timing
 * noise; a probe is lost when either direction drops it or is down.
 */
import type { ModelNetwork } from "./ModelNetwork.js"
import type { Prng } from "./Prng.js"

export interface ProbeModelConfig {
  readonly intervalMillis: number
  /**
   * Random spread of each regular interval, ±ratio (0 = the daemon today: exactly one interval,
   * which can alias with a periodic impairment of the same period; see README).
   */
  readonly intervalJitterRatio: number
  readonly burstIntervalMillis: number
  /** Misses in a row after which the burst stops (the engine's dead-after-k). */
  readonly deadAfterMisses: number
  readonly minMissTimeoutMillis: number
  readonly maxMissTimeoutMillis: number
  /** A reply slower than this never arrives (the prober has forgotten the probe). */
  readonly lossTimeoutMillis: number
  /** Standard deviation of host timestamping noise added to each RTT, ms. */
  readonly timingNoiseMs: number
  /** Period of the loss test per tunnel; 0 turns it off. */
  readonly lossTestIntervalMillis: number
  readonly lossTestPackets: number
  /** Packets per pathping measurement. */
  readonly pathProbePackets: number
}

export const defaultProbeModelConfig: ProbeModelConfig = {
  intervalMillis: 1000,
  intervalJitterRatio: 0,
  burstIntervalMillis: 100,
  deadAfterMisses: 3,
  minMissTimeoutMillis: 100,
  maxMissTimeoutMillis: 1000,
  lossTimeoutMillis: 2000,
  timingNoiseMs: 0.05,
  lossTestIntervalMillis: 60_000,
  lossTestPackets: 100,
  pathProbePackets: 5,
}

/** One-way transit of one packet over a link at t: delay in ms, or null when it is dropped. */
export const transitMs = (net: ModelNetwork, link: number, tMillis: number, prng: Prng): number | null => {
  if (net.linkUp[link] !== 1) return null
  const truth = net.truths[link]!
  const loss = truth.lossRatio(tMillis)
  if (loss > 0 && prng.next() < loss) return null
  const jitterMs = truth.jitterMs(tMillis)
  const base = truth.latencyMs(tMillis)
  return jitterMs > 0 ? Math.max(0.5 * base, base + jitterMs * prng.normal()) : base
}

/** Outcome of one echo over (local → remote, family): RTT in ms, or null when lost / timed out. */
export const echoRttMs = (
  net: ModelNetwork,
  forwardLink: number,
  reverseLink: number,
  tMillis: number,
  prng: Prng,
  config: ProbeModelConfig,
): number | null => {
  const there = transitMs(net, forwardLink, tMillis, prng)
  if (there === null) return null
  const back = transitMs(net, reverseLink, tMillis + there, prng)
  if (back === null) return null
  const rtt = there + back + Math.abs(config.timingNoiseMs * prng.normal())
  return rtt > config.lossTimeoutMillis ? null : rtt
}

/** Received count of a one-way loss test of `packets` over `link`. */
export const lossTestReceived = (
  net: ModelNetwork,
  link: number,
  tMillis: number,
  packets: number,
  prng: Prng,
): number => {
  if (net.linkUp[link] !== 1) return 0
  const loss = net.truths[link]!.lossRatio(tMillis)
  if (loss <= 0) return packets
  let received = 0
  for (let i = 0; i < packets; i++) if (prng.next() >= loss) received++
  return received
}
