/**
 * Wire-decode bench: CPU per received link-state message, the engine's Schema against the
 * hand-written checks (`src/linkstate/Wire.ts`), for the message one site of a 4-, 50- and 200-site
 * dual-stack full mesh sends (2 (N−1) tunnels, N distances, a few seqno requests). The input is what
 * gRPC hands the exchange: the protobuf-decoded object. Variants, each as the exchange runs it:
 *   schema  schemaFromWire(wire) + Effect.match + runSync   (the exchange before the fast path)
 *   fast    fromWire(wire) + Effect.match + runSync          (the exchange unchanged, fast path inside)
 *   either  fromWireEither(wire) + Either.match              (no Effect per message)
 * plus the protobuf decode of the bytes (`pb`) for scale, and `peek`: what a stale copy costs now
 * (its ordering fields read from the bytes, instead of `pb` + a decode), and `encode`: what each
 * relay of a message cost before (grpc-js encoded it once per peer; now its bytes are relayed). Rounds alternate the variants, so load
 * changes hit all of them alike; the median of the rounds is printed.
 *   npx vite-node --config vitest.config.ts packages/node-runtime/bench/wireDecode.ts [--sizes 4,50,200] [--rounds 9] [--json]
 */
import { execFileSync } from "node:child_process"
import { type Family, LinkStateMessage, mulberry32, SiteId, type TunnelState, tunnelId } from "@net-perf/engine"
import { Effect, Either } from "effect"
import * as pb from "../src/gen/netperf/linkstate/v1/linkstate.js"
import { fastFromWire, fromWire, fromWireEither, peekOrdering, schemaFromWire, toWire } from "../src/linkstate/Wire.js"
import { argValue, helpAndExit, jsonFlag } from "./lib.js"

helpAndExit(`
usage: npm run bench -- wire-decode [--sizes 4,50,200] [--rounds 9] [--batch-ms 40] [--json]
µs of CPU per received link-state message: engine Schema vs hand-written checks, per mesh size.
`)

const sizes = (argValue("--sizes") ?? "4,50,200").split(",").map(Number)
const rounds = Number(argValue("--rounds") ?? 9)
const batchMs = Number(argValue("--batch-ms") ?? 40)
/** Distinct messages per size, decoded in turn (so one object's shape is not all the JIT sees). */
const poolSize = 16

/** The message site `origin` of an N-site dual-stack full mesh advertises, with realistic values. */
const meshMessage = (sites: number, origin: number, seq: number, random: () => number): LinkStateMessage => {
  const now = 1_796_000_000_000 + seq * 2_000
  const tunnels = []
  for (let remote = 0; remote < sites; remote++) {
    if (remote === origin) continue
    for (const family of [4, 6] as const satisfies ReadonlyArray<Family>) {
      const dead = random() < 0.03
      const rttMs = dead ? null : 5 + random() * 200
      const state: TunnelState = dead ? "dead" : random() < 0.01 ? "unknown" : "up"
      tunnels.push({
        remote: SiteId.make(remote),
        family,
        stats: {
          tunnel: tunnelId(origin, remote, family),
          state,
          rttMs,
          jitterMs: random() * 3,
          lossRatio: random() < 0.8 ? 0 : random() * 0.1,
          availability: dead ? 0.5 : 1,
          lastSampleAtMillis: now - Math.floor(random() * 1_000),
          lastReplyAtMillis: dead ? now - 30_000 : now - Math.floor(random() * 1_000),
        },
        costMs: rttMs === null ? null : rttMs * (1 + random() * 0.2),
        selected: family === 4,
        ...(random() < 0.02 ? { suspect: true } : {}),
      })
    }
  }
  const distances = []
  for (let d = 0; d < sites; d++) {
    const reachable = random() > 0.02
    distances.push({
      destination: SiteId.make(d),
      seqno: Math.floor(random() * 1_000),
      distanceMs: reachable ? (d === origin ? 0 : 5 + random() * 300) : null,
      nextHop: reachable && d !== origin ? SiteId.make(Math.floor(random() * sites)) : null,
    })
  }
  const requests = []
  for (let r = 0; r < Math.floor(random() * 3); r++)
    requests.push({ destination: SiteId.make(Math.floor(random() * sites)), seqno: Math.floor(random() * 1_000) })
  return new LinkStateMessage({
    origin: SiteId.make(origin),
    incarnation: 1_796_000_000_000,
    seq,
    generatedAtMillis: now,
    tunnels,
    distances,
    requests,
  })
}

