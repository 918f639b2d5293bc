/**
 * Wire formats of the probe protocols (5121/udp echo + loss test, 5124/udp pathping).
 *
 * Every datagram starts with the magic "NP" (0x4e50), a version byte and a type byte; all
 * integers are big-endian. Decoders never throw: they return the typed packet or a
 * `MalformedPacket` naming why, so servers count and drop garbage instead of crashing.
 * Timestamps (`sentNs`) are the sender's monotonic clock, opaque to everyone else: a server
 * only uses differences of them (jitter), never their absolute value.
 *
 * ```
 * 5121  off size field
 *       0   2    magic 0x4e50        all types
 *       2   1    version = 1
 *       3   1    type
 *       4   4    sessionId
 * ECHO_REQUEST(1) / ECHO_REPLY(2), >= 20 B (reply = request with type 2, same length):
 *       8   4    seq
 *       12  8    sentNs
 *       20  1    (reply from a server that speaks ECHO_SYM: 2; request: 0; only when the echo is >= 21 B)
 * ECHO_SYM(7), >= 44 B: both directions of a tunnel's echo in one datagram. A site's regular
 * request carries the reply to the peer's latest request, so a tunnel probed from both ends needs
 * one datagram per end per interval instead of two.
 *       8   4    seq               12  8  sentNs (sender's monotonic clock)   (valid with REQUEST)
 *       20  1    flags: 1 REQUEST, 2 IMMEDIATE (answer at once, not in your next request), 4 ACK
 *       21  3    0
 *       24  4    ackSessionId      28  4  ackSeq      32  8  ackSentNs (the peer's, echoed)
 *       40  4    residenceUs (our receive-to-send time of the acked request: the peer subtracts it)
 *       An ACK-only datagram (flags = 4) is a reply (to a prober's socket, never to a server).
 * LOSS_DATA(3), >= 24 B, padded to the test's packet size:
 *       8   4    seq (0-based)        12  4  total      16  8  sentNs
 * LOSS_END(4), 12 B:      8 4 sent (data packets the client sent)
 * LOSS_STATS(5), 12 B:    8 4 received so far (server heartbeat, every second)
 * LOSS_FINAL(6), 40 B:    8 4 received (distinct)  12 4 reordered  16 4 duplicates
 *                         20 4 jitterUs (RFC 3550)  24 8 firstToLastArrivalNs  32 8 receivedBytes
 *
 * 5124  PATH(0x10), 24 + 3·len B, 2 <= len <= 16:
 *       4   4    testId          8  2  seq       10 1  hop (index of the node receiving it)
 *       11  1    len             12 8  sentNs (origin clock)
 *       20  4    residenceUs (sum of relays' receive-to-send time, saturating; the origin
 *                    subtracts it: its RTT is the network's, not the relays' event loops')
 *       24  2·len path (site ids)  24+2·len  len  families (0 = routed, 4, 6)
 * ```
 */
import { Data, Either } from "effect"

export const MAGIC = 0x4e50
export const VERSION = 1
/** Largest UDP payload we accept or send (1500 MTU − IPv4 − UDP). */
export const MAX_DATAGRAM_BYTES = 1472

export const PacketType = {
  EchoRequest: 1,
  EchoReply: 2,
  LossData: 3,
  LossEnd: 4,
  LossStats: 5,
  LossFinal: 6,
  EchoSym: 7,
  Path: 0x10,
} as const

/** ECHO_SYM flag bits (byte 20). */
export const EchoSymFlag = { Request: 1, Immediate: 2, Ack: 4 } as const
export const ECHO_SYM_BYTES = 44
/**
 * A v1 echo request this long has room for the marker a symmetric-capable server writes at byte
 * 20 of its reply (an old server echoes the zero): how a prober learns its peer speaks ECHO_SYM
 * without sending it a datagram type an old peer would drop.
 */
export const ECHO_V1_PROBE_BYTES = 24
export const ECHO_SYM_CAPABLE_MARK = 2

export class MalformedPacket extends Data.TaggedError("MalformedPacket")<{
  readonly reason: string
  readonly length: number
}> {}

