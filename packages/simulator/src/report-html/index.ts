/** HTML reports: twin and model-simulator runs as self-contained pages with server-rendered SVG charts. */

export type { TwinTimeline } from "../twin/Report.js"
export {
  type ModelBenchDocument,
  type ModelBenchRow,
  type ModelReportInput,
  type ModelRunReportJson,
  type ModelRunsInput,
  renderModelReportHtml,
} from "./ModelHtml.js"
export {
  renderTwinComparisonHtml,
  renderTwinReportHtml,
  type TwinComparisonInput,
  type TwinHtmlOptions,
  type TwinReportInput,
} from "./TwinHtml.js"
