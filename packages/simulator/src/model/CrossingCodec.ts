/**
 * The link-state messages one model worker hands the other at the end of a window
 * (`ModelThreads.ts`), as ONE Float64Array that the port transfers instead of copying.
 *
 * Why not structured clone: a message at N = 200 is ≈ 8 tunnels and 200 distances, ≈ 1 800
 * small objects; cloning one and reviving it into the engine's class cost ≈ 120 µs, ≈ 7.7 s of
 * each worker's ≈ 84 s wall in the 600 s N = 200 run (36 600 messages each way). Here the sender
 * writes numbers into one array and the receiver builds the objects straight from it.
 *
 * Exactness: the two-thread report must equal the one-thread report, so every field round-trips
 * bit for bit (a Float64Array keeps any double, −0 included). Null and an absent optional
 * `suspect` (or a present one that is undefined) are bits in a flags slot, never a sentinel value
 * (−1 or NaN are values a field could hold). Objects are rebuilt with the keys in the order
 * `NodeRouter.advertise` and `Aggregation.linkStats` build them. Anything the layout does not know
 * (another message class, a key more or less, a value of another type) throws instead of being
 * dropped on the way.
 *
 * Layout: [FORMAT, crossings], then per crossing
 *   origin, seq, transitChanged, |changedHop|, changedHop…, |changedSeqno|, changedSeqno…,
 *   |deliveries|, (atMillis, recipient)…,
 *   message origin, incarnation, seq, generatedAtMillis,
 *   |tunnels|, per tunnel TUNNEL_SLOTS: flags, remote, family, stats.tunnel local, remote, family,
 *     state, rttMs, jitterMs, lossRatio, availability, lastSampleAtMillis, lastReplyAtMillis, costMs,
 *   |distances|, per distance: flags, destination, seqno, distanceMs, nextHop,
 *   |requests|, per request: destination, seqno.
 * A null field's slot holds 0 and is not read.
 */
import { type DistanceAdvert, LinkStateMessage, type TunnelAdvert } from "@net-perf/engine"

/** One message crossing to the other half, with its deliveries there (recipient j at atMillis[j]). */
export interface Crossing {
  readonly origin: number
  readonly seq: number
  readonly message: LinkStateMessage
  readonly changedHop: Int32Array
  readonly changedSeqno: Int32Array
  readonly transitChanged: boolean
  readonly atMillis: ArrayLike<number>
  readonly recipients: ArrayLike<number>
}

/** What `decodeCrossings` gives back: the deliveries as typed arrays. */
export interface DecodedCrossing extends Crossing {
  readonly atMillis: Float64Array
  readonly recipients: Int32Array
}

/** First slot of every batch: a buffer from another layout (or not a batch) fails at once. */
const FORMAT = 0x4c53_0001

const TUNNEL_SLOTS = 14
const DISTANCE_SLOTS = 5
const REQUEST_SLOTS = 2

// Tunnel flags.
const COST = 1
const SELECTED = 2
const HAS_SUSPECT = 4
const SUSPECT = 8
const RTT = 16
const LAST_SAMPLE = 32
const LAST_REPLY = 64
const SUSPECT_UNDEFINED = 128
// Distance flags.
const DISTANCE = 1
const NEXT_HOP = 2

const states = ["up", "dead", "unknown"] as const
type State = (typeof states)[number]
const stateCode = (s: unknown): number => {
  const i = states.indexOf(s as State)
  if (i < 0) throw new Error(`crossing codec: unknown tunnel state ${JSON.stringify(s)}`)
  return i
}

const fail = (what: string, value: unknown): never => {
  throw new Error(`crossing codec: ${what} is ${value === null ? "null" : typeof value}, not what the layout holds`)
}
const num = (what: string, x: unknown): number => (typeof x === "number" ? x : fail(what, x))
const numOrNull = (what: string, x: unknown): boolean => (x === null ? false : typeof x === "number" || fail(what, x))
const bool = (what: string, x: unknown): boolean => (typeof x === "boolean" ? x : fail(what, x))

/**
 * Enumerable keys, own and inherited, counted without allocating: with the type checks, a count
 * that matches means no key was added that this layout would leave behind. Not `Object.keys` nor
 * an `Object.hasOwn` per key: over 200 distance entries either doubled the encoder's time, and an
 * inherited enumerable key (none on the engine's objects) only makes the count fail loudly.
 */
const keyCount = (o: object): number => {
  let n = 0
  for (const _ in o) n++
  return n
}
const expectKeys = (what: string, o: object, n: number): void => {
  const got = keyCount(o)
  if (got !== n) throw new Error(`crossing codec: ${what} has ${got} keys, the layout knows ${n}: ${Object.keys(o)}`)
}

