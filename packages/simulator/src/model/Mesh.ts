/**
 * Model meshes: sites on a plane, tunnels between them per underlay family, and the truth
 * timeline of every directed link. Latency grows with distance times a per-tunnel detour factor
 * (the Internet rarely takes the straight line), so a relay through a third site is sometimes
 * faster than the direct tunnel, which is what makes overlay routing worth doing; the two
 * families of one pair get different detours, so tunnel choice matters too.
 */
import type { Family } from "@net-perf/engine"
import type { LinkEffect, LinkProfile, LinkTimelineSpec } from "./LinkTimeline.js"
import { Prng } from "./Prng.js"

export interface MeshSpec {
  readonly sites: number
  /** full: every pair has tunnels; partial: each site links to its nearest few plus random extras. */
  readonly topology: "full" | "partial"
  /** Target mean degree of a partial mesh (ignored for full). */
  readonly degree?: number
  readonly families?: ReadonlyArray<Family>
  /** Side of the square the sites sit on, in ms of one-way delay along a straight line. */
  readonly areaMs?: number
  /** Detour factors are drawn uniformly from [1, 1 + detourSpread]. */
  readonly detourSpread?: number
  /** Base jitter (standard deviation) drawn uniformly from [0, maxJitterMs]. */
  readonly maxJitterMs?: number
  /** Background loss of every link. */
  readonly baseLossRatio?: number
}

/** One direction of one tunnel. */
export interface ModelLinkSpec {
  readonly from: number
  readonly to: number
  readonly family: Family
  readonly timeline: LinkTimelineSpec
}

export interface ModelMesh {
  readonly sites: number
  readonly families: ReadonlyArray<Family>
  /** Sorted neighbour lists: sites sharing at least one tunnel. */
  readonly neighbours: ReadonlyArray<ReadonlyArray<number>>
  readonly links: ReadonlyArray<ModelLinkSpec>
}

/** Builds a mesh from explicit undirected adjacency and per-direction profiles (tests, hand-made scenarios). */
export const meshOf = (
  sites: number,
  families: ReadonlyArray<Family>,
  links: ReadonlyArray<ModelLinkSpec>,
): ModelMesh => {
  const sets: Set<number>[] = Array.from({ length: sites }, () => new Set<number>())
  for (const l of links) {
    sets[l.from]?.add(l.to)
    sets[l.to]?.add(l.from)
  }
  return { sites, families, neighbours: sets.map((s) => [...s].sort((a, b) => a - b)), links }
}

/** Adds effects to the links matching (from, to, family?) in both directions. */
export const withEffects = (
  mesh: ModelMesh,
  a: number,
  b: number,
  family: Family | "both",
  effects: ReadonlyArray<LinkEffect>,
): ModelMesh => ({
  ...mesh,
  links: mesh.links.map((l) =>
    ((l.from === a && l.to === b) || (l.from === b && l.to === a)) && (family === "both" || l.family === family)
      ? { ...l, timeline: { ...l.timeline, effects: [...l.timeline.effects, ...effects] } }
      : l,
  ),
})

/** Adds effects to every link (e.g. a random walk everywhere). */
export const withEffectsEverywhere = (mesh: ModelMesh, effects: ReadonlyArray<LinkEffect>): ModelMesh => ({
  ...mesh,
  links: mesh.links.map((l) => ({ ...l, timeline: { ...l.timeline, effects: [...l.timeline.effects, ...effects] } })),
})

const partialEdges = (n: number, degree: number, xs: number[], ys: number[], prng: Prng): Array<[number, number]> => {
  const key = (a: number, b: number) => (a < b ? a * n + b : b * n + a)
  const edges = new Map<number, [number, number]>()
  const add = (a: number, b: number) => {
    if (a !== b) edges.set(key(a, b), a < b ? [a, b] : [b, a])
  }
  const near = Math.max(1, Math.round(degree / 3))
  for (let a = 0; a < n; a++) {
    const byDistance = Array.from({ length: n }, (_, b) => b)
      .filter((b) => b !== a)
      .sort((p, q) => Math.hypot(xs[a]! - xs[p]!, ys[a]! - ys[p]!) - Math.hypot(xs[a]! - xs[q]!, ys[a]! - ys[q]!))
    for (const b of byDistance.slice(0, near)) add(a, b)
  }
  // Random long links until the mean degree is reached (each edge adds 2 to the degree sum).
  const target = Math.min((n * (n - 1)) / 2, Math.round((n * degree) / 2))
  let guard = 0
  while (edges.size < target && guard++ < 100 * target) add(prng.int(n), prng.int(n))
  // Join components so every site can reach every other.
  const parent = Array.from({ length: n }, (_, i) => i)
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!
    return x
  }
  for (const [a, b] of edges.values()) parent[find(a)] = find(b)
  for (let a = 1; a < n; a++)
    if (find(a) !== find(0)) {
      add(0 + prng.int(a), a)
      parent[find(a)] = find(0)
      for (const [x, y] of edges.values()) parent[find(x)] = find(y)
    }
  return [...edges.values()].sort((p, q) => p[0] - q[0] || p[1] - q[1])
}

/** A random mesh, deterministic per seed. */
export const randomMesh = (spec: MeshSpec, seed: number): ModelMesh => {
  const n = spec.sites
  const families = spec.families ?? [4, 6]
  const areaMs = spec.areaMs ?? 40
  const detourSpread = spec.detourSpread ?? 0.6
  const maxJitterMs = spec.maxJitterMs ?? 0.5
  const prng = Prng.derive(seed, "mesh")
  const xs = Array.from({ length: n }, () => prng.next() * areaMs)
  const ys = Array.from({ length: n }, () => prng.next() * areaMs)
  const pairs: Array<[number, number]> = []
  if (spec.topology === "full") {
    for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairs.push([a, b])
  } else pairs.push(...partialEdges(n, spec.degree ?? 6, xs, ys, prng))
  const links: ModelLinkSpec[] = []
  for (const [a, b] of pairs) {
    const straightMs = Math.hypot(xs[a]! - xs[b]!, ys[a]! - ys[b]!)
    for (const family of families) {
      const detour = 1 + detourSpread * prng.next()
      const oneWayMs = 0.3 + straightMs * detour
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        // Directions differ by a few percent, as real paths do.
        const base: LinkProfile = {
          latencyMs: oneWayMs * (0.97 + 0.06 * prng.next()),
          jitterMs: maxJitterMs * prng.next(),
          lossRatio: spec.baseLossRatio ?? 0,
        }
        links.push({ from, to, family, timeline: { base, effects: [] } })
      }
    }
  }
  return meshOf(n, families, links)
}
