/**
 * Live state of this network namespace: links and addresses from `ip -json`, WireGuard state
 * from `wg show all dump`, and `ip monitor link address` as a change signal. Only links that `ip`
 * lists are kept: wireguard-go's control sockets live in a shared /var/run/wireguard, so `wg show`
 * can list other namespaces' interfaces (see the twin pitfalls). Every command can be prefixed
 * (e.g. `ip netns exec site3`) so the same code observes a namespace from outside.
 */
import { execFile } from "node:child_process"
import { createInterface } from "node:readline"
import { Data, Effect, Either, ParseResult, Schema, Stream } from "effect"
import { execa } from "execa"
import type { IpService } from "../kernel/Ip.js"

export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly command: string
  readonly exitCode: number | undefined
  readonly stderr: string
}> {}

export class OutputUnparsable extends Data.TaggedError("OutputUnparsable")<{
  readonly command: string
  readonly reason: string
}> {}

export interface CommandConfig {
  /** Prepended to every command, e.g. ["ip", "netns", "exec", "site3"]. */
  readonly prefix: ReadonlyArray<string>
  readonly ip: string
  readonly wg: string
}

export const defaultCommandConfig: CommandConfig = { prefix: [], ip: "ip", wg: "wg" }

/**
 * Runs one command to completion. node:child_process rather than execa: a rescan runs three
 * commands, and execa's per-process machinery cost more CPU than the commands' output parsing.
 */
const run = (config: CommandConfig, command: string, args: ReadonlyArray<string>) => {
  const argv = [...config.prefix, command, ...args]
  const text = argv.join(" ")
  return Effect.async<string, CommandFailed>((resume) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { timeout: 10_000, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error === null) return resume(Effect.succeed(stdout))
        const code = typeof error.code === "number" ? error.code : undefined
        resume(
          Effect.fail(
            new CommandFailed({
              command: text,
              exitCode: code,
              stderr: (stderr.length > 0 ? stderr : error.message).slice(0, 300),
            }),
          ),
        )
      },
    )
    child.stdin?.end()
    return Effect.sync(() => {
      child.kill("SIGKILL")
    })
  })
}

const IpLink = Schema.Struct({
  ifindex: Schema.Int,
  ifname: Schema.String,
  flags: Schema.Array(Schema.String),
  operstate: Schema.optional(Schema.String),
  mtu: Schema.optional(Schema.Int),
})
const IpAddr = Schema.Struct({
  ifname: Schema.String,
  addr_info: Schema.Array(Schema.Struct({ family: Schema.String, local: Schema.String, prefixlen: Schema.Int })),
})

/** One entry of `ip -json addr show`: the link's own fields and its addresses. */
const IpAddrLink = Schema.Struct({
  ...IpLink.fields,
  addr_info: IpAddr.fields.addr_info,
})

export interface LiveLink {
  readonly ifindex: number
  readonly name: string
  /** Administratively up (the UP flag): wireguard-go's tun reports operstate UNKNOWN. */
  readonly up: boolean
  readonly mtu: number | undefined
  readonly addresses: ReadonlyArray<string>
}

const decodeJson = <A, I>(schema: Schema.Schema<A, I>, command: string, text: string) =>
  Either.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => new OutputUnparsable({ command, reason: String(e) }),
  }).pipe(
    Either.flatMap((json) =>
      Either.mapLeft(
        Schema.decodeUnknownEither(schema)(json),
        (e) => new OutputUnparsable({ command, reason: ParseResult.TreeFormatter.formatErrorSync(e) }),
      ),
    ),
  )

/** Joins `ip -json link` and `ip -json addr` output. */
export const parseIpOutput = (
  linkJson: string,
  addrJson: string,
): Either.Either<ReadonlyArray<LiveLink>, OutputUnparsable> =>
  Either.all([
    decodeJson(Schema.Array(IpLink), "ip -json link", linkJson),
    decodeJson(Schema.Array(IpAddr), "ip -json addr", addrJson),
  ]).pipe(
    Either.map(([links, addrs]) => {
      const byName = new Map(addrs.map((a) => [a.ifname, a.addr_info.map((x) => x.local)]))
      return links.map((l) => ({
        ifindex: l.ifindex,
        name: l.ifname,
        up: l.flags.includes("UP"),
        mtu: l.mtu,
        addresses: byName.get(l.ifname) ?? [],
      }))
    }),
  )

