/**
 * V8 flags the daemon's process runs with, and how to tell whether it got them.
 *
 * Why: at ≈ 0.5 MB/s of short-lived garbage (datagram buffers, samples, timers: the measurement
 * plane at 100 tunnels) V8's memory reducer shrinks the young generation to its 1 MB floor, so a
 * scavenge runs every 1–2 s and objects that live a few seconds (an echo's in-flight state, a
 * ping line's sample) survive two of them and are promoted, which later costs mark-compacts.
 * A floor of 8 MB per semi-space makes a scavenge every ≈ 15 s at that rate, so such objects die
 * young; it costs ≈ 14 MB more RSS (both semi-spaces, once touched). README "Benches", session 6.
 *
 * The flag must be on node's command line: `v8.setFlagsFromString` after start-up does not resize
 * the young generation (checked: no effect), and node refuses `--min-semi-space-size` in
 * `NODE_OPTIONS`. So `bin/net-perf.ts` carries it in its `#!/usr/bin/env -S node …` line (the
 * installed `net-perf` binary, the systemd unit), and whoever starts the script with an explicit
 * `node` (the twin, tests, the overhead bench) passes `daemonNodeFlags` before the script.
 *
 * `--no-memory-reducer --heap-growing-percent=25` (session 8): V8's memory reducer, seeing an
 * "idle" process (it allocates little), ran a full mark-compact every ≈ 107 s at 100 tunnels
 * (0.1–0.7 s each, on the main thread and V8's helper threads, and the re-optimizations after it):
 * ≈ 0.1 % of a core on average (paired 5-min windows), and the main source of the plane's
 * window-to-window swing. Without it the old generation is collected when it reaches 1.25 × its
 * size after the last mark-compact (a fixed growing factor: V8's own would let it grow up to 4 ×,
 * and RSS with it: 131 → 146 MB in 8 min with the reducer off alone), i.e. every ≈ 5 min at the
 * plane's ≈ 3 MB/min of promoted garbage; RSS ≈ +15 MB (130–132 MB at 100 tunnels). README
 * "CPU of the plane, session 8".
 */

/** Node/V8 flags for the daemon (put them before the script: `node ...daemonNodeFlags net-perf.js`). */
export const daemonNodeFlags: ReadonlyArray<string> = [
  "--min-semi-space-size=8",
  "--no-memory-reducer",
  "--heap-growing-percent=25",
]

const flagName = (flag: string) => flag.split("=", 1)[0]

/**
 * The daemon flags absent from `execArgv` (`process.execArgv`). A flag given with another value
 * (`--min-semi-space-size=16`) counts as present: the operator chose it.
 */
export const missingNodeFlags = (execArgv: ReadonlyArray<string>): ReadonlyArray<string> =>
  daemonNodeFlags.filter((f) => !execArgv.some((a) => flagName(a) === flagName(f)))
