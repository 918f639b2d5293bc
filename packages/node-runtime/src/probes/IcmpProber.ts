/**
 * ICMP RTT over one tunnel: one long-lived `ping -n -O -D -I <src> <dst>` (iputils) per tunnel,
 * read line by line (no raw-socket native module, no readline: a plain splitter and a hand-written
 * line parser that is property-tested against the `PingLine` schema). `-O` prints "no answer yet for icmp_seq=N" when
 * the next echo leaves without an answer to N: that line is the loss verdict, so the loss timeout
 * equals the ping interval. A reply printed after its verdict is not counted twice. If ping exits
 * (source address gone, tunnel deleted) it is restarted after `restartDelayMillis`.
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { type RttSample, rttSample, type TunnelId } from "@net-perf/engine"
import { Data, Duration, Effect, Either, Schedule, Schema, type Scope } from "effect"
import { counterChild, histogramChild, MeasurementMetrics, tunnelLabelValues } from "../metrics/Metrics.js"
import type { IcmpProbeConfig } from "./ProbeConfig.js"

const Seq = Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())
const Seconds = Schema.NumberFromString.pipe(Schema.nonNegative())

const PingReply = Schema.Struct({
  _tag: Schema.Literal("Reply"),
  atSeconds: Seconds,
  seq: Seq,
  rttMs: Schema.NumberFromString.pipe(Schema.nonNegative()),
})
const PingNoAnswer = Schema.Struct({ _tag: Schema.Literal("NoAnswer"), atSeconds: Seconds, seq: Seq })
const PingError = Schema.Struct({
  _tag: Schema.Literal("Error"),
  atSeconds: Seconds,
  seq: Seq,
  message: Schema.String,
})
export const PingLine = Schema.Union(PingReply, PingNoAnswer, PingError)
export type PingLine = typeof PingLine.Type

export class UnparsedPingLine extends Data.TaggedError("UnparsedPingLine")<{
  readonly line: string
  readonly cause?: unknown
}> {}

const replyRe = /^\[(\d+(?:\.\d+)?)\] \d+ bytes from \S+: icmp_seq=(\d+) ttl=\d+ time=(\d+(?:\.\d+)?) ms/
const noAnswerRe = /^\[(\d+(?:\.\d+)?)\] no answer yet for icmp_seq=(\d+)\s*$/
const errorRe = /^\[(\d+(?:\.\d+)?)\] From \S+ icmp_seq=(\d+) (.+)$/
const decodeLine = Schema.decodeUnknownEither(PingLine)

/** The regex captures of a line, as the raw input of the `PingLine` schema. */
const rawPingLine = (line: string) => {
  const m = replyRe.exec(line)
  if (m !== null) return { _tag: "Reply", atSeconds: m[1]!, seq: m[2]!, rttMs: m[3]! } as const
  const n = noAnswerRe.exec(line)
  if (n !== null) return { _tag: "NoAnswer", atSeconds: n[1]!, seq: n[2]! } as const
  const e = errorRe.exec(line)
  if (e !== null) return { _tag: "Error", atSeconds: e[1]!, seq: e[2]!, message: e[3]! } as const
  return undefined
}

/**
 * One line of `ping -n -O -D` through the `PingLine` schema: the reference for `parsePingLine`
 * (property-tested to agree), too slow for 50 lines/s at 100 tunnels.
 */
export const parsePingLineWithSchema = (line: string): Either.Either<PingLine, UnparsedPingLine> => {
  const raw = rawPingLine(line)
  if (raw === undefined) return Either.left(new UnparsedPingLine({ line }))
  return Either.mapLeft(decodeLine(raw), (cause) => new UnparsedPingLine({ line, cause }))
}

/** A decimal that the regexes captured, checked as the schema checks it (finite, ≥ 0; integer seq). */
const decimal = (text: string, integer: boolean): number | undefined => {
  const x = Number(text)
  return Number.isFinite(x) && x >= 0 && (!integer || Number.isInteger(x)) ? x : undefined
}

