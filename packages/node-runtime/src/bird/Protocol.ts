/**
 * Framing of BIRD's control-socket protocol (BIRD's `doc/reply_codes`, client/client.c):
 * every line is either `NNNN-text` (a coded line, more follow), `NNNN text` (the last line
 * of the reply), ` text` (continuation: same code as the previous coded line) or `+text`
 * (a spontaneous printout, not part of any reply). 0xxx = done, 1xxx = table entry,
 * 2xxx = table heading, 8xxx = run-time error, 9xxx = parse-time error.
 * A reply is complete exactly when a `NNNN ` line arrives; nothing else ends it.
 */

export type ReplyLine =
  | { readonly _tag: "Coded"; readonly code: number; readonly last: boolean; readonly text: string }
  | { readonly _tag: "Continuation"; readonly text: string }
  | { readonly _tag: "Spontaneous"; readonly text: string }
  | { readonly _tag: "Invalid"; readonly line: string }

const coded = /^(\d{4})([ -])(.*)$/s

export const classifyLine = (line: string): ReplyLine => {
  const m = coded.exec(line)
  if (m !== null) return { _tag: "Coded", code: Number(m[1]), last: m[2] === " ", text: m[3]! }
  // BIRD ends "0000 " with a space, but tolerate a bare final code (some proxies trim lines).
  if (/^\d{4}$/.test(line)) return { _tag: "Coded", code: Number(line), last: true, text: "" }
  if (line.startsWith(" ")) return { _tag: "Continuation", text: line.slice(1) }
  if (line.startsWith("+")) return { _tag: "Spontaneous", text: line.slice(1) }
  return { _tag: "Invalid", line }
}

/** One line of a reply with its code resolved (continuations inherit the previous code). */
export interface ReplyEntry {
  readonly code: number
  readonly text: string
}

/** A complete reply: every entry, the final code and its text. */
export interface BirdReply {
  readonly entries: ReadonlyArray<ReplyEntry>
  readonly code: number
  readonly text: string
}

export const isErrorCode = (code: number): boolean => code >= 8000

/**
 * Incremental reply assembler: feed lines, get a reply when the last line arrives. Lines it
 * cannot place are collected in `invalid` (the reply still ends at its final line, so the
 * stream stays in sync and the caller can report them).
 */
export class ReplyAssembler {
  private entries: Array<ReplyEntry> = []
  private currentCode: number | undefined
  invalid: Array<string> = []
  spontaneous: Array<string> = []

  /** Returns the reply when `line` completes it. */
  push(line: string): BirdReply | undefined {
    const l = classifyLine(line)
    switch (l._tag) {
      case "Spontaneous":
        this.spontaneous.push(l.text)
        return undefined
      case "Invalid":
        this.invalid.push(l.line)
        return undefined
      case "Continuation":
        if (this.currentCode === undefined) this.invalid.push(line)
        else this.entries.push({ code: this.currentCode, text: l.text })
        return undefined
      case "Coded": {
        this.currentCode = l.code
        if (!l.last) {
          this.entries.push({ code: l.code, text: l.text })
          return undefined
        }
        // A final 0xxx line other than 0000 carries content ("0013 Daemon is up and running").
        const entries =
          l.code !== 0 && !isErrorCode(l.code) ? [...this.entries, { code: l.code, text: l.text }] : this.entries
        const reply: BirdReply = { entries, code: l.code, text: l.text }
        this.entries = []
        this.currentCode = undefined
        return reply
      }
    }
  }

  reset(): void {
    this.entries = []
    this.currentCode = undefined
    this.invalid = []
    this.spontaneous = []
  }
}

/** Splits a whole raw reply text (as stored in fixtures) into replies. */
export const parseRawReplies = (raw: string): { replies: ReadonlyArray<BirdReply>; invalid: ReadonlyArray<string> } => {
  const a = new ReplyAssembler()
  const replies: Array<BirdReply> = []
  for (const line of raw.split("\n")) {
    if (line === "") continue
    const r = a.push(line)
    if (r !== undefined) replies.push(r)
  }
  return { replies, invalid: a.invalid }
}
