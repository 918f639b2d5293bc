// Sums a .cpuprofile's busy samples (idle left out) by function (self), by file (self) and by
// function (inclusive: every sample whose stack holds it, once), after the first `skip` seconds.
//   node packages/node-runtime/bench/cpuprofile-summary.mjs <file.cpuprofile> [skipSeconds=0] [top=40]
import { readFileSync } from "node:fs"

const [file, skipSeconds = "0", top = "40"] = process.argv.slice(2)
if (file === undefined || file === "--help") {
  console.log("usage: node cpuprofile-summary.mjs <file.cpuprofile> [skipSeconds=0] [top=40]")
  process.exit(file === undefined ? 1 : 0)
}
const profile = JSON.parse(readFileSync(file, "utf8"))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const name = (n) =>
  `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`
const fileOf = (n) => n.callFrame.url.split("/").slice(-3).join("/") || n.callFrame.functionName
const self = new Map()
const files = new Map()
const inclusive = new Map()
const add = (m, k) => m.set(k, (m.get(k) ?? 0) + 1)
const skipUs = Number(skipSeconds) * 1e6
let t = profile.startTime
let busy = 0
let idle = 0
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]
  if (t - profile.startTime < skipUs) continue
  const leaf = byId.get(profile.samples[i])
  if (leaf.callFrame.functionName === "(idle)") {
    idle++
    continue
  }
  busy++
  add(self, name(leaf))
  add(files, fileOf(leaf))
  const seen = new Set()
  for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
    const k = name(byId.get(id))
    if (!seen.has(k)) add(inclusive, k)
    seen.add(k)
  }
}
const windowSeconds = (t - profile.startTime - skipUs) / 1e6
console.log(`window ${windowSeconds.toFixed(1)} s: ${busy} busy samples, ${idle} idle`)
for (const [title, m] of [
  ["self by function", self],
  ["self by file", files],
  ["inclusive", inclusive],
]) {
  console.log(`\n== ${title}`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(top)))
    console.log(`${((100 * v) / busy).toFixed(1).padStart(5)} % ${String(v).padStart(6)}  ${k}`)
}
