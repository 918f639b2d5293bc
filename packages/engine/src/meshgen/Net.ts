/**
 * Minimal IPv4/IPv6 address arithmetic for the mesh address plan: parse a CIDR, take the n-th
 * sub-prefix, print addresses canonically (RFC 5952 for IPv6) so generated files are byte-stable.
 * Addresses are bigint so both families share one code path.
 */

export interface Cidr {
  readonly family: 4 | 6
  readonly address: bigint
  readonly length: number
}

const bitsOf = (family: 4 | 6): number => (family === 4 ? 32 : 128)

const parseIpv4 = (text: string): bigint | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  let value = 0n
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined
    const octet = Number(part)
    if (octet > 255) return undefined
    value = (value << 8n) | BigInt(octet)
  }
  return value
}

const parseIpv6 = (text: string): bigint | undefined => {
  if (!/^[0-9a-fA-F:]+$/.test(text)) return undefined
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const groupsOf = (s: string): string[] | undefined => {
    if (s === "") return []
    const groups = s.split(":")
    return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? groups : undefined
  }
  const head = groupsOf(halves[0] ?? "")
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail]
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n)
}

/** Parses an IPv4 or IPv6 address literal (no brackets, no zone). */
export const parseAddress = (text: string): { family: 4 | 6; address: bigint } | undefined => {
  const v4 = parseIpv4(text)
  if (v4 !== undefined) return { family: 4, address: v4 }
  const v6 = parseIpv6(text)
  return v6 === undefined ? undefined : { family: 6, address: v6 }
}

/** Parses `address/length`; undefined when malformed or when host bits are set. */
export const parseCidr = (text: string): Cidr | undefined => {
  const slash = text.indexOf("/")
  if (slash < 0) return undefined
  const parsed = parseAddress(text.slice(0, slash))
  const lengthText = text.slice(slash + 1)
  if (parsed === undefined || !/^\d{1,3}$/.test(lengthText)) return undefined
  const length = Number(lengthText)
  const bits = bitsOf(parsed.family)
  if (length > bits) return undefined
  const hostMask = (1n << BigInt(bits - length)) - 1n
  if ((parsed.address & hostMask) !== 0n) return undefined
  return { family: parsed.family, address: parsed.address, length }
}

/** Canonical text of an address: dotted quad, or RFC 5952 (lower case, longest zero run compressed). */
export const formatAddress = (family: 4 | 6, address: bigint): string => {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((address >> shift) & 255n)).join(".")
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((address >> BigInt(112 - 16 * i)) & 0xffffn))
  let bestStart = -1
  let bestLength = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(":")
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`
}

export const formatCidr = (cidr: Cidr): string => `${formatAddress(cidr.family, cidr.address)}/${cidr.length}`

/** How many sub-prefixes of `length` the prefix holds (capped to avoid huge bigints in messages). */
export const subnetCount = (cidr: Cidr, length: number): bigint =>
  length < cidr.length ? 0n : 1n << BigInt(length - cidr.length)

/** The `index`-th sub-prefix of `length` inside `cidr` (caller checks the index is in range). */
export const subnet = (cidr: Cidr, length: number, index: number): Cidr => ({
  family: cidr.family,
  address: cidr.address + (BigInt(index) << BigInt(bitsOf(cidr.family) - length)),
  length,
})

/** Address `host` inside a prefix (the n-th address, 0 = the network address). */
export const hostAddress = (cidr: Cidr, host: number): string => formatAddress(cidr.family, cidr.address + BigInt(host))

/** True when `inner` lies inside (or equals) `outer`. */
export const contains = (outer: Cidr, inner: Cidr): boolean => {
  if (outer.family !== inner.family || inner.length < outer.length) return false
  const shift = BigInt(bitsOf(outer.family) - outer.length)
  return inner.address >> shift === outer.address >> shift
}
