/**
 * What a twin run made, on disk, so that anything can remove it: the run's own teardown, a
 * later `netlab down`, or `netlab down --all` after a crash. The state file is written before
 * the first namespace exists; teardown kills every process inside the run's namespaces (and
 * any pid recorded), deletes the namespaces, waits for the processes to be gone (wireguard-go
 * takes seconds) and finally removes the run folder.
 */
import { existsSync, readFileSync } from "node:fs"
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { runPrefixPattern } from "./Addressing.js"
import { run } from "./Exec.js"

export const defaultStateRoot = (): string => process.env.NETLAB_STATE_DIR ?? "/run/netlab"

export const RunState = Schema.Struct({
  prefix: Schema.String,
  scenario: Schema.String,
  mode: Schema.Literal("up", "run", "test"),
  ownerPid: Schema.Int,
  createdAtMillis: Schema.Number,
  sites: Schema.Int,
  namespaces: Schema.Array(Schema.String),
  pids: Schema.Array(Schema.Int),
  wireguardBackend: Schema.optional(Schema.String),
  impairmentBackend: Schema.optional(Schema.String),
})
export type RunState = typeof RunState.Type

export const runDir = (stateRoot: string, prefix: string): string => join(stateRoot, prefix)

export const writeRunState = (stateRoot: string, state: RunState): Effect.Effect<void> =>
  Effect.promise(async () => {
    const dir = runDir(stateRoot, state.prefix)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFile(join(dir, "state.json.tmp"), JSON.stringify(state, null, 2))
    await rename(join(dir, "state.json.tmp"), join(dir, "state.json"))
  })

export const readRunState = (stateRoot: string, prefix: string): Effect.Effect<RunState | undefined> =>
  Effect.promise(async () => {
    try {
      const text = await readFile(join(runDir(stateRoot, prefix), "state.json"), "utf8")
      return Schema.decodeUnknownSync(RunState)(JSON.parse(text))
    } catch {
      return undefined
    }
  })

/** Namespaces that belong to run `prefix` (by name), whatever the state file says. */
export const namespacesOf = (prefix: string): Effect.Effect<ReadonlyArray<string>> =>
  listNamespaces.pipe(Effect.map((all) => all.filter((ns) => ns.startsWith(`${prefix}-`))))

export const listNamespaces: Effect.Effect<ReadonlyArray<string>> = Effect.promise(async () => {
  try {
    return await readdir("/run/netns")
  } catch {
    return []
  }
})

const netnsOfTwin = /^(nl[0-9a-f]{4})-(u|s\d+)$/

export interface RunSummary {
  readonly prefix: string
  readonly state: RunState | undefined
  readonly namespaces: ReadonlyArray<string>
  readonly ownerAlive: boolean
}

/** True while the process exists and is not a zombie. */
export const pidAlive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

/** Every run known from state folders or from leftover namespaces with the twin's name pattern. */
export const listRuns = (stateRoot: string): Effect.Effect<ReadonlyArray<RunSummary>> =>
  Effect.gen(function* () {
    const dirs = yield* Effect.promise(async () => {
      try {
        return (await readdir(stateRoot)).filter((d) => runPrefixPattern.test(d))
      } catch {
        return []
      }
    })
    const nss = yield* listNamespaces
    const prefixes = new Set(dirs)
    for (const ns of nss) {
      const m = netnsOfTwin.exec(ns)
      if (m?.[1] !== undefined) prefixes.add(m[1])
    }
    const out: RunSummary[] = []
    for (const prefix of [...prefixes].sort()) {
      const state = yield* readRunState(stateRoot, prefix)
      out.push({
        prefix,
        state,
        namespaces: nss.filter((ns) => ns.startsWith(`${prefix}-`)),
        ownerAlive: state !== undefined && pidAlive(state.ownerPid),
      })
    }
    return out
  })

export interface TeardownReport {
  readonly prefix: string
  readonly namespacesRemoved: ReadonlyArray<string>
  readonly processesStopped: number
  readonly processesKilled: number
  readonly durationMs: number
}

const pidsInNs = (ns: string): Effect.Effect<ReadonlyArray<number>> =>
  run(["ip", "netns", "pids", ns]).pipe(
    Effect.map((out) =>
      out
        .split(/\s+/)
        .filter((s) => s !== "")
        .map(Number),
    ),
    Effect.orElseSucceed(() => []),
  )

const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {}
}

/**
 * Removes everything run `prefix` made. Never fails: each step is best effort and the next one
 * still runs; what could not be removed shows up in `residueOf`.
 */
export const teardownRun = (
  stateRoot: string,
  prefix: string,
  options: { waitMs?: number } = {},
): Effect.Effect<TeardownReport> =>
  Effect.gen(function* () {
    const started = Date.now()
    const state = yield* readRunState(stateRoot, prefix)
    const nss = yield* namespacesOf(prefix)
    const pids = new Set<number>(state?.pids ?? [])
    for (const ns of nss) for (const p of yield* pidsInNs(ns)) pids.add(p)
    pids.delete(process.pid)
    const alive = [...pids].filter(pidAlive)
    for (const p of alive) signal(p, "SIGTERM")
    if (nss.length > 0)
      yield* run(["ip", "-force", "-batch", "-"], { input: `${nss.map((n) => `netns del ${n}`).join("\n")}\n` }).pipe(
        Effect.ignore,
      )
    // wireguard-go exits a few seconds after its device is gone; wait, then insist.
    const deadline = Date.now() + (options.waitMs ?? 10_000)
    let killed = 0
    while (alive.some(pidAlive)) {
      if (Date.now() > deadline) {
        for (const p of alive.filter(pidAlive)) {
          signal(p, "SIGKILL")
          killed++
        }
        yield* Effect.sleep("300 millis")
        break
      }
      yield* Effect.sleep("100 millis")
    }
    yield* Effect.promise(() => rm(runDir(stateRoot, prefix), { recursive: true, force: true }))
    return {
      prefix,
      namespacesRemoved: nss,
      processesStopped: alive.length,
      processesKilled: killed,
      durationMs: Date.now() - started,
    }
  })

export interface Residue {
  readonly namespaces: ReadonlyArray<string>
  readonly processes: ReadonlyArray<{ pid: number; cmdline: string }>
  readonly files: ReadonlyArray<string>
}

/** What is left of run `prefix`: namespaces, live recorded pids or processes naming the run, files. */
export const residueOf = (
  stateRoot: string,
  prefix: string,
  knownPids: ReadonlyArray<number> = [],
): Effect.Effect<Residue> =>
  Effect.gen(function* () {
    const namespaces = yield* namespacesOf(prefix)
    const processes = yield* Effect.promise(async () => {
      const out: Array<{ pid: number; cmdline: string }> = []
      for (const entry of await readdir("/proc")) {
        if (!/^\d+$/.test(entry)) continue
        const pid = Number(entry)
        if (pid === process.pid) continue
        let cmdline = ""
        try {
          cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ").trim()
        } catch {
          continue
        }
        if ((knownPids.includes(pid) && pidAlive(pid)) || (cmdline.includes(`/${prefix}/`) && pidAlive(pid)))
          out.push({ pid, cmdline })
      }
      return out
    })
    const dir = runDir(stateRoot, prefix)
    const files = existsSync(dir) ? [dir] : []
    return { namespaces, processes, files }
  })

export const isClean = (r: Residue): boolean =>
  r.namespaces.length === 0 && r.processes.length === 0 && r.files.length === 0
