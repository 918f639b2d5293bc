/**
 * The daemon's one gRPC server (port 5122 by default) hosting every service.
 *
 * Decision a reader must know: the server lives in a Scope. Closing the scope asks for a
 * graceful shutdown and forces it after `shutdownGraceMillis`, so a stuck client stream can
 * never keep a stopping daemon alive.
 */
import * as grpc from "@grpc/grpc-js"
import { Data, Effect, type Scope } from "effect"

export class GrpcBindError extends Data.TaggedError("GrpcBindError")<{
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot bind gRPC server on ${this.address}: ${String(this.cause)}`
  }
}

export interface GrpcServiceRegistration {
  readonly definition: grpc.ServiceDefinition
  readonly implementation: grpc.UntypedServiceImplementation
}

export interface GrpcServerOptions {
  readonly host: string
  readonly port: number
  readonly services: ReadonlyArray<GrpcServiceRegistration>
  readonly credentials?: grpc.ServerCredentials
  readonly shutdownGraceMillis?: number
}

/** Keepalive settings shared by servers and clients: a silent peer is noticed within ~10 s. */
export const keepaliveOptions = {
  "grpc.keepalive_time_ms": 5_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": 4_000,
  "grpc.http2.min_time_between_pings_ms": 4_000,
  "grpc.max_receive_message_length": 4 * 1024 * 1024,
} as const

export const hostPort = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/** Binds the server; returns the bound port (useful with port 0 in tests). */
export const serveGrpc = (
  options: GrpcServerOptions,
): Effect.Effect<{ readonly port: number }, GrpcBindError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: grpc.Server; port: number }, GrpcBindError>((resume) => {
      const server = new grpc.Server(keepaliveOptions)
      for (const s of options.services) server.addService(s.definition, s.implementation)
      const address = hostPort(options.host, options.port)
      server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (error, port) => {
        if (error !== null) {
          server.forceShutdown()
          resume(Effect.fail(new GrpcBindError({ address, cause: error })))
        } else {
          resume(Effect.succeed({ server, port }))
        }
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        const force = setTimeout(() => server.forceShutdown(), options.shutdownGraceMillis ?? 1_000)
        server.tryShutdown(() => {
          clearTimeout(force)
          resume(Effect.void)
        })
      }),
  ).pipe(Effect.map(({ port }) => ({ port })))