/** The schema's optional admits a present `suspect: undefined` too (the engine leaves the key out). */
const suspectFlags = (x: unknown): number => (x === undefined ? SUSPECT_UNDEFINED : bool("suspect", x) ? SUSPECT : 0)

const slotsOf = (c: Crossing): number => {
  const m = c.message
  return (
    4 +
    c.changedHop.length +
    1 +
    c.changedSeqno.length +
    1 +
    2 * c.recipients.length +
    5 +
    TUNNEL_SLOTS * m.tunnels.length +
    1 +
    DISTANCE_SLOTS * m.distances.length +
    1 +
    REQUEST_SLOTS * m.requests.length
  )
}

/** One window's crossings as one array; post it with `[result.buffer]` in the transfer list. */
export const encodeCrossings = (batch: ReadonlyArray<Crossing>): Float64Array<ArrayBuffer> => {
  let size = 2
  for (const c of batch) {
    // Checked before `slotsOf` reads its arrays: the revive on the other side makes this class.
    if (!(c.message instanceof LinkStateMessage)) fail("a crossing message (not a LinkStateMessage)", c.message)
    if (c.atMillis.length !== c.recipients.length) throw new Error("crossing codec: deliveries out of pairs")
    size += slotsOf(c)
  }
  const f = new Float64Array(size)
  f[0] = FORMAT
  f[1] = batch.length
  let p = 2
  for (const c of batch) {
    f[p++] = num("origin", c.origin)
    f[p++] = num("seq", c.seq)
    f[p++] = bool("transitChanged", c.transitChanged) ? 1 : 0
    f[p++] = c.changedHop.length
    f.set(c.changedHop, p)
    p += c.changedHop.length
    f[p++] = c.changedSeqno.length
    f.set(c.changedSeqno, p)
    p += c.changedSeqno.length
    const deliveries = c.recipients.length
    f[p++] = deliveries
    for (let j = 0; j < deliveries; j++) {
      f[p++] = num("atMillis", c.atMillis[j])
      f[p++] = num("recipient", c.recipients[j])
    }
    p = encodeMessage(c.message, f, p)
  }
  if (p !== size) throw new Error(`crossing codec: wrote ${p} slots of ${size}`)
  return f
}

const encodeMessage = (m: LinkStateMessage, f: Float64Array, p: number): number => {
  // The 7 fields and `_tag`.
  expectKeys("a link-state message", m, 8)
  f[p++] = num("message origin", m.origin)
  f[p++] = num("incarnation", m.incarnation)
  f[p++] = num("message seq", m.seq)
  f[p++] = num("generatedAtMillis", m.generatedAtMillis)
  f[p++] = m.tunnels.length
  for (const t of m.tunnels) {
    const hasSuspect = "suspect" in t
    expectKeys("a tunnel advert", t, hasSuspect ? 6 : 5)
    const s = t.stats
    expectKeys("link stats", s, 8)
    expectKeys("a tunnel id", s.tunnel, 3)
    f[p++] =
      (numOrNull("costMs", t.costMs) ? COST : 0) |
      (bool("selected", t.selected) ? SELECTED : 0) |
      (hasSuspect ? HAS_SUSPECT | suspectFlags(t.suspect) : 0) |
      (numOrNull("rttMs", s.rttMs) ? RTT : 0) |
      (numOrNull("lastSampleAtMillis", s.lastSampleAtMillis) ? LAST_SAMPLE : 0) |
      (numOrNull("lastReplyAtMillis", s.lastReplyAtMillis) ? LAST_REPLY : 0)
    f[p++] = num("tunnel remote", t.remote)
    f[p++] = num("tunnel family", t.family)
    f[p++] = num("stats tunnel local", s.tunnel.local)
    f[p++] = num("stats tunnel remote", s.tunnel.remote)
    f[p++] = num("stats tunnel family", s.tunnel.family)
    f[p++] = stateCode(s.state)
    f[p++] = s.rttMs ?? 0
    f[p++] = num("jitterMs", s.jitterMs)
    f[p++] = num("lossRatio", s.lossRatio)
    f[p++] = num("availability", s.availability)
    f[p++] = s.lastSampleAtMillis ?? 0
    f[p++] = s.lastReplyAtMillis ?? 0
    f[p++] = t.costMs ?? 0
  }
  f[p++] = m.distances.length
  for (const d of m.distances) {
    expectKeys("a distance advert", d, 4)
    f[p++] = (numOrNull("distanceMs", d.distanceMs) ? DISTANCE : 0) | (numOrNull("nextHop", d.nextHop) ? NEXT_HOP : 0)
    f[p++] = num("destination", d.destination)
    f[p++] = num("distance seqno", d.seqno)
    f[p++] = d.distanceMs ?? 0
    f[p++] = d.nextHop ?? 0
  }
  f[p++] = m.requests.length
  for (const r of m.requests) {
    expectKeys("a seqno request", r, 2)
    f[p++] = num("request destination", r.destination)
    f[p++] = num("request seqno", r.seqno)
  }
  return p
}

