import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fc, test } from "@fast-check/vitest"
import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { stringify } from "yaml"
import { parseScenarioText, type ScenarioInput, watchedPairs } from "../../src/twin/Scenario.js"

const scenariosDir = join(import.meta.dirname, "../../../../netns-lab/scenarios")

const arbImpairment = fc.record(
  {
    delayMs: fc.integer({ min: 0, max: 200 }),
    jitterMs: fc.integer({ min: 0, max: 20 }),
    lossRatio: fc.double({ min: 0, max: 1, noNaN: true }),
    down: fc.boolean(),
  },
  { requiredKeys: [] },
)

const arbScenario: fc.Arbitrary<ScenarioInput> = fc.integer({ min: 2, max: 12 }).chain((sites) => {
  const site = fc.integer({ min: 0, max: sites - 1 })
  const link = fc
    .tuple(site, site, fc.constantFrom("-", ">"))
    .filter(([a, b]) => a !== b)
    .map(([a, b, sep]) => `${a}${sep}${b}`)
  const duration = 60
  const at = fc.integer({ min: 0, max: duration })
  const event = fc.oneof(
    fc.record({ at, action: fc.constant("link-down" as const), link }),
    fc.record({ at, action: fc.constant("link-up" as const), link }),
    fc.record({ at, action: fc.constantFrom("kill-bird" as const, "restart-bird" as const), site }),
    fc.tuple(at, link, arbImpairment).map(([at, link, i]) => ({ at, action: "set-impairment" as const, link, ...i })),
  )
  return fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
    sites: fc.constant(sites),
    durationSeconds: fc.constant(duration),
    links: fc.record({
      default: arbImpairment,
      overrides: fc.array(
        link.map((l) => ({ link: l, delayMs: 3 })),
        { maxLength: 4 },
      ),
    }),
    events: fc.array(event, { maxLength: 8 }),
  })
})

describe("Scenario decoding", () => {
  test.prop([arbScenario, fc.boolean()])("valid scenarios decode from YAML and from JSON alike", (input, asJson) => {
    const text = asJson ? JSON.stringify(input) : stringify(input)
    const r = parseScenarioText(text, "gen")
    if (Either.isLeft(r)) throw new Error(r.left.message)
    expect(r.right.sites).toBe(input.sites)
    expect(r.right.events).toEqual(input.events)
    expect(r.right.families).toEqual([4, 6])
    expect(r.right.bird.holdTimeSeconds).toBe(9)
  })

  test.prop([arbScenario, fc.integer({ min: 0, max: 7 })])(
    "an event naming a site out of range is refused, naming the field and its line",
    (input, k) => {
      const events = [...(input.events ?? [])]
      const i = Math.min(k, events.length)
      events.splice(i, 0, { at: 1, action: "kill-bird", site: input.sites + 3 })
      const text = stringify({ ...input, events })
      const r = parseScenarioText(text, "gen")
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) {
        const issue = r.left.issues.find((x) => x.path === `events[${i}].site`)
        expect(issue).toBeDefined()
        const line = text.split("\n")[(issue?.line ?? 0) - 1] ?? ""
        expect(line).toContain(`site: ${input.sites + 3}`)
      }
    },
  )

  it("names wrong fields, types and values with their lines", () => {
    const text = [
      "name: bad",
      "sites: 3",
      "durationSeconds: 10",
      "links:",
      "  default: { delayMs: -4 }",
      "events:",
      '  - { at: 1, action: link-down, link: "0-7" }',
      "  - { at: 2, action: explode, site: 1 }",
      "colour: blue",
    ].join("\n")
    const r = parseScenarioText(text, "bad.yaml")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isRight(r)) return
    const paths = r.left.issues.map((i) => i.path)
    expect(paths).toContain("links.default.delayMs")
    expect(paths.some((p) => p.startsWith("events[1]"))).toBe(true)
    expect(paths).toContain("colour")
    expect(r.left.issues.find((i) => i.path === "links.default.delayMs")?.line).toBe(5)
    expect(r.left.message).toContain("bad.yaml")
  })

  it("reports the cross-field problem after the structure is right", () => {
    const r = parseScenarioText(
      '{"name":"x","sites":3,"durationSeconds":10,"events":[{"at":11,"action":"link-up","link":"1-1"}]}',
    )
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.issues.map((i) => i.path).sort()).toEqual(["events[0].at", "events[0].link"])
    }
  })

  it("refuses YAML syntax errors with a line", () => {
    const r = parseScenarioText("name: x\nsites: [3\n", "broken.yaml")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) expect(r.left.issues[0]?.line).toBeGreaterThan(0)
  })

  it("every shipped scenario decodes", () => {
    const files = readdirSync(scenariosDir).filter((f) => /\.(ya?ml|json)$/.test(f))
    expect(files.length).toBeGreaterThanOrEqual(4)
    for (const f of files) {
      const r = parseScenarioText(readFileSync(join(scenariosDir, f), "utf8"), f)
      if (Either.isLeft(r)) throw new Error(r.left.message)
      expect(watchedPairs(r.right).length).toBeGreaterThan(0)
    }
  })
})
