// The hand-written ping line parser and line splitter against their references: the PingLine schema
// and String.split, on generated `ping -n -O -D` lines and arbitrary chunkings.
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import {
  type PingLine,
  parsePingBytes,
  parsePingLine,
  parsePingLineWithSchema,
  pingLineReader,
} from "../../src/probes/IcmpProber.js"
import { lineSplitter } from "./LineSplitter.js"

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

/** The lines ping prints at work (numeric addresses, epoch seconds with ≤ 6 decimals): the byte path must take them. */
const address = fc.oneof(
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join(".")),
  fc.array(fc.stringMatching(/^[0-9a-fA-F]{1,4}$/), { minLength: 2, maxLength: 8 }).map((g) => g.join(":")),
)
const shortDecimal = (intPart: fc.Arbitrary<string>, fracDigits: number) =>
  fc.oneof(
    intPart,
    fc.tuple(intPart, digits(fracDigits)).map(([a, b]) => `${a}.${b}`),
  )
const epochSeconds = fc.oneof(fc.stringMatching(/^1[0-7][0-9]{8}$/), digits(9))
const commonLine = fc.oneof(
  fc
    .tuple(
      shortDecimal(epochSeconds, 6),
      address,
      digits(6),
      digits(3),
      shortDecimal(digits(6), 3),
      fc.constantFrom("", " (DUP!)", "\r"),
    )
    .map(
      ([t, a, seq, ttl, rtt, tail]) => `[${t}] 64 bytes from ${a}: icmp_seq=${seq} ttl=${ttl} time=${rtt} ms${tail}`,
    ),
  fc.tuple(shortDecimal(epochSeconds, 6), digits(6)).map(([t, seq]) => `[${t}] no answer yet for icmp_seq=${seq}`),
)
/** Lines near the common forms: one character changed, dropped or doubled, or a random suffix. */
const mutated = fc
  .tuple(
    commonLine,
    fc.nat(200),
    fc.constantFrom("x", " ", ".", ":", "0", "9", "]", "[", "\t", "\u00a0", "%", ""),
    fc.boolean(),
  )
  .map(([line, at, c, insert]) => {
    const i = at % (line.length + 1)
    return insert ? line.slice(0, i) + c + line.slice(i) : line.slice(0, i) + c + line.slice(i + 1)
  })
const anyLine = fc.oneof(pingLine, commonLine, mutated, fc.string({ maxLength: 80, unit: "binary" }))
const latin1 = (line: string) => Buffer.from(line, "latin1")
/** Left over from an earlier read in a reused buffer: a whole line the reader must not see. */
const STALE = "\n[1700000000.5] no answer yet for icmp_seq=1\n"

describe("ping line parser", () => {
  it("byte path: every line it takes parses as parsePingLine parses it, and it takes ping's common lines", () => {
    fc.assert(
      fc.property(anyLine, fc.nat(8), (line, pad) => {
        // Only latin1 text reaches the parser (the pipe's bytes read as latin1).
        const text = latin1(line).toString("latin1")
        const bytes = Buffer.concat([Buffer.alloc(pad, 0x41), latin1(text), Buffer.alloc(pad, 0x41)])
        const fast = parsePingBytes(bytes, pad, pad + text.length)
        if (fast === undefined) return true
        const reference = parsePingLine(text)
        return Either.isRight(reference) && JSON.stringify(fast) === JSON.stringify(reference.right)
      }),
      { numRuns: 30_000 },
    )
    fc.assert(
      fc.property(commonLine, (line) => {
        const text = line.endsWith("\r") ? line.slice(0, -1) : line
        const fast = parsePingBytes(latin1(text), 0, text.length)
        const reference = parsePingLineWithSchema(text)
        return (
          fast !== undefined && Either.isRight(reference) && JSON.stringify(fast) === JSON.stringify(reference.right)
        )
      }),
      { numRuns: 10_000 },
    )
  })

  it("byte path: numbers equal Number() of their text (correctly rounded, not accumulated)", () => {
    // 0.1 + 0.2-style accumulation would differ from Number() here; m / 10^k does not.
    const line = "[1700000000.123457] 64 bytes from 10.0.0.1: icmp_seq=7 ttl=64 time=0.3 ms"
    expect(parsePingBytes(latin1(line), 0, line.length)).toEqual({
      _tag: "Reply",
      atSeconds: Number("1700000000.123457"),
      seq: 7,
      rttMs: 0.3,
    })
  })

  it("reader: any chunking of ping's bytes (in a reused buffer) yields what lineSplitter + parsePingLine yield on the text", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(anyLine, fc.constant("y".repeat(5000))), { maxLength: 12 }),
        fc.array(fc.nat(20_000), { maxLength: 10 }),
        fc.boolean(),
        (lines, cuts, trailing) => {
          const bytes = latin1(lines.join("\n") + (trailing ? "\n" : ""))
          const expected: Array<PingLine> = []
          const text = lineSplitter((l) => {
            const p = parsePingLine(l)
            if (Either.isRight(p)) expected.push(p.right)
          })
          const got: Array<PingLine> = []
          const read = pingLineReader((l) => got.push(l))
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
          let from = 0
          for (const p of [...points, bytes.length]) {
            text(bytes.subarray(from, p).toString("latin1"))
            // As the socket gives them: the chunk at the head of a reused buffer, stale bytes after it.
            const reused = Buffer.from(`${STALE}${STALE}`.repeat(2 + (p - from) / STALE.length), "latin1")
            bytes.copy(reused, 0, from, p)
            read(reused, p - from)
            from = p
          }
          expect(JSON.stringify(got)).toEqual(JSON.stringify(expected))
        },
      ),
      { numRuns: 3_000 },
    )
  })

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