/**
 * The crossings of one array from `encodeCrossings`, each message a fresh `LinkStateMessage`
 * (not validated again, as `NodeRouter.advertise` does not: the sender's engine built it).
 */
export const decodeCrossings = (f: Float64Array): DecodedCrossing[] => {
  if (f.length < 2 || f[0] !== FORMAT) throw new Error("crossing codec: not a crossing batch")
  const count = f[1]!
  const out: DecodedCrossing[] = []
  let p = 2
  for (let i = 0; i < count; i++) {
    const origin = f[p++]!
    const seq = f[p++]!
    const transitChanged = f[p++] === 1
    const changedHop = new Int32Array(f.subarray(p + 1, p + 1 + f[p]!))
    p += 1 + changedHop.length
    const changedSeqno = new Int32Array(f.subarray(p + 1, p + 1 + f[p]!))
    p += 1 + changedSeqno.length
    const deliveries = f[p++]!
    const atMillis = new Float64Array(deliveries)
    const recipients = new Int32Array(deliveries)
    for (let j = 0; j < deliveries; j++) {
      atMillis[j] = f[p++]!
      recipients[j] = f[p++]!
    }
    const m = decodeMessage(f, p)
    p = m.end
    out.push({ origin, seq, message: m.message, changedHop, changedSeqno, transitChanged, atMillis, recipients })
  }
  if (p !== f.length) throw new Error(`crossing codec: read ${p} slots of ${f.length}`)
  return out
}

const decodeMessage = (f: Float64Array, p: number): { message: LinkStateMessage; end: number } => {
  const origin = f[p++]!
  const incarnation = f[p++]!
  const seq = f[p++]!
  const generatedAtMillis = f[p++]!
  // Filled by push, not preallocated: a holey array would slow every engine loop over it.
  const tunnels: TunnelAdvert[] = []
  for (let i = 0, n = f[p++]!; i < n; i++) {
    const flags = f[p]!
    const t = {
      remote: f[p + 1]!,
      family: f[p + 2]!,
      stats: {
        tunnel: { local: f[p + 3]!, remote: f[p + 4]!, family: f[p + 5]! },
        state: states[f[p + 6]!] ?? fail("a tunnel state code", f[p + 6]),
        rttMs: flags & RTT ? f[p + 7]! : null,
        jitterMs: f[p + 8]!,
        lossRatio: f[p + 9]!,
        availability: f[p + 10]!,
        lastSampleAtMillis: flags & LAST_SAMPLE ? f[p + 11]! : null,
        lastReplyAtMillis: flags & LAST_REPLY ? f[p + 12]! : null,
      },
      costMs: flags & COST ? f[p + 13]! : null,
      selected: (flags & SELECTED) !== 0,
    } as { -readonly [K in keyof TunnelAdvert]: TunnelAdvert[K] }
    // Added last, where the engine's spread puts it; absent stays absent.
    if (flags & HAS_SUSPECT) t.suspect = flags & SUSPECT_UNDEFINED ? undefined : (flags & SUSPECT) !== 0
    tunnels.push(t)
    p += TUNNEL_SLOTS
  }
  const distances: DistanceAdvert[] = []
  for (let i = 0, n = f[p++]!; i < n; i++) {
    const flags = f[p]!
    distances.push({
      destination: f[p + 1]!,
      seqno: f[p + 2]!,
      distanceMs: flags & DISTANCE ? f[p + 3]! : null,
      nextHop: flags & NEXT_HOP ? f[p + 4]! : null,
    } as DistanceAdvert)
    p += DISTANCE_SLOTS
  }
  const requests: Array<LinkStateMessage["requests"][number]> = []
  for (let i = 0, n = f[p++]!; i < n; i++) {
    requests.push({ destination: f[p]!, seqno: f[p + 1]! } as LinkStateMessage["requests"][number])
    p += REQUEST_SLOTS
  }
  const message = new LinkStateMessage(
    { origin: origin as LinkStateMessage["origin"], incarnation, seq, generatedAtMillis, tunnels, distances, requests },
    true,
  )
  return { message, end: p }
}
