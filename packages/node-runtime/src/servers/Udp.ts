/** Scoped UDP sockets: bound on acquire, closed on release, errors typed with the address. */
import * as dgram from "node:dgram"
import { isIPv6 } from "node:net"
import { Data, Effect, type Scope } from "effect"

export class UdpBindFailed extends Data.TaggedError("UdpBindFailed")<{
  readonly address: string
  readonly port: number
  readonly cause: unknown
}> {}

export const udpSocketType = (address: string): dgram.SocketType => (isIPv6(address) ? "udp6" : "udp4")

/** A UDP socket bound to `address:port` (port 0 = ephemeral) for the lifetime of the scope. */
export const bindUdp = (
  address: string,
  port: number,
  options: { readonly receiveBufferBytes?: number } = {},
): Effect.Effect<dgram.Socket, UdpBindFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<dgram.Socket, UdpBindFailed>((resume) => {
      const socket = dgram.createSocket({ type: udpSocketType(address), reuseAddr: false })
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