type Variant = { readonly name: string; readonly run: (wire: pb.LinkStateMessage, bytes: Uint8Array) => unknown }
const ok = () => true
const bad = () => false
const variants: ReadonlyArray<Variant> = [
  {
    name: "schema",
    run: (wire) => schemaFromWire(wire).pipe(Effect.match({ onFailure: bad, onSuccess: ok }), Effect.runSync),
  },
  { name: "fast", run: (wire) => fromWire(wire).pipe(Effect.match({ onFailure: bad, onSuccess: ok }), Effect.runSync) },
  { name: "either", run: (wire) => Either.match(fromWireEither(wire), { onLeft: bad, onRight: ok }) },
  { name: "pb", run: (_, bytes) => pb.LinkStateMessage.decode(bytes) },
  // A stale copy since session 10: only its ordering fields are read from the bytes (no pb decode).
  { name: "peek", run: (_, bytes) => peekOrdering(bytes) },
  // What each relay of a message cost before session 10 (grpc-js encoded it per peer written to).
  { name: "encode", run: (wire) => pb.LinkStateMessage.encode(wire).finish() },
]

/** µs of CPU (this thread: user + system of the process, the bench is single-threaded) per call. */
const timeBatch = (variant: Variant, pool: ReadonlyArray<{ wire: pb.LinkStateMessage; bytes: Uint8Array }>) => {
  const start = process.cpuUsage()
  const wallStart = performance.now()
  let calls = 0
  let sink = 0
  while (performance.now() - wallStart < batchMs) {
    for (const { wire, bytes } of pool) if (variant.run(wire, bytes)) sink++
    calls += pool.length
  }
  const cpu = process.cpuUsage(start)
  if (sink !== calls) throw new Error(`${variant.name}: a bench message was rejected`)
  return (cpu.user + cpu.system) / calls
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

const uptime = () => execFileSync("uptime", { encoding: "utf8" }).trim()

const loadBefore = uptime()
const results = []
for (const sites of sizes) {
  const random = mulberry32(sites)
  const pool = Array.from({ length: poolSize }, (_, i) => {
    const message = meshMessage(sites, i % sites, 100 + i, random)
    const bytes = pb.LinkStateMessage.encode(toWire(message)).finish()
    return { wire: pb.LinkStateMessage.decode(bytes), bytes, message }
  })
  // Sanity: the fast path vouches for every bench message, with the Schema's value.
  for (const { wire } of pool) {
    const fast = fastFromWire(wire)
    const reference = Effect.runSync(schemaFromWire(wire))
    if (fast === undefined || JSON.stringify(fast) !== JSON.stringify(reference))
      throw new Error(`${sites} sites: the fast path does not reproduce the Schema's value`)
  }
  for (let w = 0; w < 5; w++) for (const v of variants) timeBatch(v, pool) // warm-up (JIT)
  const perRound = new Map(variants.map((v) => [v.name, [] as Array<number>]))
  for (let r = 0; r < rounds; r++) for (const v of variants) perRound.get(v.name)?.push(timeBatch(v, pool))
  const us = Object.fromEntries([...perRound].map(([name, xs]) => [name, median(xs)]))
  const first = pool[0]
  results.push({
    sites,
    tunnels: first?.wire.tunnels.length ?? 0,
    distances: first?.wire.distances.length ?? 0,
    bytes: first?.bytes.length ?? 0,
    us,
    rangeUs: Object.fromEntries(
      [...perRound].map(([name, xs]) => [name, [Math.min(...xs), Math.max(...xs)].map((x) => +x.toFixed(2))]),
    ),
  })
}
const loadAfter = uptime()

if (jsonFlag) {
  console.log(JSON.stringify({ loadBefore, loadAfter, rounds, batchMs, results }))
} else {
  console.log(`load before: ${loadBefore}`)
  console.log(`µs of CPU per decode, median of ${rounds} alternated rounds of ~${batchMs} ms each`)
  console.log(
    "sites  tunnels  distances  bytes   schema µs   fast µs  either µs   pb µs  peek µs  encode µs   schema/fast  schema/either  pb/peek",
  )
  for (const r of results) {
    const u = r.us as Record<string, number>
    const f = (x: number | undefined, w: number) => (x ?? Number.NaN).toFixed(1).padStart(w)
    console.log(
      `${String(r.sites).padStart(5)}  ${String(r.tunnels).padStart(7)}  ${String(r.distances).padStart(9)}  ${String(r.bytes).padStart(5)}  ${f(u.schema, 10)}  ${f(u.fast, 8)}  ${f(u.either, 9)}  ${f(u.pb, 6)}  ${f(u.peek, 7)}  ${f(u.encode, 9)}  ${f((u.schema ?? 0) / (u.fast ?? 1), 11)}  ${f((u.schema ?? 0) / (u.either ?? 1), 13)}  ${f((u.pb ?? 0) / (u.peek ?? 1), 7)}`,
    )
  }
  console.log(`load after:  ${loadAfter}`)
}
