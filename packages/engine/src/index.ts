/** @net-perf/engine — the pure routing engine: samples and BGP paths in, a routing plan out. */
export * from "./Domain.js"
export * from "./Cost.js"
export * from "./Stability.js"
export * from "./Aggregation.js"
export * from "./TunnelChoice.js"
export * as MeshGen from "./meshgen/index.js"
export * from "./Planner.js"
