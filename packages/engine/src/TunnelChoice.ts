/**
 * Per peer, which underlay family (IPv4 or IPv6 tunnel) carries the traffic.
 *
 * Decision a reader must know: the same hysteresis as route choice (`Stability.decide`), so a
 * family is switched only for a clear, lasting gain, and a dead family is left at once. Ties are
 * deterministic: the incumbent, then family 4 (the original broke ties by random map order).
 * A peer with a single tunnel simply uses it.
 */
import { type CostWeights, linkCost } from "./Cost.js"
import type { Family, LinkStats, SiteId } from "./Domain.js"
import { type Choice, type Decision, decide, defaultStabilityConfig, type StabilityConfig } from "./Stability.js"

export interface TunnelChoiceOptions {
  readonly stability?: StabilityConfig
  readonly weights?: CostWeights
  /** With `nowMillis` of the decision: links sampled longer ago than this count as dead. */
  readonly staleAfterMillis?: number
}

export interface TunnelDecision extends Decision<Family> {
  readonly peer: SiteId
  /** Cost of each family's tunnel now (+Infinity when dead or absent). */
  readonly costByFamily: { readonly 4: number; readonly 6: number }
}

const familyOrder: ReadonlyArray<Family> = [4, 6]

/**
 * Chooses the family for one peer from the stats of its tunnels (any of them may be missing).
 * `previous` is the last decision's choice for this peer.
 */
export const chooseTunnel = (
  peer: SiteId,
  previous: Choice<Family> | undefined,
  links: { readonly 4?: LinkStats | undefined; readonly 6?: LinkStats | undefined },
  nowMillis: number,
  options: TunnelChoiceOptions = {},
): TunnelDecision => {
  const costOptions = {
    ...(options.weights === undefined ? {} : { weights: options.weights }),
    ...(options.staleAfterMillis === undefined ? {} : { nowMillis, staleAfterMillis: options.staleAfterMillis }),
  }
  const costOf = (s: LinkStats | undefined) => (s === undefined ? Number.POSITIVE_INFINITY : linkCost(s, costOptions))
  const costByFamily = { 4: costOf(links[4]), 6: costOf(links[6]) }
  const candidates = familyOrder
    .filter((f) => links[f] !== undefined)
    .map((f) => ({ key: f, cost: costByFamily[f], noiseMs: links[f]?.jitterMs ?? 0 }))
  const decision = decide(
    previous,
    candidates,
    nowMillis,
    options.stability ?? defaultStabilityConfig,
    (a, b) => a === b,
  )
  return { ...decision, peer, costByFamily }
}

/**
 * Family decisions for every peer of one node, from that node's tunnel stats (tunnels whose
 * `local` differs from `local` are ignored). Peers in `previous` without any tunnel left are
 * reported with reason "no-candidates".
 */
export const chooseTunnels = (
  local: SiteId,
  previous: ReadonlyMap<SiteId, Choice<Family>>,
  stats: Iterable<LinkStats>,
  nowMillis: number,
  options: TunnelChoiceOptions = {},
): ReadonlyMap<SiteId, TunnelDecision> => {
  const byPeer = new Map<SiteId, { 4?: LinkStats; 6?: LinkStats }>()
  for (const s of stats) {
    if (s.tunnel.local !== local) continue
    const entry = byPeer.get(s.tunnel.remote) ?? {}
    entry[s.tunnel.family] = s
    byPeer.set(s.tunnel.remote, entry)
  }
  for (const peer of previous.keys()) if (!byPeer.has(peer)) byPeer.set(peer, {})
  const out = new Map<SiteId, TunnelDecision>()
  for (const peer of [...byPeer.keys()].sort((a, b) => a - b)) {
    out.set(peer, chooseTunnel(peer, previous.get(peer), byPeer.get(peer) ?? {}, nowMillis, options))
  }
  return out
}
