/**
 * Errors of the BIRD client. Each names the socket (or command) that failed and carries the
 * cause; `BirdReplyError` is BIRD saying no (8xxx run-time, 9xxx parse-time), which leaves the
 * connection usable, while every other failure drops the connection so the next request
 * reconnects.
 */
import { Data } from "effect"

/** The control socket could not be reached or closed under us. */
export class BirdUnavailable extends Data.TaggedError("BirdUnavailable")<{
  readonly socket: string
  readonly cause: unknown
}> {
  override get message() {
    return `BIRD control socket ${this.socket} unavailable: ${describe(this.cause)}`
  }
}

/** A request got no complete reply in time. */
export class BirdTimeout extends Data.TaggedError("BirdTimeout")<{
  readonly socket: string
  readonly command: string
  readonly timeoutMillis: number
}> {
  override get message() {
    return `BIRD on ${this.socket} did not answer "${this.command}" within ${this.timeoutMillis} ms`
  }
}

/** BIRD answered with an error code (8xxx run-time error, 9xxx parse-time error). */
export class BirdReplyError extends Data.TaggedError("BirdReplyError")<{
  readonly socket: string
  readonly command: string
  readonly code: number
  readonly text: string
}> {
  override get message() {
    return `BIRD on ${this.socket} rejected "${this.command}": ${this.code} ${this.text}`
  }
}

/** A reply did not have the shape we expect (framing or content). */
export class BirdParseError extends Data.TaggedError("BirdParseError")<{
  readonly command: string
  /** The offending line (or a summary of the reply). */
  readonly line: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `cannot parse BIRD reply to "${this.command}" (${this.reason}): ${JSON.stringify(this.line.slice(0, 200))}`
  }
}

export type BirdError = BirdUnavailable | BirdTimeout | BirdReplyError | BirdParseError

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
