/**
 * RTT samples built without the Schema class constructor. `new RttSample(fields, true)` skips
 * validation but still runs the class machinery (defaults merge, Data structural setup): ≈ 4 µs per
 * sample, where the daemon's plane makes ≈ 250 samples/s at 100 tunnels and the model simulator
 * ≈ 6 400 per simulated second at N = 200. A probe's fields are known good
 * (numbers it measured itself), so the instance is assembled directly: same prototype, same own
 * fields in the constructor's order (same hidden class), so `Equal`, `Schema.is` and encoding see
 * exactly what the constructor gives (property-tested in test/probes/Samples.test.ts).
 */
import { type RttProbeKind, RttSample, type TunnelId } from "./Domain.js"

const prototype: object = Object.getPrototypeOf(
  new RttSample({ tunnel: { local: 0, remote: 1, family: 4 } as TunnelId, kind: "udp-echo", atMillis: 0, rttMs: 0 }),
)

/** An `RttSample` (rttMs null = lost), as `new RttSample({...}, true)` builds it, ≈ 40× cheaper. */
export const rttSample = (tunnel: TunnelId, kind: RttProbeKind, atMillis: number, rttMs: number | null): RttSample => {
  const s = Object.create(prototype) as { -readonly [K in keyof RttSample]: RttSample[K] }
  s.tunnel = tunnel
  s.kind = kind
  s.atMillis = atMillis
  s.rttMs = rttMs
  s._tag = "RttSample"
  return s as RttSample
}
