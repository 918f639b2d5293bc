/**
 * Releases delayed datagrams at their due time, with sub-millisecond precision.
 *
 * A naive `setTimeout(delay)` per datagram overshoots by 0.4-0.65 ms (libuv timers count whole
 * milliseconds from a cached loop time), which breaks a ±1 ms RTT budget. All due work sits in
 * one time-ordered heap and one wake-up is armed for its head. Three ways to wake:
 * - "worker" (default): a worker thread sleeps in `Atomics.wait` (a futex with a microsecond
 *   timeout) until the head is due, then posts a message; the main loop wakes within tens of
 *   microseconds and costs no CPU while waiting.
 * - "spin": `setTimeout` armed `earlyMs` before the head, then a `setImmediate` loop that checks
 *   the high-resolution clock (keeps serving I/O, but burns CPU for up to ~earlyMs+1 ms per wake).
 * - "coarse": plain `setTimeout` for the head, for comparison (the naive behaviour).
 * Time is `process.hrtime.bigint()` in milliseconds (CLOCK_MONOTONIC, shared by all threads).
 */
import { Worker } from "node:worker_threads"

export type TimerMode = "worker" | "spin" | "coarse"

export interface TimerOptions {
  readonly mode?: TimerMode
  /** spin: how long before the due time the coarse timer fires and spinning starts. */
  readonly earlyMs?: number
  /** Work due within this much of now is released in the same wake-up. */
  readonly slackMs?: number
  /**
   * worker: wake this much before the due time, covering the thread hand-off. Default: learnt
   * (moving average of the observed hand-off, 0.02-0.3 ms), so the mean release error is ~0.
   */
  readonly wakeAdvanceMs?: number
}

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

export interface Releaser {
  /** Runs `release` at `dueMs` (on the `nowMs` clock); equal due times run in scheduling order. */
  readonly schedule: (dueMs: number, release: () => void) => void
  readonly size: () => number
  /** Resolves when wake-ups are precise (the timer worker is running); work scheduled earlier runs late. */
  readonly ready: Promise<void>
  /** Drops pending work and stops timers and the worker. */
  readonly close: () => void
}

interface Entry {
  readonly dueMs: number
  readonly seq: number
  readonly release: () => void
}

const before = (x: Entry, y: Entry): boolean => x.dueMs < y.dueMs || (x.dueMs === y.dueMs && x.seq < y.seq)

/** Binary min-heap on (dueMs, seq). */
class Heap {
  private readonly items: Entry[] = []
  get size(): number {
    return this.items.length
  }
  peek(): Entry | undefined {
    return this.items[0]
  }
  push(e: Entry): void {
    const a = this.items
    a.push(e)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(a[i]!, a[p]!)) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  pop(): Entry | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && before(a[l]!, a[m]!)) m = l
        if (r < a.length && before(a[r]!, a[m]!)) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
  clear(): void {
    this.items.length = 0
  }
}

