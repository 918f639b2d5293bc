import { fc, test } from "@fast-check/vitest"
import { describe, expect } from "vitest"
import { type DirectedLinkState, oraclePath, oracleRttMs, pathDelayMs } from "../../src/analysis/Oracle.js"

const arbLinks = fc.integer({ min: 2, max: 6 }).chain((n) =>
  fc
    .array(
      fc.record({
        delayMs: fc.integer({ min: 1, max: 100 }),
        down: fc.boolean(),
        lossRatio: fc.constantFrom(0, 0.05, 1),
      }),
      { minLength: n * n, maxLength: n * n },
    )
    .map((cells) => {
      const links: DirectedLinkState[] = []
      for (let a = 0; a < n; a++)
        for (let b = 0; b < n; b++) {
          const c = cells[a * n + b]
          if (a !== b && c !== undefined) links.push({ from: a, to: b, ...c })
        }
      return { n, links }
    }),
)

/** Brute force over every simple path. */
const bruteBest = (n: number, links: ReadonlyArray<DirectedLinkState>, src: number, dst: number) => {
  let best: number | undefined
  const walk = (path: number[]) => {
    const here = path.at(-1) as number
    if (here === dst) {
      const d = pathDelayMs(links, path)
      if (d !== undefined && (best === undefined || d < best)) best = d
      return
    }
    for (let next = 0; next < n; next++) if (!path.includes(next)) walk([...path, next])
  }
  walk([src])
  return best
}

describe("Oracle", () => {
  test.prop([arbLinks])("oracle delay equals the brute-force best over all simple paths", ({ n, links }) => {
    for (let s = 0; s < n; s++)
      for (let d = 0; d < n; d++) {
        if (s === d) continue
        const o = oraclePath(links, s, d)
        const b = bruteBest(n, links, s, d)
        expect(o?.delayMs).toBe(b)
        if (o !== undefined) {
          expect(o.path[0]).toBe(s)
          expect(o.path.at(-1)).toBe(d)
          expect(pathDelayMs(links, o.path)).toBe(o.delayMs)
        }
      }
  })

  test("a degraded direct link loses to a two-hop detour; RTT adds both directions", () => {
    const l = (from: number, to: number, delayMs: number): DirectedLinkState => ({
      from,
      to,
      delayMs,
      lossRatio: 0,
      down: false,
    })
    const links = [l(0, 1, 50), l(1, 0, 5), l(0, 2, 10), l(2, 0, 10), l(1, 2, 10), l(2, 1, 10)]
    expect(oraclePath(links, 0, 1)).toEqual({ path: [0, 2, 1], delayMs: 20 })
    expect(oraclePath(links, 1, 0)).toEqual({ path: [1, 0], delayMs: 5 })
    expect(oracleRttMs(links, 0, 1)).toBe(25)
    expect(oracleRttMs([l(0, 1, 1)], 0, 1)).toBeUndefined()
  })
})
