/**
 * The relay's runtime: one UDP socket per pair, two directed links, counters. Plain callbacks on
 * the datagram path (no Effect per datagram: it runs thousands of times a second); the Effect
 * service in LinkEmulator.ts owns its lifetime. A datagram is accepted only from the exact
 * address and port of end a or end b and always leaves from the pair's own socket, so each
 * WireGuard end sees one stable peer endpoint.
 */
import { createSocket, type Socket } from "node:dgram"
import { Data } from "effect"
import {
  applyPatch,
  type Direction,
  type DirectionSelector,
  type DirectionStats,
  defaultImpairment,
  type Endpoint,
  type ImpairmentPatch,
  type Impairments,
  type PairSpec,
  type PairStats,
} from "./Impairment.js"
import { admit, ipUdpOverheadBytes, type LinkState, makeLinkState } from "./Link.js"
import { makeReleaser, nowMs, type Releaser, type TimerOptions } from "./Releaser.js"
import { makeRng } from "./Rng.js"

export class LinkEmuBindFailed extends Data.TaggedError("LinkEmuBindFailed")<{
  readonly id: string
  readonly listen: Endpoint
  readonly cause: unknown
}> {
  override get message(): string {
    return `pair ${this.id}: cannot bind ${this.listen.address}:${this.listen.port}: ${String(this.cause)}`
  }
}

export class LinkEmuDuplicatePair extends Data.TaggedError("LinkEmuDuplicatePair")<{ readonly id: string }> {
  override get message(): string {
    return `pair ${this.id} already exists`
  }
}

export class LinkEmuPairNotFound extends Data.TaggedError("LinkEmuPairNotFound")<{ readonly id: string }> {
  override get message(): string {
    return `no pair ${this.id}`
  }
}

export interface RelayOptions {
  /** Seed of every loss/jitter stream; the same seed replays the same decisions. Default 1. */
  readonly seed?: number
  readonly timer?: TimerOptions
  /** Socket buffer sizes; bursts at high rates need more than the kernel default. */
  readonly socketBufferBytes?: number
}

interface Counters {
  received: number
  forwarded: number
  forwardedBytes: number
  droppedLoss: number
  droppedDown: number
  droppedQueue: number
  sendErrors: number
  inFlight: number
  releaseLatenessTotalMs: number
  releaseLatenessMaxMs: number
  releasedLateOver1Ms: number
}

interface DirectionRuntime {
  readonly link: LinkState
  readonly counters: Counters
  readonly dest: Endpoint
}

interface PairRuntime {
  readonly spec: PairSpec
  readonly socket: Socket
  listen: Endpoint
  readonly aKey: string
  readonly bKey: string
  readonly overheadBytes: number
  readonly directions: Record<Direction, DirectionRuntime>
  invalidSource: number
  closed: boolean
}

/** Canonical text of an address so "fd00:0::1" and "fd00::1" match what the kernel reports. */
export const canonicalAddress = (address: string): string => {
  if (!address.includes(":")) return address
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1)
  } catch {
    return address.toLowerCase()
  }
}

const endpointKey = (e: Endpoint): string => `${canonicalAddress(e.address)}|${e.port}`

const zeroCounters = (): Counters => ({
  received: 0,
  forwarded: 0,
  forwardedBytes: 0,
  droppedLoss: 0,
  droppedDown: 0,
  droppedQueue: 0,
  sendErrors: 0,
  inFlight: 0,
  releaseLatenessTotalMs: 0,
  releaseLatenessMaxMs: 0,
  releasedLateOver1Ms: 0,
})

export class Relay {
  private readonly pairs = new Map<string, PairRuntime>()
  private readonly releaser: Releaser
  private readonly seed: number
  private readonly socketBufferBytes: number

  constructor(options: RelayOptions = {}) {
    this.seed = options.seed ?? 1
    this.releaser = makeReleaser(options.timer)
    this.socketBufferBytes = options.socketBufferBytes ?? 4 * 1024 * 1024
  }

  has(id: string): boolean {
    return this.pairs.has(id)
  }

