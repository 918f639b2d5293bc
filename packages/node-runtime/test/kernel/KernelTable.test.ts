/** Normalisation and rendering of kernel routes (pure), with the WHATWG URL parser as the RFC 5952 oracle. */
import { fc, test } from "@fast-check/vitest"
import { RouteAdd, RouteDelete } from "@net-perf/engine"
import { describe, expect, it } from "vitest"
import { canonicalIpv6, fromIpRoute, normalisePrefix, normaliseRoute, renderOp } from "../../src/kernel/KernelTable.js"

describe("KernelTable", () => {
  test.prop([fc.ipV6()])("canonicalIpv6 agrees with the URL parser's RFC 5952 form", (addr) => {
    fc.pre(!addr.includes("."))
    expect(canonicalIpv6(addr)).toBe(new URL(`http://[${addr}]/`).hostname.slice(1, -1))
  })
  it("normalises what ip prints: default, host routes, IPv6 case", () => {
    expect(normalisePrefix("default", 4)).toBe("0.0.0.0/0")
    expect(normalisePrefix("default", 6)).toBe("::/0")
    expect(normalisePrefix("10.201.3.7", 4)).toBe("10.201.3.7/32")
    expect(normalisePrefix("FDAC:00C9:0002:0:0:0:0:0/64", 6)).toBe("fdac:c9:2::/64")
    expect(fromIpRoute({ dst: "10.1.0.0/16", dev: "wg1.2_v4", metric: 10, table: "100" }, 4, 201)).toEqual({
      prefix: "10.1.0.0/16",
      device: "wg1.2_v4",
      metric: 10,
      protocol: 201,
      table: 100,
    })
    expect(normaliseRoute({ prefix: "fdac:00c9:2::/64", device: "x", metric: 10, protocol: 201, table: 254 })).toEqual({
      prefix: "fdac:c9:2::/64",
      device: "x",
      metric: 10,
      protocol: 201,
      table: undefined,
    })
  })
  it("renders batch lines with protocol, metric, onlink gateways and sources", () => {
    const route = {
      prefix: "10.201.3.0/24",
      device: "wg1.3_v4",
      gateway: "10.201.3.1",
      source: "10.201.1.1",
      metric: 10,
      protocol: 201,
    }
    expect(renderOp(RouteAdd.make({ route }), true)).toBe(
      "route replace 10.201.3.0/24 via 10.201.3.1 dev wg1.3_v4 onlink src 10.201.1.1 proto 201 metric 10",
    )
    expect(renderOp(RouteDelete.make({ route: { ...route, table: 100 } }), true)).toBe(
      "route del 10.201.3.0/24 proto 201 metric 10 table 100",
    )
  })
})
