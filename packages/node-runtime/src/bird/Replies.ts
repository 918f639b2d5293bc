/**
 * Typed views of BIRD replies: `show protocols` and `show route all`, in both BIRD 2 and
 * BIRD 1.x output. Lines are picked apart with small regular expressions and the result is
 * decoded through a Schema, so a reply either becomes typed values or a `BirdParseError`
 * naming the line. One `BirdRoute` per path (BIRD prints several paths under one network);
 * `primary` marks the path BIRD selected.
 */
import type { BgpPath, Family } from "@net-perf/engine"
import { Either, ParseResult, Schema } from "effect"
import { BirdParseError } from "./Errors.js"
import type { BirdReply } from "./Protocol.js"

// ---------------------------------------------------------------------------------------------
// show protocols

export const ProtocolState = Schema.Literal("up", "down", "start", "stop", "feed", "flush")
export type ProtocolState = typeof ProtocolState.Type

export const BirdProtocol = Schema.Struct({
  name: Schema.String,
  /** BIRD's protocol kind: `BGP`, `Static`, `Device`, `Kernel`, … */
  protocol: Schema.String,
  /** `null` when BIRD prints `---` (BIRD 2 protocols with several channels). */
  table: Schema.NullOr(Schema.String),
  state: ProtocolState,
  since: Schema.String,
  /** Free text; for BGP the session state (`Established`, `Active`, `Connect`, …) and any error. */
  info: Schema.String,
  /** Which BIRD 1.x daemon reported it (4 = bird, 6 = bird6); `null` for BIRD 2. */
  family: Schema.NullOr(Schema.Literal(4, 6)),
})
export type BirdProtocol = typeof BirdProtocol.Type

export const isEstablished = (p: BirdProtocol): boolean =>
  p.protocol === "BGP" && p.state === "up" && p.info.startsWith("Established")

const timeToken = /^\d[\d:.-]*$/

export const parseProtocols = (
  reply: BirdReply,
  command: string,
  family: 4 | 6 | null,
): Either.Either<ReadonlyArray<BirdProtocol>, BirdParseError> => {
  const out: Array<BirdProtocol> = []
  for (const entry of reply.entries) {
    if (entry.code !== 1002) continue
    const tokens = entry.text.trim().split(/\s+/)
    const [name, protocol, table, state, ...rest] = tokens
    if (state === undefined)
      return Either.left(new BirdParseError({ command, line: entry.text, reason: "too few columns" }))
    // "since" is a time or date (two tokens with `timeformat protocol iso long`); info is the rest.
    let sinceTokens = 0
    while (sinceTokens < 2 && sinceTokens < rest.length && timeToken.test(rest[sinceTokens]!)) sinceTokens++
    const decoded = Schema.decodeUnknownEither(BirdProtocol)({
      name,
      protocol,
      table: table === "---" ? null : table,
      state,
      since: rest.slice(0, sinceTokens).join(" "),
      info: rest.slice(sinceTokens).join(" "),
      family,
    })
    if (Either.isLeft(decoded)) return Either.left(schemaError(command, entry.text, decoded.left))
    out.push(decoded.right)
  }
  return Either.right(out)
}

// ---------------------------------------------------------------------------------------------
// show route all

const IntFromString = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())

export const BirdNextHop = Schema.Struct({
  gateway: Schema.NullOr(Schema.String),
  interface: Schema.NullOr(Schema.String),
  weight: Schema.NullOr(IntFromString),
})
export type BirdNextHop = typeof BirdNextHop.Type

