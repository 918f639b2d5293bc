/**
 * Running the outside world's tools (ip, wg, wireguard-go, bird, birdc) for the twin, and the
 * per-site isolation wrapper. wireguard-go keeps its control sockets in /var/run/wireguard,
 * which every network namespace shares; so each site's processes run through
 * `unshare --mount --propagation private` + a bind mount of the site's own folder over
 * /var/run/wireguard + `exec ip netns exec <ns> …`. A site then sees only its own tunnels.
 */
import { access, constants } from "node:fs/promises"
import { Data, Effect } from "effect"
import { execa } from "execa"

export class CommandFailed extends Data.TaggedError("CommandFailed")<{
  readonly command: string
  readonly stderr: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `command failed: ${this.command}${this.stderr === "" ? "" : `\n${this.stderr.trim()}`}`
  }
}

export class MissingPackages extends Data.TaggedError("MissingPackages")<{
  readonly missing: ReadonlyArray<{ command: string; debianPackage: string }>
}> {
  override get message(): string {
    return `missing tools for the twin: ${this.missing
      .map((m) => `${m.command} (Debian package ${m.debianPackage})`)
      .join(", ")}. Install them with: sudo bash scripts/setup.sh`
  }
}

export class NotRoot extends Data.TaggedError("NotRoot")<{ readonly what: string }> {
  override get message(): string {
    return `${this.what} needs root (network namespaces, WireGuard devices)`
  }
}

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)
export const showCommand = (argv: ReadonlyArray<string>): string => argv.map(quote).join(" ")

/** Runs argv to completion; stdout on success, CommandFailed (with stderr) otherwise. */
export const run = (
  argv: ReadonlyArray<string>,
  options: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Effect.Effect<string, CommandFailed> =>
  Effect.tryPromise({
    try: async (signal) => {
      const [file, ...args] = argv
      const r = await execa(file as string, args, {
        cancelSignal: signal,
        // execa's exit hook (signal-exit) re-raises SIGTERM when it counts as many of its own
        // subscribers as there are listeners (two children running = Effect's handler looks
        // like its own), killing us before the scope's teardown; our scopes stop children.
        cleanup: false,
        timeout: options.timeoutMs ?? 60_000,
        ...(options.input === undefined ? { stdin: "ignore" as const } : { input: options.input }),
        ...(options.env === undefined ? {} : { env: options.env }),
      })
      return r.stdout
    },
    catch: (cause) =>
      new CommandFailed({
        command: showCommand(argv),
        stderr: String((cause as { stderr?: unknown }).stderr ?? ""),
        cause,
      }),
  })

/** Shell script the wrapper runs: $0 = site wireguard folder, $1 = namespace, rest = command. */
const wrapScript =
  'mkdir -p /var/run/wireguard && mount --bind "$0" /var/run/wireguard && ns=$1 && shift && exec ip netns exec "$ns" "$@"'

/** argv that runs `command` inside site namespace `ns` with `wgDir` as its /var/run/wireguard. */
export const inSite = (ns: string, wgDir: string, command: ReadonlyArray<string>): ReadonlyArray<string> => [
  "unshare",
  "--mount",
  "--propagation",
  "private",
  "sh",
  "-c",
  wrapScript,
  wgDir,
  ns,
  ...command,
]

/** argv that runs `command` in namespace `ns` (no wireguard isolation needed). */
export const inNs = (ns: string, command: ReadonlyArray<string>): ReadonlyArray<string> => [
  "ip",
  "netns",
  "exec",
  ns,
  ...command,
]

const required: ReadonlyArray<{ command: string; debianPackage: string }> = [
  { command: "ip", debianPackage: "iproute2" },
  { command: "wg", debianPackage: "wireguard-tools" },
  { command: "wireguard-go", debianPackage: "wireguard-go" },
  { command: "bird", debianPackage: "bird2" },
  { command: "birdc", debianPackage: "bird2" },
  { command: "nft", debianPackage: "nftables" },
  { command: "unshare", debianPackage: "util-linux" },
  { command: "ping", debianPackage: "iputils-ping" },
]

const onPath = async (command: string): Promise<boolean> => {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      await access(`${dir}/${command}`, constants.X_OK)
      return true
    } catch {}
  }
  return false
}

/** Fails with MissingPackages naming every absent tool and scripts/setup.sh. */
export const checkPrerequisites: Effect.Effect<void, MissingPackages> = Effect.gen(function* () {
  const missing: Array<{ command: string; debianPackage: string }> = []
  for (const r of required) if (!(yield* Effect.promise(() => onPath(r.command)))) missing.push(r)
  if (missing.length > 0) return yield* new MissingPackages({ missing })
})

export const requireRoot = (what: string): Effect.Effect<void, NotRoot> =>
  process.getuid?.() === 0 ? Effect.void : Effect.fail(new NotRoot({ what }))
