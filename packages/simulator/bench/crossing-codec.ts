/**
 * Micro-bench of the two ways a window's link-state messages cross between the model's workers,
 * side by side in one process, over a real MessageChannel (post + `receiveMessageOnPort`, both
 * ends on this thread, so each figure is the sender's plus the receiver's work):
 *   clone: the batch of objects structured-cloned, each message revived with
 *          `new LinkStateMessage(fields, true)` (the worker before `CrossingCodec.ts`);
 *   codec: `encodeCrossings` → one Float64Array, transferred → `decodeCrossings`.
 * Messages are shaped as `NodeRouter.advertise` builds them at N = 200 partial, degree 8:
 * 8 tunnels with stats, 200 distances (a few retractions), a request now and then, 100
 * recipients; 1–2 messages per batch (≈ 36 600 messages over 30 000 windows in the 600 s run).
 * Rounds alternate clone / codec so load changes hit both; medians of µs per message.
 *
 *   npx esbuild packages/simulator/bench/crossing-codec.ts --bundle --platform=node --format=esm \
 *     --conditions=source --outfile=/tmp/crossing-codec.mjs && node /tmp/crossing-codec.mjs [rounds]
 */
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads"
import { LinkStateMessage } from "@net-perf/engine"
import { type Crossing, decodeCrossings, encodeCrossings } from "../src/model/CrossingCodec.js"
import { Prng } from "../src/model/Prng.js"

const SITES = 200
const TUNNELS = 8
const RECIPIENTS = 100
const MESSAGES = 64
const BATCHES_PER_ROUND = 1_000

const prng = Prng.derive(1, "crossing-codec-bench")
const r = () => prng.next()
const int = (n: number) => Math.floor(r() * n)

const makeMessage = (origin: number, seq: number): LinkStateMessage => {
  const now = 1_764_300_000_000 + seq * 2_000 + r()
  const tunnels = []
  for (let i = 0; i < TUNNELS; i++) {
    const remote = (origin + 1 + i * 23) % SITES
    const family = i % 2 === 0 ? 4 : 6
    const up = r() > 0.05
    tunnels.push({
      remote,
      family,
      stats: {
        tunnel: { local: origin, remote, family },
        state: up ? "up" : "dead",
        rttMs: up ? 5 + 80 * r() : null,
        jitterMs: 2 * r(),
        lossRatio: r() < 0.8 ? 0 : 0.05 * r(),
        availability: up ? 1 - 0.01 * r() : 0.3 * r(),
        lastSampleAtMillis: now - 200 * r(),
        lastReplyAtMillis: up ? now - 200 * r() : now - 5_000,
      },
      costMs: up ? 5 + 90 * r() : null,
      selected: r() < 0.5,
    })
  }
  const distances: Array<{ destination: number; seqno: number; distanceMs: number | null; nextHop: number | null }> = [
    { destination: origin, seqno: seq, distanceMs: 0, nextHop: null },
  ]
  for (let d = 0; d < SITES; d++) {
    if (d === origin) continue
    const retracted = r() < 0.02
    distances.push(
      retracted
        ? { destination: d, seqno: int(50), distanceMs: null, nextHop: null }
        : {
            destination: d,
            seqno: int(50),
            distanceMs: 10 + 200 * r(),
            nextHop: (origin + 1 + int(TUNNELS) * 23) % SITES,
          },
    )
  }
  const requests = r() < 0.1 ? [{ destination: int(SITES), seqno: int(50) }] : []
  return new LinkStateMessage(
    { origin, incarnation: 1_764_300_000_000, seq, generatedAtMillis: now, tunnels, distances, requests } as never,
    true,
  )
}

