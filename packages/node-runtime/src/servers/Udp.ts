/** Scoped UDP sockets: bound on acquire, closed on release, errors typed with the address. */
import * as dgram from "node:dgram"
import * as dns from "node:dns"
import { isIP, isIPv6 } from "node:net"
import { Data, Effect, type Scope } from "effect"

export class UdpBindFailed extends Data.TaggedError("UdpBindFailed")<{
  readonly address: string
  readonly port: number
  readonly cause: unknown
}> {}

export const udpSocketType = (address: string): dgram.SocketType => (isIPv6(address) ? "udp6" : "udp4")

/**
 * dgram resolves every destination through `lookup`, even an address literal: node's default
 * (`dns.lookup`) answers a literal one `process.nextTick` later, so each `send` cost a tick and
 * a deferred call (≈ 9 % of the plane's main thread in a profile at 100 tunnel ends, the echo's
 * sends). A literal of the socket's family is answered at once; anything else goes to `dns.lookup`
 * as before. dgram passes the socket's family (4 or 6) as the second argument.
 */
export const literalLookup = (
  hostname: string,
  options: number | dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void => {
  const family = isIP(hostname)
  const wanted = typeof options === "number" ? options : options.family
  if (family !== 0 && (wanted === family || wanted === undefined || wanted === 0)) callback(null, hostname, family)
  else dns.lookup(hostname, typeof options === "number" ? { family: options } : options, callback)
}

/** A UDP socket bound to `address:port` (port 0 = ephemeral) for the lifetime of the scope. */
export const bindUdp = (
  address: string,
  port: number,
  options: { readonly receiveBufferBytes?: number } = {},
): Effect.Effect<dgram.Socket, UdpBindFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<dgram.Socket, UdpBindFailed>((resume) => {
      const socket = dgram.createSocket({ type: udpSocketType(address), reuseAddr: false, lookup: literalLookup })
      const onError = (cause: unknown) => {
        socket.close()
        resume(Effect.fail(new UdpBindFailed({ address, port, cause })))
      }
      socket.once("error", onError)
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off("error", onError)
        // Late socket errors (ICMP unreachable on a connected socket, ENOBUFS) must not crash the process.
        socket.on("error", () => {})
        if (options.receiveBufferBytes !== undefined) socket.setRecvBufferSize(options.receiveBufferBytes)
        resume(Effect.succeed(socket))
      })
    }),
    (socket) =>
      Effect.async<void>((resume) => {
        try {
          socket.close(() => resume(Effect.void))
        } catch {
          resume(Effect.void)
        }
      }),
  )
