/** net-perf-analyse: per-link latency estimates from pathping measurements. */
export * from "./Analyse.js"
