// Main-thread CPU profile of a long-running process, for a window of its life. With `--cpu-prof`
// the overhead bench's plane (stopped by SIGTERM) wrote only its pathping relay thread's profile,
// twice in session 9, never the main thread's; this takes the profile through the inspector while
// the process runs. Load it with the overhead bench's --node-args:
//   PROF_START=95 PROF_SECONDS=120 PROF_OUT=/tmp/main.cpuprofile npx vite-node --config vitest.config.ts \
//     packages/node-runtime/bench/overhead.ts --sizes 100 --mesh --seconds 170 \
//     --node-args "--import $PWD/packages/node-runtime/bench/cpuprofile-preload.mjs"
// (the environment reaches the plane through `ip netns exec`); then cpuprofile-summary.mjs.
// PROF_START: seconds after the process starts (start-up, 100 workers and the bench's warm-up take
// ≈ 80–90 s); PROF_INTERVAL_US: sampling interval (default 1000).
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"

const startSeconds = Number(process.env.PROF_START ?? 90)
const seconds = Number(process.env.PROF_SECONDS ?? 120)
const out = process.env.PROF_OUT ?? `/tmp/main-${process.pid}.cpuprofile`
const session = new Session()
session.connect()
const post = (method, params = {}) =>
  new Promise((resolve, reject) =>
    session.post(method, params, (err, result) => (err === null ? resolve(result) : reject(err))),
  )
setTimeout(async () => {
  await post("Profiler.enable")
  await post("Profiler.setSamplingInterval", { interval: Number(process.env.PROF_INTERVAL_US ?? 1000) })
  await post("Profiler.start")
  setTimeout(async () => {
    const { profile } = await post("Profiler.stop")
    writeFileSync(out, JSON.stringify(profile))
    await post("Profiler.disable")
  }, seconds * 1000).unref()
}, startSeconds * 1000).unref()
