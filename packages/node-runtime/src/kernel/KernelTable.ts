/**
 * Reading and writing the kernel's route table in iproute2's terms: `ip -json route show`
 * and `ip -json link show` decoded with Schemas, installed routes normalised to the engine's
 * `KernelRoute` (host routes get `/32`/`/128`, `default` becomes `0.0.0.0/0`/`::/0`, IPv6 in
 * RFC 5952 form) so they compare as strings with desired ones, and plan operations rendered
 * as `ip -batch` lines.
 */
import type { KernelRoute, RouteOp } from "@net-perf/engine"
import { Schema } from "effect"

export const IpRouteJson = Schema.Struct({
  dst: Schema.String,
  gateway: Schema.optional(Schema.String),
  dev: Schema.optional(Schema.String),
  prefsrc: Schema.optional(Schema.String),
  metric: Schema.optional(Schema.Number),
  table: Schema.optional(Schema.String),
  protocol: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  flags: Schema.optional(Schema.Array(Schema.String)),
})
export type IpRouteJson = typeof IpRouteJson.Type

export const IpLinkJson = Schema.Struct({
  ifname: Schema.String,
  flags: Schema.Array(Schema.String),
  operstate: Schema.optional(Schema.String),
})
export type IpLinkJson = typeof IpLinkJson.Type

/** A device can carry a managed route only when it is administratively up and has carrier. */
export const isUsableLink = (link: IpLinkJson): boolean => link.flags.includes("UP") && link.flags.includes("LOWER_UP")

const tableIds: Record<string, number> = { main: 254, local: 255, default: 253 }

/** RFC 5952 text of an IPv6 address (lower case, longest zero run compressed). */
export const canonicalIpv6 = (addr: string): string => {
  const lower = addr.toLowerCase()
  if (lower.includes(".")) return lower // IPv4-mapped tails are left as written
  const [head = "", tail] = lower.split("::") as [string, string | undefined]
  const h = head === "" ? [] : head.split(":")
  const t = tail === undefined || tail === "" ? [] : tail.split(":")
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t]
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return lower
  const words = groups.map((g) => Number.parseInt(g, 16).toString(16))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (words[i] !== "0") {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === "0") j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  if (bestStart < 0) return words.join(":")
  return `${words.slice(0, bestStart).join(":")}::${words.slice(bestStart + bestLen).join(":")}`
}

/** Normalises a prefix as the kernel prints it (`default`, host routes without a length). */
export const normalisePrefix = (dst: string, family: 4 | 6): string => {
  if (dst === "default") return family === 4 ? "0.0.0.0/0" : "::/0"
  const [addr = "", len] = dst.split("/")
  const a = family === 6 ? canonicalIpv6(addr) : addr
  return `${a}/${len ?? (family === 4 ? "32" : "128")}`
}

/** An installed route as the engine's KernelRoute (protocol is known from the query filter). */
export const fromIpRoute = (r: IpRouteJson, family: 4 | 6, protocol: number): KernelRoute => {
  const table = r.table === undefined ? undefined : (tableIds[r.table] ?? Number(r.table))
  return {
    prefix: normalisePrefix(r.dst, family),
    // A multipath route has no single device; "*" never equals a desired device, so it is replaced.
    device: r.dev ?? "*",
    ...(r.gateway === undefined ? {} : { gateway: family === 6 ? canonicalIpv6(r.gateway) : r.gateway }),
    ...(r.prefsrc === undefined ? {} : { source: family === 6 ? canonicalIpv6(r.prefsrc) : r.prefsrc }),
    metric: r.metric ?? 0,
    protocol,
    ...(table === undefined || table === 254 ? {} : { table }),
  }
}

/** Normalises a desired route the same way, so equal routes compare equal. */
export const normaliseRoute = (r: KernelRoute): KernelRoute => {
  const family = r.prefix.includes(":") ? 6 : 4
  const canon = (a: string) => (a.includes(":") ? canonicalIpv6(a) : a)
  return {
    ...r,
    prefix: normalisePrefix(r.prefix, family),
    ...(r.gateway === undefined ? {} : { gateway: canon(r.gateway) }),
    ...(r.source === undefined ? {} : { source: canon(r.source) }),
    ...(r.table === 254 ? { table: undefined } : {}),
  } as KernelRoute
}

const tail = (r: KernelRoute) => [
  `proto ${r.protocol}`,
  `metric ${r.metric}`,
  ...(r.table === undefined ? [] : [`table ${r.table}`]),
]

/**
 * One `ip -batch` line per operation. Adds are rendered as `replace` too: if a route with the
 * same identity appeared since we read the table, replacing it is what we want anyway.
 * `onlink` lets a gateway be used on point-to-point tunnels that have no subnet for it.
 */
export const renderOp = (op: RouteOp, onlink: boolean): string => {
  const r = op.route
  if (op._tag === "RouteDelete") return ["route del", r.prefix, ...tail(r)].join(" ")
  return [
    "route replace",
    r.prefix,
    ...(r.gateway === undefined ? [] : [`via ${r.gateway}`]),
    `dev ${r.device}`,
    ...(r.gateway !== undefined && onlink ? ["onlink"] : []),
    ...(r.source === undefined ? [] : [`src ${r.source}`]),
    ...tail(r),
  ].join(" ")
}