/** One line of `ping -n -O -D`; header/summary lines and garbage are `UnparsedPingLine`. */
export const parsePingLine = (line: string): Either.Either<PingLine, UnparsedPingLine> => {
  const raw = rawPingLine(line)
  if (raw === undefined) return Either.left(new UnparsedPingLine({ line }))
  const atSeconds = decimal(raw.atSeconds, false)
  const seq = decimal(raw.seq, true)
  if (atSeconds === undefined || seq === undefined) return parsePingLineWithSchema(line)
  switch (raw._tag) {
    case "Reply": {
      const rttMs = decimal(raw.rttMs, false)
      return rttMs === undefined
        ? parsePingLineWithSchema(line)
        : Either.right({ _tag: "Reply", atSeconds, seq, rttMs })
    }
    case "NoAnswer":
      return Either.right({ _tag: "NoAnswer", atSeconds, seq })
    case "Error":
      return Either.right({ _tag: "Error", atSeconds, seq, message: raw.message })
  }
}

/** Powers of ten exact in a double (10^k for k ≤ 22; ping prints 6 fraction digits at most). */
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15]
const isDigit = (c: number | undefined) => c !== undefined && c >= 48 && c <= 57
const matchAscii = (b: Uint8Array, i: number, end: number, text: Uint8Array) => {
  if (end - i < text.length) return false
  for (let k = 0; k < text.length; k++) if (b[i + k] !== text[k]) return false
  return true
}
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))
const BYTES_FROM = ascii(" bytes from ")
const ICMP_SEQ = ascii(" icmp_seq=")
const TTL = ascii(" ttl=")
const TIME = ascii(" time=")
const MS = ascii(" ms")
const NO_ANSWER = ascii("] no answer yet for icmp_seq=")

/**
 * `readNumber`'s results (module scratch, so the byte path allocates nothing per number): the value
 * and the index after its last digit.
 */
let numberValue = 0
let numberEnd = 0
/**
 * `\d+` (or `\d+(\.\d+)?` with `fraction`) at `i`, as the regexes capture it and `Number` reads it:
 * the digits as one integer m ≤ 2^53 − 1 (exact) over 10^k (exact), and one IEEE division of exact
 * operands is the correctly rounded value of the decimal, which is what `Number(text)` returns
 * (`-D`'s "1764245000.123456" is 16 digits, m ≈ 1.8e15). False when there is no digit, m is not
 * exact or k > 15 (the string path decides).
 */
const readNumber = (b: Uint8Array, i: number, end: number, fraction: boolean): boolean => {
  let m = 0
  let digits = 0
  let j = i
  for (; j < end && isDigit(b[j]); j++, digits++) m = m * 10 + (b[j]! - 48)
  if (digits === 0) return false
  let k = 0
  if (fraction && j + 1 < end && b[j] === 46 && isDigit(b[j + 1]))
    for (j++; j < end && isDigit(b[j]); j++, k++) m = m * 10 + (b[j]! - 48)
  // Once past 2^53 the sums round, but never back below it: one check at the end suffices.
  if (m > Number.MAX_SAFE_INTEGER || k >= POW10.length) return false
  numberValue = k === 0 ? m : m / POW10[k]!
  numberEnd = j
  return true
}
/** A byte the address may hold on the byte path (a numeric IPv4/IPv6 address); others go the string way. */
const isAddressByte = (c: number) =>
  (c >= 48 && c <= 58) /* 0-9 : */ || c === 46 || (c >= 97 && c <= 102) /* a-f */ || (c >= 65 && c <= 70)

/**
 * The common lines of `ping -n -O -D` straight from the pipe's bytes: a reply with a numeric
 * address and numbers of at most 2^53 as digits, or a bare "no answer yet". Returns what `parsePingLine` returns
 * for the same (latin1) line, or undefined to leave the line to it (headers, errors, anything
 * unusual): property-tested to agree with it on every line it takes. No string, regex or Either per
 * line (≈ 50 lines/s at 100 tunnels).
 */
