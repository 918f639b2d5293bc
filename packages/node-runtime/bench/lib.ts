/**
 * Bench plumbing: a tunnel pair (test fixture) whose WireGuard underlay runs through the twin's
 * userspace link emulator (packages/simulator linkemu, spoken to over its JSON-lines control
 * socket), and measurement-plane agents inside the namespaces that print samples as JSON lines.
 * Run benches with: npx vite-node --config vitest.config.ts packages/node-runtime/bench/<name>.ts
 */
import { once } from "node:events"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import { join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { execa } from "execa"
import { bundleAgent } from "../test/probes/bundleAgent.js"
import { type Child, makeTunnelPair, type Site, type TunnelPair, wrapInSite } from "../test/probes/Netns.js"

const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../..")
export const linkEmuMain = join(repoRoot, "packages/simulator/dist/src/linkemu/main.js")

export const jsonFlag = process.argv.includes("--json")
/** `--help`/`-h`: print the bench's usage and exit before it sets anything up. */
export const helpAndExit = (usage: string): void => {
  if (!process.argv.includes("--help") && !process.argv.includes("-h")) return
  console.log(usage.trim())
  process.exit(0)
}
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The value after `name` on the command line (`--seconds 60`), undefined when the flag is absent. */
export const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

/**
 * Context switches of a process's main thread (voluntary + involuntary): about one per wake-up of
 * its event loop, which on this VM costs ≈ 0.1 ms of CPU each whatever the work.
 */
export const mainThreadSwitches = (pid: number): number => {
  const text = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8")
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0)
  return field("voluntary_ctxt_switches") + field("nonvoluntary_ctxt_switches")
}

/** One JSON-lines request/answer client for the linkemu control socket. */
export const linkEmuClient = async (path: string) => {
  const socket = net.connect(path)
  await once(socket, "connect")
  const lines = createInterface({ input: socket })
  const waiting: Array<(line: string) => void> = []
  lines.on("line", (l) => waiting.shift()?.(l))
  const request = (body: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((ok, fail) => {
      waiting.push((l) => {
        const answer = JSON.parse(l) as Record<string, unknown>
        if (answer.ok === true) ok(answer)
        else fail(new Error(`linkemu ${String(body.op)}: ${String(answer.error)}`))
      })
      socket.write(`${JSON.stringify(body)}\n`)
    })
  return {
    request,
    close: () => {
      socket.destroy()
    },
  }
}

export interface Sampled {
  readonly _tag: "RttSample" | "LossTestSample" | "PathSample" | "Health"
  readonly kind?: "udp-echo" | "icmp" | "tcp"
  readonly rttMs?: number | null
  readonly atMillis: number
  readonly sent?: number
  readonly received?: number
  readonly reordered?: number
  readonly jitterMs?: number
  readonly rateBitsPerSecond?: number
  readonly health?: "unknown" | "up" | "dead"
}

export interface Rig {
  readonly pair: TunnelPair
  readonly relay: Awaited<ReturnType<typeof linkEmuClient>>
  readonly pairId: string
  /** Samples printed by site A's agent (measuring wg1.2_v4), as they arrive. */
  readonly onSample: (f: (s: Sampled) => void) => () => void
  /** Samples printed by site B's agent (wg2.1_v4), when it was started with `peerProbes`. */
  readonly onPeerSample: (f: (s: Sampled) => void) => () => void
  readonly agentPid: () => number | undefined
  /** Control socket of site 1's (measuring) agent. */
  readonly controlPath: string
  readonly teardown: () => Promise<void>
}

/**
 * Tunnel pair 1↔2 through linkemu (running in site 2's namespace, listening on its underlay),
 * a measuring agent in site 1 (probes config as given) and a serving agent in site 2.
 */
export const makeRig = async (
  probes: Record<string, unknown>,
  options: {
    readonly extraTunnels?: number
    /** Site B's probes (default: all off, B only serves); B's samples then reach `onPeerSample`. */
    readonly peerProbes?: Record<string, unknown>
  } = {},
): Promise<Rig> => {
  const pair = await makeTunnelPair(1, 2)
  const cleanups: Array<() => Promise<void>> = []
  const teardown = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined)
    await pair.teardown()
  }
  try {
    const bundle = await bundleAgent()
    cleanups.push(bundle.cleanup)
    const control = join(pair.root, "linkemu.sock")
    const emu = pair.spawn(pair.b, [process.execPath, linkEmuMain, "--control", control, "--seed", "7"], {
      captureStdout: true,
    })
    const ready = createInterface({ input: emu.stdout! })
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error("linkemu not ready after 15 s")), 15_000)
      ready.once("line", () => {
        clearTimeout(t)
        ok()
      })
    })
    emu.stdout?.resume()
    const relay = await linkEmuClient(control)
    cleanups.push(async () => {
      relay.close()
    })
    const pairId = "1-2-v4"
    const added = await relay.request({
      op: "addPair",
      id: pairId,
      family: 4,
      listen: { address: pair.b.underlay, port: 0 },
      a: { address: pair.a.underlay, port: 51820 },
      b: { address: pair.b.underlay, port: 51820 },
    })
    const listen = added.listen as { address: string; port: number }
    const endpoint = `${listen.address}:${listen.port}`
    for (const s of [pair.a, pair.b]) {
      const peers = wrapInSite(s, ["wg", "show", s.ifName, "peers"])
      const peer = (await execa(peers[0]!, peers.slice(1))).stdout.trim()
      const set = wrapInSite(s, ["wg", "set", s.ifName, "peer", peer, "endpoint", endpoint])
      await execa(set[0]!, set.slice(1))
    }
    const agent = (s: Site, config: Record<string, unknown>, capture: boolean): Child =>
      pair.spawn(
        s,
        [
          process.execPath,
          bundle.file,
          JSON.stringify({ localSite: s.id, ...config }),
          ...(capture ? ["--samples"] : []),
        ],
        {
          captureStdout: capture,
        },
      )
    const off = {
      echo: { enabled: false },
      icmp: { enabled: false },
      tcp: { enabled: false },
      lossTest: { enabled: false },
    }
    const b = agent(
      pair.b,
      { discovery: { confDir: pair.b.confDir }, control: null, http: null, probes: options.peerProbes ?? off },
      options.peerProbes !== undefined,
    )
    const peerListeners = new Set<(s: Sampled) => void>()
    if (options.peerProbes !== undefined) {
      createInterface({ input: b.stdout! }).on("line", (line) => {
        if (!line.startsWith("{")) return
        const s = JSON.parse(line) as Sampled
        for (const f of peerListeners) f(s)
      })
    }
    const controlA = join(pair.root, "ctl-a.sock")
    const a = agent(
      pair.a,
      { discovery: { confDir: pair.a.confDir }, control: { path: controlA }, http: null, probes },
      true,
    )
    const listeners = new Set<(s: Sampled) => void>()
    createInterface({ input: a.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return
      const s = JSON.parse(line) as Sampled
      for (const f of listeners) f(s)
    })
    return {
      pair,
      relay,
      pairId,
      onSample: (f) => {
        listeners.add(f)
        return () => listeners.delete(f)
      },
      onPeerSample: (f) => {
        peerListeners.add(f)
        return () => peerListeners.delete(f)
      },
      agentPid: () => a.pid,
      controlPath: controlA,
      teardown,
    }
  } catch (e) {
    await teardown()
    throw e
  }
}

export const mean = (xs: ReadonlyArray<number>) =>
  xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length
export const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}
export const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : String(x))
