// detectImpairmentBackend: answers with a reason and leaves its probe namespace behind on no path.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execa } from "execa"
import { detectImpairmentBackend } from "../../src/linkemu/Backend.js"

const probeNamespaces = () =>
  Effect.promise(() => execa("ip", ["netns", "list"], { reject: false })).pipe(
    Effect.map((r) =>
      r.stdout
        .split("\n")
        .map((l) => l.split(" ")[0] ?? "")
        .filter((n) => /^np[0-9a-f]{4}le$/.test(n)),
    ),
  )

describe("linkemu detectImpairmentBackend", () => {
  it.live("reports netem or userspace with a reason, and removes its probe namespace", () =>
    Effect.gen(function* () {
      const before = yield* probeNamespaces()
      const report = yield* detectImpairmentBackend()
      console.log(`impairment backend: ${report.backend} (${report.reason})`)
      expect(["netem", "userspace"]).toContain(report.backend)
      expect(report.reason.length).toBeGreaterThan(0)
      if (process.getuid?.() === 0) {
        // the kernel decides which; either way the answer must be explained by tc itself
        if (report.backend === "userspace") expect(report.reason).toMatch(/tc netem unavailable|cannot create/)
        expect(yield* probeNamespaces()).toEqual(before)
      } else {
        expect(report.reason).toContain("not root")
      }
    }),
  )
})
