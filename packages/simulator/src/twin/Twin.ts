/**
 * Brings a twin up: an underlay namespace ("the internet", a bridge with IPv4 and IPv6), one
 * namespace per site with a veth to it, a WireGuard tunnel per site pair and underlay family
 * (kernel module when present, else wireguard-go behind the per-site isolation wrapper), BIRD 2
 * per site, and the userspace link emulator in the underlay namespace through which every
 * tunnel's datagrams pass (this kernel has no sch_netem). Everything is released with the
 * scope; with `keep` (netlab up) a successful bring-up is left running for `netlab down`.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { Family } from "@net-perf/engine"
import { Data, Duration, Effect, Either, Exit, type Scope } from "effect"
import { connectLinkEmuClient, defaultMainPath, type LinkEmuClient } from "../linkemu/Client.js"
import { allPairs, newRunPrefix, relayPairId, siteNs, underlayAddress, underlayHub, underlayNs } from "./Addressing.js"
import { type DaemonHandle, daemonBinary, startDaemon, startDetachedDaemon } from "./Daemons.js"
import {
  type CommandFailed,
  checkPrerequisites,
  inSite,
  type MissingPackages,
  type NotRoot,
  requireRoot,
  run,
} from "./Exec.js"
import { type SiteKeys, siteUnderlayBatch } from "./MeshConfig.js"
import { defaultStateRoot, pidAlive, runDir, teardownRun, writeRunState } from "./RunState.js"
import { type Impairment, parseLinkSelector, routingOf, type Scenario } from "./Scenario.js"
import {
  builtinSource,
  type ConfigGenerator,
  meshgenSource,
  type SiteConfigSource,
  type SiteFiles,
} from "./SiteConfig.js"

export class TwinBringUpFailed extends Data.TaggedError("TwinBringUpFailed")<{
  readonly step: string
  readonly cause: unknown
}> {
  override get message(): string {
    const c = this.cause as { message?: unknown }
    return `twin bring-up failed at ${this.step}: ${typeof c?.message === "string" ? c.message : String(this.cause)}`
  }
}

export class TwinOperationFailed extends Data.TaggedError("TwinOperationFailed")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const c = this.cause as { message?: unknown }
    return `${this.operation} failed: ${typeof c?.message === "string" ? c.message : String(this.cause)}`
  }
}

export type TwinError = TwinBringUpFailed | MissingPackages | NotRoot

export interface TwinOptions {
  readonly scenario: Scenario
  readonly prefix?: string
  readonly stateRoot?: string
  /** Leave the twin running when bring-up succeeds (netlab up). */
  readonly keep?: boolean
  /** Route tunnels through the link emulator (default true); without it impairments are refused. */
  readonly relay?: boolean
  readonly mode?: "up" | "run" | "test"
  readonly onProgress?: (line: string) => void
  /** Which generator writes the sites' WireGuard and BIRD files (default meshgen). */
  readonly configGenerator?: ConfigGenerator
  /** Sites brought up at once. */
  readonly concurrency?: number
  /**
   * Scheduling of the link emulator, the twin's wires (default "realtime": SCHED_FIFO 10, like
   * `chrt -f 10`; it never spins, and takes ≈ 6 % of a core per 1000 datagrams/s). On this 2-core
   * machine the daemons being measured compete with it for the CPU; a relay starved for 1.5 s
   * silenced every tunnel at once and six sites declared their tunnels dead (twin run nlfb1f,
   * 27 Nov). Real wires are not scheduled behind the daemons; the daemons stay at normal priority.
   * wireguard-go stays at normal priority too: under SCHED_FIFO its Go runtime's spinning threads
   * starved the daemons (run nl39a0: 200+ false dead verdicts per site in 3 minutes).
   */
  readonly networkPriority?: NetworkPriority
}

export type NetworkPriority = "normal" | "realtime"

export interface TwinBackends {
  readonly wireguard: "kernel" | "wireguard-go"
  readonly config: ConfigGenerator
  readonly impairments: "userspace-relay" | "none"
  /** How the link emulator was scheduled. */
  readonly networkPriority: NetworkPriority
  readonly inotifyRaisedTo?: number
}

