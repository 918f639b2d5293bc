/**
 * The BIRD client against real daemons: two sites in namespaces this test creates, peering over
 * two veths (one IPv4 and one IPv6 session per link). Checks that sessions come up, that
 * `show route all` becomes the expected BgpPaths with AS paths, and that the client reconnects
 * when the BIRD it talks to restarts in the middle. Runs for BIRD 2 (Debian bird2) and BIRD
 * 1.6 (unpacked by scripts/bird1.sh). Needs root (namespaces); skipped with a reason otherwise.
 */
import { execFileSync } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import type { BgpPath } from "@net-perf/engine"
import { type Duration, Effect, Schedule } from "effect"
import { beforeAll, describe } from "vitest"
import { type BirdService, makeBird1, makeBird2 } from "../../src/bird/Bird.js"
import { isEstablished } from "../../src/bird/Replies.js"
import { isRoot } from "../kernel/Netns.js"
import { type BirdFlavour, makeBirdLab } from "./BirdLab.js"

if (!isRoot) console.warn("RealBird.test.ts: skipped, needs root to create network namespaces")

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../../..")

/** Polls until every BGP session is Established and all six remote paths are learned. */
const converged = (bird: BirdService, timeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    const protocols = yield* bird.showProtocols
    const bgp = protocols.filter((p) => p.protocol === "BGP")
    const paths = yield* bird.bgpPaths
    if (bgp.length !== 4 || !bgp.every(isEstablished) || paths.length !== 6)
      return yield* Effect.fail(
        new Error(`not converged: ${bgp.map((p) => `${p.name}=${p.info}`).join(", ")}; ${paths.length} paths`),
      )
    return paths
  }).pipe(
    Effect.retry(Schedule.spaced("250 millis")),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("BIRD lab did not converge in time") }),
  )

const byPrefix = (paths: ReadonlyArray<BgpPath>, prefix: string) =>
  paths
    .filter((p) => p.prefix === prefix)
    .map((p) => ({ asPath: p.asPath, iface: p.interface, nextHop: p.nextHop, primary: p.primary }))

const scenario = (flavour: () => BirdFlavour) =>
  Effect.gen(function* () {
    const lab = yield* makeBirdLab(flavour())
    const site1 = lab.sites[0]
    const options = { socket: site1.socket, socket6: site1.socket6, requestTimeout: "3 seconds" } as const
    const bird = flavour().kind === "bird2" ? yield* makeBird2(options) : yield* makeBird1(options)

    const paths = yield* converged(bird, "40 seconds")
    expect(byPrefix(paths, "10.201.2.0/24")).toEqual([
      { asPath: [64514], iface: "wg1.2_v4", nextHop: "10.99.0.2", primary: true },
      { asPath: [64514, 64514], iface: "wg1.2_v6", nextHop: "10.99.0.6", primary: false },
    ])
    expect(byPrefix(paths, "fdac:c9:2::/64")).toEqual([
      { asPath: [64514], iface: "wg1.2_v4", nextHop: "fd00:99:1::2", primary: true },
      { asPath: [64514, 64514], iface: "wg1.2_v6", nextHop: "fd00:99:2::2", primary: false },
    ])
    // The prefix behind the prepended AS 64600 has a two-AS path on link 1.
    const behind = byPrefix(paths, "10.202.2.0/24")
    expect(
      behind
        .find((p) => p.primary)
        ?.asPath.slice()
        .sort(),
    ).toEqual([64514, 64600])
    const versionsBefore = yield* bird.versions

    // Restart the BIRD the client talks to: requests fail while it is down, then recover.
    yield* lab.stopBird(1)
    const down = yield* Effect.either(bird.showProtocols)
    expect(down._tag === "Left" && down.left._tag).toMatch(/^Bird(Unavailable|Timeout)$/)
    yield* lab.startBird(1)
    const again = yield* converged(bird, "40 seconds")
    expect(byPrefix(again, "10.201.2.0/24")).toEqual(byPrefix(paths, "10.201.2.0/24"))
    expect(yield* bird.versions).toEqual(versionsBefore)
    // The client reconnected to the restarted daemon(s).
    expect((yield* bird.connections).every((n) => n >= 2)).toBe(true)

    // Restart the peer instead: site 1's BIRD withdraws and relearns the routes.
    yield* lab.stopBird(2)
    yield* lab.startBird(2)
    const relearned = yield* converged(bird, "40 seconds")
    expect(relearned).toHaveLength(6)
  })

describe.skipIf(!isRoot)("real BIRD in namespaces", () => {
  let bird1Prefix = ""
  beforeAll(() => {
    bird1Prefix = execFileSync("bash", [join(repoRoot, "scripts/bird1.sh")])
      .toString()
      .trim()
  })

  it.scopedLive(
    "BIRD 2: sessions, BgpPaths with AS paths, client survives a BIRD restart",
    () => scenario(() => ({ kind: "bird2" })),
    120_000,
  )

  it.scopedLive(
    "BIRD 1.6 (bird + bird6): the same through two sockets",
    () => scenario(() => ({ kind: "bird1", prefix: bird1Prefix })),
    120_000,
  )
})
