/**
 * Drift between the files the mesh file implies and a tree on disk: missing, changed and
 * unexpected files. Reports never contain key material: lines holding private or pre-shared
 * keys are shown redacted.
 */
import type { MeshFiles } from "./Generate.js"

/** `mode`: a file holding private keys is readable by group or others (found by the CLI, not by `diffTrees`). */
export type DriftKind = "missing" | "changed" | "unexpected" | "unexpected-site" | "missing-site" | "mode"

export interface Drift {
  readonly site: string
  /** Path relative to the site folder; empty for a whole site. */
  readonly file: string
  readonly kind: DriftKind
  /** For `changed`: the first differing lines (1-based), redacted. */
  readonly lines: ReadonlyArray<{ readonly line: number; readonly expected: string; readonly actual: string }>
}

const maxLinesShown = 5

/** Hides key material: private and pre-shared keys are replaced, public keys are not secret. */
export const redactLine = (line: string): string =>
  line.replace(/^(\s*(PrivateKey|PresharedKey)\s*=\s*).*$/, "$1<redacted>")

/**
 * The first differing lines, aligned by a longest-common-subsequence diff so that one inserted
 * or deleted line is reported as such instead of shifting every following line. `line` is the
 * 1-based line in the expected file (where the actual file deviates); `<absent>` marks a side
 * without the line. Files larger than 4000 lines fall back to a positional comparison.
 */
const changedLines = (expected: string, actual: string): Drift["lines"] => {
  const e = expected.split("\n")
  const a = actual.split("\n")
  const out: Array<{ line: number; expected: string; actual: string }> = []
  const push = (line: number, exp: string | undefined, act: string | undefined) => {
    if (out.length < maxLinesShown) {
      out.push({ line, expected: redactLine(exp ?? "<absent>"), actual: redactLine(act ?? "<absent>") })
    }
  }
  if (e.length > 4000 || a.length > 4000) {
    for (let i = 0; i < Math.max(e.length, a.length); i++) if (e[i] !== a[i]) push(i + 1, e[i], a[i])
    return out
  }
  // lcs[i][j] = length of the LCS of e[i..] and a[j..].
  const lcs = Array.from({ length: e.length + 1 }, () => new Uint16Array(a.length + 1))
  for (let i = e.length - 1; i >= 0; i--) {
    const row = lcs[i] as Uint16Array
    const next = lcs[i + 1] as Uint16Array
    for (let j = a.length - 1; j >= 0; j--) {
      row[j] = e[i] === a[j] ? (next[j + 1] ?? 0) + 1 : Math.max(next[j] ?? 0, row[j + 1] ?? 0)
    }
  }
  let i = 0
  let j = 0
  while ((i < e.length || j < a.length) && out.length < maxLinesShown) {
    if (i < e.length && j < a.length && e[i] === a[j]) {
      i++
      j++
    } else if (i < e.length && j < a.length && (lcs[i + 1]?.[j + 1] ?? 0) === (lcs[i]?.[j] ?? 0)) {
      push(i + 1, e[i], a[j]) // a changed line
      i++
      j++
    } else if (j < a.length && (i >= e.length || (lcs[i]?.[j + 1] ?? 0) >= (lcs[i + 1]?.[j] ?? 0))) {
      push(i + 1, undefined, a[j]) // an inserted line
      j++
    } else {
      push(i + 1, e[i], undefined) // a deleted line
      i++
    }
  }
  return out
}

/** Compares the expected tree with the actual one; sorted by site, then file. */
export const diffTrees = (expected: MeshFiles, actual: MeshFiles): ReadonlyArray<Drift> => {
  const drift: Array<Drift> = []
  const sites = [...new Set([...expected.keys(), ...actual.keys()])].sort()
  for (const site of sites) {
    const want = expected.get(site)
    const have = actual.get(site)
    if (want === undefined) {
      drift.push({ site, file: "", kind: "unexpected-site", lines: [] })
      continue
    }
    if (have === undefined) {
      drift.push({ site, file: "", kind: "missing-site", lines: [] })
      continue
    }
    for (const file of [...new Set([...want.keys(), ...have.keys()])].sort()) {
      const e = want.get(file)
      const a = have.get(file)
      if (e === undefined) drift.push({ site, file, kind: "unexpected", lines: [] })
      else if (a === undefined) drift.push({ site, file, kind: "missing", lines: [] })
      else if (e !== a) drift.push({ site, file, kind: "changed", lines: changedLines(e, a) })
    }
  }
  return drift
}

/** Human-readable drift report, one entry per block. */
export const formatDrift = (drift: ReadonlyArray<Drift>): string =>
  drift
    .map((d) => {
      const where = d.file === "" ? `${d.site}/` : `${d.site}/${d.file}`
      const head = `${d.kind.padEnd(15)} ${where}`
      return [
        head,
        ...d.lines.flatMap((l) => [
          `  line ${l.line}: expected ${l.expected}`,
          `  line ${l.line}:   actual ${l.actual}`,
        ]),
      ].join("\n")
    })
    .join("\n")
