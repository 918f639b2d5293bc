// Real-socket helpers for the link emulator tests: UDP endpoints on loopback that record arrivals.
import { createSocket, type Socket } from "node:dgram"
import { Effect, type Scope } from "effect"
import { execaSync } from "execa"
import { nowMs } from "../../src/linkemu/Releaser.js"

export interface Arrival {
  readonly atMs: number
  readonly data: Buffer
  readonly from: { readonly address: string; readonly port: number }
}

export interface UdpEnd {
  readonly socket: Socket
  readonly port: number
  readonly address: string
  readonly arrivals: Arrival[]
  readonly send: (data: Buffer | string, port: number, address?: string) => Effect.Effect<void>
  /** Waits until `count` datagrams have arrived or `timeoutMs` passed; returns the arrivals. */
  readonly waitFor: (count: number, timeoutMs: number) => Effect.Effect<ReadonlyArray<Arrival>>
  /** If set, every arrival is answered with this function's result, sent back to `echoTo`. */
  echoTo?: { readonly port: number; readonly address: string } | undefined
}

export const udpEnd = (address = "127.0.0.1"): Effect.Effect<UdpEnd, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<UdpEnd>((resume) => {
      const socket = createSocket(address.includes(":") ? "udp6" : "udp4")
      socket.bind(0, address, () => {
        try {
          socket.setRecvBufferSize(8 * 1024 * 1024)
        } catch {
          // keep the default when the kernel refuses
        }
        const arrivals: Arrival[] = []
        const end: UdpEnd = {
          socket,
          port: socket.address().port,
          address,
          arrivals,
          send: (data, port, to = address) =>
            Effect.async<void>((done) => {
              socket.send(typeof data === "string" ? Buffer.from(data) : data, port, to, () => done(Effect.void))
            }),
          waitFor: (count, timeoutMs) =>
            Effect.async<ReadonlyArray<Arrival>>((done) => {
              const deadline = Date.now() + timeoutMs
              const poll = setInterval(() => {
                if (arrivals.length >= count || Date.now() >= deadline) {
                  clearInterval(poll)
                  done(Effect.succeed(arrivals))
                }
              }, 5)
              return Effect.sync(() => clearInterval(poll))
            }),
        }
        socket.on("message", (data, rinfo) => {
          arrivals.push({ atMs: nowMs(), data, from: { address: rinfo.address, port: rinfo.port } })
          if (end.echoTo !== undefined) socket.send(data, end.echoTo.port, end.echoTo.address)
        })
        resume(Effect.succeed(end))
      })
    }),
    (end) => Effect.sync(() => end.socket.close()),
  )

/**
 * RTT through the relay: `a` sends a numbered probe to the relay, `b` echoes it back through the
 * relay, `a` records when it returns. Probes are spaced `intervalMs` apart.
 */
export const measureRtts = (
  a: UdpEnd,
  relayPort: number,
  count: number,
  intervalMs: number,
): Effect.Effect<ReadonlyArray<number | null>> =>
  Effect.gen(function* () {
    const sentAt = new Map<number, number>()
    const rtts = new Map<number, number>()
    const onMessage = (data: Buffer) => {
      const n = data.readUInt32BE(0)
      const t0 = sentAt.get(n)
      if (t0 !== undefined && !rtts.has(n)) rtts.set(n, nowMs() - t0)
    }
    a.socket.on("message", onMessage)
    for (let n = 0; n < count; n++) {
      const buf = Buffer.alloc(64)
      buf.writeUInt32BE(n, 0)
      sentAt.set(n, nowMs())
      yield* a.send(buf, relayPort)
      yield* Effect.sleep(intervalMs)
    }
    yield* Effect.sleep(200)
    a.socket.off("message", onMessage)
    return Array.from({ length: count }, (_, n) => rtts.get(n) ?? null)
  })

export const mean = (xs: ReadonlyArray<number>): number => xs.reduce((s, x) => s + x, 0) / xs.length
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]!
}

/**
 * As root, runs this test process's main thread under SCHED_FIFO (as the twin runs the relay,
 * `chrt -f 10`); threads created afterwards (the relay's timer worker) inherit it. On this shared
 * machine (load 15-25 on 2 cores) timing tests otherwise measure their own scheduling delays.
 * Returns whether it worked; call `normalPriority` in afterAll.
 */
export const realtimePriority = (): boolean => {
  const r = execaSync("chrt", ["-f", "-p", "10", String(process.pid)], { reject: false })
  if (r.exitCode !== 0) console.log(`linkemu timing tests run at normal priority: ${r.stderr}`)
  return r.exitCode === 0
}

export const normalPriority = (): void => {
  execaSync("chrt", ["-o", "-p", "0", String(process.pid)], { reject: false })
}
