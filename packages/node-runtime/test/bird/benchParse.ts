/**
 * Benchmark (a script, not a test): parse cost of `show route all` for synthetic BIRD 2 tables
 * of N prefixes × 2 paths, in-process and end-to-end through a fake BIRD on a unix socket.
 * Run: `npx vite-node packages/node-runtime/test/bird/benchParse.ts [--json]`.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { makeBird2 } from "../../src/bird/Bird.js"
import { parseRawReplies } from "../../src/bird/Protocol.js"
import { parseRoutes, toBgpPaths } from "../../src/bird/Replies.js"
import { makeFakeBird } from "../../src/bird/testing/FakeBird.js"

const table = (n: number) => {
  let out = "1007-Table master4:\n"
  for (let i = 0; i < n; i++) {
    const prefix = `10.${(i >> 8) & 255}.${i & 255}.0/24`
    for (const [k, path] of [
      [0, "64514"],
      [1, "64514 64514 64600"],
    ] as const) {
      out += `1007-${k === 0 ? prefix.padEnd(20) : " ".repeat(20)} unicast [l${k + 1}v4 14:55:08.968]${k === 0 ? " *" : ""} (100) [AS64514i]\n`
      out += ` \tvia 10.99.0.${2 + 4 * k} on wg1.2_v${k === 0 ? 4 : 6}\n1008-\tType: BGP univ\n1012-\tBGP.origin: IGP\n`
      out += ` \tBGP.as_path: ${path}\n \tBGP.next_hop: 10.99.0.${2 + 4 * k}\n \tBGP.local_pref: 100\n`
    }
  }
  return `${out}0000 \n`
}

const median = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const run = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "np-bench-"))
  const results: Array<Record<string, number>> = []
  try {
    for (const n of [100, 1000, 10000]) {
      const raw = table(n)
      const inProcess: Array<number> = []
      for (let r = 0; r < 7; r++) {
        const t0 = performance.now()
        const reply = parseRawReplies(raw).replies[0]!
        const routes = parseRoutes(reply, "show route all")
        if (routes._tag === "Left" || toBgpPaths(routes.right).length !== 2 * n) throw new Error("bad parse")
        inProcess.push(performance.now() - t0)
      }
      const socketMs = yield* Effect.scoped(
        Effect.gen(function* () {
          const f = yield* makeFakeBird({ path: join(dir, `b${n}.ctl`), replies: { "show route all": raw } })
          const bird = yield* makeBird2({ socket: f.path, requestTimeout: "60 seconds" })
          const times: Array<number> = []
          for (let r = 0; r < 5; r++) {
            const t0 = performance.now()
            const paths = yield* bird.bgpPaths
            if (paths.length !== 2 * n) throw new Error("bad socket parse")
            times.push(performance.now() - t0)
          }
          return median(times)
        }),
      )
      results.push({ prefixes: n, paths: 2 * n, replyBytes: raw.length, parseMs: median(inProcess), socketMs })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return results
})

const results = await Effect.runPromise(run)
if (process.argv.includes("--json")) console.log(JSON.stringify(results))
else
  for (const r of results)
    console.log(
      `${r.prefixes} prefixes (${r.paths} paths, ${(r.replyBytes! / 1024).toFixed(0)} KiB): parse ${r.parseMs!.toFixed(1)} ms median of 7, via socket ${r.socketMs!.toFixed(1)} ms median of 5`,
    )
