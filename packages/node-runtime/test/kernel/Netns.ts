/**
 * Test support: network namespaces, veths and child processes as scoped resources, so every
 * exit path (success, failure, interruption) removes what a test created. Names carry a
 * per-run random prefix (`np<hex>`) and stay within the 15-character interface limit.
 */
import { randomBytes } from "node:crypto"
import { connect } from "node:net"
import { Effect } from "effect"
import { execa } from "execa"

/** What the tests need of a child process (execa's ResultPromise is too generic to name). */
export type Child = {
  readonly exitCode: number | null
  kill: (signal?: NodeJS.Signals) => boolean
} & PromiseLike<unknown>

export const isRoot = process.getuid?.() === 0

/** A fresh short prefix for one test run, e.g. `np3fa9`. */
export const runPrefix = (): string => `np${randomBytes(2).toString("hex")}`

/** Runs a command, failing the Effect with its stderr when it exits non-zero. */
export const sh = (file: string, args: ReadonlyArray<string>, input?: string) =>
  Effect.tryPromise({
    try: () => execa(file, [...args], input === undefined ? {} : { input }),
    catch: (cause) =>
      new Error(`${file} ${args.join(" ")} failed: ${String((cause as { stderr?: string }).stderr ?? cause)}`),
  }).pipe(Effect.map((r) => r.stdout))

/** Runs a command inside a namespace. */
export const nsExec = (ns: string, file: string, args: ReadonlyArray<string>) =>
  sh("ip", ["netns", "exec", ns, file, ...args])

/** A namespace with loopback up, deleted when the scope closes. */
export const netns = (name: string) =>
  Effect.acquireRelease(
    sh("ip", ["netns", "add", name]).pipe(
      Effect.zipRight(sh("ip", ["-n", name, "link", "set", "lo", "up"])),
      Effect.as(name),
    ),
    () => sh("ip", ["netns", "del", name]).pipe(Effect.ignore),
  )

/** A veth pair between two namespaces (names are per-namespace, so short fixed names are fine). */
export const veth = (nsA: string, ifA: string, nsB: string, ifB: string) =>
  sh("ip", ["link", "add", "name", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB]).pipe(
    Effect.zipRight(sh("ip", ["-n", nsA, "link", "set", ifA, "up"])),
    Effect.zipRight(sh("ip", ["-n", nsB, "link", "set", ifB, "up"])),
  )

export const addAddress = (ns: string, dev: string, cidr: string) =>
  sh("ip", ["-n", ns, "addr", "add", cidr, "dev", dev, ...(cidr.includes(":") ? ["nodad"] : [])])

/**
 * A child process started in a namespace, terminated (SIGTERM, then SIGKILL after 3 s) and
 * awaited when the scope closes.
 */
export const spawnIn = (ns: string, file: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child: Child = execa("ip", ["netns", "exec", ns, file, ...args], {
        reject: false,
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      })
      return child
    }),
    (child) => stopProcess(child),
  )

export const stopProcess = (child: Child) =>
  Effect.promise(async () => {
    if (child.exitCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000)
    await child
    clearTimeout(timer)
  })

/** Resolves once a unix socket accepts a connection (polled every 50 ms, up to `timeoutMillis`). */
export const waitForUnixSocket = (path: string, timeoutMillis = 5000) =>
  Effect.tryPromise({
    try: async () => {
      const deadline = Date.now() + timeoutMillis
      for (;;) {
        const ok = await new Promise<boolean>((resolve) => {
          const s = connect(path)
          s.once("connect", () => {
            s.destroy()
            resolve(true)
          })
          s.once("error", () => resolve(false))
        })
        if (ok) return
        if (Date.now() > deadline) throw new Error(`socket ${path} not accepting after ${timeoutMillis} ms`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    catch: (cause) => (cause instanceof Error ? cause : new Error(String(cause))),
  })
