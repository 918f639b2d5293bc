/**
 * WireGuard configuration files (`/etc/wireguard/*.conf`, wg-quick format) parsed into typed
 * values: interface keys, listen port, MTU, and per peer its key, endpoint, allowed IPs and
 * keepalive. The original only looked at file *names*. A bad file yields a `WgConfError` naming the
 * file and line and is skipped; the other files still load.
 */
import { readdir, readFile } from "node:fs/promises"
import { basename, join } from "node:path"
import { Data, Effect, Either, ParseResult, Schema } from "effect"

export class WgConfError extends Data.TaggedError("WgConfError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
}> {
  override get message() {
    return `${this.file}:${this.line}: ${this.reason}`
  }
}

export class WgConfDirUnreadable extends Data.TaggedError("WgConfDirUnreadable")<{
  readonly dir: string
  readonly cause: unknown
}> {}

/** A Curve25519 key in WireGuard's base64 form (32 bytes → 44 characters ending in '='). */
export const WgKey = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/), Schema.brand("WgKey"))
export type WgKey = typeof WgKey.Type

const IntFromString = (min: number, max: number) => Schema.NumberFromString.pipe(Schema.int(), Schema.between(min, max))

export const Endpoint = Schema.Struct({
  host: Schema.String.pipe(Schema.minLength(1)),
  port: Schema.Int.pipe(Schema.between(1, 65535)),
})
export type Endpoint = typeof Endpoint.Type

