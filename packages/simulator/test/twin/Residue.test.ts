/**
 * Hygiene of `netlab run` (root only): a run stopped by SIGTERM in the middle of its bring-up
 * cleans up after itself, and a run killed outright (SIGKILL, nothing runs its finalizers) is
 * removed completely by `netlab down <run>`. Residue = namespaces, processes (recorded pids or
 * any naming the run folder), sockets and files under the run folder.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { isClean, readRunState, residueOf } from "../../src/twin/RunState.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping twin residue tests: they need root (network namespaces)")

const repo = join(import.meta.dirname, "../../../..")
const netlab = join(repo, "packages/simulator/dist/src/bin/netlab.js")
const scenario = join(repo, "netns-lab/scenarios/triangle-degrade.yaml")
const stateRoot = "/run/netlab"

/** Starts `netlab run`, resolving with the run prefix once stderr shows `until`. */
const startRun = (
  until: RegExp,
): Promise<{ child: ChildProcess; prefix: string; exited: Promise<number | null>; stderr: () => string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [netlab, "run", scenario], { stdio: ["ignore", "ignore", "pipe"] })
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
    let prefix: string | undefined
    let err = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString()
      prefix ??= /\] (nl[0-9a-f]{4}): /.exec(err)?.[1]
      if (prefix !== undefined && until.test(err)) resolve({ child, prefix, exited, stderr: () => err })
    })
    child.once("exit", (code) => reject(new Error(`netlab exited (${code}) before ${until}:\n${err}`)))
  })

const runNetlab = (args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [netlab, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString()
    })
    child.stderr?.on("data", (c: Buffer) => {
      out += c.toString()
    })
    child.once("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`netlab ${args.join(" ")} → ${code}\n${out}`)),
    )
  })

describe.skipIf(!isRoot)("netlab run killed midway leaves nothing behind", () => {
  it("was built", () => {
    expect(existsSync(netlab), `${netlab} missing: run npx tsc -b first`).toBe(true)
  })

  it("SIGTERM during bring-up: the run tears itself down", async () => {
    const { child, prefix, exited, stderr } = await startRun(/site 1\/3 up/)
    child.kill("SIGTERM")
    await exited
    const residue = await Effect.runPromise(residueOf(stateRoot, prefix))
    expect(residue, stderr()).toEqual({ namespaces: [], processes: [], files: [] })
  }, 60_000)

  it("SIGKILL after convergence: netlab down removes every trace", async () => {
    const { child, prefix, exited } = await startRun(/initial convergence/)
    const state = await Effect.runPromise(readRunState(stateRoot, prefix))
    expect(state?.pids.length).toBeGreaterThan(12)
    child.kill("SIGKILL")
    await exited
    // The crash left the twin running: it is visible to status and residue.
    const before = await Effect.runPromise(residueOf(stateRoot, prefix, state?.pids ?? []))
    expect(before.namespaces.length).toBe(4)
    expect(before.processes.length).toBeGreaterThan(12)
    expect(await runNetlab(["status"])).toContain(prefix)
    const out = await runNetlab(["down", prefix])
    expect(out).toContain(`${prefix}: removed 4 namespaces`)
    const after = await Effect.runPromise(residueOf(stateRoot, prefix, state?.pids ?? []))
    expect(after).toEqual({ namespaces: [], processes: [], files: [] })
    expect(isClean(after)).toBe(true)
  }, 90_000)
})
