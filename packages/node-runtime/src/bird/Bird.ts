/**
 * The `Bird` service: typed access to BIRD's routing state. BIRD 2 serves both families on
 * one control socket (`/run/bird/bird.ctl`); BIRD 1.x runs two daemons, `bird` (IPv4,
 * `bird.ctl`) and `bird6` (IPv6, `bird6.ctl`), which are queried concurrently and merged.
 * Pick the generation with the layer (`Bird.bird2` / `Bird.bird1`); callers see one API.
 */
import type { BgpPath } from "@net-perf/engine"
import { Context, Effect, Either, Layer, Schedule, Schema, type Scope } from "effect"
import { type BirdSocket, type BirdSocketOptions, makeBirdSocket } from "./BirdSocket.js"
import type { BirdError } from "./Errors.js"
import type { BirdReply } from "./Protocol.js"
import { type BirdProtocol, type BirdRoute, parseProtocols, parseRoutes, toBgpPaths } from "./Replies.js"

export interface BirdOptions extends Partial<Omit<BirdSocketOptions, "socket">> {
  /** BIRD 2 socket, or BIRD 1.x IPv4 socket. Default `/run/bird/bird.ctl`. */
  readonly socket?: string
  /** BIRD 1.x IPv6 socket. Default `/run/bird/bird6.ctl`. */
  readonly socket6?: string
  /** Command listing routes; narrow it (`show route all table master4`, `… protocol l1v4`) as needed. */
  readonly routeCommand?: string
}

export interface BirdService {
  readonly generation: "bird2" | "bird1"
  readonly sockets: ReadonlyArray<string>
  /** A raw command; with BIRD 1.x, `family` picks the daemon (default 4). */
  readonly request: (command: string, family?: 4 | 6) => Effect.Effect<BirdReply, BirdError>
  readonly showProtocols: Effect.Effect<ReadonlyArray<BirdProtocol>, BirdError>
  /** Every path of every route (`show route all`), both families. */
  readonly showRoutes: Effect.Effect<ReadonlyArray<BirdRoute>, BirdError>
  /** BGP paths of both families, for the engine. */
  readonly bgpPaths: Effect.Effect<ReadonlyArray<BgpPath>, BirdError>
  /** BIRD's version per socket (from the welcome banner; undefined before the first connect). */
  readonly versions: Effect.Effect<ReadonlyArray<string | undefined>>
  /** Connections opened per socket so far (each BIRD restart adds one; for metrics). */
  readonly connections: Effect.Effect<ReadonlyArray<number>>
}

/** The daemon's BIRD settings, for its config file (validated at start; errors name the field). */
export const BirdConfig = Schema.Struct({
  generation: Schema.optionalWith(Schema.Literal("bird2", "bird1"), { default: () => "bird2" as const }),
  socket: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/run/bird/bird.ctl" }),
  /** BIRD 1.x only. */
  socket6: Schema.optionalWith(Schema.NonEmptyString, { default: () => "/run/bird/bird6.ctl" }),
  requestTimeoutMillis: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 }),
  /** First reconnect delay; doubles up to `reconnectAttempts` times within one request. */
  reconnectBaseMillis: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 50 }),
  reconnectAttempts: Schema.optionalWith(Schema.Int.pipe(Schema.nonNegative()), { default: () => 5 }),
})
export type BirdConfig = typeof BirdConfig.Type

export class Bird extends Context.Tag("@net-perf/node-runtime/Bird")<Bird, BirdService>() {
  static readonly bird2 = (options: BirdOptions = {}): Layer.Layer<Bird> => Layer.scoped(Bird, makeBird2(options))
  static readonly bird1 = (options: BirdOptions = {}): Layer.Layer<Bird> => Layer.scoped(Bird, makeBird1(options))
  /** The Layer a decoded `BirdConfig` asks for. */
  static readonly fromConfig = (config: BirdConfig): Layer.Layer<Bird> => {
    const options: BirdOptions = {
      socket: config.socket,
      socket6: config.socket6,
      requestTimeout: `${config.requestTimeoutMillis} millis`,
      reconnect: Schedule.exponential(`${config.reconnectBaseMillis} millis`, 2).pipe(
        Schedule.intersect(Schedule.recurs(config.reconnectAttempts)),
      ),
    }
    return config.generation === "bird2" ? Bird.bird2(options) : Bird.bird1(options)
  }
}

const socketOptions = (options: BirdOptions, socket: string): BirdSocketOptions => ({
  socket,
  ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
  ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
  ...(options.maxReplyBytes === undefined ? {} : { maxReplyBytes: options.maxReplyBytes }),
})

const protocolsOf = (s: BirdSocket, family: 4 | 6 | null) =>
  s
    .request("show protocols")
    .pipe(
      Effect.flatMap((r) =>
        Either.match(parseProtocols(r, "show protocols", family), { onLeft: Effect.fail, onRight: Effect.succeed }),
      ),
    )

const routesOf = (s: BirdSocket, command: string) =>
  s
    .request(command)
    .pipe(
      Effect.flatMap((r) => Either.match(parseRoutes(r, command), { onLeft: Effect.fail, onRight: Effect.succeed })),
    )

export const makeBird2 = (options: BirdOptions = {}): Effect.Effect<BirdService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const sock = yield* makeBirdSocket(socketOptions(options, options.socket ?? "/run/bird/bird.ctl"))
    const routeCommand = options.routeCommand ?? "show route all"
    const showRoutes = routesOf(sock, routeCommand)
    return {
      generation: "bird2",
      sockets: [sock.socket],
      request: (command) => sock.request(command),
      showProtocols: protocolsOf(sock, null),
      showRoutes,
      bgpPaths: Effect.map(showRoutes, toBgpPaths),
      versions: Effect.map(sock.version, (v) => [v]),
      connections: Effect.map(sock.connections, (n) => [n]),
    } satisfies BirdService
  })

export const makeBird1 = (options: BirdOptions = {}): Effect.Effect<BirdService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const v4 = yield* makeBirdSocket(socketOptions(options, options.socket ?? "/run/bird/bird.ctl"))
    const v6 = yield* makeBirdSocket(socketOptions(options, options.socket6 ?? "/run/bird/bird6.ctl"))
    const routeCommand = options.routeCommand ?? "show route all"
    const both = <A, E>(f: (s: BirdSocket, family: 4 | 6) => Effect.Effect<ReadonlyArray<A>, E>) =>
      Effect.zipWith(f(v4, 4), f(v6, 6), (a, b) => [...a, ...b], { concurrent: true })
    const showRoutes = both((s) => routesOf(s, routeCommand))
    return {
      generation: "bird1",
      sockets: [v4.socket, v6.socket],
      request: (command, family = 4) => (family === 6 ? v6 : v4).request(command),
      showProtocols: both(protocolsOf),
      showRoutes,
      bgpPaths: Effect.map(showRoutes, toBgpPaths),
      versions: Effect.zipWith(v4.version, v6.version, (a, b) => [a, b]),
      connections: Effect.zipWith(v4.connections, v6.connections, (a, b) => [a, b]),
    } satisfies BirdService
  })
