/**
 * The hand-written decode of a received link-state message (`fastFromWire`) against the engine's
 * Schema (`schemaFromWire`, the reference): over valid messages, messages with one field mutated
 * to any value and random objects, both give the same value (same class, same keys in the same
 * order, same numbers to the bit) or both reject with the same error.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Family, LinkStateMessage, SiteId, type TunnelState, tunnelId } from "@net-perf/engine"
import { Effect, Either } from "effect"
import * as fc from "fast-check"
import * as pb from "../../src/gen/netperf/linkstate/v1/linkstate.js"
import { fastFromWire, fromWire, fromWireEither, schemaFromWire, toWire } from "../../src/linkstate/Wire.js"

/**
 * Where `a` and `b` differ ("" when they do not): same prototype, same own keys in the same order,
 * numbers by `Object.is` (NaN equals NaN, -0 differs from 0).
 */
const difference = (a: unknown, b: unknown, path = "$"): string => {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return Object.is(a, b) ? "" : `${path}: ${String(a)} vs ${String(b)}`
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes differ`
  const keysA = Reflect.ownKeys(a)
  const keysB = Reflect.ownKeys(b)
  if (keysA.join(",") !== keysB.join(",")) return `${path}: keys [${String(keysA)}] vs [${String(keysB)}]`
  for (const key of keysA) {
    const d = difference(Reflect.get(a, key), Reflect.get(b, key), `${path}.${String(key)}`)
    if (d !== "") return d
  }
  return ""
}

type Outcome =
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "error"; readonly message: string }

/** Runs one decoder to an outcome; a throw (non-array `tunnels` in the reference) is an outcome too. */
const outcome = (decode: () => Either.Either<unknown, { readonly message: string }>): Outcome => {
  try {
    return Either.match(decode(), {
      onLeft: (e) => ({ kind: "error", message: `decode error: ${e.message}` }),
      onRight: (value) => ({ kind: "value", value }),
    })
  } catch (e) {
    return { kind: "error", message: `throw: ${String(e)}` }
  }
}

const reference = (wire: unknown) =>
  outcome(() => Effect.runSync(Effect.either(schemaFromWire(wire as pb.LinkStateMessage))))

/** Tallies how often the fast path vouched, so a property that never reaches it fails. */
const tally = { fast: 0, fallback: 0 }

/** Both paths agree on `wire`: the value, or the error. Also `fromWire` (the Effect form). */
const agrees = (wire: unknown): void => {
  const expected = reference(wire)
  const fast = (() => {
    try {
      return fastFromWire(wire as pb.LinkStateMessage)
    } catch (e) {
      return `fast path threw: ${String(e)}`
    }
  })()
  if (fast === undefined) tally.fallback++
  else tally.fast++
  // The fast path may only vouch for what the Schema accepts, with the Schema's value.
  if (fast !== undefined) {
    expect(expected.kind).toBe("value")
    if (expected.kind === "value") expect(difference(fast, expected.value)).toBe("")
  }
  for (const actual of [
    outcome(() => fromWireEither(wire as pb.LinkStateMessage)),
    outcome(() => Effect.runSync(Effect.either(fromWire(wire as pb.LinkStateMessage)))),
  ]) {
    expect(actual.kind).toBe(expected.kind)
    if (actual.kind === "value" && expected.kind === "value") expect(difference(actual.value, expected.value)).toBe("")
    if (actual.kind === "error" && expected.kind === "error") expect(actual.message).toBe(expected.message)
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Ids up to uint32 (the protobuf field) or beyond (in memory, the Schema allows any safe integer). */
const idArb = (max: number) => fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max }))
const ratioArb = fc.oneof(fc.constantFrom(0, -0, 1), fc.double({ min: 0, max: 1, noNaN: true }))
const nonNegativeArb = fc.oneof(fc.constantFrom(0, -0), fc.double({ min: 0, max: 1e6, noNaN: true }))
const anyNumberArb = fc.oneof(fc.double(), fc.integer())
const nullableArb = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: null, freq: 4 })

/** A valid engine message; `wireSafe` keeps it to what survives protobuf bytes unchanged. */
const messageArb = (wireSafe: boolean) => {
  const maxId = wireSafe ? 0xffff_ffff : Number.MAX_SAFE_INTEGER
  // proto3 leaves a non-optional double out when it is == 0, so -0 comes back as 0.
  const required = (arb: fc.Arbitrary<number>) => (wireSafe ? arb.map((x) => x + 0) : arb)
  const finiteOr = (arb: fc.Arbitrary<number>) =>
    wireSafe ? arb : fc.oneof(arb, fc.constant(Number.POSITIVE_INFINITY))
  return fc
    .record({
      origin: idArb(maxId),
      incarnation: required(wireSafe ? fc.double({ noNaN: true, noDefaultInfinity: true }) : anyNumberArb),
      seq: idArb(maxId),
      generatedAtMillis: required(wireSafe ? fc.double({ noNaN: true, noDefaultInfinity: true }) : anyNumberArb),
      tunnels: fc.array(
        fc.record({
          remote: idArb(maxId),
          family: fc.constantFrom<Family>(4, 6),
          state: fc.constantFrom<TunnelState>("up", "dead", "unknown"),
          rttMs: nullableArb(finiteOr(nonNegativeArb)),
          jitterMs: required(
            wireSafe ? nonNegativeArb : fc.oneof(nonNegativeArb, fc.constant(Number.POSITIVE_INFINITY)),
          ),
          lossRatio: required(ratioArb),
          availability: required(ratioArb),
          lastSampleAtMillis: nullableArb(fc.double({ noNaN: true, noDefaultInfinity: true })),
          lastReplyAtMillis: nullableArb(fc.double({ noNaN: true, noDefaultInfinity: true })),
          costMs: nullableArb(finiteOr(nonNegativeArb)),
          selected: fc.boolean(),
          suspect: fc.boolean(),
        }),
        { maxLength: 5 },
      ),
      distances: fc.array(
        fc.record({
          destination: idArb(maxId),
          seqno: idArb(maxId),
          distanceMs: nullableArb(finiteOr(nonNegativeArb)),
          nextHop: nullableArb(idArb(maxId)),
        }),
        { maxLength: 6 },
      ),
      requests: fc.array(fc.record({ destination: idArb(maxId), seqno: idArb(maxId) }), { maxLength: 3 }),
    })
    .map(
      (m) =>
        new LinkStateMessage({
          origin: SiteId.make(m.origin),
          incarnation: m.incarnation,
          seq: m.seq,
          generatedAtMillis: m.generatedAtMillis,
          tunnels: m.tunnels.map((t) => ({
            remote: SiteId.make(t.remote),
            family: t.family,
            stats: {
              tunnel: tunnelId(m.origin, t.remote, t.family),
              state: t.state,
              rttMs: t.rttMs,
              jitterMs: t.jitterMs,
              lossRatio: t.lossRatio,
              availability: t.availability,
              lastSampleAtMillis: t.lastSampleAtMillis,
              lastReplyAtMillis: t.lastReplyAtMillis,
            },
            costMs: t.costMs,
            selected: t.selected,
            ...(t.suspect ? { suspect: true } : {}),
          })),
          distances: m.distances.map((d) => ({
            destination: SiteId.make(d.destination),
            seqno: d.seqno,
            distanceMs: d.distanceMs,
            nextHop: d.nextHop === null ? null : SiteId.make(d.nextHop),
          })),
          requests: m.requests.map((r) => ({ destination: SiteId.make(r.destination), seqno: r.seqno })),
        }),
    )
}

/** Values each check must tell apart: wrong types, NaN, ±Infinity, negative, fractions, out of range. */
const nastyArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    null,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -1,
    -0,
    0,
    0.5,
    1,
    1 + Number.EPSILON,
    1.5,
    2,
    3,
    4,
    6,
    -4,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    -Number.MIN_VALUE,
    Number.MIN_VALUE,
    1e300,
    "1",
    "4",
    "",
    "up",
    "dead",
    "unknown",
    "UP",
    true,
    false,
    [],
    {},
    [1],
    { up: 1 },
    1n,
    Symbol("x"),
  ),
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.anything(),
)

type Path = ReadonlyArray<string | number>

/** Every place in the wire object: the object itself, its fields, array elements, nested fields. */
const pathsOf = (value: unknown, path: Path = []): Array<Path> => {
  const out: Array<Path> = [path]
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) out.push(...pathsOf(value[i], [...path, i]))
  } else if (typeof value === "object" && value !== null)
    for (const key of Object.keys(value)) out.push(...pathsOf((value as Record<string, unknown>)[key], [...path, key]))
  return out
}

type Mutation =
  | { readonly kind: "set"; readonly value: unknown }
  | { readonly kind: "delete" }
  | { readonly kind: "extra"; readonly key: string; readonly value: unknown }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 8, arbitrary: nastyArb.map((value) => ({ kind: "set" as const, value })) },
  { weight: 1, arbitrary: fc.constant({ kind: "delete" as const }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ key: fc.oneof(fc.string(), fc.constantFrom("_tag", "tunnel", "suspect", "extra")), value: nastyArb })
      .map(({ key, value }) => ({ kind: "extra" as const, key, value })),
  },
)

/** The wire message with one place changed (the root itself can be replaced too). */
const mutate = (wire: pb.LinkStateMessage, pick: number, mutation: Mutation): unknown => {
  const paths = pathsOf(wire)
  const path = paths[pick % paths.length] ?? []
  if (path.length === 0) {
    if (mutation.kind === "set") return mutation.value
    if (mutation.kind === "extra") return Object.assign(wire, { [mutation.key]: mutation.value })
    return wire
  }
  let parent: unknown = wire
  for (const key of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[key]
  const container = parent as Record<string | number, unknown>
  const last = path[path.length - 1] as string | number
  if (mutation.kind === "set") container[last] = mutation.value
  else if (mutation.kind === "delete") delete container[last]
  else {
    const target = container[last]
    if (typeof target === "object" && target !== null)
      (target as Record<string, unknown>)[mutation.key] = mutation.value
    else container[last] = mutation.value
  }
  return wire
}

/** A random object shaped roughly like a message (right keys, any values) or nothing like one. */
const randomWireArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything(),
  fc.record(
    {
      origin: nastyArb,
      incarnation: nastyArb,
      seq: nastyArb,
      generatedAtMillis: nastyArb,
      tunnels: fc.oneof(
        nastyArb,
        fc.array(
          fc.record(
            {
              remote: nastyArb,
              family: fc.oneof(fc.constantFrom(4, 6), nastyArb),
              stats: fc.oneof(
                nastyArb,
                fc.record(
                  {
                    state: fc.oneof(fc.constantFrom("up", "dead", "unknown"), nastyArb),
                    rttMs: nastyArb,
                    jitterMs: nastyArb,
                    lossRatio: nastyArb,
                    availability: nastyArb,
                    lastSampleAtMillis: nastyArb,
                    lastReplyAtMillis: nastyArb,
                  },
                  { requiredKeys: [] },
                ),
              ),
              costMs: nastyArb,
              selected: fc.oneof(fc.boolean(), nastyArb),
              suspect: nastyArb,
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
      ),
      distances: fc.oneof(
        nastyArb,
        fc.array(
          fc.record(
            { destination: nastyArb, seqno: nastyArb, distanceMs: nastyArb, nextHop: nastyArb },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
      ),
      requests: fc.oneof(
        nastyArb,
        fc.array(fc.record({ destination: nastyArb, seqno: nastyArb }, { requiredKeys: [] }), { maxLength: 3 }),
      ),
    },
    { requiredKeys: [] },
  ),
)

// ---------------------------------------------------------------------------------------------

describe("fastFromWire against the engine's Schema", () => {
  it("valid messages: the same value, same class and key order (4 000 messages)", () => {
    const before = { ...tally }
    fc.assert(
      fc.property(messageArb(false), (m) => {
        agrees(toWire(m))
        // And the fast path did it: every valid message is vouched for, none goes to the Schema.
        expect(fastFromWire(toWire(m))).toBeInstanceOf(LinkStateMessage)
      }),
      { numRuns: 4_000 },
    )
    expect(tally.fallback).toBe(before.fallback)
  })

  it("one field mutated to any value, deleted or an extra key: same value or same error (14 000 messages)", () => {
    const before = { ...tally }
    fc.assert(
      fc.property(messageArb(false), fc.nat(), mutationArb, (m, pick, mutation) => {
        agrees(mutate(toWire(m), pick, mutation))
      }),
      { numRuns: 14_000 },
    )
    // Both branches exercised many times, or this property proves little.
    expect(tally.fast - before.fast).toBeGreaterThan(1_000)
    expect(tally.fallback - before.fallback).toBeGreaterThan(5_000)
  })

  it("random objects: same value or same error (4 000 inputs)", () => {
    fc.assert(
      fc.property(randomWireArb, (wire) => agrees(wire)),
      { numRuns: 4_000 },
    )
  })

  it("round trip through protobuf bytes: fromWire(toWire(m)) equals m (2 000 messages)", () => {
    fc.assert(
      fc.property(messageArb(true), (m) => {
        const bytes = pb.LinkStateMessage.encode(toWire(m)).finish()
        const back = fastFromWire(pb.LinkStateMessage.decode(bytes))
        expect(back).toBeInstanceOf(LinkStateMessage)
        expect(difference(back, m)).toBe("")
        expect(difference(Either.getOrThrow(fromWireEither(pb.LinkStateMessage.decode(bytes))), m)).toBe("")
      }),
      { numRuns: 2_000 },
    )
  })

  it("names the bad field through the Schema when a check fails", () => {
    const wire = toWire(new LinkStateMessage(sample))
    const stats = wire.tunnels[0]?.stats
    if (stats === undefined) throw new Error("the sample has a tunnel with stats")
    stats.lossRatio = 1.5
    expect(fastFromWire(wire)).toBeUndefined()
    const result = fromWireEither(wire)
    if (Either.isRight(result)) throw new Error("a loss ratio of 1.5 must be rejected")
    expect(result.left._tag).toBe("LinkStateDecodeError")
    expect(result.left.message).toMatch(/lossRatio/)
  })
})

const sample = {
  origin: SiteId.make(3),
  incarnation: 1,
  seq: 2,
  generatedAtMillis: 1_000,
  tunnels: [
    {
      remote: SiteId.make(1),
      family: 4 as const,
      stats: {
        tunnel: tunnelId(3, 1, 4),
        state: "up" as const,
        rttMs: 12,
        jitterMs: 0.5,
        lossRatio: 0.01,
        availability: 1,
        lastSampleAtMillis: 990,
        lastReplyAtMillis: 990,
      },
      costMs: 13,
      selected: true,
    },
  ],
  distances: [{ destination: SiteId.make(1), seqno: 4, distanceMs: 13, nextHop: SiteId.make(1) }],
  requests: [],
}
