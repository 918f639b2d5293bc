/**
 * Control-plane metrics (routes, link state, BIRD, kernel), registered on the measurement plane's
 * registry so one `/metrics` page shows the whole daemon. Base units, counters end in `_total`.
 */
import { Counter, Gauge, type Registry } from "prom-client"

export const makeControlMetrics = (registry: Registry) => {
  const registers = [registry]
  return {
    routeSwitches: new Counter({
      name: "netperf_route_switches_total",
      help: "Next-hop changes of managed routes, per destination site",
      labelNames: ["destination"],
      registers,
    }),
    routeAlgorithm: new Gauge({
      name: "netperf_route_info",
      help: "1 for the algorithm currently producing the route to a destination (0 = none could)",
      labelNames: ["destination", "algorithm", "next_hop"],
      registers,
    }),
    routeCost: new Gauge({
      name: "netperf_route_cost",
      help: "Cost (ms-equivalent) of the route in force per destination; +Inf when none",
      labelNames: ["destination"],
      registers,
    }),
    fallbacks: new Counter({
      name: "netperf_route_fallbacks_total",
      help: "Decisions where the configured algorithm could not route a destination and a fallback did",
      labelNames: ["algorithm"],
      registers,
    }),
    decisions: new Counter({ name: "netperf_decisions_total", help: "Routing decisions computed", registers }),
    managedRoutes: new Gauge({
      name: "netperf_kernel_managed_routes",
      help: "Protocol-201 routes in the kernel after the last reconcile",
      registers,
    }),
    kernelOps: new Counter({
      name: "netperf_kernel_route_operations_total",
      help: "Route add/replace/delete operations sent to the kernel",
      labelNames: ["op", "result"],
      registers,
    }),
    linkStateAge: new Gauge({
      name: "netperf_linkstate_age_seconds",
      help: "Time since the last link-state message from each origin",
      labelNames: ["origin"],
      registers,
    }),
    linkStateMessages: new Counter({
      name: "netperf_linkstate_messages_total",
      help: "Link-state messages by outcome (accepted, duplicate, invalid = failed validation, undecodable = not protobuf, sent)",
      labelNames: ["outcome"],
      registers,
    }),
    peerConnected: new Gauge({
      name: "netperf_linkstate_peer_connected",
      help: "1 when the link-state stream to a peer is open",
      labelNames: ["peer"],
      registers,
    }),
    birdUp: new Gauge({ name: "netperf_bird_up", help: "1 when BIRD's control socket answers", registers }),
    bgpPaths: new Gauge({ name: "netperf_bgp_paths", help: "BGP paths read from BIRD", registers }),
    birdFailures: new Counter({
      name: "netperf_bird_failures_total",
      help: "BIRD outages by the error that started them (BirdUnavailable, BirdTimeout, BirdParseError = malformed reply, BirdReplyError)",
      labelNames: ["error"],
      registers,
    }),
    linkStatePeerLive: new Gauge({
      name: "netperf_linkstate_peer_live",
      help: "1 while an origin's link state is younger than routing.linkStateMaxAgeMillis, 0 once it aged out",
      labelNames: ["origin"],
      registers,
    }),
    peerStreamChanges: new Counter({
      name: "netperf_linkstate_peer_stream_changes_total",
      help: "Link-state streams to a peer opened (state=open) or lost (state=lost)",
      labelNames: ["peer", "state"],
      registers,
    }),
    tunnelStateChanges: new Counter({
      name: "netperf_tunnel_state_changes_total",
      help: "Echo failure-detector verdict changes per tunnel (state = the new verdict: up, dead, unknown)",
      labelNames: ["tunnel", "state"],
      registers,
    }),
    routesFoundAtStart: new Gauge({
      name: "netperf_kernel_routes_found_at_start",
      help: "Protocol-201 routes already in the kernel when the daemon started (left by a crash); the first plan reconciles them",
      registers,
    }),
    startupReconciled: new Gauge({
      name: "netperf_kernel_startup_reconciled",
      help: "1 once the first plan has been applied over the routes found at start",
      registers,
    }),
  }
}
export type ControlMetrics = ReturnType<typeof makeControlMetrics>
