/** @net-perf/cli */

// perfc, perfe and the path analyser (H9).
export * as Analyse from "./analyse/index.js"
export * as Perfc from "./perfc/index.js"
export * as Perfe from "./perfe/index.js"
