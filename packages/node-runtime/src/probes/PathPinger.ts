/**
 * pathping: RTT and loss of a source-routed overlay path, and of every hop along it, in one run of
 * `count·interval + timeout` (default 10 × 100 ms + 1 s = 2 s, always ≤ 5 s).
 *
 * The path starts and ends at this site ([L, A, B, A, L] measures L→A→B and back over the same
 * tunnels). Per-hop figures come mtr-style: for each node i of the path the same run also sends
 * probes that turn back at i along the reverse of the path's prefix ([L, A, L], [L, A, B, A, L], …),
 * so hop i's RTT is the round trip to i over exactly the path's tunnels and the difference between
 * consecutive hops is that hop's share. Only the origin's clock is read; relays add their own
 * residence time (receive-to-send, stamped at the socket: see PathRelay) to the packet, and every
 * RTT reported here is the probe's round trip minus that sum: the network's, not the relays'
 * event loops'. The raw round trip and the mean residence are reported beside it, so a slow relay
 * is visible and the correction can be checked (raw = corrected + residence, probe by probe).
 * A relay of an older version adds its residence too (same wire format), only stamped later.
 */
import { randomInt } from "node:crypto"
import { PathSample, SiteId } from "@net-perf/engine"
import { Data, Duration, Effect } from "effect"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import { MAX_PATH_NODES, type PathPacket } from "../servers/Packets.js"
import type { PathRelay } from "../servers/PathRelay.js"
import type { PathPingConfig } from "./ProbeConfig.js"

export type PathFamily = 0 | 4 | 6

/** Round trip from the origin to one node of the path and back over the same tunnels. */
export interface HopResult {
  /** Index in the measured path of the node where these probes turned back. */
  readonly index: number
  readonly site: number
  readonly sent: number
  readonly received: number
  /** Mean round trip minus the relays' residence (the network's RTT). */
  readonly rttMs: number | null
  /** Mean round trip as timed at the origin, relays' residence included. */
  readonly rawRttMs: number | null
  /** Mean time these probes spent inside relays. */
  readonly relayResidenceMs: number | null
}

export interface PathResult {
  /** `rttMs`: mean round trip minus the relays' residence (the network's RTT). */
  readonly sample: PathSample
  /** Mean round trip as timed at the origin, relays' residence included (`sample.rttMs` + residence). */
  readonly rawRttMs: number | null
  /** Mean time the probes spent inside relays (subtracted from `sample.rttMs`, inside `rawRttMs`). */
  readonly relayResidenceMs: number | null
  readonly hops: ReadonlyArray<HopResult>
}

export class InvalidPath extends Data.TaggedError("InvalidPath")<{
  readonly path: ReadonlyArray<number>
  readonly reason: string
}> {}
export class PathRelayUnavailable extends Data.TaggedError("PathRelayUnavailable")<{ readonly reason: string }> {}

/** The loop that turns back at node `i` of `path`: the prefix to i, then the prefix reversed. */
export const turnBackLoop = (
  path: ReadonlyArray<number>,
  families: ReadonlyArray<PathFamily>,
  i: number,
): { path: Array<number>; families: Array<PathFamily> } => {
  const forward = path.slice(0, i + 1)
  const forwardFamilies = families.slice(0, i + 1)
  const back: Array<number> = []
  const backFamilies: Array<PathFamily> = []
  for (let j = i - 1; j >= 0; j--) {
    back.push(path[j]!)
    backFamilies.push(families[j + 1]!)
  }
  return { path: [...forward, ...back], families: [...forwardFamilies, ...backFamilies] }
}

const validate = (localSite: number, path: ReadonlyArray<number>, families: ReadonlyArray<PathFamily>) => {
  const bad = (reason: string) => Effect.fail(new InvalidPath({ path, reason }))
  if (path.length < 3) return bad("a path needs at least one other site: [L, R, L]")
  if (path.length > MAX_PATH_NODES) return bad(`more than ${MAX_PATH_NODES} nodes`)
  if (families.length !== path.length) return bad("one family per node is needed")
  if (path[0] !== localSite || path[path.length - 1] !== localSite) return bad("must start and end at this site")
  if (path.some((s) => !Number.isInteger(s) || s < 0 || s > 0xffff)) return bad("site ids must be 0..65535")
  return Effect.void
}