const messages = Array.from({ length: MESSAGES }, (_, i) => makeMessage(i % SITES, i))
const crossingOf = (message: LinkStateMessage, k: number) => ({
  origin: message.origin,
  seq: message.seq,
  message,
  changedHop: Int32Array.from({ length: k % 3 }, (_, i) => i * 7),
  changedSeqno: new Int32Array(0),
  transitChanged: false,
  at: Array.from({ length: RECIPIENTS }, (_, j) => 1_000 + 20 + (j % 7)),
  r: Array.from({ length: RECIPIENTS }, (_, j) => 2 * j + 1),
})
type Out = ReturnType<typeof crossingOf>
// 1–2 messages per window, as in the 600 s N = 200 run.
const batches: Out[][] = []
for (let i = 0, k = 0; i < MESSAGES; k++) {
  const size = k % 5 === 0 ? 2 : 1
  batches.push(messages.slice(i, i + size).map((m, j) => crossingOf(m, i + j)))
  i += size
}

const { port1, port2 } = new MessageChannel()
let sink = 0

/** What the worker did before the codec: plain objects, structured clone, revive. */
const viaClone = (batch: Out[]): void => {
  port1.postMessage(
    batch.map((c) => ({
      origin: c.origin,
      seq: c.seq,
      message: c.message,
      changedHop: c.changedHop,
      changedSeqno: c.changedSeqno,
      transitChanged: c.transitChanged,
      atMillis: Float64Array.from(c.at),
      recipients: Int32Array.from(c.r),
    })),
  )
  const got = receiveMessageOnPort(port2)!.message as Array<{ message: LinkStateMessage }>
  for (const c of got) {
    const { _tag, ...fields } = c.message
    sink += new LinkStateMessage(fields, true).distances.length
  }
}

const viaCodec = (batch: Out[]): void => {
  const encoded = encodeCrossings(
    batch.map(
      (c): Crossing => ({
        origin: c.origin,
        seq: c.seq,
        message: c.message,
        changedHop: c.changedHop,
        changedSeqno: c.changedSeqno,
        transitChanged: c.transitChanged,
        atMillis: c.at,
        recipients: c.r,
      }),
    ),
  )
  port1.postMessage(encoded, [encoded.buffer])
  for (const c of decodeCrossings(receiveMessageOnPort(port2)!.message as Float64Array))
    sink += c.message.distances.length
}

/** µs per message for one round of `BATCHES_PER_ROUND` batches. */
const round = (cross: (batch: Out[]) => void): number => {
  let count = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < BATCHES_PER_ROUND; i++) {
    const batch = batches[i % batches.length]!
    cross(batch)
    count += batch.length
  }
  return Number(process.hrtime.bigint() - t0) / 1_000 / count
}

// The two must carry the same thing: one round trip each, compared as JSON.
{
  const batch = batches[0]!
  const encoded = encodeCrossings(batch.map((c) => ({ ...c, atMillis: c.at, recipients: c.r })))
  const viaCodecMessage = decodeCrossings(encoded)[0]!.message
  if (JSON.stringify(viaCodecMessage) !== JSON.stringify(batch[0]!.message)) throw new Error("codec differs")
}

const rounds = Number(process.argv[2] ?? 15)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const clone: number[] = []
const codec: number[] = []
// Warm-up: both paths compiled before timing.
round(viaClone)
round(viaCodec)
for (let i = 0; i < rounds; i++) {
  clone.push(round(viaClone))
  codec.push(round(viaCodec))
}
const bytes = encodeCrossings(
  batches[0]!.map((c) => ({ ...c, atMillis: c.at, recipients: c.r })).slice(0, 1),
).byteLength
console.log(
  JSON.stringify({
    node: process.version,
    rounds,
    messagesPerRound: Math.round((BATCHES_PER_ROUND * MESSAGES) / batches.length),
    encodedBytesPerMessage: bytes,
    cloneReviveMicrosPerMessage: { median: +median(clone).toFixed(1), min: +Math.min(...clone).toFixed(1) },
    codecMicrosPerMessage: { median: +median(codec).toFixed(1), min: +Math.min(...codec).toFixed(1) },
    ratio: +(median(clone) / median(codec)).toFixed(1),
    sink,
  }),
)
port1.close()