export interface EchoPacket {
  readonly _tag: "EchoRequest" | "EchoReply"
  readonly sessionId: number
  readonly seq: number
  readonly sentNs: bigint
  readonly lengthBytes: number
}
export interface LossData {
  readonly _tag: "LossData"
  readonly sessionId: number
  readonly seq: number
  readonly total: number
  readonly sentNs: bigint
  readonly lengthBytes: number
}
export interface LossEnd {
  readonly _tag: "LossEnd"
  readonly sessionId: number
  readonly sent: number
}
export interface LossStats {
  readonly _tag: "LossStats"
  readonly sessionId: number
  readonly received: number
}
export interface LossFinal {
  readonly _tag: "LossFinal"
  readonly sessionId: number
  readonly received: number
  readonly reordered: number
  readonly duplicates: number
  readonly jitterUs: number
  readonly firstToLastArrivalNs: bigint
  readonly receivedBytes: bigint
}
export interface EchoSymPacket {
  readonly _tag: "EchoSym"
  readonly sessionId: number
  readonly seq: number
  readonly sentNs: bigint
  readonly flags: number
  readonly ackSessionId: number
  readonly ackSeq: number
  readonly ackSentNs: bigint
  readonly residenceUs: number
  readonly lengthBytes: number
}
export type Packet5121 = EchoPacket | LossData | LossEnd | LossStats | LossFinal | EchoSymPacket

export interface PathPacket {
  readonly _tag: "Path"
  readonly testId: number
  readonly seq: number
  readonly hop: number
  readonly sentNs: bigint
  readonly residenceUs: number
  readonly path: ReadonlyArray<number>
  readonly families: ReadonlyArray<0 | 4 | 6>
}

export const MAX_PATH_NODES = 16
/** Where a PATH datagram's origin send time and relays' residence sum sit (stamped at the socket). */
export const PATH_SENT_NS_OFFSET = 12
export const PATH_RESIDENCE_US_OFFSET = 20
const ECHO_MIN = 20
/** Smallest echo (v1) datagram. */
export const ECHO_MIN_BYTES = ECHO_MIN
const LOSS_DATA_MIN = 24
const LOSS_SMALL = 12
const LOSS_FINAL_LEN = 40
const PATH_HEADER = 24

const fail = (reason: string, length: number) => Either.left(new MalformedPacket({ reason, length }))

const header = (buf: Uint8Array, expectedTypes: ReadonlyArray<number>): Either.Either<number, MalformedPacket> => {
  if (buf.length < 8) return fail("shorter than the 8-byte header", buf.length)
  if (buf.length > MAX_DATAGRAM_BYTES) return fail("longer than 1472 bytes", buf.length)
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.getUint16(0) !== MAGIC) return fail("bad magic", buf.length)
  if (view.getUint8(2) !== VERSION) return fail(`unsupported version ${view.getUint8(2)}`, buf.length)
  const type = view.getUint8(3)
  if (!expectedTypes.includes(type)) return fail(`unexpected type ${type}`, buf.length)
  return Either.right(type)
}

const viewOf = (buf: Uint8Array) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength)

/** Decodes any 5121 datagram (echo or loss test, either direction). */
export const decode5121 = (buf: Uint8Array): Either.Either<Packet5121, MalformedPacket> =>
  Either.flatMap(header(buf, [1, 2, 3, 4, 5, 6, 7]), (type): Either.Either<Packet5121, MalformedPacket> => {
    const v = viewOf(buf)
    const sessionId = v.getUint32(4)
    const n = buf.length
    switch (type) {
      case PacketType.EchoRequest:
      case PacketType.EchoReply:
        if (n < ECHO_MIN) return fail("echo shorter than 20 bytes", n)
        return Either.right({
          _tag: type === PacketType.EchoRequest ? "EchoRequest" : "EchoReply",
          sessionId,
          seq: v.getUint32(8),
          sentNs: v.getBigUint64(12),
          lengthBytes: n,
        })
      case PacketType.LossData: {
        if (n < LOSS_DATA_MIN) return fail("loss data shorter than 24 bytes", n)
        const seq = v.getUint32(8)
        const total = v.getUint32(12)
        if (total === 0 || seq >= total) return fail(`seq ${seq} outside total ${total}`, n)
        return Either.right({ _tag: "LossData", sessionId, seq, total, sentNs: v.getBigUint64(16), lengthBytes: n })
      }
      case PacketType.LossEnd:
        if (n !== LOSS_SMALL) return fail("loss end is not 12 bytes", n)
        return Either.right({ _tag: "LossEnd", sessionId, sent: v.getUint32(8) })
      case PacketType.LossStats:
        if (n !== LOSS_SMALL) return fail("loss stats is not 12 bytes", n)
        return Either.right({ _tag: "LossStats", sessionId, received: v.getUint32(8) })
      case PacketType.EchoSym: {
        if (n < ECHO_SYM_BYTES) return fail("symmetric echo shorter than 44 bytes", n)
        const flags = v.getUint8(20)
        if (!validSymFlags(flags, v.getUint8(21) | v.getUint16(22))) return fail(`symmetric echo flags ${flags}`, n)
        return Either.right({
          _tag: "EchoSym",
          sessionId,
          seq: v.getUint32(8),
          sentNs: v.getBigUint64(12),
          flags,
          ackSessionId: v.getUint32(24),
          ackSeq: v.getUint32(28),
          ackSentNs: v.getBigUint64(32),
          residenceUs: v.getUint32(40),
          lengthBytes: n,
        })
      }
      default: {
        if (n !== LOSS_FINAL_LEN) return fail("loss final is not 40 bytes", n)
        return Either.right({
          _tag: "LossFinal",
          sessionId,
          received: v.getUint32(8),
          reordered: v.getUint32(12),
          duplicates: v.getUint32(16),
          jitterUs: v.getUint32(20),
          firstToLastArrivalNs: v.getBigUint64(24),
          receivedBytes: v.getBigUint64(32),
        })
      }
    }
  })

