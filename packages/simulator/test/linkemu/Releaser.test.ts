// The release timer: order, and lateness of each wake-up mode on this (shared) machine.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeReleaser, nowMs, type TimerMode } from "../../src/linkemu/Releaser.js"
import { normalPriority, realtimePriority } from "./udp.js"

const lateness = (mode: TimerMode, count: number) =>
  Effect.promise(async () => {
    const releaser = makeReleaser({ mode })
    await releaser.ready
    const late: number[] = []
    const order: number[] = []
    await new Promise<void>((resolve) => {
      const start = nowMs()
      for (let i = 0; i < count; i++) {
        // spread over ~200 ms, scheduled out of order
        const dueMs = start + 5 + ((i * 37) % count) * (200 / count)
        releaser.schedule(dueMs, () => {
          late.push(nowMs() - dueMs)
          order.push(dueMs)
          if (late.length === count) resolve()
        })
      }
    })
    releaser.close()
    return { late, order }
  })

describe("linkemu Releaser", () => {
  beforeAll(() => {
    realtimePriority()
  })
  afterAll(normalPriority)

  for (const mode of ["worker", "spin", "coarse"] as const) {
    it.live(`${mode}: releases in due order and never early`, () =>
      Effect.gen(function* () {
        const { late, order } = yield* lateness(mode, 100)
        expect(order).toEqual([...order].sort((a, b) => a - b))
        // slack: work due within 0.03 ms is released together
        expect(Math.min(...late)).toBeGreaterThan(-0.05)
        const sorted = [...late].sort((a, b) => a - b)
        console.log(`${mode}: median lateness ${sorted[50]!.toFixed(3)} ms, p90 ${sorted[90]!.toFixed(3)} ms`)
      }),
    )
  }

  it.live("worker wake-ups are sub-millisecond in the median", () =>
    Effect.gen(function* () {
      const { late } = yield* lateness("worker", 200)
      const sorted = [...late].sort((a, b) => a - b)
      expect(sorted[100]!).toBeLessThan(0.5)
    }),
  )

  it.live("close drops pending work", () =>
    Effect.gen(function* () {
      const releaser = makeReleaser()
      let ran = 0
      releaser.schedule(nowMs() + 20, () => ran++)
      releaser.close()
      yield* Effect.sleep(50)
      expect(ran).toBe(0)
    }),
  )
})
