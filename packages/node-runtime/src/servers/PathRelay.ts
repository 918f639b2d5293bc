/**
 * The 5124/udp pathping relay. A PATH packet carries its whole route (site ids and, per hop, the
 * family of the tunnel to take: 4/6 = that tunnel's probe endpoint, 0 = the site's router address,
 * i.e. follow kernel routing). Each relay checks it is the node the packet is addressed to, adds its
 * own receive-to-send residence time to the packet, and forwards to the next node; the origin
 * (first = last node) hands returning packets to the waiting measurement, which subtracts the
 * relays' summed residence from the round trip. One datagram in, at most one of the same size out,
 * sources on the allow list only: the relay cannot amplify or reach outside the mesh.
 *
 * Receive stamps: in the main loop the stamp is the first thing the datagram's callback does, so
 * the wait behind a busy event loop (timers, gRPC, GC) before the callback runs is not residence
 * and stays in the path RTT. With `stampThread: true` (or NET_PERF_PATHPING_STAMP_THREAD=1) the
 * sockets live in a small worker thread whose event loop does nothing else: it stamps arrivals at
 * once and, when sending, writes the origin's send time or adds the residence right before
 * `send`, so such a stall counts as residence (the relay test blocks the loop 60 ms: all of it
 * leaves the RTT). Validation, the allow list, rate limits and routing stay in the main thread.
 * The thread costs ≈ 10 MB RSS and its two thread hops per relay add ≈ 0.5 ms of raw RTT that it
 * then subtracts. Off here unless asked for; the daemon asks (`probes.pathPing.stampThread`, default
 * true): in the 6-site twin at load 2–6 main-loop stamps left pathping at 1.33× the kernel-answered
 * ping between the same routers, the thread 0.93× (4-site twins had shown no difference).
 */
import type * as dgram from "node:dgram"
import { Worker } from "node:worker_threads"
import { Deferred, Duration, Effect, Either, Option, Schedule, type Scope, SynchronizedRef } from "effect"
import type { Addressing } from "../discovery/Addressing.js"
import { MeasurementMetrics } from "../metrics/Metrics.js"
import { makeRateLimiter, type RateLimitConfig } from "./Guard.js"
import { decodePath, encodePath, PATH_RESIDENCE_US_OFFSET, PATH_SENT_NS_OFFSET, type PathPacket } from "./Packets.js"
import { bindUdp, UdpBindFailed, udpSocketType } from "./Udp.js"

export interface PathRelayConfig {
  readonly localSite: number
  readonly bindAddresses: ReadonlyArray<string>
  readonly port: number
  readonly addressing: Addressing
  readonly allow: (address: string) => boolean
  readonly rateLimit: RateLimitConfig
  readonly rebindIntervalMillis: number
  /** Sockets in a dedicated stamping thread (default false unless NET_PERF_PATHPING_STAMP_THREAD=1). */
  readonly stampThread?: boolean
  /**
   * Run the stamping thread under SCHED_FIFO at this priority (1–99; 0 or absent: normal). A thread
   * that waits its turn behind busy processes stamps an arrival late, and that wait counts as
   * network RTT; under FIFO it wakes at once. Needs CAP_SYS_NICE: without it the thread stays at
   * normal priority and `stampPriority` says why.
   */
  readonly stampFifoPriority?: number
}

