import { describe, expect, it } from "@effect/vitest"
import { type LossTestSample, RttSample, tunnelId } from "@net-perf/engine"
import { Effect, Either, Schema } from "effect"
import * as fc from "fast-check"
import { MeasurementMetrics } from "../../src/metrics/Metrics.js"
import {
  idleTrigger,
  onBurstDone,
  onDue,
  onSuspicion,
  runLossTrigger,
  type TriggerState,
} from "../../src/probes/LossTrigger.js"
import { LossTestConfig, LossTriggerConfig } from "../../src/probes/ProbeConfig.js"
import { makeAllowList } from "../../src/servers/Guard.js"
import { defaultProbeServerConfig, serveProbeServer } from "../../src/servers/ProbeServer.js"
import { startImpairmentRelay } from "./ImpairmentRelay.js"

const defaults = Schema.decodeSync(LossTriggerConfig)({})
const tunnel = tunnelId(1, 2, 4)

/**
 * Drives the pure policy through a timeline of suspicions, tunnel states and burst outcomes, the
 * way `runLossTrigger`'s fiber does (a burst takes `burstMillis`), and returns the burst starts.
 */
const simulate = (
  events: ReadonlyArray<{ readonly atMillis: number }>,
  up: (atMillis: number) => boolean,
  burstLoss: (startMillis: number) => number | null,
  estimate: (atMillis: number) => number,
  horizonMillis: number,
  burstMillis = 500,
): Array<number> => {
  const starts: Array<number> = []
  let state: TriggerState = idleTrigger(defaults)
  let runningUntil = Number.NEGATIVE_INFINITY
  let runningStart = 0
  const pending = [...events].sort((a, b) => a.atMillis - b.atMillis)
  for (let t = 0; t <= horizonMillis; t += 100) {
    if (runningUntil !== Number.NEGATIVE_INFINITY && t >= runningUntil) {
      state = onBurstDone(state, t, burstLoss(runningStart), estimate(t), defaults)
      runningUntil = Number.NEGATIVE_INFINITY
      // probes lost during the burst are dropped with it
      while (pending.length > 0 && (pending[0]?.atMillis ?? 0) <= t) pending.shift()
    }
    if (runningUntil !== Number.NEGATIVE_INFINITY) continue
    while (pending.length > 0 && (pending[0]?.atMillis ?? Number.POSITIVE_INFINITY) <= t) {
      pending.shift()
      if (state.dueAtMillis === null) state = onSuspicion(state, t, defaults)
    }
    if (state.dueAtMillis !== null && t >= state.dueAtMillis) {
      const due = onDue(state, t, up(t), defaults)
      state = due.state
      if (due.start) {
        starts.push(t)
        runningStart = t
        runningUntil = t + burstMillis
      }
    }
  }
  return starts
}

const suspicions = fc.array(fc.record({ atMillis: fc.integer({ min: 0, max: 600_000 }) }), { maxLength: 200 })

describe("loss trigger policy", () => {
  it("never exceeds its token bucket: in any window W at most burstTokens + W/minGap bursts", () => {
    fc.assert(
      fc.property(
        suspicions,
        fc.func(fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null })),
        fc.func(fc.double({ min: 0, max: 0.2, noNaN: true })),
        (events, loss, estimate) => {
          const starts = simulate(events, () => true, loss, estimate, 600_000)
          for (let i = 0; i < starts.length; i++)
            for (let j = i; j < starts.length; j++) {
              const windowMillis = (starts[j] ?? 0) - (starts[i] ?? 0)
              expect(j - i + 1).toBeLessThanOrEqual(defaults.burstTokens + windowMillis / defaults.minGapMillis + 1e-9)
            }
          // the long-run budget that follows: ≤ one burst per minGap (+ the bucket)
          expect(starts.length).toBeLessThanOrEqual(Math.floor(600_000 / defaults.minGapMillis) + defaults.burstTokens)
        },
      ),
      { numRuns: 200 },
    )
  })

  it("costs nothing without a suspicion, and nothing on a tunnel that is not up", () => {
    fc.assert(
      fc.property(suspicions, (events) => {
        expect(
          simulate(
            [],
            () => true,
            () => 0.05,
            () => 0.05,
            600_000,
          ),
        ).toEqual([])
        expect(
          simulate(
            events,
            () => false,
            () => 0.05,
            () => 0.05,
            600_000,
          ),
        ).toEqual([])
      }),
      { numRuns: 100 },
    )
  })

  it("a tunnel that dies within the grace time gets no burst", () => {
    // lost probe at 10 s, dead from 10.3 s (the echo's three misses)
    expect(
      simulate(
        [{ atMillis: 10_000 }],
        (t) => t < 10_300,
        () => 0,
        () => 0,
        60_000,
      ),
    ).toEqual([])
  })

  it("bursts graceMillis after the first suspicion, repeats while lossy, stops on a clean burst", () => {
    // 5 % loss from 10 s to 40 s; the first lost probe at 12 s
    const lossy = (t: number) => t >= 10_000 && t < 40_000
    const starts = simulate(
      [{ atMillis: 12_000 }, { atMillis: 12_300 }, { atMillis: 15_000 }],
      () => true,
      (start) => (lossy(start) ? 0.05 : 0),
      () => 0,
      120_000,
    )
    expect(starts[0]).toBe(12_000 + defaults.graceMillis)
    // the first lossy burst (ends 13.1 s) is confirmed 2 s later, then repeats every minGap through
    // the lossy period; one clean burst after the repair ends the series
    expect(starts).toEqual([12_600, 15_100, 25_100, 35_100, 45_100])
  })

  it("keeps repeating while the engine's estimate is high, up to maxSeriesBursts", () => {
    const starts = simulate(
      [{ atMillis: 1000 }],
      () => true,
      () => 0,
      () => 0.02,
      600_000,
    )
    expect(starts.length).toBe(defaults.maxSeriesBursts)
  })

  it("backs off after failed bursts: minGap, doubling up to failureBackoffMillis; a success resets it", () => {
    const everySecond = Array.from({ length: 300 }, (_, i) => ({ atMillis: i * 1000 }))
    const failing = simulate(
      everySecond,
      () => true,
      () => null,
      () => 0,
      300_000,
    )
    // bursts take 500 ms; back-offs 10, 20, 40, 60, 60, 60 s after each end
    expect(failing).toEqual([600, 11_100, 31_600, 72_100, 132_600, 193_100, 253_600])
    const onceFailing = simulate(
      everySecond,
      () => true,
      (start) => (start < 1000 ? null : 0.05),
      () => 0,
      60_000,
    )
    // after the failure (back-off 10 s): a lossy burst, its confirmation 2 s later, then every minGap
    expect(onceFailing.slice(0, 4)).toEqual([600, 11_100, 13_600, 23_600])
  })
})

