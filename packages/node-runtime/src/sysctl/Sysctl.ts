/**
 * Kernel tuning the mesh needs (REFERENCE §10: forwarding, no reverse-path filter, local
 * routing, accept_ra), made configurable and applied only when asked. Values are read and
 * written through /proc/sys files — no `sysctl` subprocess per key — and only keys whose value
 * differs are written. Every key yields a report line saying what it was and what it became;
 * a key that cannot be written (missing interface, read-only) is reported, never fatal.
 * /proc/sys/net is per network namespace of the *calling process*, so the daemon applies the
 * settings of the namespace it runs in.
 */
import { readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Context, Effect, Layer, Schema } from "effect"

/** A `{if}` placeholder in a key stands for the interface name (which may itself contain dots). */
export const SysctlRule = Schema.Struct({
  /** Interface name globs (`wg*`, `en*`, `lo`). */
  match: Schema.Array(Schema.String),
  settings: Schema.Record({ key: Schema.String, value: Schema.String }),
})
export type SysctlRule = typeof SysctlRule.Type

export const SysctlConfig = Schema.Struct({
  /** Nothing is written unless the operator asks for it. */
  enabled: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  global: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), {
    default: () => defaultGlobal,
  }),
  /** Applied in order; a later rule overrides an earlier one for the same key. */
  interfaces: Schema.optionalWith(Schema.Array(SysctlRule), { default: () => defaultInterfaceRules }),
})
export type SysctlConfig = typeof SysctlConfig.Type

export const defaultGlobal: Readonly<Record<string, string>> = {
  "net.ipv4.conf.all.accept_local": "1",
  "net.ipv4.conf.all.route_localnet": "1",
  "net.ipv4.conf.all.rp_filter": "0",
  "net.ipv4.conf.default.accept_local": "1",
  "net.ipv4.conf.default.route_localnet": "1",
  "net.ipv4.conf.default.rp_filter": "0",
  "net.ipv6.conf.all.forwarding": "1",
}

export const defaultInterfaceRules: ReadonlyArray<SysctlRule> = [
  {
    match: ["wg*", "en*", "lo"],
    settings: {
      "net.ipv4.conf.{if}.forwarding": "1",
      "net.ipv4.conf.{if}.accept_local": "1",
      "net.ipv4.conf.{if}.route_localnet": "1",
      "net.ipv4.conf.{if}.rp_filter": "0",
      "net.ipv6.conf.{if}.forwarding": "1",
      "net.ipv6.conf.{if}.accept_ra": "2",
    },
  },
  // Tunnels must not take router advertisements (BIRD and net-perf own their routes).
  { match: ["wg*"], settings: { "net.ipv6.conf.{if}.accept_ra": "0" } },
]

/** One key to set: `key` as `sysctl` prints it (dots inside interface names become `/`). */
export interface SysctlWrite {
  readonly key: string
  /** Path below /proc/sys. */
  readonly path: string
  readonly value: string
}

export interface SysctlResult extends SysctlWrite {
  /** Value before, or null if it could not be read. */
  readonly previous: string | null
  readonly outcome: "changed" | "unchanged" | "failed"
  readonly error?: string
}

const globToRegExp = (glob: string) =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  )

const toWrite = (template: string, value: string, iface?: string): SysctlWrite => {
  const segments = template.split(".").map((s) => (s === "{if}" && iface !== undefined ? iface : s))
  return {
    key: segments.map((s) => s.replaceAll(".", "/")).join("."),
    path: segments.join("/"),
    value,
  }
}

/** The writes a configuration asks for, for these interfaces (pure; later rules win). */
export const planSysctl = (config: SysctlConfig, interfaces: ReadonlyArray<string>): ReadonlyArray<SysctlWrite> => {
  const writes = new Map<string, SysctlWrite>()
  for (const [k, v] of Object.entries(config.global)) {
    const w = toWrite(k, v)
    writes.set(w.path, w)
  }
  for (const iface of interfaces)
    for (const rule of config.interfaces)
      if (rule.match.some((g) => globToRegExp(g).test(iface)))
        for (const [k, v] of Object.entries(rule.settings)) {
          const w = toWrite(k, v, iface)
          writes.set(w.path, w)
        }
  return [...writes.values()]
}

/** /proc/sys values are whitespace-separated fields; "1\n" equals "1", "4096 87380" equals "4096\t87380". */
const sameValue = (a: string, b: string) => a.trim().split(/\s+/).join(" ") === b.trim().split(/\s+/).join(" ")

export interface SysctlService {
  readonly config: SysctlConfig
  /** Interfaces the kernel knows in this namespace (from /proc/sys/net/ipv4/conf). */
  readonly interfaces: Effect.Effect<ReadonlyArray<string>>
  /** Applies global keys and the rules for `interfaces` (default: every interface present). */
  readonly apply: (interfaces?: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<SysctlResult>>
  /** Applies the rules for one interface only (a tunnel just appeared). */
  readonly applyInterface: (iface: string) => Effect.Effect<ReadonlyArray<SysctlResult>>
}

export interface SysctlOptions {
  /** Root of the sysctl tree. Default `/proc/sys` (tests may point it elsewhere). */
  readonly root?: string
}

export class Sysctl extends Context.Tag("@net-perf/node-runtime/Sysctl")<Sysctl, SysctlService>() {
  static readonly layer = (config: SysctlConfig, options: SysctlOptions = {}): Layer.Layer<Sysctl> =>
    Layer.succeed(Sysctl, makeSysctl(config, options))
}

export const makeSysctl = (config: SysctlConfig, options: SysctlOptions = {}): SysctlService => {
  const root = options.root ?? "/proc/sys"

  const writeOne = (w: SysctlWrite) =>
    Effect.gen(function* () {
      const file = join(root, w.path)
      const previous = yield* Effect.tryPromise(() => readFile(file, "utf8")).pipe(
        Effect.map((s) => s.trim()),
        Effect.orElseSucceed(() => null),
      )
      if (previous !== null && sameValue(previous, w.value))
        return { ...w, previous, outcome: "unchanged" } satisfies SysctlResult
      const written = yield* Effect.either(Effect.tryPromise(() => writeFile(file, w.value)))
      if (written._tag === "Left") {
        const cause = written.left.cause
        const error = cause instanceof Error ? cause.message : String(cause)
        yield* Effect.logWarning(`sysctl ${w.key}: cannot set ${w.value} (was ${previous ?? "unreadable"}): ${error}`)
        return { ...w, previous, outcome: "failed", error } satisfies SysctlResult
      }
      yield* Effect.logInfo(`sysctl ${w.key}: ${previous ?? "?"} -> ${w.value}`)
      return { ...w, previous, outcome: "changed" } satisfies SysctlResult
    })

  const interfaces = Effect.tryPromise(() => readdir(join(root, "net/ipv4/conf"))).pipe(
    Effect.map((names) => names.filter((n) => n !== "all" && n !== "default").sort()),
    Effect.orElseSucceed(() => []),
  )

  const apply = (ifaces?: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const names = ifaces ?? (yield* interfaces)
      return yield* Effect.forEach(planSysctl(config, names), writeOne)
    })

  const applyInterface = (iface: string) => Effect.forEach(planSysctl({ ...config, global: {} }, [iface]), writeOne)

  return { config, interfaces, apply, applyInterface }
}