export interface WgPeerState {
  readonly publicKey: string
  readonly endpoint: string | null
  readonly allowedIps: ReadonlyArray<string>
  /** Epoch seconds of the latest handshake; null if never. */
  readonly latestHandshakeSeconds: number | null
  readonly rxBytes: number
  readonly txBytes: number
}
export interface WgInterfaceState {
  readonly name: string
  readonly publicKey: string
  readonly listenPort: number | null
  readonly peers: ReadonlyArray<WgPeerState>
}

const none = (s: string) => (s === "(none)" || s === "off" ? null : s)

/** `wg show all dump`: one tab-separated line per interface (5 fields) and per peer (9 fields). */
export const parseWgDump = (text: string): Either.Either<ReadonlyArray<WgInterfaceState>, OutputUnparsable> => {
  const interfaces = new Map<
    string,
    { name: string; publicKey: string; listenPort: number | null; peers: Array<WgPeerState> }
  >()
  const lines = text.split("\n").filter((l) => l.trim().length > 0)
  for (const [i, line] of lines.entries()) {
    const f = line.split("\t")
    const bad = (reason: string) =>
      Either.left(new OutputUnparsable({ command: "wg show all dump", reason: `line ${i + 1}: ${reason}` }))
    const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined)
    if (f.length === 5) {
      const port = int(f[3])
      if (port === undefined) return bad(`listen port "${f[3]}"`)
      interfaces.set(f[0]!, { name: f[0]!, publicKey: f[2]!, listenPort: port === 0 ? null : port, peers: [] })
    } else if (f.length === 9) {
      const owner = interfaces.get(f[0]!)
      const handshake = int(f[5])
      const rx = int(f[6])
      const tx = int(f[7])
      if (owner === undefined) return bad(`peer of unknown interface ${f[0]}`)
      if (handshake === undefined || rx === undefined || tx === undefined) return bad("non-numeric counters")
      owner.peers.push({
        publicKey: f[1]!,
        endpoint: none(f[3]!),
        allowedIps: f[4] === "(none)" ? [] : f[4]!.split(","),
        latestHandshakeSeconds: handshake === 0 ? null : handshake,
        rxBytes: rx,
        txBytes: tx,
      })
    } else return bad(`${f.length} fields`)
  }
  return Either.right([...interfaces.values()])
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x)
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x)
const isStringArray = (x: unknown): x is ReadonlyArray<string> =>
  Array.isArray(x) && x.every((s) => typeof s === "string")
/** `key` absent, or present with a value `ok` accepts (`Schema.optional`; JSON has no undefined). */
const optionalField = (o: Record<string, unknown>, key: string, ok: (x: unknown) => boolean) =>
  !Object.hasOwn(o, key) || o[key] === undefined || ok(o[key])

/**
 * The links of parsed `ip -json addr` output, or undefined when any entry does not fit `IpAddrLink`
 * (then the Schema decode runs, for its error). The same checks as the Schema, by hand: the
 * periodic rescan decodes ≈ 200 entries (each with its address list) and the Schema walk was ≈ 3 %
 * of the plane's main thread at 100 tunnels; the property test holds the two to the same verdict
 * and value.
 */
const ipAddrLinksFast = (json: unknown): ReadonlyArray<LiveLink> | undefined => {
  if (!Array.isArray(json)) return undefined
  const out: Array<LiveLink> = []
  for (const l of json) {
    if (!isObject(l)) return undefined
    const { ifindex, ifname, flags, mtu, addr_info: info } = l
    if (!isInt(ifindex) || typeof ifname !== "string" || !isStringArray(flags) || !Array.isArray(info)) return undefined
    if (!optionalField(l, "operstate", (x) => typeof x === "string") || !optionalField(l, "mtu", isInt))
      return undefined
    const addresses: Array<string> = []
    for (const a of info) {
      if (!isObject(a) || typeof a.family !== "string" || typeof a.local !== "string" || !isInt(a.prefixlen))
        return undefined
      addresses.push(a.local)
    }
    out.push({ ifindex, name: ifname, up: flags.includes("UP"), mtu: mtu as number | undefined, addresses })
  }
  return out
}

