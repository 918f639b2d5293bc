// The link-state exchange's fault signals on loopback (the daemon turns each into a log line and a
// metric): a stream to a peer reported open once its server answers, lost once when the server
// goes away, open again when it is back; a frame that is not protobuf counted as undecodable.
import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { SiteId } from "@net-perf/engine"
import { Effect, Exit, Schedule, Scope } from "effect"
import { serveGrpc } from "../../src/grpc/GrpcServer.js"
import { makeLinkStateExchange } from "../../src/linkstate/LinkStateExchange.js"

const until = (what: string, check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("20 millis") }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out: ${what}`) }),
  )

describe("link-state exchange fault signals", () => {
  it.scopedLive(
    "peer stream: open when the server answers, lost once when it goes, open again when it is back",
    () =>
      Effect.gen(function* () {
        const events: Array<string> = []
        const a = yield* makeLinkStateExchange({
          self: SiteId.make(0),
          reconnect: Schedule.spaced("100 millis"),
          onPeerStream: (peer, state) => events.push(`${peer} ${state}`),
        })
        const b = yield* makeLinkStateExchange({ self: SiteId.make(1) })
        const serveB = (port: number) =>
          Effect.gen(function* () {
            // Its own scope, so the test can take the server away; closed with the test's too.
            const scope = yield* Scope.make()
            yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
            const bound = yield* serveGrpc({
              host: "127.0.0.1",
              port,
              services: [{ definition: b.definition, implementation: b.handler }],
              shutdownGraceMillis: 100,
            }).pipe(Scope.extend(scope))
            return { scope, port: bound.port }
          })
        const first = yield* serveB(0)
        yield* a.setPeers([{ site: SiteId.make(1), host: "127.0.0.1", port: first.port }])
        yield* until("stream open", () => events.includes("1 open"))
        expect(a.peers()[0]?.connected).toBe(true)

        yield* Scope.close(first.scope, Exit.void)
        yield* until("stream lost", () => events.includes("1 lost"))
        expect(a.peers()[0]?.connected).toBe(false)
        // retries against a closed port are not reported again
        yield* Effect.sleep("500 millis")
        expect(events).toEqual(["1 open", "1 lost"])

        yield* serveB(first.port)
        yield* until("stream open again", () => events.length === 3)
        expect(events).toEqual(["1 open", "1 lost", "1 open"])
      }),
    30_000,
  )

  it.scopedLive(
    "a frame that is not protobuf is counted as undecodable and the call ends with INTERNAL",
    () =>
      Effect.gen(function* () {
        const undecodable: Array<string> = []
        const server = yield* makeLinkStateExchange({
          self: SiteId.make(1),
          onUndecodable: (frame) => undecodable.push(frame),
        })
        const { port } = yield* serveGrpc({
          host: "127.0.0.1",
          port: 0,
          services: [{ definition: server.definition, implementation: server.handler }],
        })
        const code = yield* Effect.async<number>((resume) => {
          const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
          const stream = client.makeClientStreamRequest(
            "/netperf.linkstate.v1.LinkStateService/Publish",
            (b: Buffer) => b,
            (b: Buffer) => b,
            (error) => {
              client.close()
              resume(Effect.succeed(error?.code ?? grpc.status.OK))
            },
          )
          stream.on("error", () => undefined)
          stream.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))
          stream.end()
        })
        expect(code).toBe(grpc.status.INTERNAL)
        expect(undecodable).toEqual(["5-byte frame"])
        expect(server.counters.invalid).toBe(1)
        expect(server.counters.accepted).toBe(0)
      }),
    20_000,
  )
})