/** `host:port` or `[v6]:port`. */
const EndpointFromString = Schema.transformOrFail(Schema.String, Endpoint, {
  strict: true,
  decode: (s, _, ast) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(s.trim())
    if (m === null) return ParseResult.fail(new ParseResult.Type(ast, s, `endpoint "${s}" is not host:port`))
    const port = Number(m[3])
    if (port < 1 || port > 65535) return ParseResult.fail(new ParseResult.Type(ast, s, `port ${port} outside 1..65535`))
    return ParseResult.succeed({ host: (m[1] ?? m[2])!, port })
  },
  encode: (e) => ParseResult.succeed(e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`),
})

const cidrRe =
  /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(?:3[0-2]|[12]?\d)|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*\/(?:12[0-8]|1[01]\d|[1-9]?\d))$/
export const AllowedIp = Schema.String.pipe(Schema.pattern(cidrRe, { message: () => "not a CIDR prefix" }))

const AllowedIpsFromString = Schema.transform(Schema.String, Schema.Array(AllowedIp), {
  strict: true,
  decode: (s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  encode: (xs) => xs.join(", "),
})

export interface WgPeerConf {
  readonly publicKey: WgKey
  readonly presharedKey?: WgKey
  readonly endpoint?: Endpoint
  readonly allowedIps: ReadonlyArray<string>
  readonly persistentKeepaliveSeconds?: number
}

export interface WgConf {
  readonly file: string
  /** Interface name wg-quick gives it: the file name without `.conf`. */
  readonly interfaceName: string
  readonly privateKey: WgKey
  readonly listenPort?: number
  readonly mtu?: number
  readonly peers: ReadonlyArray<WgPeerConf>
}

const interfaceFields = {
  privatekey: WgKey,
  listenport: IntFromString(1, 65535),
  mtu: IntFromString(576, 65535),
  fwmark: Schema.String,
  table: Schema.String,
  address: Schema.String,
  dns: Schema.String,
  saveconfig: Schema.String,
  preup: Schema.String,
  postup: Schema.String,
  predown: Schema.String,
  postdown: Schema.String,
} as const
const peerFields = {
  publickey: WgKey,
  presharedkey: WgKey,
  endpoint: EndpointFromString,
  allowedips: AllowedIpsFromString,
  persistentkeepalive: Schema.Union(Schema.Literal("off"), IntFromString(0, 65535)),
} as const

const decodeField = (schema: Schema.Schema<unknown, string>, value: string) =>
  Either.mapLeft(Schema.decodeUnknownEither(schema)(value), (e) => ParseResult.TreeFormatter.formatErrorSync(e))

/** Parses one file's text; `file` only names it in errors. */
export const parseWgConf = (file: string, text: string): Either.Either<WgConf, WgConfError> => {
  const fail = (line: number, reason: string) => Either.left(new WgConfError({ file, line, reason }))
  const interfaceName = basename(file).replace(/\.conf$/, "")
  if (!/^[A-Za-z0-9_=+.-]{1,15}$/.test(interfaceName))
    return fail(0, `"${interfaceName}" is not a valid interface name`)
  let section: "none" | "interface" | "peer" = "none"
  let sawInterface = false
  const iface: Record<string, unknown> = {}
  const peers: Array<{ line: number; fields: Record<string, unknown> }> = []
  const lines = text.split(/\r?\n/)
  for (const [i, raw] of lines.entries()) {
    const lineNo = i + 1
    const line = raw.replace(/#.*$/, "").trim()
    if (line.length === 0) continue
    const header = /^\[(\w+)\]$/.exec(line)
    if (header !== null) {
      const name = header[1]!.toLowerCase()
      if (name === "interface") {
        if (sawInterface) return fail(lineNo, "second [Interface] section")
        sawInterface = true
        section = "interface"
      } else if (name === "peer") {
        section = "peer"
        peers.push({ line: lineNo, fields: {} })
      } else return fail(lineNo, `unknown section [${header[1]}]`)
      continue
    }
    const eq = line.indexOf("=")
    if (eq <= 0) return fail(lineNo, `expected "Key = Value", got "${line.slice(0, 60)}"`)
    const key = line.slice(0, eq).trim().toLowerCase()
    const value = line.slice(eq + 1).trim()
    if (section === "none") return fail(lineNo, "key outside of a section")
    const fields = (section === "interface" ? interfaceFields : peerFields) as unknown as Record<
      string,
      Schema.Schema<unknown, string> | undefined
    >
    const schema = fields[key]
    if (schema === undefined)
      return fail(
        lineNo,
        `unknown key "${line.slice(0, eq).trim()}" in [${section === "interface" ? "Interface" : "Peer"}]`,
      )
    const decoded = decodeField(schema, value)
    if (Either.isLeft(decoded)) return fail(lineNo, `${line.slice(0, eq).trim()}: ${decoded.left}`)
    const target = section === "interface" ? iface : peers[peers.length - 1]!.fields
    // wg-quick allows repeated AllowedIPs/Address/Post* lines: they accumulate.
    const previous = target[key]
    target[key] =
      key === "allowedips" && Array.isArray(previous)
        ? [...previous, ...(decoded.right as Array<string>)]
        : typeof previous === "string" && ["address", "dns", "preup", "postup", "predown", "postdown"].includes(key)
          ? `${previous}\n${decoded.right as string}`
          : decoded.right
  }
  if (!sawInterface) return fail(lines.length, "no [Interface] section")
  if (iface.privatekey === undefined) return fail(lines.length, "[Interface] has no PrivateKey")
  const parsedPeers: Array<WgPeerConf> = []
  for (const p of peers) {
    if (p.fields.publickey === undefined) return fail(p.line, "[Peer] has no PublicKey")
    const keepalive = p.fields.persistentkeepalive
    parsedPeers.push({
      publicKey: p.fields.publickey as WgKey,
      ...(p.fields.presharedkey !== undefined ? { presharedKey: p.fields.presharedkey as WgKey } : {}),
      ...(p.fields.endpoint !== undefined ? { endpoint: p.fields.endpoint as Endpoint } : {}),
      allowedIps: (p.fields.allowedips as ReadonlyArray<string> | undefined) ?? [],
      ...(typeof keepalive === "number" && keepalive > 0 ? { persistentKeepaliveSeconds: keepalive } : {}),
    })
  }
  return Either.right({
    file,
    interfaceName,
    privateKey: iface.privatekey as WgKey,
    ...(iface.listenport !== undefined ? { listenPort: iface.listenport as number } : {}),
    ...(iface.mtu !== undefined ? { mtu: iface.mtu as number } : {}),
    peers: parsedPeers,
  })
}

/** Every `*.conf` in `dir`: the parsed ones and an error per bad file. A missing dir is no confs. */
export const loadWgConfs = (
  dir: string,
): Effect.Effect<
  { readonly confs: ReadonlyArray<WgConf>; readonly errors: ReadonlyArray<WgConfError> },
  WgConfDirUnreadable
> =>
  Effect.gen(function* () {
    const names = yield* Effect.tryPromise({
      try: () => readdir(dir),
      catch: (cause) => new WgConfDirUnreadable({ dir, cause }),
    }).pipe(
      Effect.catchIf(
        (e) => (e.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT",
        () => Effect.succeed([] as Array<string>),
      ),
    )
    const confs: Array<WgConf> = []
    const errors: Array<WgConfError> = []
    for (const name of names.filter((n) => n.endsWith(".conf")).sort()) {
      const file = join(dir, name)
      const text = yield* Effect.tryPromise(() => readFile(file, "utf8")).pipe(Effect.either)
      if (Either.isLeft(text)) {
        errors.push(new WgConfError({ file, line: 0, reason: `unreadable: ${String(text.left.error)}` }))
        continue
      }
      Either.match(parseWgConf(file, text.right), { onLeft: (e) => errors.push(e), onRight: (c) => confs.push(c) })
    }
    return { confs, errors }
  })
