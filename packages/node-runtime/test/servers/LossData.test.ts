/** The loss burst's per-packet encoder (template + stamp) against the reference `encodeLossData`. */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { decode5121, encodeLossData, lossDataTemplate, stampLossData } from "../../src/servers/Packets.js"

describe("stampLossData", () => {
  it("equals encodeLossData byte for byte and decodes to the same fields", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 1472 }),
        fc.nat(),
        fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
        (sessionId, total, lengthBytes, seqSeed, sentNs) => {
          const seq = seqSeed % total
          const template = lossDataTemplate(sessionId, total, lengthBytes)
          const stamped = stampLossData(template, seq, Number(sentNs))
          const reference = encodeLossData({ sessionId, seq, total, sentNs, lengthBytes })
          expect(stamped.equals(reference)).toBe(true)
          const decoded = decode5121(stamped)
          expect(decoded._tag).toBe("Right")
          // The template is untouched: every packet of a burst starts from the same bytes.
          expect(template.equals(lossDataTemplate(sessionId, total, lengthBytes))).toBe(true)
        },
      ),
      { numRuns: 5000 },
    )
  })
})