/**
 * Flags name a request or an ack or both, nothing else; IMMEDIATE only on a request; the three
 * bytes after the flags are zero (room for later fields).
 */
const validSymFlags = (flags: number, reserved: number) =>
  reserved === 0 &&
  (flags & ~7) === 0 &&
  (flags & (EchoSymFlag.Request | EchoSymFlag.Ack)) !== 0 &&
  ((flags & EchoSymFlag.Immediate) === 0 || (flags & EchoSymFlag.Request) !== 0)

/** Big-endian u32 at `offset` (the caller checked the length). */
export const readU32 = (buf: Uint8Array, offset: number): number =>
  ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0

/** Big-endian u64 at `offset` as a number (exact below 2^53 ns ≈ 104 days of monotonic clock). */
export const readU64Number = (buf: Uint8Array, offset: number): number =>
  readU32(buf, offset) * 4294967296 + readU32(buf, offset + 4)

/**
 * The type of a 5121 datagram that `decode5121` accepts, or 0 for one it rejects: the servers' and
 * probers' per-datagram path, without the Either and packet object (property-tested to agree with
 * `decode5121` on arbitrary bytes).
 */
export const classify5121 = (buf: Uint8Array): number => {
  const n = buf.length
  if (n < 8 || n > MAX_DATAGRAM_BYTES || buf[0] !== MAGIC >> 8 || buf[1] !== (MAGIC & 0xff) || buf[2] !== VERSION)
    return 0
  const type = buf[3]!
  switch (type) {
    case PacketType.EchoRequest:
    case PacketType.EchoReply:
      return n >= ECHO_MIN ? type : 0
    case PacketType.LossData: {
      if (n < LOSS_DATA_MIN) return 0
      const total = readU32(buf, 12)
      return total !== 0 && readU32(buf, 8) < total ? type : 0
    }
    case PacketType.LossEnd:
    case PacketType.LossStats:
      return n === LOSS_SMALL ? type : 0
    case PacketType.LossFinal:
      return n === LOSS_FINAL_LEN ? type : 0
    case PacketType.EchoSym:
      return n >= ECHO_SYM_BYTES && validSymFlags(buf[20]!, buf[21]! | buf[22]! | buf[23]!) ? type : 0
    default:
      return 0
  }
}

/** An ECHO_REQUEST stamped with a monotonic time in ms (written as ns), without bigint allocation. */
export const encodeEchoRequest = (sessionId: number, seq: number, sentMs: number, lengthBytes: number): Buffer => {
  const n = Math.max(ECHO_MIN, lengthBytes)
  // Every byte of a minimum-size echo is written below, so the pooled (unzeroed) buffer is safe.
  const buf = n === ECHO_MIN ? Buffer.allocUnsafe(n) : Buffer.alloc(n)
  writeEchoHead(buf, PacketType.EchoRequest, sessionId, seq, Math.max(0, Math.round(sentMs * 1e6)))
  return buf
}

/** Bytes 0–19 of both echo formats: magic, version, type, session, seq, sentNs as two u32 halves. */
const writeEchoHead = (buf: Buffer, type: number, sessionId: number, seq: number, sentNs: number): void => {
  const high = Math.floor(sentNs / 4294967296)
  buf.writeUInt16BE(MAGIC, 0)
  buf.writeUInt8(VERSION, 2)
  buf.writeUInt8(type, 3)
  buf.writeUInt32BE(sessionId >>> 0, 4)
  buf.writeUInt32BE(seq >>> 0, 8)
  buf.writeUInt32BE(high >>> 0, 12)
  buf.writeUInt32BE((sentNs - high * 4294967296) >>> 0, 16)
}