export const BirdRoute = Schema.Struct({
  /** BIRD 2 table (`master4`, `master6`); `null` for BIRD 1.x. */
  table: Schema.NullOr(Schema.String),
  prefix: Schema.String,
  /** Family of the prefix; `null` for non-IP networks (ROA, flowspec, …). */
  prefixFamily: Schema.NullOr(Schema.Literal(4, 6)),
  /** `unicast`, `blackhole`, `unreachable`, … (BIRD 1.x: `via`, `dev`, `multipath`, …). */
  kind: Schema.String,
  /** The BIRD protocol instance that brought the route (`l1v4`, `static1`). */
  protocol: Schema.String,
  since: Schema.String,
  from: Schema.NullOr(Schema.String),
  primary: Schema.Boolean,
  preference: IntFromString,
  igpMetric: Schema.NullOr(Schema.String),
  /** Origin AS from the `[AS64514i]` column; `null` when BIRD prints none. */
  originAs: Schema.NullOr(IntFromString),
  /** Route source type from `Type:` (`BGP`, `static`, `device`, …). */
  type: Schema.NullOr(Schema.String),
  nextHops: Schema.Array(BirdNextHop),
  asPath: Schema.Array(IntFromString),
  /** First address of `BGP.next_hop` (BIRD 1.x also lists the link-local one). */
  bgpNextHop: Schema.NullOr(Schema.String),
  localPref: Schema.NullOr(IntFromString),
  med: Schema.NullOr(IntFromString),
  bgpOrigin: Schema.NullOr(Schema.String),
  /** Every `1012` attribute as printed. */
  attributes: Schema.Record({ key: Schema.String, value: Schema.String }),
})
export type BirdRoute = typeof BirdRoute.Type
type RawRoute = Schema.Schema.Encoded<typeof BirdRoute>
type MutableRaw = { -readonly [K in keyof RawRoute]: RawRoute[K] } & {
  attributes: Record<string, string>
  nextHops: Array<RawRoute["nextHops"][number]>
}

const pathHeader =
  /^(?<kind>[^[]*?)\s*\[(?<src>[^\]]*)\]\s*(?<primary>\*)?\s*(?:\((?<pref>\d+)(?:\/(?<metric>[^)]*))?\))?\s*(?:\[(?<origin>[^\]]*)\])?\s*$/
const viaLine = /^via\s+(\S+)\s+on\s+(\S+)(?:.*?\bweight\s+(\d+))?/
const devLine = /^dev\s+(\S+)/
const originColumn = /^(?:AS(\d+))?[ie?]?$/
const ipv4Prefix = /^\d{1,3}(?:\.\d{1,3}){3}\/\d{1,2}$/
const ipv6Prefix = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\/\d{1,3}$/

const familyOf = (prefix: string): 4 | 6 | null => (ipv4Prefix.test(prefix) ? 4 : ipv6Prefix.test(prefix) ? 6 : null)

const nextHopOf = (text: string): RawRoute["nextHops"][number] | undefined => {
  const via = viaLine.exec(text)
  if (via !== null) return { gateway: via[1]!, interface: via[2]!, weight: via[3] ?? null }
  const dev = devLine.exec(text)
  if (dev !== null) return { gateway: null, interface: dev[1]!, weight: null }
  return undefined
}

/** BIRD 1.x prints the next hop where BIRD 2 prints the route kind; both become `unicast`. */
const normaliseKind = (word: string): string =>
  word === "via" || word === "dev" || word === "multipath" ? "unicast" : word === "prohibited" ? "prohibit" : word

const asPathTokens = (value: string): Array<string> =>
  value
    .replace(/[{}()[\]]/g, " ")
    .split(/\s+/)
    .filter((t) => t !== "")