export const measurePath = (
  relay: PathRelay,
  localSite: number,
  path: ReadonlyArray<number>,
  families: ReadonlyArray<PathFamily>,
  config: PathPingConfig,
): Effect.Effect<PathResult, InvalidPath | PathRelayUnavailable, MeasurementMetrics> =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* validate(localSite, path, families)
      const metrics = yield* MeasurementMetrics
      const atMillis = Date.now()
      // Variant 0 is the whole path; then one turn-back loop per node it visits. A palindromic path
      // ([L, A, B, A, L]) is its own way back: only its first half is probed, the middle is the path.
      const palindrome = path.every(
        (site, k) => site === path[path.length - 1 - k] && (k === 0 || families[k] === families[path.length - k]),
      )
      const lastHop = palindrome ? (path.length - 1) / 2 : path.length - 2
      const variants: Array<{ path: Array<number>; families: Array<PathFamily> }> = [
        { path: [...path], families: [...families] },
      ]
      const variantOfHop = new Map<number, number>()
      for (let i = 1; i <= lastHop; i++) {
        if (palindrome && i === lastHop) {
          variantOfHop.set(i, 0)
          continue
        }
        const loop = turnBackLoop(path, families, i)
        if (loop.path.length > MAX_PATH_NODES) continue
        variantOfHop.set(i, variants.length)
        variants.push(loop)
      }
      const rtts = variants.map(() => [] as Array<number>)
      const residences = variants.map(() => [] as Array<number>)
      const expected = variants.length * config.count
      let received = 0
      const testId = randomInt(0, 2 ** 32)
      let allIn: (() => void) | undefined
      yield* relay.receive(testId, (p: PathPacket, arrivalNs) => {
        const variant = Math.floor(p.seq / config.count)
        const list = rtts[variant]
        const residence = residences[variant]
        if (list === undefined || residence === undefined) return
        list.push(Number(arrivalNs - p.sentNs) / 1e6)
        residence.push(p.residenceUs / 1000)
        received++
        if (received >= expected) allIn?.()
      })
      for (let round = 0; round < config.count; round++) {
        if (round > 0) yield* Effect.sleep(Duration.millis(config.intervalMillis))
        for (const [v, variant] of variants.entries()) {
          const ok = yield* relay.send({
            testId,
            seq: v * config.count + round,
            hop: 1,
            residenceUs: 0,
            path: variant.path,
            families: variant.families,
          })
          if (!ok) return yield* Effect.fail(new PathRelayUnavailable({ reason: "no pathping socket is bound" }))
        }
      }
      if (received < expected) {
        yield* Effect.async<void>((resume) => {
          const timer = setTimeout(() => resume(Effect.void), config.timeoutMillis)
          allIn = () => {
            clearTimeout(timer)
            resume(Effect.void)
          }
          return Effect.sync(() => clearTimeout(timer))
        })
      }
      const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length)
      // Probe by probe, so the corrected mean is exactly the raw mean minus the residence mean
      // (rounding of the µs field aside); never below 0 (the relays' clocks are not the origin's).
      const figures = (v: number) => {
        const raw = rtts[v] ?? []
        const residence = residences[v] ?? []
        return {
          received: Math.min(raw.length, config.count),
          rttMs: mean(raw.map((r, k) => Math.max(0, r - (residence[k] ?? 0)))),
          rawRttMs: mean(raw),
          relayResidenceMs: mean(residence),
        }
      }
      const whole = figures(0)
      const sample = new PathSample({
        path: path.map((s) => SiteId.make(s)),
        families: [...families],
        atMillis,
        rttMs: whole.rttMs,
        sent: config.count,
        received: whole.received,
      })
      const hops = [...variantOfHop.entries()].map(([index, v]) => ({
        index,
        site: path[index]!,
        sent: config.count,
        ...figures(v),
      }))
      const pathLabel = path.map((s, i) => (i === 0 ? String(s) : `${s}v${families[i]}`)).join("-")
      const hopLabels = [
        ...hops.map((h) => ({ hop: `${h.site}@${h.index}`, ...h })),
        { hop: "all", ...sample, rttMs: sample.rttMs },
      ]
      for (const h of hopLabels) {
        const labels = { path: pathLabel, hop: h.hop }
        metrics.pathLoss.labels(labels).set(1 - h.received / h.sent)
        if (h.rttMs === null) metrics.pathRtt.remove(labels)
        else metrics.pathRtt.labels(labels).set(h.rttMs / 1000)
      }
      return { sample, rawRttMs: whole.rawRttMs, relayResidenceMs: whole.relayResidenceMs, hops }
    }),
  )
