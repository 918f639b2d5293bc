/**
 * Watching BIRD's table: polls `show route all` on a Schedule and emits only when the BGP paths
 * change (the original hashed the reply to detect this; comparing parsed paths ignores
 * cosmetic changes such as timestamps). An unreachable BIRD is emitted as a state of its own,
 * once per outage and kind of failure, so the consumer can keep its last paths or fall back — never a silent stall.
 */
import type { BgpPath } from "@net-perf/engine"
import { Duration, Effect, Schedule, Stream } from "effect"
import type { BirdService } from "./Bird.js"
import type { BirdError } from "./Errors.js"

export type BirdTableEvent =
  | { readonly _tag: "Paths"; readonly paths: ReadonlyArray<BgpPath> }
  | { readonly _tag: "Unavailable"; readonly error: BirdError }

const pathKey = (p: BgpPath) => `${p.prefix}|${p.asPath.join(" ")}|${p.nextHop}|${p.interface}|${p.primary ? 1 : 0}`

const sameEvent = (a: BirdTableEvent, b: BirdTableEvent): boolean => {
  if (a._tag !== b._tag) return false
  // A different failure (BIRD down, then a malformed reply) is news; the same one repeated is not.
  if (a._tag === "Unavailable")
    return a.error._tag === (b as Extract<BirdTableEvent, { _tag: "Unavailable" }>).error._tag
  const bp = (b as Extract<BirdTableEvent, { _tag: "Paths" }>).paths
  return a.paths.length === bp.length && a.paths.map(pathKey).join("\n") === bp.map(pathKey).join("\n")
}

/** Emits the current paths at once, then every change, polling every `interval`. */
export const watchBgpPaths = (bird: BirdService, interval: Duration.DurationInput): Stream.Stream<BirdTableEvent> =>
  Stream.repeatEffectWithSchedule(
    bird.bgpPaths.pipe(
      Effect.map((paths): BirdTableEvent => ({ _tag: "Paths", paths })),
      Effect.catchAll((error) => Effect.succeed<BirdTableEvent>({ _tag: "Unavailable", error })),
    ),
    Schedule.spaced(Duration.decode(interval)),
  ).pipe(Stream.changesWith(sameEvent))
