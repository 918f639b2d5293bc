/**
 * A userspace UDP relay on loopback that delays and drops datagrams per direction, or blackholes
 * them: the documented impairment for probe tests and benches while the twin's link emulator is not
 * available (no sch_netem on this kernel). Delays are released on the monotonic clock (a coarse timer
 * then a setImmediate spin), and the relay records the delay it really applied, so accuracy figures
 * compare a probe against what was injected, not against what was asked for.
 */
import * as dgram from "node:dgram"
import { mulberry32 } from "@net-perf/engine"
import { Effect, type Scope } from "effect"
import { bindUdp } from "../../src/servers/Udp.js"

export interface Impairment {
  delayMs: number
  lossRatio: number
  blackhole: boolean
}

export interface RelayHandle {
  readonly impairment: Impairment
  /** Mean delay really applied per direction (ms) and datagrams seen/dropped since the last reset. */
  readonly stats: () => { appliedDelayMs: number | null; forwarded: number; dropped: number }
  readonly reset: () => void
}

const SPIN_MARGIN_NS = 1_500_000n

export const startImpairmentRelay = (options: {
  readonly listenAddress: string
  readonly listenPort: number
  readonly targetAddress: string
  readonly targetPort: number
  readonly impairment?: Partial<Impairment>
  /**
   * Seed of the loss draws (default 1). Seeded, so an assertion on a loss count (≥ 3 of 200 lost at
   * 5 %: one run in ≈ 400 failed with Math.random) does not fail by chance from one run to the next.
   */
  readonly seed?: number
}): Effect.Effect<RelayHandle, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const impairment: Impairment = { delayMs: 0, lossRatio: 0, blackhole: false, ...options.impairment }
    const front = yield* bindUdp(options.listenAddress, options.listenPort)
    const upstreams = new Map<string, dgram.Socket>()
    let appliedSumNs = 0n
    let applied = 0
    let forwarded = 0
    let dropped = 0
    // Datagrams still held back when the relay closes are dropped: sending them on a closed socket
    // throws from a timer, outside any test.
    let closed = false
    const release = (arrivalNs: bigint, send: () => void) => {
      const deadline = arrivalNs + BigInt(Math.round(impairment.delayMs * 1e6))
      const done = () => {
        if (closed) return
        appliedSumNs += process.hrtime.bigint() - arrivalNs
        applied++
        forwarded++
        send()
      }
      const spin = () => (process.hrtime.bigint() >= deadline ? done() : setImmediate(spin))
      const coarseNs = deadline - process.hrtime.bigint() - SPIN_MARGIN_NS
      if (coarseNs > 0n) setTimeout(spin, Number(coarseNs / 1_000_000n))
      else spin()
    }
    const draw = mulberry32(options.seed ?? 1)
    const pass = () => {
      if (impairment.blackhole || draw() < impairment.lossRatio) {
        dropped++
        return false
      }
      return true
    }
    front.on("message", (msg, rinfo) => {
      const arrivalNs = process.hrtime.bigint()
      const key = `${rinfo.address}|${rinfo.port}`
      let up = upstreams.get(key)
      if (up === undefined) {
        const socket = dgram.createSocket("udp4")
        socket.bind({ address: options.listenAddress, port: 0 })
        socket.on("error", () => {})
        socket.on("message", (reply) => {
          const replyArrivalNs = process.hrtime.bigint()
          if (pass()) release(replyArrivalNs, () => front.send(reply, rinfo.port, rinfo.address))
        })
        upstreams.set(key, socket)
        up = socket
      }
      const upstream = up
      if (pass()) release(arrivalNs, () => upstream.send(msg, options.targetPort, options.targetAddress))
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const s of upstreams.values()) s.close()
      }),
    )
    return {
      impairment,
      stats: () => ({
        appliedDelayMs: applied === 0 ? null : Number(appliedSumNs / BigInt(applied)) / 1e6,
        forwarded,
        dropped,
      }),
      reset: () => {
        appliedSumNs = 0n
        applied = 0
        forwarded = 0
        dropped = 0
      },
    }
  })
