/** @net-perf/cli */
export {}
