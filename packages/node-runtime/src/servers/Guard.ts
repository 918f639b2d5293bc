/**
 * Admission control shared by the probe servers: a source allow list (CIDR prefixes, default the
 * overlay 10.201.0.0/16 and fdac:c9::/32) and a per-source-address token bucket. Checked before a
 * packet is parsed so garbage from outside the mesh costs one lookup.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net"
import { Data, Either } from "effect"

/** Memoised allow-list verdicts (one per source address seen). */
const ALLOW_MEMO_ENTRIES = 4096

export class InvalidPrefix extends Data.TaggedError("InvalidPrefix")<{
  readonly prefix: string
  readonly reason: string
}> {}

/** Parses prefixes like `10.201.0.0/16` or `fdac:c9::/32` into a matcher. */
export const makeAllowList = (
  prefixes: ReadonlyArray<string>,
): Either.Either<(address: string) => boolean, InvalidPrefix> => {
  const list = new BlockList()
  for (const prefix of prefixes) {
    const [address, lengthText] = prefix.split("/")
    const family =
      address !== undefined && isIPv4(address) ? "ipv4" : address !== undefined && isIPv6(address) ? "ipv6" : undefined
    if (address === undefined || family === undefined) {
      return Either.left(new InvalidPrefix({ prefix, reason: "not an IPv4 or IPv6 address" }))
    }
    const length = lengthText === undefined ? (family === "ipv4" ? 32 : 128) : Number(lengthText)
    if (!Number.isInteger(length) || length < 0 || length > (family === "ipv4" ? 32 : 128)) {
      return Either.left(new InvalidPrefix({ prefix, reason: `bad prefix length ${lengthText}` }))
    }
    list.addSubnet(address, length, family)
  }
  const check = (address: string) => {
    // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
    const plain = address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address
    const family = isIPv4(plain) ? "ipv4" : isIPv6(plain) ? "ipv6" : undefined
    return family !== undefined && list.check(plain, family)
  }
  // BlockList.check builds a native SocketAddress per call (~5 % of the plane's CPU when it ran per
  // datagram); a mesh has few sources, so verdicts are memoised. Bounded: a spray of source
  // addresses only resets the memo.
  const verdicts = new Map<string, boolean>()
  return Either.right((address: string) => {
    const known = verdicts.get(address)
    if (known !== undefined) return known
    if (verdicts.size >= ALLOW_MEMO_ENTRIES) verdicts.clear()
    const verdict = check(address)
    verdicts.set(address, verdict)
    return verdict
  })
}

export interface RateLimitConfig {
  readonly packetsPerSecond: number
  readonly burstPackets: number
}

/**
 * Token bucket per source address. Idle buckets are dropped once full again, so an attacker
 * spraying source addresses costs memory only for as long as its buckets are non-full.
 */
export const makeRateLimiter = (config: RateLimitConfig, nowMs: () => number = () => performance.now()) => {
  const buckets = new Map<string, { tokens: number; atMs: number }>()
  let lastSweepMs = nowMs()
  const sweep = (now: number) => {
    for (const [key, b] of buckets) {
      if (b.tokens + ((now - b.atMs) / 1000) * config.packetsPerSecond >= config.burstPackets) buckets.delete(key)
    }
    lastSweepMs = now
  }
  return (source: string): boolean => {
    const now = nowMs()
    if (now - lastSweepMs > 10_000) sweep(now)
    const b = buckets.get(source)
    if (b === undefined) {
      buckets.set(source, { tokens: config.burstPackets - 1, atMs: now })
      return true
    }
    b.tokens = Math.min(config.burstPackets, b.tokens + ((now - b.atMs) / 1000) * config.packetsPerSecond)
    b.atMs = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
