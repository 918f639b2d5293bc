// The hand-written ping line parser and line splitter against their references: the PingLine schema
// and String.split, on generated `ping -n -O -D` lines and arbitrary chunkings.
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import { lineSplitter, parsePingLine, parsePingLineWithSchema } from "../../src/probes/IcmpProber.js"

const digits = (max: number) => fc.stringMatching(new RegExp(`^[0-9]{1,${max}}$`))
const decimal = fc.oneof(
  digits(12),
  fc.tuple(digits(12), digits(8)).map(([a, b]) => `${a}.${b}`),
  digits(400), // beyond a double's range: the schema decides
)
const pingLine = fc.oneof(
  fc
    .tuple(decimal, digits(6), digits(3), decimal)
    .map(([t, seq, ttl, rtt]) => `[${t}] 64 bytes from 10.201.2.4: icmp_seq=${seq} ttl=${ttl} time=${rtt} ms`),
  fc.tuple(decimal, digits(6)).map(([t, seq]) => `[${t}] no answer yet for icmp_seq=${seq}`),
  fc
    .tuple(decimal, digits(6), fc.string({ minLength: 1, maxLength: 40 }))
    .map(([t, seq, m]) => `[${t}] From 10.201.1.4 icmp_seq=${seq} ${m}`),
  fc.string({ maxLength: 120 }),
)

describe("ping line parser", () => {
  it("agrees with the PingLine schema on every generated line", () => {
    fc.assert(
      fc.property(pingLine, (line) => {
        const fast = parsePingLine(line)
        const reference = parsePingLineWithSchema(line)
        if (Either.isLeft(reference)) return Either.isLeft(fast)
        return Either.isRight(fast) && JSON.stringify(fast.right) === JSON.stringify(reference.right)
      }),
      { numRuns: 20_000 },
    )
  })

  it("splits any chunking of a text into the same lines as String.split", () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[^\n]{0,60}$/), { maxLength: 20 }),
        fc.array(fc.nat(200), { maxLength: 10 }),
        (lines, cuts) => {
          const text = lines.map((l) => `${l}\n`).join("")
          const got: Array<string> = []
          const push = lineSplitter((l) => got.push(l))
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
          let from = 0
          for (const p of [...points, text.length]) {
            push(text.slice(from, p))
            from = p
          }
          expect(got).toEqual(lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l)))
        },
      ),
    )
  })
})
