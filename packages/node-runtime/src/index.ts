/** @net-perf/node-runtime */
export {}
// Appended by H9 (perfc/perfe): the management API's generated client/server and message types.
export * as Management from "./gen/netperf/management/v1/management.js"
export { MeasurementMetrics } from "./metrics/Metrics.js"
