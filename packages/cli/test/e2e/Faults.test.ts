// Issue 6's faults, each an integration test against the real daemons of ONE 3-site twin (real
// wireguard-go, real BIRD 2, link state over mutual TLS), run in sequence, each restoring the mesh:
// (a) BIRD down and restarted, (b) a peer daemon stopped and started, (c) a tunnel flapping every
// second for 10 s, (d) a malformed link-state message on :5122 and a malformed BIRD reply,
// (e) a daemon killed with -9 and restarted over the routes it left behind. In each: the daemons
// stay up and answer /healthz, no managed route uses a dead tunnel, forwarding has no loop, a log
// line and a metric on :5120/metrics say what happened, and the mesh recovers when the fault clears.
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, layer } from "@effect/vitest"
import { makeCa, makeFakeBird, makeLeaf, type PkiLeaf } from "@net-perf/node-runtime"
import { makeTwin, NetLab, parseScenarioText, type Twin } from "@net-perf/simulator"
import { Context, Effect, Either, Fiber, Layer, Option } from "effect"
import { execa } from "execa"
import {
  logSince,
  logSize,
  type MeshExpectation,
  managedRoutes,
  meshViolations,
  metricAt,
  pidAlive,
  waitFor,
  waitHealthy,
} from "./faults/Mesh.js"

const isRoot = process.getuid?.() === 0
if (!isRoot) console.log("skipping the fault tests: need root (network namespaces)")

const sites = [0, 1, 2] as const
const scenario = Either.getOrThrow(
  parseScenarioText(
    ["name: faults-3", "sites: 3", "durationSeconds: 60", "links:", "  default: { delayMs: 5 }", "events: []"].join(
      "\n",
    ),
  ),
)
const perfc = join(import.meta.dirname, "../../dist/src/bin/perfc.js")
const sendMalformed = join(import.meta.dirname, "faults/sendMalformedLinkState.mjs")

interface Fixture {
  readonly twin: Twin
  readonly daemons: ReadonlyMap<number, NetLab.DaemonHandle>
  readonly ca: string
  /** A client certificate from the mesh CA (perfc, the malformed-message sender). */
  readonly client: PkiLeaf
}
class FaultTwin extends Context.Tag("FaultTwin")<FaultTwin, Fixture>() {}

/** The twin, one CA with a certificate per site (its overlay address + loopback), three daemons. */
const FaultTwinLive = Layer.scoped(
  FaultTwin,
  Effect.gen(function* () {
    const pkiDir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "np-faults-pki-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
    )
    const ca = yield* makeCa(pkiDir, "mesh-ca")
    const client = yield* makeLeaf(pkiDir, ca, "perfc", ["127.0.0.1"])
    const twin = yield* makeTwin({ scenario, mode: "test" })
    const daemons = new Map<number, NetLab.DaemonHandle>()
    for (const site of sites) {
      const leaf = yield* makeLeaf(pkiDir, ca, `site${site}`, [`10.201.${site}.1`, "127.0.0.1"])
      daemons.set(
        site,
        yield* NetLab.startDaemon(twin, site, {
          overrides: {
            grpc: { tls: { caFile: leaf.caFile, certFile: leaf.certFile, keyFile: leaf.keyFile } },
            // Short age-out and dwell: the test checks the mechanisms, not the default tuning.
            routing: { linkStateMaxAgeMillis: 5_000, stability: { dwellMillis: 3_000, noiseFactor: 1 } },
          },
        }),
      )
    }
    const fixture: Fixture = { twin, daemons, ca: ca.certFile, client }
    const convergedMs = yield* waitFor(
      "every site routes to every other site (4 managed routes each)",
      120,
      allRoutes(twin),
    )
    yield* waitHealthy(twin, "a healthy mesh after start", 30, base(fixture))
    console.log(`faults: twin up in ${twin.bringUpMs} ms, daemons converged ${convergedMs} ms later`)
    return fixture
  }),
)

const base = (f: Fixture, extra: Partial<MeshExpectation> = {}): MeshExpectation => ({
  sites,
  daemons: f.daemons,
  ...extra,
})