export interface Twin {
  readonly prefix: string
  readonly dir: string
  readonly scenario: Scenario
  readonly backends: TwinBackends
  readonly bringUpMs: number
  readonly siteNs: (site: number) => string
  readonly siteDir: (site: number) => string
  /** argv that runs a command inside a site (isolated wireguard sockets). */
  readonly siteCommand: (site: number, argv: ReadonlyArray<string>) => ReadonlyArray<string>
  readonly exec: (site: number, argv: ReadonlyArray<string>) => Effect.Effect<string, CommandFailed>
  readonly birdc: (site: number, command: string) => Effect.Effect<string, CommandFailed>
  /** Applies an impairment patch to a link ("0-1" or "0>1"), one or both families. */
  readonly impair: (link: string, patch: Impairment, family?: Family) => Effect.Effect<void, TwinOperationFailed>
  readonly killBird: (site: number) => Effect.Effect<void, TwinOperationFailed>
  readonly startBird: (site: number) => Effect.Effect<void, TwinOperationFailed>
  /** The net-perf daemons of `net-perf` sites (started after BIRD, stopped with the twin's scope). */
  readonly daemons: ReadonlyMap<number, DaemonHandle>
  /** SIGKILL (a crash), SIGTERM (graceful: routes withdrawn), or stop-if-running then start. */
  readonly killDaemon: (site: number) => Effect.Effect<void, TwinOperationFailed>
  readonly stopDaemon: (site: number) => Effect.Effect<void, TwinOperationFailed>
  readonly restartDaemon: (site: number) => Effect.Effect<void, TwinOperationFailed>
  /** Every pid in the twin's namespaces (for residue checks). */
  readonly pids: Effect.Effect<ReadonlyArray<number>>
}

/** The emulator's idea of "nothing injected" for fields a scenario leaves unset. */
const toPatch = (i: Impairment) => ({
  ...(i.delayMs === undefined ? {} : { delayMs: i.delayMs }),
  ...(i.jitterMs === undefined ? {} : { jitterMs: i.jitterMs }),
  ...(i.lossRatio === undefined ? {} : { lossRatio: i.lossRatio }),
  ...(i.rateBitsPerSecond === undefined ? {} : { rateBitsPerSecond: i.rateBitsPerSecond }),
  ...(i.down === undefined ? {} : { down: i.down }),
})

const hasImpairment = (i: Impairment | undefined): boolean => i !== undefined && Object.keys(toPatch(i)).length > 0

/** Base impairment of directed link a→b on a family: default, then matching overrides in order. */
export const baseImpairment = (s: Scenario, a: number, b: number, family: Family): Impairment => {
  let out: Impairment = { ...(s.links.default ?? {}) }
  for (const o of s.links.overrides ?? []) {
    const sel = parseLinkSelector(o.link)
    const matches = (sel.a === a && sel.b === b) || (sel.bothWays && sel.a === b && sel.b === a)
    if (!matches || (o.family !== undefined && o.family !== family)) continue
    const { link: _l, family: _f, ...fields } = o
    out = { ...out, ...fields }
  }
  return out
}

const step = <A, E, R>(name: string, e: Effect.Effect<A, E, R>): Effect.Effect<A, TwinBringUpFailed, R> =>
  Effect.mapError(e, (cause) => new TwinBringUpFailed({ step: name, cause }))

/** Kernel WireGuard? Tried in a throwaway namespace, removed again. */
export const detectKernelWireGuard = (prefix: string): Effect.Effect<boolean> =>
  Effect.gen(function* () {
    const ns = `${prefix}-k`
    const ok = yield* run(["ip", "netns", "add", ns]).pipe(
      Effect.zipRight(run(["ip", "-n", ns, "link", "add", "wgprobe", "type", "wireguard"])),
      Effect.as(true),
      Effect.orElseSucceed(() => false),
    )
    yield* run(["ip", "netns", "del", ns]).pipe(Effect.ignore)
    return ok
  })

