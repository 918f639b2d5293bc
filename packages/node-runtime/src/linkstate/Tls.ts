/**
 * Mutual TLS for the daemon's gRPC (link-state exchange and management), from the config's
 * `grpc.tls` files.
 *
 * Decision a reader must know: with `grpc.tls` set, both directions are authenticated by one
 * private CA. The server demands a client certificate signed by it (no certificate, or one from
 * another CA, fails the handshake), and link-state clients present the site's own certificate and
 * verify the peer's against the CA *and* its address (the default hostname check), so every
 * site's certificate must carry the addresses peers dial — its overlay router address
 * (10.201.X.1) as an IP subjectAltName, plus 127.0.0.1 for local tools such as perfc.
 */
import { readFile } from "node:fs/promises"
import * as grpc from "@grpc/grpc-js"
import { Data, Effect } from "effect"

export interface GrpcTlsFiles {
  /** PEM CA that signed every site's (and every client's) certificate. */
  readonly caFile: string
  /** PEM certificate of this site (server and client). */
  readonly certFile: string
  readonly keyFile: string
}

export class GrpcTlsError extends Data.TaggedError("GrpcTlsError")<{
  readonly file: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `gRPC TLS: cannot use ${this.file}: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

export interface GrpcTlsCredentials {
  /** Requires and verifies client certificates. */
  readonly server: grpc.ServerCredentials
  /** Presents this site's certificate, verifies the server's. */
  readonly client: grpc.ChannelCredentials
}

const read = (file: string) =>
  Effect.tryPromise({ try: () => readFile(file), catch: (cause) => new GrpcTlsError({ file, cause }) })

/** Reads the PEM files once and builds both credential kinds (grpc-js checks the PEMs here). */
export const loadGrpcTls = (files: GrpcTlsFiles): Effect.Effect<GrpcTlsCredentials, GrpcTlsError> =>
  Effect.gen(function* () {
    const [ca, cert, key] = yield* Effect.all([read(files.caFile), read(files.certFile), read(files.keyFile)])
    return yield* Effect.try({
      try: () => ({
        server: grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
        client: grpc.credentials.createSsl(ca, key, cert),
      }),
      catch: (cause) => new GrpcTlsError({ file: `${files.certFile} + ${files.keyFile}`, cause }),
    })
  })