/**
 * An ECHO_SYM datagram without bigint or object allocation. The request part (seq, sentMs) is
 * written when `flags` has REQUEST; the ack part echoes the peer's request (its session, seq and
 * sentNs as two u32 halves, copied opaque) with our residence time in µs.
 */
export const encodeEchoSym = (
  flags: number,
  sessionId: number,
  seq: number,
  sentMs: number,
  ackSessionId: number,
  ackSeq: number,
  ackSentHigh: number,
  ackSentLow: number,
  residenceUs: number,
): Buffer => {
  // Every byte is written below, so the pooled (unzeroed) buffer is safe.
  const buf = Buffer.allocUnsafe(ECHO_SYM_BYTES)
  const sentNs = (flags & EchoSymFlag.Request) !== 0 ? Math.max(0, Math.round(sentMs * 1e6)) : 0
  writeEchoHead(buf, PacketType.EchoSym, sessionId, seq, sentNs)
  buf.writeUInt32BE((flags & 0xff) << 24, 20)
  const ack = (flags & EchoSymFlag.Ack) !== 0
  buf.writeUInt32BE(ack ? ackSessionId >>> 0 : 0, 24)
  buf.writeUInt32BE(ack ? ackSeq >>> 0 : 0, 28)
  buf.writeUInt32BE(ack ? ackSentHigh >>> 0 : 0, 32)
  buf.writeUInt32BE(ack ? ackSentLow >>> 0 : 0, 36)
  buf.writeUInt32BE(ack ? Math.max(0, Math.min(0xffffffff, Math.round(residenceUs))) : 0, 40)
  return buf
}

/**
 * Turns a received ECHO_SYM request (>= 44 B, checked) into the ACK-only answer to it, in place:
 * the server's immediate reply, same length as the request (no amplification), nothing allocated.
 */
export const echoSymToAck = (msg: Buffer, residenceUs: number): Buffer => {
  msg.copyWithin(24, 4, 20)
  msg.writeUInt32BE(0, 4)
  msg.writeUInt32BE(0, 8)
  msg.writeUInt32BE(0, 12)
  msg.writeUInt32BE(0, 16)
  msg.writeUInt32BE(EchoSymFlag.Ack << 24, 20)
  msg.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(residenceUs))), 40)
  return msg
}

/**
 * A zeroed datagram from Node's shared buffer pool (sizes < 4 KiB): `Buffer.alloc` gives each
 * datagram its own ArrayBuffer, and a loss burst's 1000 of them cost more in GC than the sends.
 */
const alloc = (n: number, type: number, sessionId: number) => {
  const buf = Buffer.allocUnsafe(n).fill(0)
  buf.writeUInt16BE(MAGIC, 0)
  buf.writeUInt8(VERSION, 2)
  buf.writeUInt8(type, 3)
  buf.writeUInt32BE(sessionId >>> 0, 4)
  return buf
}

export const encodeEcho = (p: Omit<EchoPacket, "lengthBytes"> & { readonly lengthBytes?: number }): Buffer => {
  const buf = alloc(
    Math.max(ECHO_MIN, p.lengthBytes ?? ECHO_MIN),
    p._tag === "EchoRequest" ? PacketType.EchoRequest : PacketType.EchoReply,
    p.sessionId,
  )
  buf.writeUInt32BE(p.seq >>> 0, 8)
  buf.writeBigUInt64BE(p.sentNs, 12)
  return buf
}

export const encodeLossData = (p: Omit<LossData, "_tag">): Buffer => {
  const buf = alloc(Math.max(LOSS_DATA_MIN, p.lengthBytes), PacketType.LossData, p.sessionId)
  buf.writeUInt32BE(p.seq, 8)
  buf.writeUInt32BE(p.total, 12)
  buf.writeBigUInt64BE(p.sentNs, 16)
  return buf
}

/**
 * The constant part of a burst's LOSS_DATA datagrams (header, total, zero padding), built once per
 * burst; `stampLossData` copies it per packet and writes seq and sentNs (a number of ns, no
 * bigint). Equal to `encodeLossData` byte for byte (property-tested).
 */