// Runs in the worker thread: sleep until the shared target time, post, wait to be re-armed.
// Control word 0 is a generation counter bumped on every re-arm; target < 0 means stop.
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads")
const gen = new Int32Array(workerData, 0, 2)
const target = new Float64Array(workerData, 8, 1)
const now = () => Number(process.hrtime.bigint()) / 1e6
for (;;) {
  const g = Atomics.load(gen, 0)
  const t = target[0]
  if (t < 0) break
  if (!Number.isFinite(t)) { Atomics.wait(gen, 0, g); continue }
  const waitMs = t - now()
  if (waitMs > 0) { if (Atomics.wait(gen, 0, g, waitMs) !== "timed-out") continue }
  if (Atomics.load(gen, 0) !== g) continue
  parentPort.postMessage(0)
  Atomics.wait(gen, 0, g)
}
`

export const makeReleaser = (options: TimerOptions = {}): Releaser => {
  const mode = options.mode ?? "worker"
  const earlyMs = options.earlyMs ?? 1.5
  const slackMs = options.slackMs ?? (mode === "coarse" ? 0 : 0.03)
  const learnAdvance = options.wakeAdvanceMs === undefined
  let wakeAdvanceMs = options.wakeAdvanceMs ?? 0.05
  const heap = new Heap()
  let seq = 0
  let closed = false

  const releaseDue = (): void => {
    const limit = nowMs() + slackMs
    for (let head = heap.peek(); head !== undefined && head.dueMs <= limit; head = heap.peek()) {
      heap.pop()
      try {
        head.release()
      } catch (cause) {
        // A release must not stop the others; releases handle their own errors, so this is a bug.
        console.error("linkemu: release failed", cause)
      }
    }
  }

  let arm: () => void
  let stop: () => void
  let ready: Promise<void> = Promise.resolve()

  if (mode === "worker") {
    const shared = new SharedArrayBuffer(16)
    const gen = new Int32Array(shared, 0, 2)
    const target = new Float64Array(shared, 8, 1)
    target[0] = Number.POSITIVE_INFINITY
    const worker = new Worker(workerSource, { eval: true, workerData: shared })
    worker.unref()
    ready = new Promise((resolve) => {
      worker.once("online", () => resolve())
      worker.once("error", () => resolve())
    })
    let armedMs = Number.POSITIVE_INFINITY
    const setTarget = (t: number): void => {
      if (t === armedMs) return
      armedMs = t
      target[0] = t
      Atomics.add(gen, 0, 1)
      Atomics.notify(gen, 0)
    }
    let advanceNext = true
    arm = () => {
      const head = heap.peek()
      setTarget(head === undefined ? Number.POSITIVE_INFINITY : head.dueMs - (advanceNext ? wakeAdvanceMs : 0))
    }
    worker.on("message", () => {
      if (closed) return
      const handoffMs = nowMs() - armedMs
      if (learnAdvance && Number.isFinite(handoffMs)) {
        // Spikes (a descheduled thread) are capped so one stall does not make every wake early.
        wakeAdvanceMs = Math.min(0.3, Math.max(0.02, 0.95 * wakeAdvanceMs + 0.05 * Math.min(handoffMs, 1)))
      }
      armedMs = Number.NaN // the worker waits for a new generation whatever the target
      const before = heap.size
      releaseDue()
      // Woke too early to release anything: aim at the due time itself, or the two threads would
      // ping-pong until it arrives.
      advanceNext = heap.size < before
      arm()
    })
    worker.on("error", (cause) => console.error("linkemu: timer worker failed", cause))
    stop = () => {
      target[0] = -1
      Atomics.add(gen, 0, 1)
      Atomics.notify(gen, 0)
      void worker.terminate()
    }
  } else {
    let timer: NodeJS.Timeout | undefined
    let timerForMs = Number.POSITIVE_INFINITY
    let immediate: NodeJS.Immediate | undefined
    const tick = (): void => {
      timer = undefined
      immediate = undefined
      timerForMs = Number.POSITIVE_INFINITY
      if (closed) return
      releaseDue()
      arm()
    }
    arm = () => {
      const head = heap.peek()
      if (head === undefined || immediate !== undefined) return
      if (timer !== undefined) {
        if (head.dueMs >= timerForMs) return
        clearTimeout(timer)
        timer = undefined
      }
      const remainingMs = head.dueMs - nowMs()
      if (mode === "spin" && remainingMs <= earlyMs + 1) {
        immediate = setImmediate(tick)
      } else if (mode === "coarse" && remainingMs <= 0) {
        immediate = setImmediate(tick)
      } else {
        timerForMs = head.dueMs
        timer = setTimeout(tick, mode === "spin" ? remainingMs - earlyMs : remainingMs)
      }
    }
    stop = () => {
      if (timer !== undefined) clearTimeout(timer)
      if (immediate !== undefined) clearImmediate(immediate)
    }
  }

  return {
    schedule: (dueMs, release) => {
      if (closed) return
      // Nothing waiting and already due (no delay configured): send now, saving a wake-up.
      if (heap.size === 0 && dueMs <= nowMs() + slackMs) {
        release()
        return
      }
      const entry: Entry = { dueMs, seq: seq++, release }
      heap.push(entry)
      if (heap.peek() === entry) arm()
    },
    size: () => heap.size,
    ready,
    close: () => {
      if (closed) return
      closed = true
      heap.clear()
      stop()
    },
  }
}