export interface PathRelay {
  /**
   * Sends an origin packet to its `hop`-th node from a bound relay socket; false if none is bound
   * yet. The send time is stamped at the socket, right before the datagram leaves.
   */
  readonly send: (packet: Omit<PathPacket, "_tag" | "sentNs">) => Effect.Effect<boolean>
  /** Registers the receiver of packets of `testId` that come back to this site, for the scope's life. */
  readonly receive: (
    testId: number,
    onPacket: (p: PathPacket, arrivalNs: bigint) => void,
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Whether arrivals are stamped in the dedicated thread (false: in the main event loop). */
  readonly stampsInThread: boolean
  /** The stamping thread's scheduling, once known. */
  readonly stampPriority: Effect.Effect<StampScheduling>
}

export interface StampScheduling {
  /** `SCHED_FIFO N`, `normal`, `normal (<why the raise failed>)`, or `main loop` without the thread. */
  readonly description: string
  /** A raise to SCHED_FIFO was asked for and did not happen. */
  readonly raiseFailed: boolean
}

/**
 * Sets the origin's send time (`arrivalNs` undefined) or adds this relay's residence since
 * `arrivalNs` (microseconds, saturating) in an encoded PATH datagram, at `nowNs`. The stamping
 * thread runs the same arithmetic from `STAMP_THREAD_SOURCE`; the relay test runs both modes.
 */
export const stampPathDatagram = (buf: Buffer, nowNs: bigint, arrivalNs: bigint | undefined): void => {
  if (arrivalNs === undefined) {
    buf.writeBigUInt64BE(nowNs, PATH_SENT_NS_OFFSET)
    return
  }
  const residenceUs = Math.max(0, Number(nowNs - arrivalNs) / 1000)
  const sumUs = buf.readUInt32BE(PATH_RESIDENCE_US_OFFSET) + Math.round(residenceUs)
  buf.writeUInt32BE(Math.min(0xffffffff, sumUs), PATH_RESIDENCE_US_OFFSET)
}

/** One bound relay socket, whichever thread owns it. */
interface RelaySocket {
  readonly send: (buf: Buffer, port: number, address: string, arrivalNs: bigint | undefined) => void
}
type OnDatagram = (msg: Buffer, address: string, arrivalNs: bigint) => void
interface ThreadSocket extends RelaySocket {
  readonly id: number
}

// CommonJS source of the stamping thread (eval'd, so it survives any bundling of the daemon).
// Messages in: bind {id, type, address, port} | send {id, buf, port, address, arrivalNs?} | close {id}.
// Messages out: bound {id} | bindFailed {id, message} | datagram {id, msg, address, arrivalNs}.
const STAMP_THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const dgram = require("node:dgram")
const { sentOffset, residenceOffset, fifoPriority } = workerData
const sockets = new Map()
if (fifoPriority > 0) {
  let outcome
  try {
    const tid = require("node:fs").readlinkSync("/proc/thread-self").split("/").pop()
    require("node:child_process").execFileSync("chrt", ["-f", "-p", String(fifoPriority), tid], { stdio: ["ignore", "ignore", "pipe"], timeout: 5000 })
    outcome = { op: "priority", ok: true }
  } catch (e) {
    outcome = { op: "priority", ok: false, message: String((e && e.stderr && e.stderr.length > 0 ? e.stderr : e && e.message) || e).trim() }
  }
  parentPort.postMessage(outcome)
}
parentPort.on("message", (m) => {
  if (m.op === "send") {
    const s = sockets.get(m.id)
    if (s === undefined) return
    const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength)
    const now = process.hrtime.bigint()
    if (m.arrivalNs === undefined) buf.writeBigUInt64BE(now, sentOffset)
    else {
      const residenceUs = Math.max(0, Number(now - m.arrivalNs) / 1000)
      const sumUs = buf.readUInt32BE(residenceOffset) + Math.round(residenceUs)
      buf.writeUInt32BE(Math.min(0xffffffff, sumUs), residenceOffset)
    }
    try { s.send(buf, m.port, m.address) } catch {}
  } else if (m.op === "bind") {
    const s = dgram.createSocket({ type: m.type, reuseAddr: false })
    const onError = (e) => {
      try { s.close() } catch {}
      parentPort.postMessage({ op: "bindFailed", id: m.id, message: String((e && e.message) || e) })
    }
    s.once("error", onError)
    s.on("message", (msg, rinfo) => {
      const arrivalNs = process.hrtime.bigint()
      parentPort.postMessage({ op: "datagram", id: m.id, msg, address: rinfo.address, arrivalNs })
    })
    s.bind({ address: m.address, port: m.port, exclusive: true }, () => {
      s.off("error", onError)
      s.on("error", () => {})
      sockets.set(m.id, s)
      parentPort.postMessage({ op: "bound", id: m.id })
    })
  } else if (m.op === "close") {
    const s = sockets.get(m.id)
    sockets.delete(m.id)
    if (s !== undefined) try { s.close() } catch {}
  }
})
`

type FromThread =
  | { readonly op: "priority"; readonly ok: boolean; readonly message?: string }
  | { readonly op: "bound"; readonly id: number }
  | { readonly op: "bindFailed"; readonly id: number; readonly message: string }
  | {
      readonly op: "datagram"
      readonly id: number
      readonly msg: Uint8Array
      readonly address: string
      readonly arrivalNs: bigint
    }

/** The stamping thread for the scope's life; binds sockets in it. */
const makeStampThread = (fifoPriority: number) =>
  Effect.gen(function* () {
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const w = new Worker(STAMP_THREAD_SOURCE, {
          eval: true,
          workerData: { sentOffset: PATH_SENT_NS_OFFSET, residenceOffset: PATH_RESIDENCE_US_OFFSET, fifoPriority },
          stdout: false,
          stderr: false,
        })
        w.unref()
        return w
      }),
      (w) => Effect.promise(() => w.terminate()).pipe(Effect.ignore),
    )
    const pending = new Map<number, (failure: string | undefined) => void>()
    const handlers = new Map<number, OnDatagram>()
    let nextId = 1
    let exited: string | undefined
    /** Completed with the reason when the thread is gone (its sockets closed with it). */
    const gone = yield* Deferred.make<string>()
    const priority = yield* Deferred.make<StampScheduling>()
    const settle = (description: string, raiseFailed: boolean) =>
      Deferred.unsafeDone(priority, Effect.succeed({ description, raiseFailed }))
    if (!(fifoPriority > 0)) settle("normal", false)
    worker.on("message", (m: FromThread) => {
      if (m.op === "priority") settle(m.ok ? `SCHED_FIFO ${fifoPriority}` : `normal (${m.message})`, !m.ok)
      else if (m.op === "datagram")
        handlers.get(m.id)?.(Buffer.from(m.msg.buffer, m.msg.byteOffset, m.msg.byteLength), m.address, m.arrivalNs)
      else pending.get(m.id)?.(m.op === "bindFailed" ? m.message : undefined)
    })
    const onGone = (reason: string) => {
      exited = reason
      Deferred.unsafeDone(gone, Effect.succeed(reason))
      settle("normal (thread gone)", true)
      for (const resolve of pending.values()) resolve(reason)
      pending.clear()
    }
    worker.on("error", (e) => onGone(`stamping thread failed: ${String(e)}`))
    worker.on("exit", (code) => onGone(`stamping thread exited (${code})`))

    const bind = (address: string, port: number, onDatagram: OnDatagram) =>
      Effect.acquireRelease(
        Effect.async<ThreadSocket, UdpBindFailed>((resume) => {
          if (exited !== undefined) return resume(Effect.fail(new UdpBindFailed({ address, port, cause: exited })))
          const id = nextId++
          pending.set(id, (failure) => {
            pending.delete(id)
            if (failure !== undefined) return resume(Effect.fail(new UdpBindFailed({ address, port, cause: failure })))
            handlers.set(id, onDatagram)
            resume(
              Effect.succeed({
                id,
                send: (buf: Buffer, toPort: number, toAddress: string, arrivalNs: bigint | undefined) =>
                  worker.postMessage({ op: "send", id, buf, port: toPort, address: toAddress, arrivalNs }),
              }),
            )
          })
          worker.postMessage({ op: "bind", id, type: udpSocketType(address), address, port })
        }),
        (socket) =>
          Effect.sync(() => {
            handlers.delete(socket.id)
            if (exited === undefined) worker.postMessage({ op: "close", id: socket.id })
          }),
      )
    return { bind, gone, priority, isGone: () => exited !== undefined }
  })

/** A socket in the main event loop: stamps as early as its callback runs. */
const bindInMainLoop = (address: string, port: number, onDatagram: OnDatagram) =>
  Effect.map(bindUdp(address, port), (socket: dgram.Socket): RelaySocket => {
    socket.on("message", (msg, rinfo) => onDatagram(msg, rinfo.address, process.hrtime.bigint()))
    return {
      send: (buf, toPort, toAddress, arrivalNs) => {
        stampPathDatagram(buf, process.hrtime.bigint(), arrivalNs)
        socket.send(buf, toPort, toAddress)
      },
    }
  })

export const makePathRelay = (
  config: PathRelayConfig,
): Effect.Effect<PathRelay, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const invalid = metrics.invalid.labels({ server: "pathping" })
    const notAllowed = metrics.denied.labels({ server: "pathping", reason: "not_allowed" })
    const rateLimited = metrics.denied.labels({ server: "pathping", reason: "rate_limited" })
    const admit = makeRateLimiter(config.rateLimit)
    const receivers = new Map<number, (p: PathPacket, arrivalNs: bigint) => void>()
    const sockets = yield* SynchronizedRef.make<ReadonlyArray<RelaySocket>>([])
    const stampsInThread = config.stampThread ?? process.env.NET_PERF_PATHPING_STAMP_THREAD === "1"
    const thread = stampsInThread ? yield* makeStampThread(config.stampFifoPriority ?? 0) : undefined

    // `arrivalNs` undefined: an origin packet (the socket stamps its send time).
    const forward = (socket: RelaySocket, p: Omit<PathPacket, "_tag">, arrivalNs: bigint | undefined) => {
      const site = p.path[p.hop]
      const family = p.families[p.hop]
      if (site === undefined || family === undefined) return
      socket.send(encodePath(p), config.port, config.addressing.address(site, family), arrivalNs)
    }

    const onDatagram =
      (socket: () => RelaySocket | undefined): OnDatagram =>
      (msg, address, arrivalNs) => {
        if (!config.allow(address)) return notAllowed.inc()
        if (!admit(address)) return rateLimited.inc()
        const decoded = decodePath(msg)
        if (Either.isLeft(decoded)) return invalid.inc()
        const p = decoded.right
        if (p.path[p.hop] !== config.localSite || p.hop === 0) return invalid.inc()
        if (p.hop === p.path.length - 1) {
          receivers.get(p.testId)?.(p, arrivalNs)
          return
        }
        const s = socket()
        if (s !== undefined) forward(s, { ...p, hop: p.hop + 1 }, arrivalNs)
      }

    // Returns once every address had its first bind attempt, so a caller can use the relay at once.
    const firstAttempts = yield* Effect.forEach(config.bindAddresses, (address) =>
      Effect.gen(function* () {
        const attempted = yield* Deferred.make<void>()
        yield* Effect.scoped(
          Effect.gen(function* () {
            let self: RelaySocket | undefined
            const handler = onDatagram(() => self)
            // A stamping thread that died (it should not: it catches its own errors) closed its
            // sockets: rebind in the main loop rather than lose the relay.
            const inThread = thread !== undefined && !(yield* Deferred.isDone(thread.gone))
            const socket = yield* (
              inThread ? thread.bind(address, config.port, handler) : bindInMainLoop(address, config.port, handler)
            ).pipe(Effect.ensuring(Deferred.succeed(attempted, undefined)))
            self = socket
            yield* Effect.acquireRelease(
              SynchronizedRef.update(sockets, (all) => [...all, socket]),
              () => SynchronizedRef.update(sockets, (all) => all.filter((s) => s !== socket)),
            )
            if (!inThread) return yield* Effect.never
            const reason = yield* Deferred.await(thread.gone)
            return yield* Effect.fail(new UdpBindFailed({ address, port: config.port, cause: reason }))
          }),
        ).pipe(
          Effect.tapError((e) => Effect.logWarning(`pathping relay: cannot bind ${address}:${config.port}`, e.cause)),
          Effect.retry(Schedule.spaced(Duration.millis(config.rebindIntervalMillis))),
          Effect.forkScoped,
        )
        return attempted
      }),
    )
    yield* Effect.forEach(firstAttempts, Deferred.await, { discard: true })

    return {
      get stampsInThread() {
        return thread !== undefined && !thread.isGone()
      },
      stampPriority:
        thread === undefined
          ? Effect.succeed({ description: "main loop", raiseFailed: false })
          : Deferred.await(thread.priority),
      send: (packet) =>
        Effect.map(SynchronizedRef.get(sockets), (all) =>
          Option.match(Option.fromNullable(all[0]), {
            onNone: () => false,
            onSome: (socket) => {
              forward(socket, { ...packet, sentNs: 0n }, undefined)
              return true
            },
          }),
        ),
      receive: (testId, onPacket) =>
        Effect.acquireRelease(
          Effect.sync(() => receivers.set(testId, onPacket)),
          () => Effect.sync(() => receivers.delete(testId)),
        ).pipe(Effect.asVoid),
    }
  })
