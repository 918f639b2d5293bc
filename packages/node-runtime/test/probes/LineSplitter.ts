// The line splitter the ICMP prober used before it parsed ping's bytes in place (session 8): the
// reference PingParse.test.ts holds `pingLineReader` to. Not used by anything else.

/** Calls `onLine` for each complete line of a byte stream (ASCII output; no readline machinery). */
export const lineSplitter = (onLine: (line: string) => void) => {
  let carry = ""
  return (chunk: string) => {
    let start = 0
    for (let i = chunk.indexOf("\n"); i >= 0; i = chunk.indexOf("\n", start)) {
      const line = carry + chunk.slice(start, i)
      carry = ""
      start = i + 1
      onLine(line.endsWith("\r") ? line.slice(0, -1) : line)
    }
    // A line longer than this is not ping's: drop it rather than grow without bound.
    carry = carry.length + chunk.length - start > 4096 ? "" : carry + chunk.slice(start)
  }
}
