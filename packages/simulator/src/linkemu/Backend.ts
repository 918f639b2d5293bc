/**
 * Which impairment backend a twin can use here. Tries `tc qdisc add dev lo root netem delay 1ms`
 * inside a throwaway namespace (never on a real interface) and always deletes the namespace.
 * "netem" only says the kernel could do it: the userspace relay in this folder is what is
 * implemented and tested; "userspace" carries the reason (e.g. sch_netem missing).
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { execa } from "execa"

export interface ImpairmentBackendReport {
  readonly backend: "netem" | "userspace"
  readonly reason: string
}

const run = (file: string, args: ReadonlyArray<string>) =>
  Effect.promise(() => execa(file, args, { reject: false, timeout: 10_000 })).pipe(
    Effect.map((r) => ({
      ok: r.exitCode === 0,
      output: `${r.stderr}${r.stdout}`.trim() || (r.failed ? r.shortMessage : ""),
    })),
  )

export const detectImpairmentBackend = (): Effect.Effect<ImpairmentBackendReport> =>
  Effect.gen(function* () {
    if (process.getuid?.() !== 0) {
      return { backend: "userspace" as const, reason: "not root: cannot create a namespace to probe tc netem" }
    }
    const netns = `np${randomBytes(2).toString("hex")}le`
    return yield* Effect.acquireUseRelease(
      run("ip", ["netns", "add", netns]),
      (added) =>
        Effect.gen(function* () {
          if (!added.ok)
            return { backend: "userspace" as const, reason: `cannot create probe namespace: ${added.output}` }
          const tc = yield* run("ip", [
            "netns",
            "exec",
            netns,
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
          ])
          if (tc.ok) return { backend: "netem" as const, reason: "tc netem works in a namespace (sch_netem present)" }
          return { backend: "userspace" as const, reason: `tc netem unavailable: ${tc.output || "tc failed"}` }
        }),
      (added) => (added.ok ? run("ip", ["netns", "del", netns]).pipe(Effect.asVoid) : Effect.void),
    )
  })