const raiseInotify = (needed: number): Effect.Effect<number | undefined> =>
  Effect.promise(async () => {
    const path = "/proc/sys/fs/inotify/max_user_instances"
    const current = Number((await readFile(path, "utf8")).trim())
    // Other twins and tools on the machine hold instances too: leave generous headroom.
    const want = needed + 512
    if (current >= want) return undefined
    await writeFile(path, String(want))
    return want
  })

const genKeyPair = Effect.gen(function* () {
  const privateKey = (yield* run(["wg", "genkey"])).trim()
  const publicKey = (yield* run(["wg", "pubkey"], { input: `${privateKey}\n` })).trim()
  return { privateKey, publicKey }
})

/** Splits PostUp lines into `ip -batch` lines (from `ip [-4|-6] ARGS || echo .`) and the rest. */
export const batchablePostUp = (lines: ReadonlyArray<string>): { batch: string[]; shell: string[] } => {
  const batch: string[] = []
  const shell: string[] = []
  for (const line of lines) {
    const m = /^ip (?:-[46] )?([^|;&<>`$]*?) \|\| echo \.$/.exec(line.trim())
    if (m?.[1] === undefined) shell.push(line)
    else batch.push(m[1])
  }
  return { batch, shell }
}

const shQuote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`

/** Site setup script, run through the isolation wrapper inside the site's namespace. */
const siteScript = (files: SiteFiles, dir: string, kernelWg: boolean, startBird: boolean): string => {
  const tunnels = files.tunnels
  const lines = [
    "set -e",
    `cd ${shQuote(dir)}`,
    "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0",
    // wireguard-go binds a random port before `wg setconf` moves it to its fixed one; keep the
    // random ones out of the fixed range, or one tunnel's first port can steal another's.
    'sysctl -qw net.ipv4.ip_local_port_range="61000 65000"',
    "ip -batch underlay.batch",
    "ip -batch lo.batch",
  ]
  if (kernelWg) {
    for (const t of tunnels) lines.push(`ip link add ${t.name} type wireguard`)
    for (const t of tunnels) lines.push(`wg setconf ${t.name} ${t.name}.conf`)
  } else {
    lines.push(...wireguardGoUp)
    for (const t of tunnels) lines.push(`wg_start ${t.name}`)
    for (const t of tunnels) lines.push(`wg_up ${t.name}`)
  }
  lines.push("ip -batch links.batch")
  // PostUp lines that are `ip … || echo .` (errors ignored by design) run as one `ip -force
  // -batch`: hundreds of `ip` processes per site otherwise dominate bring-up at N = 20.
  const { batch, shell } = batchablePostUp(tunnels.flatMap((t) => t.postUp))
  if (batch.length > 0) lines.push("ip -force -batch postup.batch >>postup.log 2>&1 || true")
  lines.push(...shell)
  if (startBird) lines.push(birdStartLine)
  return `${lines.join("\n")}\n`
}

/**
 * Shell functions that start one wireguard-go per tunnel and configure it. A wireguard-go that
 * exits after creating its control socket (seen once in CI: `wg` then finds a dead socket, removes
 * it and falls back to the kernel, "Protocol not supported") is started again once, with its log
 * tail on stderr so the bring-up error says why.
 */
const wireguardGoUp = [
  "wg_start() {",
  '  WG_PROCESS_FOREGROUND=1 wireguard-go -f "$1" </dev/null >>wireguard-go.log 2>&1 &',
  '  echo $! >"$1.wgpid"',
  "}",
  "wg_up() {",
  "  for try in 1 2; do",
  "    i=0",
  '    while [ ! -S "/var/run/wireguard/$1.sock" ]; do',
  '      i=$((i+1)); if [ $i -gt 1500 ]; then echo "no control socket for $1" >&2; break; fi; sleep 0.02',
  "    done",
  '    if wg setconf "$1" "$1.conf"; then return 0; fi',
  '    echo "wg setconf $1 failed (try $try); wireguard-go.log:" >&2; tail -n 5 wireguard-go.log >&2',
  '    [ "$try" = 2 ] && return 1',
  '    kill "$(cat "$1.wgpid")" 2>/dev/null || true; sleep 0.2',
  '    ip link del "$1" 2>/dev/null || true; rm -f "/var/run/wireguard/$1.sock"',
  '    wg_start "$1"',
  "  done",
  "}",
]

const birdStartLine = "bird -c bird.conf -s bird.ctl -P bird.pid </dev/null >>bird.out 2>&1"

export const makeTwin = (options: TwinOptions): Effect.Effect<Twin, TwinError, Scope.Scope> =>
  Effect.gen(function* () {
    const s = options.scenario
    const progress = options.onProgress ?? (() => {})
    yield* requireRoot("the twin")
    yield* checkPrerequisites
    const started = Date.now()
    const prefix = options.prefix ?? newRunPrefix()
    const stateRoot = options.stateRoot ?? defaultStateRoot()
    const dir = runDir(stateRoot, prefix)
    const useRelay = options.relay ?? true
    const networkPriority = options.networkPriority ?? "realtime"
    const sites = Array.from({ length: s.sites }, (_, i) => i)
    const siteDir = (site: number) => join(dir, `s${site}`)
    const wgDir = (site: number) => join(siteDir(site), "wg")
    const nsOf = (site: number) => siteNs(prefix, site)
    const daemonSites = sites.filter((x) => routingOf(s, x) === "net-perf")
    if (daemonSites.length > 0 && !existsSync(daemonBinary()))
      return yield* new TwinBringUpFailed({
        step: "net-perf daemon",
        cause: new Error(`${daemonBinary()} not found: build first (npx tsc -b)`),
      })
    const needsRelay =
      hasImpairment(s.links.default) ||
      (s.links.overrides ?? []).length > 0 ||
      s.events.some((e) => e.action.includes("link") || e.action === "set-impairment")
    if (!useRelay && needsRelay)
      return yield* new TwinBringUpFailed({
        step: "impairments",
        cause: new Error("the scenario injects impairments but the link emulator is off"),
      })
    const mainPath = defaultMainPath()
    if (useRelay && !existsSync(mainPath))
      return yield* new TwinBringUpFailed({
        step: "link emulator",
        cause: new Error(`${mainPath} not found: build first (npx tsc -b)`),
      })

    const state = {
      prefix,
      scenario: s.name,
      mode: options.mode ?? "run",
      ownerPid: process.pid,
      createdAtMillis: started,
      sites: s.sites,
      namespaces: [underlayNs(prefix), ...sites.map(nsOf)],
      pids: [] as number[],
    } as const
    // Recorded before anything exists, so a crash at any later point leaves a trail for `down`.
    yield* writeRunState(stateRoot, state)
    yield* Effect.addFinalizer((exit) =>
      options.keep === true && Exit.isSuccess(exit)
        ? Effect.void
        : teardownRun(stateRoot, prefix).pipe(
            Effect.tap((r) =>
              Effect.sync(() =>
                progress(
                  `teardown ${prefix}: ${r.namespacesRemoved.length} namespaces, ${r.processesStopped} processes, ${r.durationMs} ms`,
                ),
              ),
            ),
          ),
    )
    // NETLAB_KEEP_LOGS=<dir>: the run's logs (daemons, BIRD, relay) survive teardown in <dir>/<run>/.
    // Registered after the teardown, so it runs before it and after the daemons have stopped.
    const keepLogs = process.env.NETLAB_KEEP_LOGS
    if (keepLogs !== undefined && keepLogs !== "")
      yield* Effect.addFinalizer(() =>
        run([
          "sh",
          "-c",
          'mkdir -p "$1" && cd "$0" && find . -name "*.log" -exec cp --parents {} "$1" \\;',
          dir,
          join(keepLogs, prefix),
        ]).pipe(
          Effect.tap(() => Effect.sync(() => progress(`logs kept in ${join(keepLogs, prefix)}`))),
          Effect.ignore,
        ),
      )

    const kernelWg = yield* detectKernelWireGuard(prefix)
    const tunnelCount = s.sites * (s.sites - 1) * s.families.length
    const inotifyRaisedTo = kernelWg ? undefined : yield* raiseInotify(tunnelCount)
    if (inotifyRaisedTo !== undefined)
      progress(`raised fs.inotify.max_user_instances to ${inotifyRaisedTo} (wireguard-go takes one per tunnel)`)
    progress(
      `${prefix}: ${s.sites} sites, ${tunnelCount} tunnels (${kernelWg ? "kernel WireGuard" : "wireguard-go"}), impairments: ${useRelay ? "userspace relay" : "none"}, link emulator priority: ${networkPriority === "realtime" ? "realtime (SCHED_FIFO 10)" : "normal"}`,
    )

    const keys: SiteKeys[] = yield* step(
      "key generation",
      Effect.forEach(sites, () => Effect.all({ v4: genKeyPair, v6: genKeyPair }), { concurrency: 4 }),
    )

    const generator = options.configGenerator ?? "meshgen"
    const source: SiteConfigSource =
      generator === "builtin"
        ? builtinSource(s, keys)
        : yield* step(
            "meshgen config",
            Either.mapLeft(meshgenSource(s, keys), (m) => new Error(m)),
          )

    yield* step(
      "namespaces",
      run(["ip", "-batch", "-"], { input: `${state.namespaces.map((n) => `netns add ${n}`).join("\n")}\n` }),
    )
    const u = underlayNs(prefix)
    const underlayLines = [
      "link set lo up",
      "link add br0 type bridge",
      `addr add ${underlayHub.v4}/${underlayHub.v4Prefix} dev br0`,
      `addr add ${underlayHub.v6}/${underlayHub.v6Prefix} dev br0 nodad`,
      "link set br0 up",
      ...sites.flatMap((x) => [
        `link add s${x} type veth peer name eth0 netns ${nsOf(x)}`,
        `link set s${x} master br0 up`,
      ]),
    ]
    yield* step("underlay", run(["ip", "-n", u, "-batch", "-"], { input: `${underlayLines.join("\n")}\n` }))

    // The link emulator: one relay socket per site pair and family, both ends pointing at it.
    let relayClient: LinkEmuClient | undefined
    const endpoints = new Map<string, string>()
    if (useRelay) {
      const controlPath = join(dir, "relay.ctl")
      yield* step(
        "link emulator start",
        Effect.try(() => {
          // Started through a parent shell that outlives `netlab up`: the relay exits with its parent.
          const child = spawn(
            "sh",
            [
              "-c",
              'ip netns exec "$0" "$1" "$2" --control "$3" --priority "$5" >>"$4" 2>&1; :',
              u,
              process.execPath,
              mainPath,
              controlPath,
              join(dir, "relay.log"),
              networkPriority,
            ],
            { detached: true, stdio: "ignore" },
          )
          child.unref()
        }),
      )
      // A scope of its own: the control connection closes when bring-up is done with it.
      relayClient = yield* step(
        "link emulator connect",
        connectLinkEmuClient(controlPath, { connectTimeoutMs: 15_000 }),
      )
      const client = relayClient
      const specs = allPairs(s.sites).flatMap(([a, b]) => s.families.map((family) => ({ a, b, family })))
      yield* step(
        "link emulator pairs",
        Effect.forEach(
          specs,
          ({ a, b, family }) =>
            client
              .addPair({
                id: relayPairId(a, b, family),
                family,
                listen: { address: family === 4 ? underlayHub.v4 : underlayHub.v6, port: 0 },
                a: { address: underlayAddress(a, family), port: source.listenPort(a, b, family) },
                b: { address: underlayAddress(b, family), port: source.listenPort(b, a, family) },
                aToB: toPatch(baseImpairment(s, a, b, family)),
                bToA: toPatch(baseImpairment(s, b, a, family)),
              })
              .pipe(
                Effect.tap(({ listen }) =>
                  Effect.sync(() =>
                    endpoints.set(
                      relayPairId(a, b, family),
                      family === 4 ? `${listen.address}:${listen.port}` : `[${listen.address}]:${listen.port}`,
                    ),
                  ),
                ),
              ),
          { concurrency: 8, discard: true },
        ),
      )
    }

    const endpointOf = (local: number, remote: number, family: Family): string => {
      if (useRelay) return endpoints.get(relayPairId(local, remote, family)) as string
      const host = underlayAddress(remote, family)
      const port = source.listenPort(remote, local, family)
      return family === 4 ? `${host}:${port}` : `[${host}]:${port}`
    }
    const generated = source.generate(endpointOf, (site) => join(siteDir(site), "bird.log"))
    if (Either.isLeft(generated))
      return yield* new TwinBringUpFailed({ step: `${source.generator} config`, cause: new Error(generated.left) })
    const siteFiles = generated.right

    let done = 0
    const lastReport = { at: 0 }
    yield* step(
      "sites",
      Effect.forEach(
        sites,
        (site) =>
          Effect.gen(function* () {
            const d = siteDir(site)
            yield* Effect.promise(async () => {
              await mkdir(wgDir(site), { recursive: true, mode: 0o700 })
              const files = siteFiles[site] as SiteFiles
              for (const t of files.tunnels) await writeFile(join(d, `${t.name}.conf`), t.setconf, { mode: 0o600 })
              await writeFile(join(d, "underlay.batch"), siteUnderlayBatch(site))
              await writeFile(join(d, "lo.batch"), files.loBatch)
              await writeFile(join(d, "bird.conf"), files.birdConf)
              await writeFile(
                join(d, "links.batch"),
                `${files.tunnels.map((t) => `link set ${t.name} mtu ${t.mtu} up`).join("\n")}\n`,
              )
              await writeFile(
                join(d, "postup.batch"),
                `${batchablePostUp(files.tunnels.flatMap((t) => t.postUp)).batch.join("\n")}\n`,
              )
              await writeFile(join(d, "setup.sh"), siteScript(files, d, kernelWg, true))
            })
            yield* run(inSite(nsOf(site), wgDir(site), ["sh", join(d, "setup.sh")]), { timeoutMs: 120_000 })
            done++
            if (s.sites <= 6 || done === s.sites || Date.now() - lastReport.at > 2000) {
              lastReport.at = Date.now()
              progress(`site ${done}/${s.sites} up (${Math.round((Date.now() - started) / 100) / 10} s)`)
            }
          }),
        { concurrency: options.concurrency ?? 3, discard: true },
      ),
    )

    const pids = Effect.gen(function* () {
      const out: number[] = []
      for (const ns of state.namespaces) {
        const text = yield* run(["ip", "netns", "pids", ns]).pipe(Effect.orElseSucceed(() => ""))
        for (const p of text.split(/\s+/)) if (p !== "") out.push(Number(p))
      }
      return out
    })
    const recorded = yield* pids
    yield* writeRunState(stateRoot, {
      ...state,
      pids: recorded,
      wireguardBackend: kernelWg ? "kernel" : "wireguard-go",
      impairmentBackend: useRelay ? "userspace-relay" : "none",
    })
    const bringUpMs = Date.now() - started
    progress(`${prefix} up in ${(bringUpMs / 1000).toFixed(1)} s (${recorded.length} processes)`)

    const siteCommand = (site: number, argv: ReadonlyArray<string>) => inSite(nsOf(site), wgDir(site), argv)
    const birdc = (site: number, command: string) =>
      // A unix socket path needs no namespace: birdc runs from here.
      run(["birdc", "-s", join(siteDir(site), "bird.ctl"), ...command.split(" ")], {
        timeoutMs: 10_000,
      })
    const opFail = (operation: string) => (cause: unknown) => new TwinOperationFailed({ operation, cause })
    const daemons = new Map<number, DaemonHandle>()
    const daemonOf = (site: number) =>
      Effect.fromNullable(daemons.get(site)).pipe(
        Effect.mapError(
          () => new TwinOperationFailed({ operation: `daemon of site ${site}`, cause: "site runs no daemon" }),
        ),
      )

    const twin: Twin = {
      prefix,
      dir,
      scenario: s,
      backends: {
        wireguard: kernelWg ? "kernel" : "wireguard-go",
        config: source.generator,
        impairments: useRelay ? "userspace-relay" : "none",
        networkPriority,
        ...(inotifyRaisedTo === undefined ? {} : { inotifyRaisedTo }),
      },
      bringUpMs,
      siteNs: nsOf,
      siteDir,
      siteCommand,
      exec: (site, argv) => run(siteCommand(site, argv)),
      birdc,
      impair: (link, patch, family) =>
        Effect.gen(function* () {
          if (relayClient === undefined) return yield* Effect.fail(new Error("no link emulator in this twin"))
          const client = relayClient
          const { a, b, bothWays } = parseLinkSelector(link)
          for (const f of family === undefined ? s.families : [family]) {
            const direction = bothWays ? ("both" as const) : a < b ? ("a->b" as const) : ("b->a" as const)
            yield* client.setImpairment(relayPairId(a, b, f), direction, toPatch(patch))
          }
        }).pipe(Effect.mapError(opFail(`impairment of ${link}`))),
      killBird: (site) =>
        Effect.gen(function* () {
          const pid = Number(
            (yield* Effect.promise(() => readFile(join(siteDir(site), "bird.pid"), "utf8").catch(() => ""))).trim(),
          )
          if (!(pid > 0) || !pidAlive(pid)) return yield* Effect.fail(new Error(`no running BIRD on site ${site}`))
          // SIGKILL: a crash leaves the kernel routes behind, as a real one would.
          process.kill(pid, "SIGKILL")
          while (pidAlive(pid)) yield* Effect.sleep(Duration.millis(20))
        }).pipe(Effect.mapError(opFail(`kill BIRD on site ${site}`))),
      startBird: (site) =>
        run(siteCommand(site, ["sh", "-c", `cd ${siteDir(site)} && rm -f bird.ctl && ${birdStartLine}`])).pipe(
          Effect.asVoid,
          Effect.mapError(opFail(`start BIRD on site ${site}`)),
        ),
      daemons,
      killDaemon: (site) =>
        daemonOf(site).pipe(
          Effect.flatMap((d) => d.stop("SIGKILL")),
          Effect.asVoid,
        ),
      stopDaemon: (site) =>
        daemonOf(site).pipe(
          Effect.flatMap((d) => d.stop("SIGTERM")),
          Effect.asVoid,
        ),
      restartDaemon: (site) =>
        daemonOf(site).pipe(
          Effect.tap((d) => d.stop("SIGTERM")),
          Effect.flatMap((d) => d.start),
          Effect.mapError(opFail(`restart the daemon on site ${site}`)),
        ),
      pids,
    }
    if (daemonSites.length > 0) {
      const daemonStarted = Date.now()
      // Started after every BIRD is up; their finalizers run before the teardown's (LIFO), so a
      // daemon gets its SIGTERM (and withdraws its routes) while its namespace still exists.
      // A kept twin (netlab up) outlives this process: its daemons are detached and have no handle.
      for (const site of daemonSites) {
        const daemonOptions = {
          ...(s.daemon?.config === undefined ? {} : { overrides: s.daemon.config }),
          ...(s.daemon?.logLevel === undefined ? {} : { logLevel: s.daemon.logLevel }),
        }
        if (options.keep === true)
          yield* step(`net-perf daemon on site ${site}`, startDetachedDaemon(twin, site, daemonOptions))
        else daemons.set(site, yield* step(`net-perf daemon on site ${site}`, startDaemon(twin, site, daemonOptions)))
      }
      progress(
        `net-perf daemons started on ${daemonSites.length === s.sites ? "every site" : `sites ${daemonSites.join(",")}`} (${Date.now() - daemonStarted} ms)`,
      )
    }
    return twin
  })