  /** Binds the pair's socket; resolves with the bound endpoint (the port, when 0 was asked). */
  async addPair(spec: PairSpec): Promise<Endpoint> {
    if (this.pairs.has(spec.id)) throw new LinkEmuDuplicatePair({ id: spec.id })
    // A pair only goes live once delays are precise.
    await this.releaser.ready
    if (this.pairs.has(spec.id)) throw new LinkEmuDuplicatePair({ id: spec.id })
    const socket = createSocket({ type: spec.family === 4 ? "udp4" : "udp6", ipv6Only: spec.family === 6 })
    const direction = (dir: Direction, patch: ImpairmentPatch | undefined, dest: Endpoint): DirectionRuntime => ({
      link: makeLinkState(applyPatch(defaultImpairment, patch ?? {}), makeRng(this.seed, `${spec.id} ${dir}`)),
      counters: zeroCounters(),
      dest,
    })
    const pair: PairRuntime = {
      spec,
      socket,
      listen: spec.listen,
      aKey: endpointKey(spec.a),
      bKey: endpointKey(spec.b),
      overheadBytes: ipUdpOverheadBytes(spec.family),
      directions: { "a->b": direction("a->b", spec.aToB, spec.b), "b->a": direction("b->a", spec.bToA, spec.a) },
      invalidSource: 0,
      closed: false,
    }
    // Reserve the id before binding so a concurrent add of the same id fails.
    this.pairs.set(spec.id, pair)
    return new Promise<Endpoint>((resolve, reject) => {
      const onBindError = (cause: Error) => {
        this.pairs.delete(spec.id)
        pair.closed = true
        socket.close()
        reject(new LinkEmuBindFailed({ id: spec.id, listen: spec.listen, cause }))
      }
      socket.once("error", onBindError)
      socket.bind({ address: spec.listen.address, port: spec.listen.port, exclusive: true }, () => {
        socket.off("error", onBindError)
        socket.on("error", (cause) => console.error(`linkemu: pair ${spec.id} socket error`, cause))
        try {
          socket.setRecvBufferSize(this.socketBufferBytes)
          socket.setSendBufferSize(this.socketBufferBytes)
        } catch (cause) {
          console.error(`linkemu: pair ${spec.id}: cannot size socket buffers`, cause)
        }
        const bound = socket.address()
        pair.listen = { address: spec.listen.address, port: bound.port }
        socket.on("message", (msg, rinfo) => this.onDatagram(pair, msg, rinfo.address, rinfo.port))
        resolve(pair.listen)
      })
    })
  }

  private onDatagram(pair: PairRuntime, msg: Buffer, address: string, port: number): void {
    const arrivedMs = nowMs()
    const key = `${address}|${port}`
    const dir: DirectionRuntime | undefined =
      key === pair.aKey ? pair.directions["a->b"] : key === pair.bKey ? pair.directions["b->a"] : undefined
    if (dir === undefined) {
      pair.invalidSource++
      return
    }
    const c = dir.counters
    c.received++
    const admission = admit(dir.link, msg.length + pair.overheadBytes, arrivedMs, c.inFlight)
    if (admission._tag === "Drop") {
      if (admission.reason === "loss") c.droppedLoss++
      else if (admission.reason === "down") c.droppedDown++
      else c.droppedQueue++
      return
    }
    c.inFlight++
    const dueMs = admission.dueMs
    this.releaser.schedule(dueMs, () => {
      c.inFlight--
      if (pair.closed) return
      // How late the relay itself was: the emulator's own error, apart from the endpoints'.
      const latenessMs = Math.max(0, nowMs() - dueMs)
      c.releaseLatenessTotalMs += latenessMs
      if (latenessMs > c.releaseLatenessMaxMs) c.releaseLatenessMaxMs = latenessMs
      if (latenessMs > 1) c.releasedLateOver1Ms++
      pair.socket.send(msg, dir.dest.port, dir.dest.address, (err) => {
        if (err) c.sendErrors++
        else {
          c.forwarded++
          c.forwardedBytes += msg.length
        }
      })
    })
  }

  removePair(id: string): boolean {
    const pair = this.pairs.get(id)
    if (pair === undefined) return false
    this.pairs.delete(id)
    pair.closed = true
    pair.socket.close()
    return true
  }

  /** Applies `patch` to one or both directions; undefined when the pair does not exist. */
  setImpairment(id: string, direction: DirectionSelector, patch: ImpairmentPatch): Impairments | undefined {
    const pair = this.pairs.get(id)
    if (pair === undefined) return undefined
    for (const dir of ["a->b", "b->a"] as const) {
      if (direction === "both" || direction === dir) {
        const link = pair.directions[dir].link
        link.impairment = applyPatch(link.impairment, patch)
      }
    }
    return this.impairments(pair)
  }

  private impairments(pair: PairRuntime): Impairments {
    return { "a->b": pair.directions["a->b"].link.impairment, "b->a": pair.directions["b->a"].link.impairment }
  }

  getImpairments(id: string): Impairments | undefined {
    const pair = this.pairs.get(id)
    return pair === undefined ? undefined : this.impairments(pair)
  }

  /** Snapshot of every pair's counters, or of one pair (undefined when it does not exist). */
  stats(id?: string): PairStats[] | undefined {
    const snapshot = (pair: PairRuntime): PairStats => {
      const dir = (d: Direction): DirectionStats => ({
        ...pair.directions[d].counters,
        impairment: pair.directions[d].link.impairment,
      })
      return {
        id: pair.spec.id,
        family: pair.spec.family,
        listen: pair.listen,
        a: pair.spec.a,
        b: pair.spec.b,
        invalidSource: pair.invalidSource,
        directions: { "a->b": dir("a->b"), "b->a": dir("b->a") },
      }
    }
    if (id !== undefined) {
      const pair = this.pairs.get(id)
      return pair === undefined ? undefined : [snapshot(pair)]
    }
    return [...this.pairs.values()].map(snapshot)
  }

  /** Closes every socket and the timer; pending datagrams are dropped. */
  close(): void {
    for (const id of [...this.pairs.keys()]) this.removePair(id)
    this.releaser.close()
  }
}
