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
 */

/** Node/V8 flags for the daemon (put them before the script: `node ...daemonNodeFlags net-perf.js`). */
export const daemonNodeFlags: ReadonlyArray<string> = ["--min-semi-space-size=8"]

const flagName = (flag: string) => flag.split("=", 1)[0]

/**
 * The daemon flags absent from `execArgv` (`process.execArgv`). A flag given with another value
 * (`--min-semi-space-size=16`) counts as present: the operator chose it.
 */
export const missingNodeFlags = (execArgv: ReadonlyArray<string>): ReadonlyArray<string> =>
  daemonNodeFlags.filter((f) => !execArgv.some((a) => flagName(a) === flagName(f)))
