/** @net-perf/simulator */
export {}
// Twin analysis (pure): next-hop graphs, loops/blackholes, convergence, flaps, oracle paths.
export * from "./analysis/NextHopGraph.js"
export * from "./analysis/Oracle.js"
export * from "./analysis/Timeline.js"