/**
 * `ip -json addr show` alone: it lists every link with its flags, MTU and index besides the
 * addresses, so one process per scan instead of two (the same view `parseIpOutput` joins from
 * `ip -json link` and `ip -json addr`).
 */
export const parseIpAddrOutput = (addrJson: string): Either.Either<ReadonlyArray<LiveLink>, OutputUnparsable> => {
  let json: unknown
  try {
    json = JSON.parse(addrJson)
  } catch {
    return parseIpAddrOutputSchema(addrJson)
  }
  const fast = ipAddrLinksFast(json)
  return fast === undefined ? parseIpAddrOutputSchema(addrJson) : Either.right(fast)
}

/** `parseIpAddrOutput` through the Schema (the reference its fast path is tested against; its errors). */
export const parseIpAddrOutputSchema = (addrJson: string): Either.Either<ReadonlyArray<LiveLink>, OutputUnparsable> =>
  decodeJson(Schema.Array(IpAddrLink), "ip -json addr", addrJson).pipe(
    Either.map((links) =>
      links.map((l) => ({
        ifindex: l.ifindex,
        name: l.ifname,
        up: l.flags.includes("UP"),
        mtu: l.mtu,
        addresses: l.addr_info.map((x) => x.local),
      })),
    ),
  )

/**
 * Links and addresses of this namespace. With `session` (a long-lived `ip -batch` process,
 * `makeIpScoped`) and no command prefix, the read goes through it instead of a new `ip` process:
 * spawning one forks the whole daemon (on the 2-core VM of session 11: 12 ms of its CPU per spawn
 * at 90 MB RSS, 16–19 ms at 250 MB; a session read ≈ 1 ms), for a read the safety rescan repeats
 * every minute and every link event triggers.
 */
export const readLiveLinks = (config: CommandConfig, session?: IpService) =>
  Effect.flatMap(
    session !== undefined && config.prefix.length === 0
      ? session.jsonText(["addr", "show"]).pipe(
          Effect.mapError(
            (e) =>
              new CommandFailed({
                command: `${config.ip} -json addr show (ip -batch session)`,
                exitCode: e.exitCode,
                stderr: (e.stderr.length > 0 ? e.stderr : String(e.cause)).slice(0, 300),
              }),
          ),
        )
      : run(config, config.ip, ["-json", "addr", "show"]),
    parseIpAddrOutput,
  )

/** WireGuard interfaces, restricted to the names in `ownLinks` (our namespace). */
export const readWgState = (config: CommandConfig, ownLinks: ReadonlySet<string>) =>
  run(config, config.wg, ["show", "all", "dump"]).pipe(
    Effect.flatMap((text) => parseWgDump(text)),
    Effect.map((all) => all.filter((w) => ownLinks.has(w.name))),
  )

/**
 * `ip monitor link address` as a stream of changed interface names (iproute2 6.1 prints text
 * even with -json; only headline lines `N: name…` / `Deleted N: name…` are events). The child
 * process lives as long as the stream is consumed.
 */
export const monitorLinks = (config: CommandConfig): Stream.Stream<string, CommandFailed> =>
  Stream.asyncScoped<string, CommandFailed>((emit) =>
    Effect.gen(function* () {
      const argv = [...config.prefix, config.ip, "monitor", "link", "address"]
      const command = argv.join(" ")
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          execa(argv[0]!, argv.slice(1), { stdin: "ignore", reject: false, buffer: false, cleanup: false }),
        ),
        (c) =>
          Effect.promise(async () => {
            c.kill("SIGTERM")
            await c
          }),
      )
      // readline, not an async iterator: a pending iterator read would block interruption until
      // the next event, and `ip monitor` may stay silent for hours.
      const lines = createInterface({ input: child.stdout })
      lines.on("line", (line) => {
        const m = /^(?:Deleted )?\d+: ([^:@\s]+)/.exec(line)
        if (m !== null) void emit.single(m[1]!)
      })
      void child.then((r) =>
        emit.fail(new CommandFailed({ command, exitCode: r.exitCode, stderr: String(r.stderr ?? "") })),
      )
    }),
  )
