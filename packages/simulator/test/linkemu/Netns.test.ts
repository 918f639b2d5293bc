// As root: the relay in an underlay namespace between two site namespaces running wireguard-go,
// as the twin uses it. Ping over the tunnel sees the injected delay, a blackhole, and recovery;
// afterwards no namespace, process or socket of this test is left.
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execa } from "execa"
import { spawnLinkEmulator } from "../../src/linkemu/Client.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("linkemu Netns.test: skipped, needs root (namespaces, wireguard-go)")

const sh = (file: string, args: ReadonlyArray<string>, input?: string) =>
  Effect.promise(() => execa(file, args, { ...(input === undefined ? {} : { input }), reject: false })).pipe(
    Effect.flatMap((r) =>
      r.exitCode === 0 ? Effect.succeed(r.stdout) : Effect.die(new Error(`${file} ${args.join(" ")}: ${r.stderr}`)),
    ),
  )

const ping = (ns: string, count: number, intervalS: string) =>
  Effect.promise(() =>
    execa(
      "ip",
      ["netns", "exec", ns, "ping", "-n", "-q", "-c", String(count), "-i", intervalS, "-W", "1", "10.99.0.2"],
      {
        reject: false,
      },
    ),
  ).pipe(
    Effect.map((r) => {
      const received = Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0)
      const avgMs = Number(/= [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1] ?? Number.NaN)
      return { received, avgMs }
    }),
  )

describe.runIf(isRoot)("linkemu relay between wireguard-go namespaces (root)", () => {
  const prefix = `np${randomBytes(2).toString("hex")}`
  const wgPids: number[] = []

  it.scopedLive(
    "carries a WireGuard tunnel with injected delay, blackhole and recovery",
    () =>
      Effect.gen(function* () {
        const [nsA, nsB, nsU] = [`${prefix}a`, `${prefix}b`, `${prefix}u`]
        for (const ns of [nsU, nsA, nsB]) {
          yield* Effect.acquireRelease(sh("ip", ["netns", "add", ns]), () =>
            sh("ip", ["netns", "del", ns]).pipe(Effect.ignore),
          )
          yield* sh("ip", ["-n", ns, "link", "set", "lo", "up"])
        }
        for (const [ns, side, under, subnet] of [
          [nsA, "a0", "ua", "1"],
          [nsB, "b0", "ub", "2"],
        ] as const) {
          yield* sh("ip", ["link", "add", `${prefix}${side}`, "netns", ns, "type", "veth", "peer", under, "netns", nsU])
          yield* sh("ip", ["-n", ns, "link", "set", `${prefix}${side}`, "name", side])
          yield* sh("ip", ["-n", ns, "addr", "add", `100.64.${subnet}.1/24`, "dev", side])
          yield* sh("ip", ["-n", ns, "link", "set", side, "up"])
          yield* sh("ip", ["-n", ns, "route", "add", "default", "via", `100.64.${subnet}.254`])
          yield* sh("ip", ["-n", nsU, "addr", "add", `100.64.${subnet}.254/24`, "dev", under])
          yield* sh("ip", ["-n", nsU, "link", "set", under, "up"])
        }
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "linkemu-ns-"))),
          (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true })),
        )
        const controlPath = join(dir, "c.sock")
        // SCHED_FIFO for the relay and wireguard-go, as the bench does: the machine is shared and loaded.
        const relay = yield* spawnLinkEmulator({ controlPath, netns: nsU, priority: "realtime" })
        const { listen } = yield* relay.client.addPair({
          id: "a-b-v4",
          family: 4,
          listen: { address: "100.64.1.254", port: 0 },
          a: { address: "100.64.1.1", port: 51820 },
          b: { address: "100.64.2.1", port: 51820 },
          aToB: { delayMs: 10 },
          bToA: { delayMs: 10 },
        })
        const keys = [yield* sh("wg", ["genkey"]), yield* sh("wg", ["genkey"])] as const
        const pubs = [yield* sh("wg", ["pubkey"], keys[0]), yield* sh("wg", ["pubkey"], keys[1])] as const
        const sites = [
          { ns: nsA, ifname: `${prefix}wa`, key: keys[0], peer: pubs[1], self: "10.99.0.1", other: "10.99.0.2" },
          { ns: nsB, ifname: `${prefix}wb`, key: keys[1], peer: pubs[0], self: "10.99.0.2", other: "10.99.0.1" },
        ]
        for (const site of sites) {
          const child = execa("ip", ["netns", "exec", site.ns, "chrt", "-f", "10", "wireguard-go", "-f", site.ifname], {
            reject: false,
          })
          if (child.pid !== undefined) wgPids.push(child.pid)
          yield* Effect.addFinalizer(() =>
            Effect.promise(async () => {
              child.kill("SIGTERM")
              const kill = setTimeout(() => child.kill("SIGKILL"), 5000)
              await child
              clearTimeout(kill)
            }),
          )
          for (let i = 0; i < 100; i++) {
            const r = yield* Effect.promise(() =>
              execa("ip", ["-n", site.ns, "link", "show", site.ifname], { reject: false }),
            )
            if (r.exitCode === 0) break
            yield* Effect.sleep(100)
          }
          const keyFile = join(dir, `${site.ifname}.key`)
          yield* sh("sh", ["-c", `umask 077; cat > '${keyFile}'`], site.key)
          yield* sh("ip", [
            "netns",
            "exec",
            site.ns,
            "wg",
            "set",
            site.ifname,
            "listen-port",
            "51820",
            "private-key",
            keyFile,
            "peer",
            site.peer,
            "endpoint",
            `${listen.address}:${listen.port}`,
            "allowed-ips",
            `${site.other}/32`,
          ])
          yield* sh("ip", ["-n", site.ns, "addr", "add", `${site.self}/24`, "dev", site.ifname])
          yield* sh("ip", ["-n", site.ns, "link", "set", site.ifname, "up"])
        }

        yield* ping(nsA, 5, "0.1") // handshake
        const delayed = yield* ping(nsA, 20, "0.05")
        expect(delayed.received).toBe(20)
        expect(delayed.avgMs).toBeGreaterThan(20)
        expect(delayed.avgMs).toBeLessThan(30)

        yield* relay.client.setImpairment("a-b-v4", "b->a", { down: true })
        const blackholed = yield* ping(nsA, 5, "0.1")
        expect(blackholed.received).toBe(0)
        yield* relay.client.setImpairment("a-b-v4", "both", { down: false, delayMs: 0 })
        const recovered = yield* ping(nsA, 10, "0.05")
        expect(recovered.received).toBe(10)
        expect(recovered.avgMs).toBeLessThan(10)

        const [stats] = yield* relay.client.stats("a-b-v4")
        expect(stats!.invalidSource).toBe(0)
        expect(stats!.directions["b->a"].droppedDown).toBeGreaterThanOrEqual(5)
        expect(stats!.directions["a->b"].forwarded).toBeGreaterThanOrEqual(35)
      }),
    60_000,
  )

  it.live("left nothing behind", () =>
    Effect.gen(function* () {
      const namespaces = yield* sh("ip", ["netns", "list"])
      expect(namespaces).not.toContain(prefix)
      for (const pid of wgPids) expect(existsSync(`/proc/${pid}`)).toBe(false)
      const procs = yield* Effect.promise(() => execa("pgrep", ["-af", prefix], { reject: false }))
      expect(procs.stdout.split("\n").filter((l) => l.includes("wireguard-go"))).toEqual([])
    }),
  )
})
