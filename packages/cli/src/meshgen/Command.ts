/**
 * `net-perf-mesh`: the @effect/cli command around `runMeshGen`. Progress goes to stderr so that
 * `--json` leaves stdout with the summary only. Exit codes: 0 ok, 1 drift found by --check,
 * 2 invalid input or I/O failure (set by the bin).
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { DriftFound, formatSummary, runMeshGen } from "./MeshGenCli.js"

const mesh = Options.file("mesh", { exists: "yes" }).pipe(
  Options.withAlias("m"),
  Options.withDescription("mesh file (YAML, or JSON when it ends in .json)"),
)
const out = Options.directory("out").pipe(
  Options.withAlias("o"),
  Options.withDefault("out"),
  Options.withDescription("output folder; each site's files go to <out>/<site name>/"),
)
const secrets = Options.file("secrets").pipe(
  Options.optional,
  Options.withDescription(
    "secrets file (keys), created with mode 600 on first run; default <mesh>.secrets.json beside the mesh file",
  ),
)
const bird1 = Options.boolean("bird1").pipe(
  Options.withDescription("also write BIRD 1.x bird1/bird.conf and bird1/bird6.conf"),
)
const check = Options.boolean("check").pipe(
  Options.withDescription("write nothing: compare <out> with the mesh file, print the drift, exit 1 if any"),
)
const json = Options.boolean("json").pipe(Options.withDescription("print the summary as JSON on stdout"))
const rotateKeys = Options.text("rotate-keys").pipe(
  Options.optional,
  Options.withDescription(
    "new keys for one site (id or name) and its pairs' pre-shared keys; `all` or no value: every site",
  ),
)

export const meshCommand = Command.make(
  "net-perf-mesh",
  { mesh, out, secrets, bird1, check, json, rotateKeys },
  (flags) =>
    Effect.gen(function* () {
      const summary = yield* runMeshGen({
        meshPath: flags.mesh,
        outDir: flags.out,
        secretsPath: flags.secrets,
        bird1: flags.bird1,
        check: flags.check,
        rotateKeys: flags.rotateKeys,
        progress: (line) => Console.error(line),
      })
      yield* flags.json ? Console.log(JSON.stringify(summary, null, 2)) : Console.log(formatSummary(summary))
      if (summary.drift.length > 0) return yield* new DriftFound({ count: summary.drift.length })
    }),
).pipe(
  Command.withDescription(
    "Generate every site's WireGuard confs, BIRD configs and net-perf daemon config from one mesh file.",
  ),
)

/**
 * `--rotate-keys` may be given without a value (= every site): insert `all` when the next
 * argument is missing or is another flag.
 */
export const normalizeArgs = (argv: ReadonlyArray<string>): Array<string> =>
  argv.flatMap((arg, i) =>
    arg === "--rotate-keys" && (argv[i + 1] === undefined || argv[i + 1]?.startsWith("-")) ? [arg, "all"] : [arg],
  )

export const runMeshCommand = Command.run(meshCommand, { name: "net-perf-mesh", version: "0.1.0" })