export const parsePingBytes = (b: Uint8Array, start: number, end: number): PingLine | undefined => {
  if (b[start] !== 91 /* [ */ || !readNumber(b, start + 1, end, true)) return undefined
  const atSeconds = numberValue
  let i = numberEnd
  if (matchAscii(b, i, end, NO_ANSWER)) {
    if (!readNumber(b, i + NO_ANSWER.length, end, false) || numberEnd !== end) return undefined
    return { _tag: "NoAnswer", atSeconds, seq: numberValue }
  }
  if (b[i] !== 93 /* ] */ || b[i + 1] !== 32 || !readNumber(b, i + 2, end, false)) return undefined
  i = numberEnd
  if (!matchAscii(b, i, end, BYTES_FROM)) return undefined
  // The regex's `\S+:` : the address runs to the first space and ends with the colon.
  const addressStart = i + BYTES_FROM.length
  i = addressStart
  while (i < end && isAddressByte(b[i]!)) i++
  if (i - addressStart < 2 || b[i - 1] !== 58 /* : */ || !matchAscii(b, i, end, ICMP_SEQ)) return undefined
  if (!readNumber(b, i + ICMP_SEQ.length, end, false)) return undefined
  const seq = numberValue
  i = numberEnd
  if (!matchAscii(b, i, end, TTL) || !readNumber(b, i + TTL.length, end, false)) return undefined
  i = numberEnd
  if (!matchAscii(b, i, end, TIME) || !readNumber(b, i + TIME.length, end, true)) return undefined
  const rttMs = numberValue
  if (!matchAscii(b, numberEnd, end, MS)) return undefined
  return { _tag: "Reply", atSeconds, seq, rttMs }
}

/**
 * Calls `onLine` for each line of ping's output (raw bytes, as the pipe gives them) that parses:
 * the lines a plain split at \n (and a trailing \r dropped) cuts from the latin1 text, parsed as `parsePingLine` parses them
 * (the byte path first, the string path for whatever it leaves), unparsed lines dropped. A chunk is
 * `chunk[0, length)`: the socket reads into one reused buffer, so nothing of it is kept.
 */
export const pingLineReader = (onLine: (line: PingLine) => void) => {
  let carry: Buffer | undefined
  const line = (b: Buffer, start: number, end: number) => {
    if (end > start && b[end - 1] === 13 /* \r */) end--
    const fast = parsePingBytes(b, start, end)
    if (fast !== undefined) return onLine(fast)
    const parsed = parsePingLine(b.toString("latin1", start, end))
    if (Either.isRight(parsed)) onLine(parsed.right)
  }
  return (chunk: Buffer, length: number = chunk.length) => {
    let start = 0
    for (let i = 0; i < length; i++) {
      if (chunk[i] !== 10 /* \n */) continue
      if (carry === undefined) line(chunk, start, i)
      else {
        const joined = Buffer.concat([carry, chunk.subarray(start, i)])
        carry = undefined
        line(joined, 0, joined.length)
      }
      start = i + 1
    }
    if (start === length) return
    // A line longer than this is not ping's: drop it rather than grow without bound.
    const carried = (carry?.length ?? 0) + length - start
    carry =
      carried > 4096
        ? undefined
        : carry === undefined
          ? Buffer.from(chunk.subarray(start, length))
          : Buffer.concat([carry, chunk.subarray(start, length)])
  }
}

/** Bytes per read of one ping's output (a line is ≈ 80 B; a longer burst is read in more calls). */
const PING_READ_BYTES = 2048

export class PingOutputFailed extends Data.TaggedError("PingOutputFailed")<{ readonly cause: unknown }> {}

