/** A minimal control-socket client for tests: sends lines, returns one reply line per command. */
import * as net from "node:net"

export const controlCommands = (
  path: string,
  lines: ReadonlyArray<string>,
  timeoutMillis = 5000,
): Promise<Array<string>> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(path)
    let buffered = ""
    const replies: Array<string> = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`control socket ${path}: timeout after ${replies.length} replies`))
    }, timeoutMillis)
    socket.setEncoding("utf8")
    socket.on("connect", () => socket.write(lines.map((l) => `${l}\n`).join("")))
    socket.on("data", (chunk: string) => {
      buffered += chunk
      let nl = buffered.indexOf("\n")
      while (nl >= 0) {
        replies.push(buffered.slice(0, nl))
        buffered = buffered.slice(nl + 1)
        nl = buffered.indexOf("\n")
      }
      if (replies.length >= lines.length) {
        clearTimeout(timer)
        socket.end()
        resolve(replies)
      }
    })
    socket.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })

export const controlCommand = async (path: string, line: string) => (await controlCommands(path, [line]))[0]!
