/**
 * The in-process link emulator as an Effect service: a scoped `LinkEmulator` whose pairs'
 * sockets and release timer close with its scope. The relay process (main.ts) serves this same
 * service over the control socket, so in-process tests and the twin exercise one implementation.
 */
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import {
  type DirectionSelector,
  type Endpoint,
  ImpairmentPatch,
  type ImpairmentPatchInput,
  type Impairments,
  PairSpec,
  type PairSpecInput,
  type PairStats,
} from "./Impairment.js"
import { formatParseError } from "./Protocol.js"
import {
  type LinkEmuBindFailed,
  type LinkEmuDuplicatePair,
  LinkEmuPairNotFound,
  Relay,
  type RelayOptions,
} from "./Relay.js"

export class LinkEmuInvalidInput extends Schema.TaggedError<LinkEmuInvalidInput>()("LinkEmuInvalidInput", {
  what: Schema.String,
  message: Schema.String,
}) {}

export interface LinkEmulatorService {
  readonly addPair: (
    spec: PairSpecInput,
  ) => Effect.Effect<
    { readonly id: string; readonly listen: Endpoint },
    LinkEmuBindFailed | LinkEmuDuplicatePair | LinkEmuInvalidInput
  >
  readonly removePair: (id: string) => Effect.Effect<void, LinkEmuPairNotFound>
  readonly setImpairment: (
    id: string,
    direction: DirectionSelector,
    patch: ImpairmentPatchInput,
  ) => Effect.Effect<Impairments, LinkEmuPairNotFound | LinkEmuInvalidInput>
  readonly stats: (id?: string) => Effect.Effect<ReadonlyArray<PairStats>, LinkEmuPairNotFound>
}

const decode = <A, I>(schema: Schema.Schema<A, I>, what: string, input: unknown) =>
  Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(input).pipe(
    Effect.mapError((e) => new LinkEmuInvalidInput({ what, message: `${what}: ${formatParseError(e)}` })),
  )

/** Builds an emulator whose sockets and timer live as long as the current scope. */
export const makeLinkEmulator = (options: RelayOptions = {}): Effect.Effect<LinkEmulatorService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const relay = yield* Effect.acquireRelease(
      Effect.sync(() => new Relay(options)),
      (r) => Effect.sync(() => r.close()),
    )
    return {
      addPair: (input) =>
        Effect.gen(function* () {
          const spec = yield* decode(PairSpec, "pair spec", input)
          const listen = yield* Effect.tryPromise({
            try: () => relay.addPair(spec),
            catch: (e) => e as LinkEmuBindFailed | LinkEmuDuplicatePair,
          })
          return { id: spec.id, listen }
        }),
      removePair: (id) =>
        Effect.suspend(() => (relay.removePair(id) ? Effect.void : Effect.fail(new LinkEmuPairNotFound({ id })))),
      setImpairment: (id, direction, input) =>
        Effect.gen(function* () {
          const patch = yield* decode(ImpairmentPatch, "impairment", input)
          const result = relay.setImpairment(id, direction, patch)
          if (result === undefined) return yield* new LinkEmuPairNotFound({ id })
          return result
        }),
      stats: (id) =>
        Effect.suspend(() => {
          const result = relay.stats(id)
          return result === undefined ? Effect.fail(new LinkEmuPairNotFound({ id: id ?? "" })) : Effect.succeed(result)
        }),
    } satisfies LinkEmulatorService
  })

export class LinkEmulator extends Context.Tag("@net-perf/simulator/LinkEmulator")<LinkEmulator, LinkEmulatorService>() {
  /** Scoped layer: the emulator's sockets close when the layer is released. */
  static readonly layer = (options: RelayOptions = {}): Layer.Layer<LinkEmulator> =>
    Layer.scoped(LinkEmulator, makeLinkEmulator(options))
}
