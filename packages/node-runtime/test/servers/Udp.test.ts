import { once } from "node:events"
import { isIP } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import { bindUdp, literalLookup } from "../../src/servers/Udp.js"

/** literalLookup's answer, and whether it came before the call returned. */
const lookupOf = (host: string, family: number) =>
  new Promise<{ err: unknown; address: string; family: number; sync: boolean }>((resolve) => {
    let returned = false
    literalLookup(host, family, (err, address, f) => resolve({ err, address, family: f, sync: !returned }))
    returned = true
  })

describe("literal lookup (dgram's per-send resolution)", () => {
  it("answers an address literal of the socket's family at once, unchanged", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.ipV4(), fc.ipV6()), async (address) => {
        const family = isIP(address)
        const r = await lookupOf(address, family)
        expect(r).toEqual({ err: null, address, family, sync: true })
      }),
      { numRuns: 200 },
    )
  })

  it("leaves names and literals of the other family to dns.lookup (later, as before)", async () => {
    const named = await lookupOf("localhost", 4)
    expect(named.sync).toBe(false)
    expect(named.err).toBeNull()
    expect(named.family).toBe(4)
    const crossed = await lookupOf("127.0.0.1", 6)
    expect(crossed.sync).toBe(false)
  })

  it.effect("a socket from bindUdp sends to a literal over loopback", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const a = yield* bindUdp("127.0.0.1", 0)
        const b = yield* bindUdp("127.0.0.1", 0)
        const got = once(b, "message")
        a.send(Buffer.from("np"), b.address().port, "127.0.0.1")
        const [msg, rinfo] = (yield* Effect.promise(() => got)) as [Buffer, { port: number }]
        expect(msg.toString()).toBe("np")
        expect(rinfo.port).toBe(a.address().port)
      }),
    ),
  )
})
