/** The `net-perf-mesh` command and its I/O helpers (the generator itself is `MeshGen` in @net-perf/engine). */
export * from "./Command.js"
export * from "./Keys.js"
export * from "./MeshGenCli.js"
