/**
 * The router's inbox must not keep processed messages alive. Its arrays keep their storage
 * between batches; before the slots were cleared, the slots past a smaller batch still held
 * the messages of the largest batch ever (a model run at N = 200 kept 480 MB of old messages
 * after one burst). Checked with weak references and a forced collection.
 */

import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { describe, expect, it } from "@effect/vitest"
import { SiteId } from "../src/Domain.js"
import { LinkStateMessage } from "../src/LinkState.js"
import { NodeRouter } from "../src/NodeRouter.js"

setFlagsFromString("--expose-gc")
const collect = runInNewContext("gc") as () => void

const s = (n: number) => SiteId.make(n)
const message = (origin: number, seq: number) =>
  new LinkStateMessage({
    origin: s(origin),
    incarnation: 1,
    seq,
    generatedAtMillis: 0,
    tunnels: [],
    distances: [{ destination: s(origin), seqno: 0, distanceMs: 0, nextHop: null }],
    requests: [],
  })

/** Feeds `count` messages of one origin in one batch and returns weak references to them. */
const burst = (router: NodeRouter, origin: number, count: number, atMillis: number): Array<WeakRef<object>> => {
  const refs: Array<WeakRef<object>> = []
  for (let seq = 1; seq <= count; seq++) {
    const m = message(origin, seq)
    refs.push(new WeakRef(m))
    router.receiveLinkState(m, atMillis)
  }
  router.decide(atMillis)
  return refs
}

describe("NodeRouter inbox", () => {
  it("keeps no processed message alive past its batch", async () => {
    const router = NodeRouter.make({ self: 0 })
    const refs = burst(router, 1, 50, 1_000)
    // A later, smaller batch from another origin; the store now holds only origin 1's latest.
    burst(router, 2, 1, 2_000)
    // Weak targets stay alive until the current job ends: collect after it.
    await new Promise((resolve) => setImmediate(resolve))
    collect()
    const alive = refs.filter((r) => r.deref() !== undefined).length
    // Origin 1's latest message is the store's; the 49 before it are nobody's.
    expect(alive).toBe(1)
    expect(refs[refs.length - 1]!.deref()).toBeDefined()
  })
})
