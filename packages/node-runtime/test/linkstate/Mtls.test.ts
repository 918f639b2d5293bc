// Mutual TLS on the daemon's gRPC (link state and management) over loopback, with a throwaway CA
// made by `openssl`: a client holding a certificate from the CA is served; one without a
// certificate, with a certificate from another CA, or in plaintext is refused at the handshake.
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { LinkStateMessage, SiteId, tunnelId } from "@net-perf/engine"
import { Effect, Queue, Schedule } from "effect"
import { execa } from "execa"
import * as pb from "../../src/gen/netperf/linkstate/v1/linkstate.js"
import * as mgmt from "../../src/gen/netperf/management/v1/management.js"
import { serveGrpc } from "../../src/grpc/GrpcServer.js"
import { makeLinkStateExchange } from "../../src/linkstate/LinkStateExchange.js"
import { loadGrpcTls } from "../../src/linkstate/Tls.js"
import { makeCa, makeLeaf } from "../../src/linkstate/testing/ThrowawayPki.js"
import { toWire } from "../../src/linkstate/Wire.js"
import { type ManagementSource, makeManagementHandler } from "../../src/management/ManagementServer.js"

const hasOpenssl =
  (await execa("openssl", ["version"], { reject: false }).catch(() => ({ exitCode: 1 }))).exitCode === 0
if (!hasOpenssl) console.log("skipping the mTLS tests: `openssl` is not installed (scripts/setup.sh installs it)")

const message = (origin: number, seq: number) =>
  new LinkStateMessage({
    origin: SiteId.make(origin),
    incarnation: 1,
    seq,
    generatedAtMillis: 1_000 + seq,
    tunnels: [
      {
        remote: SiteId.make(1),
        family: 4,
        stats: {
          tunnel: tunnelId(origin, 1, 4),
          state: "up",
          rttMs: 3,
          jitterMs: 0.1,
          lossRatio: 0,
          availability: 1,
          lastSampleAtMillis: 999,
          lastReplyAtMillis: 999,
        },
        costMs: 3,
        selected: true,
      },
    ],
    distances: [],
    requests: [],
  })

const managementSource: ManagementSource = {
  site: SiteId.make(1),
  configuredAlgorithm: "graph-least-cost",
  decision: Effect.succeed(undefined),
  perAlgorithm: () => Effect.succeed([]),
  kernelRoutes: Effect.succeed([]),
  tunnels: Effect.succeed([]),
  peers: Effect.succeed([]),
  configJson: Effect.succeed("{}"),
  version: "mtls-test",
  startedAtMillis: 0,
  now: Date.now,
}

/** The throwaway PKI: one CA for the mesh, a leaf per site, and an intruder from another CA. */
const pki = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "np-mtls-"))),
    (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
  )
  const ca = yield* makeCa(dir, "mesh-ca")
  const other = yield* makeCa(dir, "other-ca")
  return {
    server: yield* makeLeaf(dir, ca, "site1", ["127.0.0.1"]),
    client: yield* makeLeaf(dir, ca, "site0", ["127.0.0.1"]),
    intruder: yield* makeLeaf(dir, other, "intruder", ["127.0.0.1"]),
  }
})

/** Site 1: link-state exchange + management on one mTLS server on loopback. */
const tlsServer = (files: { caFile: string; certFile: string; keyFile: string }) =>
  Effect.gen(function* () {
    const tls = yield* loadGrpcTls(files)
    const exchange = yield* makeLinkStateExchange({ self: SiteId.make(1) })
    const management = yield* makeManagementHandler(managementSource)
    const { port } = yield* serveGrpc({
      host: "127.0.0.1",
      port: 0,
      credentials: tls.server,
      services: [
        { definition: exchange.definition, implementation: exchange.handler },
        { definition: mgmt.ManagementServiceService, implementation: management },
      ],
    })
    return { exchange, port }
  })