/**
 * A connected pair of Unix stream sockets for one ping's stdout: `childEnd` goes to the child,
 * `reader` is read with `onread` (one reused buffer, `onChunk(buffer, length)` straight from the
 * read: no Readable stream, no Buffer per read, no 'data' event or nextTick). node's `'pipe'` stdio
 * is a socket pair too, but its parent end can only be read as a stream: at 100 pings that
 * machinery was about half the cost of a ping line on the main thread (session 7's profile). The
 * listening socket lives in the abstract namespace (no file) under a random name and is closed
 * once its one connection is accepted.
 */
export const pingOutputPair = (
  onChunk: (chunk: Buffer, length: number) => void,
): Effect.Effect<{ readonly childEnd: net.Socket; readonly reader: net.Socket }, PingOutputFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly childEnd: net.Socket; readonly reader: net.Socket }, PingOutputFailed>((resume) => {
      const path = `\0net-perf-ping-${process.pid}-${randomBytes(8).toString("hex")}`
      const server = net.createServer()
      let reader: net.Socket | undefined
      let settled = false
      const fail = (cause: unknown) => {
        server.close()
        if (settled) return
        settled = true
        reader?.destroy()
        resume(Effect.fail(new PingOutputFailed({ cause })))
      }
      server.once("error", fail)
      server.once("connection", (childEnd) => {
        server.close()
        if (settled || reader === undefined) return childEnd.destroy()
        settled = true
        resume(Effect.succeed({ childEnd, reader }))
      })
      server.listen(path, () => {
        const buffer = Buffer.allocUnsafe(PING_READ_BYTES)
        reader = net.connect({
          path,
          onread: {
            buffer,
            callback: (n, b) => {
              onChunk(b as Buffer, n)
              return true
            },
          },
        })
        // A reset when the child dies is an end like any other (its exit is what the prober waits on).
        reader.on("error", () => {})
      })
      return Effect.sync(() => {
        server.close()
        reader?.destroy()
      })
    }),
    ({ childEnd, reader }) =>
      Effect.sync(() => {
        childEnd.destroy()
        reader.destroy()
      }),
  )

/** Turns ping lines into samples, once per sequence number. */
export const makePingSampler = (tunnel: TunnelId, intervalMillis: number) => {
  const decided = new Set<number>()
  let lowest = 0
  return (line: PingLine): RttSample | undefined => {
    if (decided.has(line.seq) || line.seq < lowest) return undefined
    decided.add(line.seq)
    // Bounded memory: forget verdicts far behind the newest sequence number.
    if (decided.size > 64) {
      lowest = line.seq - 32
      for (const s of decided) if (s < lowest) decided.delete(s)
    }
    const atMillis = line.atSeconds * 1000
    switch (line._tag) {
      case "Reply":
        return rttSample(tunnel, "icmp", atMillis - line.rttMs, line.rttMs)
      case "NoAnswer":
        return rttSample(tunnel, "icmp", atMillis - intervalMillis, null)
      case "Error":
        return rttSample(tunnel, "icmp", atMillis, null)
    }
  }
}

export class PingFailed extends Data.TaggedError("PingFailed")<{
  readonly tunnel: string
  readonly exitCode: number | undefined
  readonly stderr: string
}> {}

/**
 * The command that starts one ping. Aligned (`alignToGrid`): a shell sleeps until the next
 * wall-clock multiple of the interval and then becomes ping (`exec`, same pid), so every ping of
 * the plane sends — and prints its replies and "no answer yet" lines — at the same instants, and
 * the plane wakes up about once per interval for all of them instead of once per tunnel (on this
 * VM a wake-up costs ≈ 0.1 ms of CPU; 100 unaligned pings at 2 s were 50 wake-ups/s). The grid is
 * also the echo's phase 0, whose wake-up it then shares. The pings then keep their shared rhythm.
 */
