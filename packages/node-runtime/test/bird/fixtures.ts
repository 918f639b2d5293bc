/** Loads the captured BIRD replies (see fixtures/capture.ts) as a command → raw reply record. */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))

export const fixtureCommands = [
  "show protocols",
  "show route all",
  "show status",
  "show route for 10.255.0.0/16",
  "show nonsense",
] as const

const fileName = (c: string) => `${c.replace(/[^a-z0-9]+/g, "-")}.txt`

export interface Fixture {
  readonly welcome: string
  readonly replies: Record<string, string>
}

/** `generation` = bird2 | bird1; `daemon` = bird | bird6 (bird6 only for bird1). */
export const loadFixture = (generation: "bird2" | "bird1", daemon: "bird" | "bird6" = "bird"): Fixture => {
  const dir = join(here, "fixtures", generation, daemon)
  const files = new Set(readdirSync(dir))
  const replies: Record<string, string> = {}
  for (const c of fixtureCommands) if (files.has(fileName(c))) replies[c] = readFileSync(join(dir, fileName(c)), "utf8")
  return { welcome: readFileSync(join(dir, "welcome.txt"), "utf8"), replies }
}
