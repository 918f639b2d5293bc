/** @net-perf/simulator */
export {}
