/** @net-perf/simulator */

// Twin analysis (pure): next-hop graphs, loops/blackholes, convergence, flaps, oracle paths.
export * from "./analysis/NextHopGraph.js"
export * from "./analysis/Oracle.js"
export * from "./analysis/Timeline.js"
// Userspace link emulator (impairment backend of the twin): everything under `LinkEmu`, main entry points flat.
export * as LinkEmu from "./linkemu/index.js"
export {
  connectLinkEmuClient,
  detectImpairmentBackend,
  type ImpairmentBackendReport,
  type LinkEmuClient,
  LinkEmulator,
  type LinkEmulatorService,
  makeLinkEmulator,
  spawnLinkEmulator,
} from "./linkemu/index.js"
// Model simulator (pure): many engines under simulated time; everything under `Model`, main entry points flat.
export * as Model from "./model/index.js"
export {
  type RunConfig as ModelRunConfig,
  type RunReport as ModelRunReport,
  runModel,
  runScenario as runModelScenario,
  type Scenario as ModelScenario,
} from "./model/index.js"
// HTML reports (H10): twin and model-simulator reports as self-contained pages with inline SVG charts.
export {
  type ModelBenchDocument,
  type ModelReportInput,
  type ModelRunsInput,
  renderModelReportHtml,
  renderTwinComparisonHtml,
  renderTwinReportHtml,
  type TwinComparisonInput,
  type TwinHtmlOptions,
  type TwinReportInput,
  type TwinTimeline,
} from "./report-html/index.js"
// Digital twin: everything under `NetLab`; the main entry points flat (see README "Digital twin").
export * as NetLab from "./twin/index.js"
export {
  type EventConvergence as TwinEventConvergence,
  listRuns,
  loadScenario,
  makeTwin,
  parseScenarioText,
  residueOf,
  runOnTwin,
  runScenario,
  type Scenario as TwinScenario,
  type Twin,
  type TwinOptions,
  type TwinReport,
  teardownRun,
} from "./twin/index.js"
