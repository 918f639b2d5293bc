// Run inside a twin site (node, no TypeScript): sends a daemon's LinkStateService/Publish two bad
// streams over mutual TLS — one frame that is not protobuf at all, and one well-formed protobuf
// LinkStateMessage whose content is invalid (family 5, loss ratio 2, negative RTT) — and prints
// what the server answered to each, as one JSON line.
// argv: host:port caFile certFile keyFile
import { readFileSync } from "node:fs"
import * as grpc from "@grpc/grpc-js"
import {
  LinkStateMessage,
  PublishSummary,
} from "../../../../node-runtime/dist/src/gen/netperf/linkstate/v1/linkstate.js"

const [address, caFile, certFile, keyFile] = process.argv.slice(2)
const credentials = grpc.credentials.createSsl(readFileSync(caFile), readFileSync(keyFile), readFileSync(certFile))
const client = new grpc.Client(address, credentials)

const publish = (frame) =>
  new Promise((resolve) => {
    const metadata = new grpc.Metadata()
    metadata.set("x-netperf-site", "1")
    const stream = client.makeClientStreamRequest(
      "/netperf.linkstate.v1.LinkStateService/Publish",
      (bytes) => bytes,
      (bytes) => PublishSummary.decode(bytes),
      metadata,
      { deadline: Date.now() + 10_000 },
      (error, summary) => resolve(error ? { code: error.code, details: error.details } : { summary }),
    )
    stream.on("error", () => undefined)
    stream.write(frame)
    stream.end()
  })

const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x42, 0x13, 0x37])
const invalid = Buffer.from(
  LinkStateMessage.encode({
    origin: 1,
    // Newer than anything site 1's daemon sent (its incarnation is its start time in ms): the
    // exchange drops a stale copy from its ordering fields before decoding it (a duplicate), so
    // only a message that would be news reaches validation.
    incarnation: Number.MAX_SAFE_INTEGER,
    seq: 424242,
    generatedAtMillis: Date.now(),
    tunnels: [
      {
        remote: 0,
        family: 5,
        stats: { state: "up", rttMs: -3, jitterMs: 0, lossRatio: 2, availability: 1 },
        costMs: 1,
        selected: true,
      },
    ],
    distances: [],
    requests: [],
  }).finish(),
)
const undecodable = await publish(garbage)
const rejected = await publish(invalid)
client.close()
console.log(JSON.stringify({ undecodable, rejected }))