const testPort = () => 20000 + Math.floor(Math.random() * 30000)
const allowLoopback = Either.getOrThrow(makeAllowList(["127.0.0.0/8"]))

const until = (cond: () => boolean, timeoutMillis: number) =>
  Effect.promise(async () => {
    const start = performance.now()
    while (!cond() && performance.now() - start < timeoutMillis) await new Promise((r) => setTimeout(r, 10))
    return performance.now() - start
  })

describe("loss trigger over real sockets", () => {
  it.scopedLive(
    "a lost probe starts a burst that measures the loss; repeats while lossy; a repair ends the series",
    () =>
      Effect.gen(function* () {
        const port = testPort()
        yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback), port })
        const relay = yield* startImpairmentRelay({
          listenAddress: "127.0.0.6",
          listenPort: port,
          targetAddress: "127.0.0.1",
          targetPort: port,
        })
        const samples: Array<{ sample: LossTestSample; atMs: number }> = []
        let up = true
        let estimate = 0
        let silences = 0
        let lossFound = 0
        const lock = yield* Effect.makeSemaphore(1)
        const config = { ...defaults, minGapMillis: 1500, graceMillis: 200 }
        const trigger = yield* runLossTrigger(
          tunnel,
          { localAddress: "127.0.0.1", remoteAddress: "127.0.0.6" },
          Schema.decodeSync(LossTestConfig)({ port }),
          config,
          (s) => {
            samples.push({ sample: s, atMs: performance.now() })
            estimate = (s.sent - s.received) / s.sent
          },
          { isUp: () => up, lossRatio: () => estimate, peerSilences: () => silences },
          lock,
          () => lossFound++,
        )
        const reply = (rttMs: number | null, kind: "udp-echo" | "icmp" = "udp-echo") =>
          RttSample.make({ tunnel, kind, atMillis: Date.now(), rttMs })

        // Lossless and nothing lost: no burst at all.
        for (let i = 0; i < 10; i++) trigger.observe(reply(10))
        yield* Effect.sleep("2 seconds")
        expect(samples.length).toBe(0)

        // 5 % loss; one lost ICMP probe: a burst 200 ms later, 200 packets, loss seen.
        relay.impairment.lossRatio = 0.05
        const suspectedAt = performance.now()
        trigger.observe(reply(null, "icmp"))
        yield* until(() => samples.length >= 1, 5000)
        expect(samples.length).toBe(1)
        const first = samples[0]!
        expect(first.sample.sent).toBe(200)
        expect(first.atMs - suspectedAt).toBeLessThan(2000)
        // 200 packets at 5 %: 10 expected, P(< 3 lost) ≈ 0.2 %
        expect(first.sample.sent - first.sample.received).toBeGreaterThanOrEqual(3)

        // it repeats (no new suspicion needed) while lossy, spaced by minGap
        yield* until(() => samples.length >= 2, 5000)
        expect(samples.length).toBeGreaterThanOrEqual(2)
        expect(samples[1]!.atMs - first.atMs).toBeGreaterThanOrEqual(1400)
        // the first lossy burst of the series told the sibling tunnel, once
        expect(lossFound).toBe(1)

        // repaired: the next burst is clean and the series stops
        relay.impairment.lossRatio = 0
        yield* until(() => samples.length >= 1 && samples[samples.length - 1]!.sample.received === 200, 8000)
        const settled = samples.length
        yield* Effect.sleep("4 seconds")
        expect(samples.length).toBe(settled)

        // a missed peer request is a suspicion too
        silences++
        trigger.observe(reply(10))
        yield* until(() => samples.length > settled, 5000)
        expect(samples.length).toBe(settled + 1)

        // a suspicion from outside (the sibling tunnel found loss)
        yield* Effect.sleep("1600 millis")
        trigger.suspect("test")
        yield* until(() => samples.length > settled + 1, 5000)
        expect(samples.length).toBe(settled + 2)

        // a tunnel that is down: lost probes (and outside suspicions) start nothing
        up = false
        yield* Effect.sleep("2 seconds")
        const beforeDown = samples.length
        trigger.observe(reply(null))
        trigger.observe(reply(null))
        trigger.suspect("test")
        yield* Effect.sleep("3 seconds")
        expect(samples.length).toBe(beforeDown)
        expect(trigger.stats().ignoredDown).toBe(2)
        expect(trigger.stats().failed).toBe(0)
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    60_000,
  )

  it.scopedLive(
    "bursts of different tunnels share the daemon's slots (maxConcurrentBursts 1: one at a time)",
    () =>
      Effect.gen(function* () {
        const port = testPort()
        yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback), port })
        const slots = yield* Effect.makeSemaphore(1)
        const spans: Array<{ startMs: number; endMs: number }> = []
        const triggers = yield* Effect.forEach(["127.0.0.7", "127.0.0.8", "127.0.0.9"], (address) =>
          Effect.gen(function* () {
            yield* startImpairmentRelay({
              listenAddress: address,
              listenPort: port,
              targetAddress: "127.0.0.1",
              targetPort: port,
            })
            return yield* runLossTrigger(
              tunnel,
              { localAddress: "127.0.0.1", remoteAddress: address },
              Schema.decodeSync(LossTestConfig)({ port }),
              { ...defaults, graceMillis: 0 },
              (s) => spans.push({ startMs: s.atMillis, endMs: Date.now() }),
              { isUp: () => true, lossRatio: () => 0, peerSilences: () => 0 },
              yield* Effect.makeSemaphore(1),
              undefined,
              slots,
            )
          }),
        )
        for (const t of triggers) t.suspect("test")
        yield* until(() => spans.length >= 3, 10_000)
        expect(spans.length).toBe(3)
        spans.sort((a, b) => a.startMs - b.startMs)
        for (let i = 1; i < spans.length; i++) expect(spans[i]!.startMs).toBeGreaterThanOrEqual(spans[i - 1]!.endMs - 5)
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    30_000,
  )

  it.scopedLive(
    "symptoms that turn out to be late, not lost, by the time the burst is due cost no burst",
    () =>
      Effect.gen(function* () {
        const port = testPort()
        yield* serveProbeServer({ ...defaultProbeServerConfig(["127.0.0.1"], allowLoopback), port })
        const samples: Array<LossTestSample> = []
        let silences = 0
        let lateRequests = 0
        const trigger = yield* runLossTrigger(
          tunnel,
          { localAddress: "127.0.0.1", remoteAddress: "127.0.0.1" },
          Schema.decodeSync(LossTestConfig)({ port }),
          { ...defaults, graceMillis: 300, minGapMillis: 1000 },
          (s) => samples.push(s),
          {
            isUp: () => true,
            lossRatio: () => 0,
            peerSilences: () => silences,
            peerLateRequests: () => lateRequests,
          },
          yield* Effect.makeSemaphore(1),
        )
        const echo = (atMillis: number, rttMs: number | null) =>
          RttSample.make({ tunnel, kind: "udp-echo", atMillis, rttMs })
        // A lost echo probe whose reply comes 150 ms later: no burst.
        trigger.observe(echo(1000, null))
        yield* Effect.sleep("150 millis")
        trigger.observe(echo(1000, 180))
        yield* Effect.sleep("700 millis")
        expect(samples.length).toBe(0)
        expect(trigger.stats().explainedLate).toBe(1)
        // A missed peer request that arrives late: no burst.
        silences++
        trigger.observe(echo(2000, 1))
        yield* Effect.sleep("100 millis")
        lateRequests++
        yield* Effect.sleep("700 millis")
        expect(samples.length).toBe(0)
        expect(trigger.stats().explainedLate).toBe(2)
        // A lost probe that stays lost, and a missed peer request that never comes: a burst each.
        yield* Effect.sleep("1 second")
        trigger.observe(echo(3000, null))
        yield* until(() => samples.length >= 1, 3000)
        expect(samples.length).toBe(1)
        yield* Effect.sleep("1500 millis")
        silences++
        trigger.observe(echo(4000, 1))
        yield* until(() => samples.length >= 2, 3000)
        expect(samples.length).toBe(2)
        expect(trigger.stats().explainedLate).toBe(2)
      }).pipe(Effect.provide(MeasurementMetrics.Default)),
    20_000,
  )
})