/** Parses one reply of `show route all` (any table, either BIRD generation). */
export const parseRoutes = (
  reply: BirdReply,
  command: string,
): Either.Either<ReadonlyArray<BirdRoute>, BirdParseError> => {
  const raws: Array<MutableRaw> = []
  let table: string | null = null
  let network: string | null = null
  let current: MutableRaw | null = null
  let lastAttribute: string | null = null

  const fail = (line: string, reason: string) => Either.left(new BirdParseError({ command, line, reason }))

  for (const { code, text } of reply.entries) {
    if (code === 1007) {
      if (text.trim() === "") continue
      const tableHeading = /^Table\s+(\S+):$/.exec(text.trim())
      if (tableHeading !== null && !/^\s/.test(text)) {
        table = tableHeading[1]!
        network = null
        continue
      }
      let rest = text
      if (!/^\s/.test(text)) {
        const m = /^(\S+)\s+(.*)$/.exec(text)
        if (m === null) return fail(text, "route line without a path")
        network = m[1]!
        rest = m[2]!
      }
      rest = rest.trim()
      const header = pathHeader.exec(rest)
      if (header === null) {
        // An indented next-hop line of the current path (BIRD 2 prints them under 1007).
        const hop = nextHopOf(rest)
        if (hop === undefined || current === null) return fail(text, "unrecognised route line")
        current.nextHops.push(hop)
        continue
      }
      if (network === null) return fail(text, "path before any network")
      const g = header.groups!
      const src = g.src!.trim()
      const [protocol = "", ...srcRest] = src.split(/\s+/)
      const sinceAndFrom = srcRest.join(" ")
      const fromIdx = sinceAndFrom.indexOf("from ")
      const origin = g.origin === undefined ? null : originColumn.exec(g.origin.trim())
      if (g.origin !== undefined && origin === null) return fail(text, "unrecognised origin column")
      const kindText = g.kind!.trim()
      const hop = nextHopOf(kindText)
      current = {
        table,
        prefix: network,
        prefixFamily: familyOf(network),
        kind: normaliseKind(kindText.split(/\s+/)[0]!),
        protocol,
        since: (fromIdx >= 0 ? sinceAndFrom.slice(0, fromIdx) : sinceAndFrom).trim(),
        from: fromIdx >= 0 ? sinceAndFrom.slice(fromIdx + 5).trim() : null,
        primary: g.primary !== undefined,
        preference: g.pref ?? "0",
        igpMetric: g.metric ?? null,
        originAs: origin?.[1] ?? null,
        type: null,
        nextHops: hop === undefined ? [] : [hop],
        asPath: [],
        bgpNextHop: null,
        localPref: null,
        med: null,
        bgpOrigin: null,
        attributes: {},
      }
      if (kindText === "") return fail(text, "path without a kind")
      raws.push(current)
      lastAttribute = null
      continue
    }
    if (current === null) continue
    const detail = text.trim()
    if (code === 1008) {
      const type = /^Type:\s+(\S+)/.exec(detail)
      if (type !== null) current.type = type[1]!
      else {
        const hop = nextHopOf(detail)
        if (hop !== undefined) current.nextHops.push(hop)
      }
      continue
    }
    if (code === 1012) {
      const attr = /^([A-Za-z0-9_.]+):\s*(.*)$/.exec(detail)
      if (attr !== null) {
        lastAttribute = attr[1]!
        current.attributes[lastAttribute] = attr[2]!
      } else if (lastAttribute !== null) {
        // Long attributes (communities) wrap onto further indented lines.
        current.attributes[lastAttribute] = `${current.attributes[lastAttribute]} ${detail}`
      } else return fail(text, "attribute line without a name")
    }
  }

  const encoded = raws.map((raw): RawRoute => {
    const a = raw.attributes
    const asPath = a["BGP.as_path"]
    return {
      ...raw,
      asPath: asPath === undefined ? [] : asPathTokens(asPath),
      bgpNextHop: a["BGP.next_hop"]?.trim().split(/\s+/)[0] ?? null,
      localPref: a["BGP.local_pref"]?.trim() ?? null,
      med: a["BGP.med"]?.trim() ?? null,
      bgpOrigin: a["BGP.origin"]?.trim() ?? null,
    }
  })
  // One decode for the whole table: per-route decoding costs several times more on big tables.
  const decoded = decodeRoutes(encoded)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const index = firstIndex(decoded.left)
  const bad = index === undefined ? undefined : raws[index]
  return Either.left(
    schemaError(command, bad === undefined ? "(route table)" : `${bad.prefix} [${bad.protocol}]`, decoded.left),
  )
}

const decodeRoutes = Schema.decodeUnknownEither(Schema.Array(BirdRoute))

/** Index of the first failing element in an array decode error, to name the route. */
const firstIndex = (error: ParseResult.ParseError): number | undefined => {
  const issue = error.issue
  if (issue._tag === "Composite") {
    const first = Array.isArray(issue.issues) ? issue.issues[0] : issue.issues
    if (first !== undefined && "_tag" in first && first._tag === "Pointer" && typeof first.path === "number")
      return first.path
  }
  return undefined
}

/**
 * BGP paths as the engine wants them: BGP routes of IP prefixes with a next hop and an
 * outgoing interface. The gateway is BIRD's resolved `via` address (what the kernel would
 * use), falling back to `BGP.next_hop`.
 */
export const toBgpPaths = (routes: ReadonlyArray<BirdRoute>): ReadonlyArray<BgpPath> => {
  const out: Array<BgpPath> = []
  for (const r of routes) {
    if (r.type !== "BGP" || r.prefixFamily === null) continue
    const hop = r.nextHops.find((h) => h.interface !== null)
    const nextHop = hop?.gateway ?? r.bgpNextHop
    if (hop === undefined || hop.interface === null || nextHop === null) continue
    out.push({
      prefix: r.prefix,
      prefixFamily: r.prefixFamily as Family,
      asPath: r.asPath,
      nextHop,
      interface: hop.interface,
      primary: r.primary,
    })
  }
  return out
}

const schemaError = (command: string, line: string, error: ParseResult.ParseError) =>
  new BirdParseError({ command, line, reason: ParseResult.TreeFormatter.formatErrorSync(error), cause: error })
