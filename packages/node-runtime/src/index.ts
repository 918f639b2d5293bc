/** @net-perf/node-runtime */
// Appended by H9 (perfc/perfe): the management API's generated client/server and message types.

export { rttSample } from "@net-perf/engine"
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
  ProtocolState,
  parseProtocols,
  parseRoutes,
  toBgpPaths,
} from "./bird/Replies.js"
export { type FakeBird, type FakeBirdOptions, type FakeReply, makeFakeBird } from "./bird/testing/FakeBird.js"
export {
  BadCommand,
  type ControlCommand,
  type ControlHandler,
  type ControlSocketConfig,
  ControlSocketFailed,
  defaultControlSocketConfig,
  parseControlLine,
  serveControlSocket,
} from "./control/ControlSocket.js"
export { decodeConfig } from "./daemon/Config.js"
export { makeControlMetrics } from "./daemon/ControlMetrics.js"
export { daemonNodeFlags } from "./daemon/NodeFlags.js"
// Appended by H6 (measurement plane: discovery, control socket, probes, probe servers, metrics).
export {
  type Addressing,
  type AddressRole,
  DEFAULT_ADDRESS_TEMPLATE,
  templateAddressing,
  tunnelEndpoints,
} from "./discovery/Addressing.js"
export {
  type DiscoveredTunnel,
  Discovery,
  type DiscoveryConfig,
  DiscoveryLive,
  type DiscoveryService,
  defaultDiscoveryConfig,
  InvalidTunnelName,
  makeDiscovery,
  makeTunnelNameParser,
  reconcile,
} from "./discovery/Discovery.js"
export {
  type CommandConfig,
  CommandFailed,
  defaultCommandConfig,
  type LiveLink,
  monitorLinks,
  OutputUnparsable,
  parseIpAddrOutput,
  parseIpOutput,
  parseWgDump,
  readLiveLinks,
  readWgState,
  type WgInterfaceState,
  type WgPeerState,
} from "./discovery/LiveLinks.js"
export {
  loadWgConfs,
  parseWgConf,
  type WgConf,
  WgConfDirUnreadable,
  WgConfError,
  WgKey,
  type WgPeerConf,
} from "./discovery/WgConf.js"
export * as Management from "./gen/netperf/management/v1/management.js"
// Appended by the pathping-API helper: MeasureService.PathPing (server handler and generated client).
export * as Measure from "./gen/netperf/measure/v1/measure.js"
export {
  type BatchResult,
  Ip,
  IpCommandError,
  type IpOptions,
  IpOutputError,
  type IpService,
  makeIp,
  makeIpScoped,
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
export { type GrpcTlsCredentials, GrpcTlsError, type GrpcTlsFiles, loadGrpcTls } from "./linkstate/Tls.js"
export { makeCa, makeLeaf, type PkiCa, PkiFailed, type PkiLeaf } from "./linkstate/testing/ThrowawayPki.js"
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
export {
  DiscoveryFromPlane,
  decodeMeasurementPlaneConfig,
  type HealthChange,
  MeasurementPlane,
  MeasurementPlaneConfig,
  type MeasurementPlaneConfigInput,
  MeasurementPlaneLive,
  type MeasurementPlaneService,
  makeMeasurementPlane,
  type PlaneStatus,
  type TunnelStatus,
} from "./MeasurementPlane.js"
// Appended by H9: the daemon's management handler (perfc/perfe end-to-end tests), control-plane
// metrics and config decoder (observability checks against the real registry and schema).
export { type ManagementSource, makeManagementHandler, tunnelSnapshotsOf } from "./management/ManagementServer.js"
export {
  callerOf,
  decodePathPingRequest,
  defaultPathPingLimits,
  InvalidPathPingRequest,
  type MeasureHandlerOptions,
  makeMeasureHandler,
  type PathPingLimits,
  type PathPingOrder,
  PathPingRequestWire,
  type PathPingSource,
  pathPingBounds,
  pathResultToWire,
  planePathPingSource,
} from "./management/MeasureServer.js"
export { counterChild, gaugeChild, histogramChild, MeasurementMetrics, tunnelLabelValues } from "./metrics/Metrics.js"
export {
  defaultMetricsServerConfig,
  HttpListenFailed,
  type MetricsServerConfig,
  serveMetrics,
} from "./metrics/MetricsServer.js"
// Appended by helper B (optional Prometheus/VictoriaMetrics metrics-store source).
export {
  type FallbackPlan,
  type FallbackRow,
  type GraphRows,
  makeFallbackApplier,
  planFallback,
} from "./metricsstore/Fallback.js"
export {
  type MetricsStoreFallbackOptions,
  type MetricsStoreSettings,
  runMetricsStoreFallback,
} from "./metricsstore/MetricsStore.js"
export {
  linkStatsFromSeries,
  type MetricsStoreSource,
  makeMetricsStoreMetrics,
  makeMetricsStoreSource,
  type StoreSnapshot,
  tunnelSampleTimesQuery,
  tunnelValuesQuery,
} from "./metricsstore/MetricsStoreSource.js"
export {
  decodeQueryResponse,
  type InstantSeries,
  MetricsStoreError,
  type MetricsStoreErrorReason,
  makePromClient,
  type PromClient,
} from "./metricsstore/PromApi.js"
export {
  PrometheusFailed,
  type PrometheusHandle,
  type PrometheusOptions,
  prometheusConfig,
  startPrometheus,
} from "./metricsstore/PrometheusProcess.js"
export {
  describeEchoVerdict,
  type EchoBurstCause,
  type EchoHealth,
  type EchoProberStats,
  type EchoStatsReader,
  type EchoVerdictDetail,
  runEchoProber,
} from "./probes/EchoProber.js"
export { PingFailed, PingLine, parsePingLine, pingArgv, runIcmpProber } from "./probes/IcmpProber.js"
export { LossTestFailed, recordLossSample, runLossTest, runLossTester } from "./probes/LossTester.js"
export {
  idleTrigger,
  type LossTrigger,
  type LossTriggerView,
  onBurstDone,
  onDue,
  onSuspicion,
  runLossTrigger,
  type TriggerState,
} from "./probes/LossTrigger.js"
export {
  type HopResult,
  InvalidPath,
  measurePath,
  type PathFamily,
  PathRelayUnavailable,
  type PathResult,
  turnBackLoop,
} from "./probes/PathPinger.js"
export {
  EchoProbeConfig,
  IcmpProbeConfig,
  LossTestConfig,
  LossTriggerConfig,
  PathPingConfig,
  ProbesConfig,
  TcpProbeConfig,
} from "./probes/ProbeConfig.js"
export { runTcpProber, tcpConnectRtt } from "./probes/TcpProber.js"
export { InvalidPrefix, makeAllowList, makeRateLimiter, type RateLimitConfig } from "./servers/Guard.js"
export { decode5121, decodePath, MalformedPacket, type Packet5121, type PathPacket } from "./servers/Packets.js"
export { makePathRelay, type PathRelay, type PathRelayConfig } from "./servers/PathRelay.js"
export { defaultProbeServerConfig, type ProbeServerConfig, serveProbeServer } from "./servers/ProbeServer.js"
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