export const lossDataTemplate = (sessionId: number, total: number, lengthBytes: number): Buffer => {
  const buf = alloc(Math.max(LOSS_DATA_MIN, lengthBytes), PacketType.LossData, sessionId)
  buf.writeUInt32BE(total, 12)
  return buf
}

/** One LOSS_DATA datagram from a burst's template: a pooled copy with `seq` and `sentNs` (≥ 0, < 2^64) written. */
export const stampLossData = (template: Buffer, seq: number, sentNs: number): Buffer => {
  const buf = Buffer.allocUnsafe(template.length)
  template.copy(buf, 0)
  const high = Math.floor(sentNs / 4294967296)
  buf.writeUInt32BE(seq >>> 0, 8)
  buf.writeUInt32BE(high >>> 0, 16)
  buf.writeUInt32BE((sentNs - high * 4294967296) >>> 0, 20)
  return buf
}

export const encodeLossEnd = (p: Omit<LossEnd, "_tag">): Buffer => {
  const buf = alloc(LOSS_SMALL, PacketType.LossEnd, p.sessionId)
  buf.writeUInt32BE(p.sent, 8)
  return buf
}

export const encodeLossStats = (p: Omit<LossStats, "_tag">): Buffer => {
  const buf = alloc(LOSS_SMALL, PacketType.LossStats, p.sessionId)
  buf.writeUInt32BE(p.received, 8)
  return buf
}

const u32 = (x: number) => Math.max(0, Math.min(0xffffffff, Math.round(x)))

export const encodeLossFinal = (p: Omit<LossFinal, "_tag">): Buffer => {
  const buf = alloc(LOSS_FINAL_LEN, PacketType.LossFinal, p.sessionId)
  buf.writeUInt32BE(u32(p.received), 8)
  buf.writeUInt32BE(u32(p.reordered), 12)
  buf.writeUInt32BE(u32(p.duplicates), 16)
  buf.writeUInt32BE(u32(p.jitterUs), 20)
  buf.writeBigUInt64BE(p.firstToLastArrivalNs, 24)
  buf.writeBigUInt64BE(p.receivedBytes, 32)
  return buf
}

/** Decodes a pathping datagram; `hop` must point inside the path and families must be 0, 4 or 6. */
export const decodePath = (buf: Uint8Array): Either.Either<PathPacket, MalformedPacket> =>
  Either.flatMap(header(buf, [PacketType.Path]), () => {
    const n = buf.length
    if (n < PATH_HEADER) return fail("path packet shorter than 24 bytes", n)
    const v = viewOf(buf)
    const len = v.getUint8(11)
    const hop = v.getUint8(10)
    if (len < 2 || len > MAX_PATH_NODES) return fail(`path length ${len} outside 2..16`, n)
    if (n !== PATH_HEADER + 3 * len) return fail(`length ${n} does not match ${len} nodes`, n)
    if (hop >= len) return fail(`hop ${hop} beyond path length ${len}`, n)
    const path: Array<number> = []
    const families: Array<0 | 4 | 6> = []
    for (let i = 0; i < len; i++) path.push(v.getUint16(PATH_HEADER + 2 * i))
    for (let i = 0; i < len; i++) {
      const f = v.getUint8(PATH_HEADER + 2 * len + i)
      if (f !== 0 && f !== 4 && f !== 6) return fail(`family ${f} at node ${i}`, n)
      families.push(f)
    }
    if (path[0] !== path[len - 1]) return fail("path does not return to its origin", n)
    return Either.right({
      _tag: "Path" as const,
      testId: v.getUint32(4),
      seq: v.getUint16(8),
      hop,
      sentNs: v.getBigUint64(12),
      residenceUs: v.getUint32(20),
      path,
      families,
    })
  })

export const encodePath = (p: Omit<PathPacket, "_tag">): Buffer => {
  const len = p.path.length
  const buf = alloc(PATH_HEADER + 3 * len, PacketType.Path, p.testId)
  buf.writeUInt16BE(p.seq & 0xffff, 8)
  buf.writeUInt8(p.hop, 10)
  buf.writeUInt8(len, 11)
  buf.writeBigUInt64BE(p.sentNs, 12)
  buf.writeUInt32BE(u32(p.residenceUs), 20)
  for (const [i, site] of p.path.entries()) buf.writeUInt16BE(site, PATH_HEADER + 2 * i)
  for (const [i, f] of p.families.entries()) buf.writeUInt8(f, PATH_HEADER + 2 * len + i)
  return buf
}