/** One GetVersion call with the given channel credentials: the version, or the gRPC error. */
const getVersion = (port: number, credentials: grpc.ChannelCredentials) =>
  Effect.async<string, grpc.ServiceError>((resume) => {
    const client = new mgmt.ManagementServiceClient(`127.0.0.1:${port}`, credentials)
    client.getVersion({}, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (error, response) => {
      client.close()
      resume(error === null ? Effect.succeed(response.version) : Effect.fail(error))
    })
  })

/** Publishes one raw link-state message with the given credentials: the server's summary, or the error. */
const publishRaw = (port: number, credentials: grpc.ChannelCredentials) =>
  Effect.async<{ accepted: number }, grpc.ServiceError>((resume) => {
    // A bare client writing raw bytes: the refusal must come from TLS, not from our own client code.
    const client = new grpc.Client(`127.0.0.1:${port}`, credentials)
    const method = "/netperf.linkstate.v1.LinkStateService/Publish"
    const stream = client.makeClientStreamRequest(
      method,
      (m: Buffer) => m,
      (b: Buffer) => ({ accepted: b.length }),
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (error, response) => {
        client.close()
        resume(error === null ? Effect.succeed(response ?? { accepted: 0 }) : Effect.fail(error))
      },
    )
    stream.on("error", () => undefined)
    stream.write(Buffer.from(toLinkStateBytes(message(7, 1))))
    stream.end()
  })

const toLinkStateBytes = (m: LinkStateMessage) => pb.LinkStateMessage.encode(toWire(m)).finish()

describe.skipIf(!hasOpenssl)("mutual TLS on the daemon's gRPC", () => {
  it.scopedLive(
    "a peer with a certificate from the mesh CA exchanges link state and reads the management API",
    () =>
      Effect.gen(function* () {
        const files = yield* pki
        const server = yield* tlsServer(files.server)
        const clientTls = yield* loadGrpcTls(files.client)
        // The daemon's own link-state client, with the site's certificate.
        const peer = yield* makeLinkStateExchange({
          self: SiteId.make(0),
          credentials: clientTls.client,
          reconnect: Schedule.spaced("100 millis"),
        })
        yield* peer.setPeers([{ site: SiteId.make(1), host: "127.0.0.1", port: server.port }])
        yield* peer.publish(message(0, 1))
        const got = yield* Queue.take(server.exchange.received).pipe(Effect.timeout("10 seconds"))
        expect([got.origin, got.seq]).toEqual([0, 1])
        expect(yield* getVersion(server.port, clientTls.client)).toBe("mtls-test")
      }),
    30_000,
  )

  it.scopedLive(
    "refuses a client without a certificate, with one from another CA, and in plaintext",
    () =>
      Effect.gen(function* () {
        const files = yield* pki
        const server = yield* tlsServer(files.server)
        const ca = yield* Effect.promise(() => readFile(files.server.caFile))
        const noCert = grpc.credentials.createSsl(ca)
        const intruder = (yield* loadGrpcTls({ ...files.intruder, caFile: files.server.caFile })).client
        const plaintext = grpc.credentials.createInsecure()
        for (const [what, credentials] of [
          ["no client certificate", noCert],
          ["a certificate from another CA", intruder],
          ["plaintext", plaintext],
        ] as const) {
          const version = yield* Effect.either(getVersion(server.port, credentials))
          expect(version._tag, `management with ${what}`).toBe("Left")
          if (version._tag === "Left") expect(version.left.code, what).toBe(grpc.status.UNAVAILABLE)
          const published = yield* Effect.either(publishRaw(server.port, credentials))
          expect(published._tag, `link state with ${what}`).toBe("Left")
        }
        // nothing got through to the server
        expect(yield* Queue.size(server.exchange.received)).toBe(0)
        expect(server.exchange.counters.accepted).toBe(0)
        // and the same raw publish with a good certificate does get through (the refusals are the TLS)
        const good = (yield* loadGrpcTls(files.client)).client
        yield* publishRaw(server.port, good)
        const got = yield* Queue.take(server.exchange.received).pipe(Effect.timeout("10 seconds"))
        expect(got.origin).toBe(7)
      }),
    30_000,
  )
})