/** Both overlay families to both other sites, at every site (or the given ones). */
const allRoutes = (twin: Twin, at: ReadonlyArray<number> = sites) =>
  Effect.map(
    Effect.forEach(at, (s) => managedRoutes(twin.siteNs(s))),
    (tables) => tables.every((t) => t.length === 4),
  )

/** The mesh as each fault must find and leave it. */
const healthyStart = (f: Fixture) =>
  Effect.gen(function* () {
    yield* waitFor("4 managed routes at every site", 60, allRoutes(f.twin))
    yield* waitHealthy(f.twin, "a healthy mesh before the fault", 30, base(f))
  })

/** On failure: the daemons' last log lines, so a red run explains itself. */
const diagnose = (f: Fixture) =>
  Effect.gen(function* () {
    for (const [site, d] of f.daemons) {
      const log = yield* logSince(d, 0)
      console.log(`--- site ${site} daemon log (last 25 lines)\n${log.split("\n").slice(-25).join("\n")}`)
    }
  })

const timings: Array<string> = []
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

let residue: { readonly prefix: string; readonly pids: ReadonlyArray<number> } | undefined

describe.skipIf(!isRoot)("faults against real net-perf daemons in a 3-site twin", () => {
  // Runs after the layer's own teardown (an inner suite's hooks run first): nothing may be left.
  afterAll(async () => {
    if (residue === undefined) return
    const { prefix, pids } = residue
    const deadline = Date.now() + 30_000
    let left: { namespaces: Array<string>; pids: Array<number> } = { namespaces: [], pids: [] }
    do {
      const ns = await execa("ip", ["netns", "list"], { reject: false })
      left = {
        namespaces: ns.stdout.split("\n").filter((l) => l.startsWith(`${prefix}-`)),
        pids: pids.filter((p) => pidAlive(p)),
      }
      if (left.namespaces.length === 0 && left.pids.length === 0) break
      await new Promise((r) => setTimeout(r, 500))
    } while (Date.now() < deadline)
    expect(left).toEqual({ namespaces: [], pids: [] })
  }, 40_000)

  layer(FaultTwinLive, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.effect(
      "perfc reads every site over mutual TLS; without a client certificate it is refused",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          const tls = ["--tls-ca", f.ca, "--tls-cert", f.client.certFile, "--tls-key", f.client.keyFile]
          const run = (extra: ReadonlyArray<string>) => {
            const [command, ...args] = f.twin.siteCommand(0, [
              process.execPath,
              perfc,
              "--sites",
              "0,1,2",
              "--json",
              ...extra,
            ])
            return Effect.promise(() => execa(command!, args, { reject: false }))
          }
          const ok = yield* run(tls)
          expect(ok.exitCode, ok.stderr).toBe(0)
          const view = JSON.parse(ok.stdout) as { sites: Array<{ site: number; routes: Array<unknown> }> }
          expect(view.sites.map((s) => [s.site, s.routes.length])).toEqual([
            [0, 2],
            [1, 2],
            [2, 2],
          ])
          const plaintext = yield* run([])
          expect(plaintext.exitCode).not.toBe(0)
          const caOnly = yield* run(["--tls-ca", f.ca])
          expect(caOnly.exitCode).not.toBe(0)
        }),
      60_000,
    )

    it.effect(
      "(a) BIRD killed and restarted: bird_up 0 then 1, routing and forwarding unharmed",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const d0 = f.daemons.get(0)!
          const mark = yield* logSize(d0)
          const failuresBefore = yield* metricAt(f.twin, 0, "netperf_bird_failures_total", { error: "BirdUnavailable" })
          let birdDown = false
          yield* Effect.gen(function* () {
            yield* f.twin.killBird(0)
            birdDown = true
            const detectMs = yield* waitFor(
              "site 0 reports netperf_bird_up 0",
              30,
              Effect.map(metricAt(f.twin, 0, "netperf_bird_up"), (v) => v === 0),
            )
            expect(yield* metricAt(f.twin, 0, "netperf_bird_failures_total", { error: "BirdUnavailable" })).toBe(
              failuresBefore + 1,
            )
            expect(yield* logSince(d0, mark)).toMatch(/BIRD unavailable \(BirdUnavailable: .*routing continues/)
            yield* waitHealthy(f.twin, "a healthy mesh while BIRD is down at site 0", 20, base(f))
            expect(yield* allRoutes(f.twin)).toBe(true)

            yield* f.twin.startBird(0)
            birdDown = false
            const recoverMs = yield* waitFor(
              "site 0 reports netperf_bird_up 1 and BGP paths",
              60,
              Effect.map(
                Effect.all([metricAt(f.twin, 0, "netperf_bird_up"), metricAt(f.twin, 0, "netperf_bgp_paths")]),
                ([up, paths]) => up === 1 && paths > 0,
              ),
            )
            expect(yield* logSince(d0, mark)).toMatch(/BIRD is back: \d+ BGP path/)
            yield* waitHealthy(f.twin, "a healthy mesh after BIRD's restart", 30, base(f))
            timings.push(
              `(a) BIRD down: detected (bird_up 0) in ${seconds(detectMs)}; restart → bird_up 1 in ${seconds(recoverMs)}`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.suspend(() => (birdDown ? Effect.ignore(f.twin.startBird(0)) : Effect.void))),
          )
        }),
      120_000,
    )

    it.effect(
      "(b) a peer daemon stopped, then started: its peers see the stream lost and its state age out, then both back",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const d2 = f.daemons.get(2)!
          const watchers = [0, 1] as const
          const marks = yield* Effect.forEach(watchers, (s) => logSize(f.daemons.get(s)!))
          let stopped = false
          yield* Effect.gen(function* () {
            const stoppedAt = Date.now()
            expect(yield* d2.stop("SIGTERM")).toBe("exit 0")
            stopped = true
            yield* waitFor(
              "sites 0 and 1: netperf_linkstate_peer_connected{peer=2} 0",
              30,
              Effect.map(
                Effect.forEach(watchers, (s) => metricAt(f.twin, s, "netperf_linkstate_peer_connected", { peer: "2" })),
                (vs) => vs.every((v) => v === 0),
              ),
            )
            const lostMs = Date.now() - stoppedAt
            yield* waitFor(
              "sites 0 and 1: netperf_linkstate_peer_live{origin=2} 0",
              30,
              Effect.map(
                Effect.forEach(watchers, (s) => metricAt(f.twin, s, "netperf_linkstate_peer_live", { origin: "2" })),
                (vs) => vs.every((v) => v === 0),
              ),
            )
            const agedMs = Date.now() - stoppedAt
            for (const [i, s] of watchers.entries()) {
              const log = yield* logSince(f.daemons.get(s)!, marks[i]!)
              expect(log).toMatch(/link-state stream to site 2 lost/)
              expect(log).toMatch(/link state of site 2 aged out \(silent [\d.]+ s\)/)
              expect(
                yield* metricAt(f.twin, s, "netperf_linkstate_peer_stream_changes_total", { peer: "2", state: "lost" }),
              ).toBeGreaterThan(0)
              expect(yield* metricAt(f.twin, s, "netperf_linkstate_age_seconds", { origin: "2" })).toBeGreaterThan(5)
            }
            yield* waitHealthy(
              f.twin,
              "a healthy mesh with site 2's daemon down",
              30,
              base(f, { daemonsDown: new Set([2]) }),
            )

            const startedAt = Date.now()
            yield* d2.start
            stopped = false
            const backMs = yield* waitFor(
              "sites 0 and 1 hear site 2 again (peer_live 1, stream open)",
              60,
              Effect.map(
                Effect.forEach(watchers, (s) =>
                  Effect.all([
                    metricAt(f.twin, s, "netperf_linkstate_peer_live", { origin: "2" }),
                    metricAt(f.twin, s, "netperf_linkstate_peer_connected", { peer: "2" }),
                  ]),
                ),
                (vs) => vs.every(([live, connected]) => live === 1 && connected === 1),
              ),
            )
            for (const [i, s] of watchers.entries()) {
              const log = yield* logSince(f.daemons.get(s)!, marks[i]!)
              expect(log).toMatch(/link state of site 2 is fresh again/)
              expect(log).toMatch(/link-state stream to site 2 open/)
            }
            yield* waitFor("4 managed routes at every site again", 60, allRoutes(f.twin))
            const routesBackMs = Date.now() - startedAt
            yield* waitHealthy(f.twin, "a healthy mesh after site 2's daemon is back", 30, base(f))
            timings.push(
              `(b) peer daemon down: peers saw the stream lost ${seconds(lostMs)} after SIGTERM (stop included), state aged out after ${seconds(agedMs)}; start → heard again in ${seconds(backMs)}, all routes back ${seconds(routesBackMs)} after start; total ${seconds(Date.now() - stoppedAt)}`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.suspend(() => (stopped ? Effect.ignore(d2.start) : Effect.void))),
          )
        }),
      150_000,
    )

    it.effect(
      "(c) a tunnel flapping every second for 10 s: verdicts counted and logged, no loop, no lasting route via a dead tunnel",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const ends = [0, 1] as const
          const marks = yield* Effect.forEach(ends, (s) => logSize(f.daemons.get(s)!))
          const deadVerdicts = Effect.map(
            Effect.forEach(ends, (s) => metricAt(f.twin, s, "netperf_tunnel_state_changes_total", { state: "dead" })),
            (vs) => vs.reduce((a, b) => a + b, 0),
          )
          const deadBefore = yield* deadVerdicts
          const lostEchoes = metricAt(f.twin, 0, "netperf_probes_lost_total", { local: "0", remote: "1", probe: "udp" })
          const lostBefore = yield* lostEchoes
          // A violation seen in samples spanning more than this is a real one, not a sampling race
          // (a verdict lands, then the next decision + `ip -batch` take a few hundred ms).
          const graceMillis = 3_000
          const firstSeen = new Map<string, number>()
          const lasting = new Set<string>()
          const loops = new Set<string>()
          let samples = 0
          yield* Effect.gen(function* () {
            // Down 1 s, up 1 s, for 10 s — and on (20 s at most) until the detector has called the tunnel
            // dead once: a 1 s outage is at the edge of its ≤ 1.4 s design, and on a loaded machine
            // (RTT variance stretches the miss timeout) a whole 10 s of flapping can pass undetected.
            const flapping = yield* Effect.fork(
              Effect.gen(function* () {
                for (let i = 0; i < 20; i++) {
                  yield* f.twin.impair("0-1", { down: i % 2 === 0 })
                  yield* Effect.sleep("1 second")
                  if (i % 2 === 1 && i >= 9 && (yield* deadVerdicts) > deadBefore) return
                }
              }),
            )
            const flapStart = Date.now()
            while (Option.isNone(yield* Fiber.poll(flapping))) {
              const now = Date.now()
              const seen = yield* meshViolations(f.twin, base(f))
              samples++
              for (const v of seen) {
                if (v.includes("loops")) loops.add(v)
                const first = firstSeen.get(v) ?? now
                firstSeen.set(v, first)
                if (now - first > graceMillis) lasting.add(v)
              }
              for (const v of [...firstSeen.keys()]) if (!seen.includes(v)) firstSeen.delete(v)
            }
            yield* Fiber.join(flapping)
            const flapMs = Date.now() - flapStart
            expect(loops, [...loops].join("\n")).toEqual(new Set())
            expect(lasting, [...lasting].join("\n")).toEqual(new Set())
            const deadAfter = yield* deadVerdicts
            expect(deadAfter).toBeGreaterThan(deadBefore)
            const lostAfter = yield* lostEchoes
            expect(lostAfter).toBeGreaterThan(lostBefore)
            const logs = yield* Effect.forEach(ends, (s, i) => logSince(f.daemons.get(s)!, marks[i]!))
            expect(logs.join("\n")).toMatch(/tunnel wg[01]\.[01]_v[46]: dead/)
            expect(logs.join("\n")).toMatch(/tunnel wg[01]\.[01]_v[46]: up/)

            // The flapping ends with the link up: every verdict returns to up and the mesh heals.
            const stoppedAt = Date.now()
            yield* waitFor(
              "sites 0 and 1 report their 0-1 tunnels up after the flapping",
              60,
              Effect.map(
                Effect.forEach(ends, (s) =>
                  metricAt(f.twin, s, "netperf_tunnel_up", { local: String(s), remote: String(1 - s) }),
                ),
                (vs) => vs.every((v) => v === 2),
              ),
            )
            yield* waitHealthy(f.twin, "a healthy mesh after the flapping", 60, base(f))
            yield* waitFor("4 managed routes at every site after the flapping", 60, allRoutes(f.twin))
            const recoverMs = Date.now() - stoppedAt
            timings.push(
              `(c) flapping ${seconds(flapMs)}: ${deadAfter - deadBefore} dead verdict(s) at the two ends, ${lostAfter - lostBefore} echoes lost at site 0, ${samples} mesh samples, 0 loops, 0 lasting routes via a dead tunnel; healthy ${seconds(recoverMs)} after it stopped`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.ignore(f.twin.impair("0-1", { down: false }))),
          )
          // Cut for good a link in use (1-2: untouched so far, direct routes): the routes leave the
          // dead tunnel (ground truth), then the tunnels come back.
          const cutEnds = [1, 2] as const
          const routeDev = (site: number, dst: number) =>
            Effect.map(managedRoutes(f.twin.siteNs(site)), (rs) => rs.find((r) => r.dst === `10.201.${dst}.0/24`)?.dev)
          const viaCut = Effect.map(
            Effect.forEach(cutEnds, (s) => managedRoutes(f.twin.siteNs(s)), { concurrency: "unbounded" }),
            (tables) => tables.flat().some((r) => /^wg(1\.2|2\.1)_v[46]$/.test(r.dev)),
          )
          yield* Effect.gen(function* () {
            yield* waitFor(
              "1→2 and 2→1 on their direct tunnels",
              30,
              Effect.map(
                Effect.all([routeDev(1, 2), routeDev(2, 1)]),
                ([a, b]) => a?.startsWith("wg1.2_") === true && b?.startsWith("wg2.1_") === true,
              ),
            )
            const cutAt = Date.now()
            yield* f.twin.impair("1-2", { down: true })
            const leaveMs = yield* waitFor(
              "no managed route via the cut link 1-2 at sites 1 and 2",
              30,
              Effect.map(viaCut, (v) => !v),
            )
            yield* waitHealthy(
              f.twin,
              "a healthy mesh with the link 1-2 cut",
              30,
              base(f, { deadLinks: new Set(["1-2"]) }),
            )
            yield* waitFor("4 managed routes at every site around the cut", 30, allRoutes(f.twin))
            const restoredAt = Date.now()
            yield* f.twin.impair("1-2", { down: false })
            const upMs = yield* waitFor(
              "sites 1 and 2 report the 1-2 tunnels up again",
              60,
              Effect.map(
                Effect.forEach(cutEnds, (s) =>
                  metricAt(f.twin, s, "netperf_tunnel_up", { local: String(s), remote: String(3 - s) }),
                ),
                (vs) => vs.every((v) => v === 2),
              ),
            )
            yield* waitHealthy(f.twin, "a healthy mesh after the cut is repaired", 60, base(f))
            timings.push(
              `(c) hard cut of 1-2 (in use): routes off the dead tunnel ${seconds(leaveMs)} after the cut (${seconds(Date.now() - cutAt)} to repaired); repaired → tunnels up in ${seconds(upMs)} (${seconds(Date.now() - restoredAt)} to a healthy mesh)`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.ignore(f.twin.impair("1-2", { down: false }))),
          )
        }),
      150_000,
    )

    it.effect(
      "(d) a malformed link-state message on :5122 is counted, logged and refused; the daemon keeps exchanging",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const d0 = f.daemons.get(0)!
          const mark = yield* logSize(d0)
          const outcome = (o: string) => metricAt(f.twin, 0, "netperf_linkstate_messages_total", { outcome: o })
          const [undecodableBefore, invalidBefore] = [yield* outcome("undecodable"), yield* outcome("invalid")]
          // From site 1 (over the overlay, with a certificate from the mesh CA) to site 0's daemon.
          const [command, ...args] = f.twin.siteCommand(1, [
            process.execPath,
            sendMalformed,
            "10.201.0.1:5122",
            f.ca,
            f.client.certFile,
            f.client.keyFile,
          ])
          const sentAt = Date.now()
          const sent = yield* Effect.promise(() => execa(command!, args, { reject: false }))
          expect(sent.exitCode, sent.stderr).toBe(0)
          const answers = JSON.parse(sent.stdout) as {
            undecodable: { code?: number }
            rejected: { summary?: { accepted: number; rejected: number } }
          }
          expect(answers.undecodable.code).toBe(13) // INTERNAL: the frame never reached the handler
          expect(answers.rejected.summary).toEqual({ accepted: 0, rejected: 1 })
          const detectMs = yield* waitFor(
            "site 0 counts one undecodable and one invalid link-state message",
            10,
            Effect.map(
              Effect.all([outcome("undecodable"), outcome("invalid")]),
              ([u, i]) => u === undecodableBefore + 1 && i === invalidBefore + 1,
            ),
          )
          const log = yield* logSince(d0, mark)
          expect(log).toMatch(/undecodable link-state message \(8-byte frame\)/)
          expect(log).toMatch(/invalid link-state message from .*\(site 1\)/)
          // still alive and still exchanging: accepted messages keep arriving from the peers
          const acceptedBefore = yield* outcome("accepted")
          yield* waitFor(
            "site 0 accepts link state after the bad messages",
            15,
            Effect.map(outcome("accepted"), (a) => a > acceptedBefore + 2),
          )
          expect(pidAlive(d0.pid())).toBe(true)
          yield* waitHealthy(f.twin, "a healthy mesh after the malformed messages", 20, base(f))
          timings.push(
            `(d) malformed link-state: counted ${seconds(detectMs)} after the sender finished (${seconds(Date.now() - sentAt)} incl. checks)`,
          )
        }).pipe(Effect.tapErrorCause(() => FaultTwin.pipe(Effect.flatMap(diagnose)))),
      60_000,
    )

    it.effect(
      "(d) a malformed BIRD reply is counted (BirdParseError) and logged; the real BIRD back, paths return",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const d0 = f.daemons.get(0)!
          const mark = yield* logSize(d0)
          const parseFailures = metricAt(f.twin, 0, "netperf_bird_failures_total", { error: "BirdParseError" })
          const before = yield* parseFailures
          const socket = join(f.twin.siteDir(0), "bird.ctl")
          let realBirdDown = false
          yield* Effect.gen(function* () {
            yield* f.twin.killBird(0)
            realBirdDown = true
            // A server on BIRD's socket that frames its replies wrongly (a line outside the protocol).
            const faultAt = Date.now()
            const detectMs = yield* Effect.scoped(
              Effect.gen(function* () {
                const fake = yield* makeFakeBird({
                  path: socket,
                  replies: () =>
                    "1007-10.201.1.0/24          unicast [bgp_1 12:00:00.000] * (100) [AS64513i]\nthis is not a BIRD reply line\n0000 \n",
                })
                const ms = yield* waitFor(
                  "site 0 counts a BirdParseError",
                  30,
                  Effect.map(parseFailures, (v) => v === before + 1),
                )
                expect(fake.commands.length).toBeGreaterThan(0)
                expect(yield* metricAt(f.twin, 0, "netperf_bird_up")).toBe(0)
                expect(yield* logSince(d0, mark)).toMatch(
                  /BIRD unavailable \(BirdParseError: cannot parse BIRD reply to "show route all"/,
                )
                yield* waitHealthy(f.twin, "a healthy mesh while BIRD's replies are malformed", 20, base(f))
                return ms
              }),
            )
            const clearedAt = Date.now()
            yield* f.twin.startBird(0)
            realBirdDown = false
            const recoverMs = yield* waitFor(
              "site 0 reads BGP paths from the real BIRD again",
              60,
              Effect.map(
                Effect.all([metricAt(f.twin, 0, "netperf_bird_up"), metricAt(f.twin, 0, "netperf_bgp_paths")]),
                ([up, paths]) => up === 1 && paths > 0,
              ),
            )
            expect(yield* logSince(d0, mark)).toMatch(/BIRD is back: \d+ BGP path/)
            yield* waitHealthy(f.twin, "a healthy mesh with the real BIRD back", 30, base(f))
            timings.push(
              `(d) malformed BIRD reply: counted ${seconds(detectMs)} after the fake took the socket (${seconds(clearedAt - faultAt)} with checks); real BIRD back → paths in ${seconds(recoverMs)}`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.suspend(() => (realBirdDown ? Effect.ignore(f.twin.startBird(0)) : Effect.void))),
          )
        }),
      120_000,
    )

    it.effect(
      "(e) a daemon killed with -9 leaves its routes; restarted, it counts and reconciles them",
      () =>
        Effect.gen(function* () {
          const f = yield* FaultTwin
          yield* healthyStart(f)
          const d1 = f.daemons.get(1)!
          const mark = yield* logSize(d1)
          let killed = false
          yield* Effect.gen(function* () {
            const pidBefore = d1.pid()
            expect(yield* d1.stop("SIGKILL")).toBe("SIGKILL")
            killed = true
            expect(pidAlive(pidBefore)).toBe(false)
            // a crash withdraws nothing: the routes stay, and they use live tunnels
            const left = yield* managedRoutes(f.twin.siteNs(1))
            expect(left.length).toBe(4)
            yield* waitHealthy(
              f.twin,
              "a healthy mesh with site 1's daemon crashed",
              30,
              base(f, { daemonsDown: new Set([1]) }),
            )

            const startedAt = Date.now()
            yield* d1.start
            killed = false
            const countedMs = yield* waitFor(
              "site 1 reports the routes it found at start",
              60,
              Effect.map(metricAt(f.twin, 1, "netperf_kernel_routes_found_at_start"), (v) => v === left.length),
            )
            const reconciledMs = yield* waitFor(
              "site 1 reports its start-up reconcile",
              60,
              Effect.map(metricAt(f.twin, 1, "netperf_kernel_startup_reconciled"), (v) => v === 1),
            )
            const log = yield* logSince(d1, mark)
            expect(log).toMatch(/found 4 protocol-201 route\(s\) left by a previous run/)
            const reconciled =
              /routes reconciled at start: 4 left by a previous run, (\d+) operation\(s\), (\d+) managed/.exec(log)
            expect(reconciled).not.toBeNull()
            yield* waitFor("4 managed routes at every site after the restart", 60, allRoutes(f.twin))
            const routesBackMs = Date.now() - startedAt
            yield* waitHealthy(f.twin, "a healthy mesh after the restart", 30, base(f))
            timings.push(
              `(e) kill -9 + restart: found-at-start metric after ${seconds(countedMs)}, reconciled ${seconds(countedMs + reconciledMs)} after start (${reconciled?.[1]} op(s), ${reconciled?.[2]} managed route(s) left), all routes back ${seconds(routesBackMs)} after start (the engine's start-up hold-down: linkStateMaxAgeMillis + 10 s = 15 s)`,
            )
          }).pipe(
            Effect.tapErrorCause(() => diagnose(f)),
            Effect.ensuring(Effect.suspend(() => (killed ? Effect.ignore(d1.start) : Effect.void))),
          )
        }),
      150_000,
    )

    it.effect("timings (and what the teardown must remove)", () =>
      Effect.gen(function* () {
        const f = yield* FaultTwin
        console.log(`fault timings:\n  ${timings.join("\n  ")}`)
        residue = {
          prefix: f.twin.prefix,
          pids: [...(yield* f.twin.pids), ...[...f.daemons.values()].flatMap((d) => d.pid() ?? [])],
        }
      }),
    )
  })
})
