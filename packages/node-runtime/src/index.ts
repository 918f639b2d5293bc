/** @net-perf/node-runtime */
export {}
