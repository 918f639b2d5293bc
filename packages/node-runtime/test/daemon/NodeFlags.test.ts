import { execFileSync } from "node:child_process"
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { fc, test } from "@fast-check/vitest"
import { describe, expect, it } from "vitest"
import { daemonNodeFlags, missingNodeFlags } from "../../src/daemon/NodeFlags.js"

const here = dirname(fileURLToPath(import.meta.url))
const shebang = readFileSync(join(here, "../../src/bin/net-perf.ts"), "utf8").split("\n", 1)[0]
/** What a command prints, as a number (the young generation's size in bytes below). */
const numberOutput = (argv: ReadonlyArray<string>): number =>
  Number(execFileSync(argv[0] ?? "", argv.slice(1)).toString())
const printNewSpace =
  'console.log(require("node:v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size)'

describe("daemon node flags", () => {
  it("the binary's #! line carries exactly daemonNodeFlags", () => {
    expect(shebang).toBe(`#!/usr/bin/env -S node ${daemonNodeFlags.join(" ")}`)
  })

  it("they reach node through the #! line and give the young generation its floor (8 MB per semi-space; node reports one semi-space)", () => {
    const dir = mkdtempSync(join(tmpdir(), "np-flags-"))
    try {
      const script = join(dir, "probe.cjs")
      writeFileSync(script, `${shebang}\nconsole.log(JSON.stringify(process.execArgv))\n${printNewSpace}\n`)
      chmodSync(script, 0o755)
      const [execArgv, size] = execFileSync(script).toString().trim().split("\n")
      expect(JSON.parse(execArgv ?? "[]")).toEqual([...daemonNodeFlags])
      expect(missingNodeFlags(JSON.parse(execArgv ?? "[]"))).toEqual([])
      expect(Number(size)).toBeGreaterThanOrEqual(8 * 1024 * 1024)
      // Without them node's young generation starts at its default, well below the floor.
      expect(numberOutput([process.execPath, "-e", printNewSpace])).toBeLessThan(8 * 1024 * 1024)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test.prop([
    fc.array(fc.constantFrom("--trace-gc", "--min-semi-space-size=16", "--max-old-space-size=512", "--inspect")),
  ])("missingNodeFlags: a daemon flag counts as given whatever its value, other flags do not matter", (execArgv) => {
    const given = execArgv.some((a) => a.startsWith("--min-semi-space-size="))
    expect(missingNodeFlags(execArgv)).toEqual(daemonNodeFlags.filter((f) => !given || !f.startsWith("--min-semi")))
    expect(missingNodeFlags([...execArgv, ...daemonNodeFlags])).toEqual([])
  })
})
