/** @net-perf/node-runtime */
export {}
// Appended by H9 (perfc/perfe): the management API's generated client/server and message types.
export * as Management from "./gen/netperf/management/v1/management.js"
export { MeasurementMetrics } from "./metrics/Metrics.js"
// Appended by H7 (BIRD client, kernel route installer, sysctl).
export { Bird, BirdConfig, type BirdOptions, type BirdService, makeBird1, makeBird2 } from "./bird/Bird.js"
export { type BirdSocket, type BirdSocketOptions, makeBirdSocket } from "./bird/BirdSocket.js"
export { type BirdTableEvent, watchBgpPaths } from "./bird/BirdWatch.js"
export { type BirdError, BirdParseError, BirdReplyError, BirdTimeout, BirdUnavailable } from "./bird/Errors.js"
export { type BirdReply, parseRawReplies, type ReplyEntry } from "./bird/Protocol.js"
export {
  BirdNextHop,
  BirdProtocol,
  BirdRoute,
  isEstablished,
  parseProtocols,
  parseRoutes,
  ProtocolState,
  toBgpPaths,
} from "./bird/Replies.js"
export { type FakeBird, type FakeBirdOptions, type FakeReply, makeFakeBird } from "./bird/testing/FakeBird.js"
export {
  type BatchResult,
  Ip,
  IpCommandError,
  type IpOptions,
  IpOutputError,
  type IpService,
  makeIp,
} from "./kernel/Ip.js"
export { canonicalIpv6, isUsableLink, normalisePrefix, normaliseRoute } from "./kernel/KernelTable.js"
export {
  installerOptionsFromConfig,
  makeRouteInstaller,
  type ReconcileReport,
  type RefusedRoute,
  RouteInstaller,
  RouteInstallerConfig,
  type RouteInstallerError,
  type RouteInstallerOptions,
  type RouteInstallerService,
  watchdog as routeWatchdog,
} from "./kernel/RouteInstaller.js"
export {
  defaultGlobal as defaultSysctlGlobal,
  defaultInterfaceRules as defaultSysctlInterfaceRules,
  makeSysctl,
  planSysctl,
  Sysctl,
  SysctlConfig,
  type SysctlOptions,
  type SysctlResult,
  SysctlRule,
  type SysctlService,
  type SysctlWrite,
} from "./sysctl/Sysctl.js"
// Appended by H9: the daemon's management handler (perfc/perfe end-to-end tests), control-plane
// metrics and config decoder (observability checks against the real registry and schema).
export { type ManagementSource, makeManagementHandler } from "./management/ManagementServer.js"
export { makeControlMetrics } from "./daemon/ControlMetrics.js"
export { decodeConfig } from "./daemon/Config.js"
// Appended by H10: the live mesh page for `GET /` on the metrics port (see README "Live page").
export {
  type LiveMeshLink,
  type LivePageOptions,
  type LiveRoute,
  type LiveStatus,
  type LiveTunnel,
  livePageHeaders,
  liveRoutesOf,
  liveStatusOf,
  renderLivePage,
} from "./livepage/index.js"