export const pingArgv = (
  config: IcmpProbeConfig,
  pingArgs: ReadonlyArray<string>,
  nowMillis: number,
): [string, Array<string>] => {
  if (!config.alignToGrid) return [config.command, [...pingArgs]]
  const delaySeconds = (config.intervalMillis - (nowMillis % config.intervalMillis)) / 1000
  return ["sh", ["-c", 'sleep "$0" && exec "$@"', delaySeconds.toFixed(3), config.command, ...pingArgs]]
}

/** Runs ping for the scope's lifetime, restarting it when it exits. */
export const runIcmpProber = (
  tunnel: TunnelId,
  endpoints: { readonly localAddress: string; readonly remoteAddress: string },
  config: IcmpProbeConfig,
  onSample: (sample: RttSample) => void,
): Effect.Effect<void, never, Scope.Scope | MeasurementMetrics> =>
  Effect.gen(function* () {
    const metrics = yield* MeasurementMetrics
    const labels = { ...tunnelLabelValues(tunnel), probe: "icmp" }
    const sentCounter = counterChild(metrics.probesSent, labels)
    const lostCounter = counterChild(metrics.probesLost, labels)
    const rttHistogram = histogramChild(metrics.rtt, labels)
    const key = `wg${tunnel.local}.${tunnel.remote}_v${tunnel.family}`

    const once = Effect.scoped(
      Effect.gen(function* () {
        const sample = makePingSampler(tunnel, config.intervalMillis)
        const args = [
          "-n",
          "-O",
          "-D",
          "-i",
          String(config.intervalMillis / 1000),
          "-s",
          String(config.payloadBytes),
          "-I",
          endpoints.localAddress,
          endpoints.remoteAddress,
        ]
        // node:child_process rather than execa here: one ping per tunnel, and execa's per-process
        // machinery cost ~0.3 MB of RSS each (34 MB at 100 tunnels in the overhead bench).
        // LC_ALL=C: ping calls setlocale; another locale would map locale files into each of the
        // 100 processes and could print "time=1,23" (a decimal comma the parser rejects).
        // Raw bytes, parsed in place (no line strings on the common lines).
        const output = yield* pingOutputPair(
          pingLineReader((line) => {
            const s = sample(line)
            if (s === undefined) return
            sentCounter.inc()
            if (s.rttMs === null) lostCounter.inc()
            else rttHistogram.observe(s.rttMs / 1000)
            onSample(s)
          }),
        ).pipe(
          Effect.mapError(
            (e) => new PingFailed({ tunnel: key, exitCode: undefined, stderr: `output socket: ${String(e.cause)}` }),
          ),
        )
        const child = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const c = spawn(...pingArgv(config, args, Date.now()), {
              stdio: ["ignore", output.childEnd, "pipe"],
              env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
            })
            // The child holds its own copy now; ours would keep the reader from seeing its end.
            output.childEnd.destroy()
            return c
          }),
          (c) =>
            Effect.async<void>((resume) => {
              if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
              c.once("exit", () => resume(Effect.void))
              c.kill("SIGTERM")
            }),
        )
        const exit = yield* Effect.async<{ code: number | null; stderr: string }>((resume) => {
          let stderr = ""
          child.stderr.on("data", (d: Buffer) => {
            if (stderr.length < 500) stderr += d.toString()
          })
          child.once("error", (e) => resume(Effect.succeed({ code: null, stderr: String(e) })))
          child.once("exit", (code) => resume(Effect.succeed({ code, stderr })))
        })
        return yield* Effect.fail(
          new PingFailed({ tunnel: key, exitCode: exit.code ?? undefined, stderr: exit.stderr.slice(0, 200) }),
        )
      }),
    )
    yield* once.pipe(
      Effect.tapError((e) => Effect.logWarning(`icmp prober ${e.tunnel}: ping exited (${e.exitCode}) ${e.stderr}`)),
      Effect.retry(Schedule.spaced(Duration.millis(config.restartDelayMillis))),
      Effect.forkScoped,
    )
  })
