#!/usr/bin/env node
/**
 * `netlab`: the digital twin from the command line. `up` leaves a twin running, `run` plays a
 * scenario and prints its report, `status` lists runs, `exec` runs a command inside a site
 * (with the site's own WireGuard sockets), `down` removes runs, including crashed ones.
 * Progress goes to stderr, so `run --json` leaves stdout with the report only.
 * Exit codes: 0 ok, 1 the twin failed, 2 bad input.
 */
import { writeFile } from "node:fs/promises"
import { resolve } from "node:path"
import { Args, Command, Options, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Option } from "effect"
import { execa } from "execa"
import { renderTwinReportHtml } from "../report-html/index.js"
import { siteNs } from "../twin/Addressing.js"
import { formatComparison, runComparison } from "../twin/Compare.js"
import { inSite, requireRoot } from "../twin/Exec.js"
import { formatSummary } from "../twin/Report.js"
import { runScenario } from "../twin/Runner.js"
import { defaultStateRoot, listRuns, pidAlive, runDir, teardownRun } from "../twin/RunState.js"
import { loadScenario, RoutingMode, withRouting } from "../twin/Scenario.js"
import { makeTwin } from "../twin/Twin.js"

/** `netlab exec 2 -- ip -j route`: everything after `--` is the command, kept away from option parsing. */
const dashDash = process.argv[2] === "exec" ? process.argv.indexOf("--") : -1
const execTail = dashDash < 0 ? [] : process.argv.slice(dashDash + 1)
const cliArgv = dashDash < 0 ? process.argv : process.argv.slice(0, dashDash)

const progress = (line: string) => process.stderr.write(`[netlab] ${line}\n`)
const stateRoot = defaultStateRoot()

const scenarioArg = Args.file({ name: "scenario", exists: "yes" }).pipe(
  Args.withDescription("scenario file (YAML or JSON), e.g. netns-lab/scenarios/six-site-failure.yaml"),
)
const noRelay = Options.boolean("no-relay").pipe(
  Options.withDescription("connect tunnels directly, without the link emulator (no impairments possible)"),
)

const networkPriorityOption = Options.choice("network-priority", ["realtime", "normal"]).pipe(
  Options.withDefault("realtime" as const),
  Options.withDescription(
    "scheduling of the link emulator (the twin's wires): realtime = SCHED_FIFO 10, so the daemons under test do not starve it",
  ),
)

const configOption = Options.choice("config", ["meshgen", "builtin"]).pipe(
  Options.withDefault("meshgen" as const),
  Options.withDescription(
    "generator of the WireGuard/BIRD files: meshgen (what operators deploy) or the twin's builtin",
  ),
)

const up = Command.make(
  "up",
  { scenario: scenarioArg, noRelay, config: configOption, networkPriority: networkPriorityOption },
  ({ scenario, noRelay, config, networkPriority }) =>
    Effect.gen(function* () {
      const s = yield* loadScenario(scenario)
      const twin = yield* Effect.scoped(
        makeTwin({
          scenario: s,
          keep: true,
          mode: "up",
          relay: !noRelay,
          configGenerator: config,
          networkPriority,
          onProgress: progress,
        }),
      )
      yield* Console.log(
        [
          `twin ${twin.prefix} is up: ${s.sites} sites (${twin.backends.wireguard}, impairments: ${twin.backends.impairments})`,
          `  state:   ${twin.dir}`,
          `  a shell: netlab exec 0 --run ${twin.prefix} -- bash`,
          `  routes:  netlab exec 0 -- ip route`,
          `  remove:  netlab down ${twin.prefix}`,
        ].join("\n"),
      )
    }),
).pipe(Command.withDescription("Bring a twin up and leave it running (see `netlab status`, `netlab down`)."))

const reportFile = Options.file("report").pipe(
  Options.optional,
  Options.withDescription("also write the JSON report to this file"),
)
const json = Options.boolean("json").pipe(
  Options.withDescription("print the JSON report on stdout instead of the summary"),
)

const htmlFile = Options.file("html").pipe(
  Options.optional,
  Options.withDescription("also write the report as one self-contained HTML page (charts inline) to this file"),
)

const compare = Options.boolean("compare").pipe(
  Options.withDescription(
    "run the scenario twice on fresh twins, plain BIRD (baseline) then net-perf at every site, and report them side by side",
  ),
)
const routingOption = Options.choice("routing", RoutingMode.literals).pipe(
  Options.optional,
  Options.withDescription("run every site with this routing, whatever the scenario says"),
)

const runCmd = Command.make(
  "run",
  {
    scenario: scenarioArg,
    report: reportFile,
    json,
    noRelay,
    config: configOption,
    networkPriority: networkPriorityOption,
    html: htmlFile,
    compare,
    routing: routingOption,
  },
  (o) =>
    Effect.gen(function* () {
      const loaded = yield* loadScenario(o.scenario)
      const s = Option.isSome(o.routing) ? withRouting(loaded, o.routing.value) : loaded
      if (o.compare) {
        const c = yield* runComparison(s, {
          mode: "run",
          relay: !o.noRelay,
          configGenerator: o.config,
          networkPriority: o.networkPriority,
          onProgress: progress,
        })
        if (Option.isSome(o.report)) {
          const file = o.report.value
          yield* Effect.promise(() => writeFile(file, `${JSON.stringify(c, null, 2)}\n`))
          progress(`side-by-side report written to ${file}`)
        }
        if (Option.isSome(o.html)) {
          const file = o.html.value
          yield* Effect.promise(() =>
            writeFile(
              file,
              renderTwinReportHtml(c.netPerf, {
                baseline: c.baseline,
                label: "net-perf",
                baselineLabel: "plain BIRD (baseline)",
              }),
            ),
          )
          progress(`HTML report written to ${file}`)
        }
        yield* Console.log(o.json ? JSON.stringify(c, null, 2) : formatComparison(c))
        // The last line names the files, so a newcomer knows where to look.
        if (!o.json && Option.isSome(o.html)) yield* Console.log(`HTML report: ${resolve(o.html.value)}`)
        return
      }
      const report = yield* runScenario(s, {
        mode: "run",
        relay: !o.noRelay,
        configGenerator: o.config,
        networkPriority: o.networkPriority,
        onProgress: progress,
      })
      if (Option.isSome(o.report)) {
        const file = o.report.value
        yield* Effect.promise(() => writeFile(file, `${JSON.stringify(report, null, 2)}\n`))
        progress(`report written to ${file}`)
      }
      if (Option.isSome(o.html)) {
        const file = o.html.value
        yield* Effect.promise(() => writeFile(file, renderTwinReportHtml(report)))
        progress(`HTML report written to ${file}`)
      }
      yield* Console.log(o.json ? JSON.stringify(report, null, 2) : formatSummary(report))
      if (!o.json && Option.isSome(o.html)) yield* Console.log(`HTML report: ${resolve(o.html.value)}`)
    }),
).pipe(
  Command.withDescription(
    "Bring a twin up, wait for convergence, play the scenario's timeline while sampling routes and RTT, print the report, tear down.",
  ),
)

const status = Command.make("status", { json }, ({ json }) =>
  Effect.gen(function* () {
    const runs = yield* listRuns(stateRoot)
    if (json) return yield* Console.log(JSON.stringify(runs, null, 2))
    if (runs.length === 0) return yield* Console.log("no twin runs")
    for (const r of runs) {
      const alive = (r.state?.pids ?? []).filter(pidAlive).length
      yield* Console.log(
        `${r.prefix}  ${r.state?.scenario ?? "(no state file)"}  mode=${r.state?.mode ?? "?"}  sites=${r.state?.sites ?? "?"}` +
          `  namespaces=${r.namespaces.length}  processes=${alive}/${r.state?.pids.length ?? 0}` +
          `  owner=${r.state === undefined ? "?" : r.ownerAlive ? `pid ${r.state.ownerPid}` : "gone"}` +
          `${r.state === undefined ? "" : `  since ${new Date(r.state.createdAtMillis).toISOString()}`}`,
      )
    }
  }),
).pipe(
  Command.withDescription("List twin runs (running, or left over by a crash) with their namespaces and processes."),
)

const runOption = Options.text("run").pipe(
  Options.optional,
  Options.withDescription("run prefix (e.g. nl3fa2); default: the only run"),
)

/** The run a command addresses: the one named, or the only one there is. */
const pickRun = (named: Option.Option<string>) =>
  Effect.gen(function* () {
    const runs = yield* listRuns(stateRoot)
    if (Option.isSome(named)) {
      const r = runs.find((x) => x.prefix === named.value)
      if (r === undefined) return yield* Effect.fail(new Error(`no run ${named.value} (see netlab status)`))
      return r
    }
    if (runs.length === 1) return runs[0] as (typeof runs)[number]
    return yield* Effect.fail(
      new Error(
        runs.length === 0
          ? "no twin is running (netlab up <scenario>)"
          : `several runs (${runs.map((r) => r.prefix).join(", ")}): pick one with --run`,
      ),
    )
  })

const exec = Command.make(
  "exec",
  {
    run: runOption,
    site: Args.integer({ name: "site" }).pipe(Args.withDescription("site id")),
    command: Args.text({ name: "command" }).pipe(
      Args.repeated,
      Args.withDescription("command and its arguments, after -- (default: a shell)"),
    ),
  },
  (o) =>
    Effect.gen(function* () {
      yield* requireRoot("netlab exec")
      const r = yield* pickRun(o.run)
      const given = execTail.length > 0 ? execTail : o.command
      const argv = given.length === 0 ? [process.env.SHELL ?? "sh"] : [...given]
      const wgDir = `${runDir(stateRoot, r.prefix)}/s${o.site}/wg`
      const full = inSite(siteNs(r.prefix, o.site), wgDir, argv)
      const result = yield* Effect.promise(() =>
        execa(full[0] as string, full.slice(1), { stdio: "inherit", reject: false }),
      )
      process.exitCode = result.exitCode ?? 1
    }),
).pipe(Command.withDescription("Run a command inside a site's namespace, seeing only that site's WireGuard tunnels."))

const down = Command.make(
  "down",
  {
    all: Options.boolean("all").pipe(Options.withDescription("remove every run, including leftovers of crashed runs")),
    prefix: Args.text({ name: "run" }).pipe(Args.optional, Args.withDescription("run prefix; default: the only run")),
  },
  (o) =>
    Effect.gen(function* () {
      yield* requireRoot("netlab down")
      const runs = o.all ? yield* listRuns(stateRoot) : [yield* pickRun(o.prefix)]
      if (runs.length === 0) return yield* Console.log("nothing to remove")
      for (const r of runs) {
        const t = yield* teardownRun(stateRoot, r.prefix)
        yield* Console.log(
          `${r.prefix}: removed ${t.namespacesRemoved.length} namespaces, stopped ${t.processesStopped} processes` +
            `${t.processesKilled > 0 ? ` (${t.processesKilled} needed SIGKILL)` : ""} in ${(t.durationMs / 1000).toFixed(1)} s`,
        )
      }
    }),
).pipe(Command.withDescription("Remove a run's namespaces, processes and files (--all: every run)."))

const netlab = Command.make("netlab").pipe(
  Command.withDescription(
    "Digital twin of a net-perf mesh: network namespaces, real WireGuard and BIRD, injected impairments.",
  ),
  Command.withSubcommands([up, runCmd, status, exec, down]),
)

const cli = Command.run(netlab, { name: "netlab", version: "0.1.0" })

const program = cli(cliArgv).pipe(
  Effect.catchAll((error) => {
    if (ValidationError.isValidationError(error))
      return Effect.sync(() => {
        process.exitCode = 2
      })
    const tag = (error as { _tag?: string })._tag
    return Console.error(`netlab: ${(error as Error).message}`).pipe(
      Effect.zipRight(
        Effect.sync(() => {
          process.exitCode = tag === "ScenarioInvalid" || tag === "ScenarioUnreadable" ? 2 : 1
        }),
      ),
    )
  }),
  Effect.provide(NodeContext.layer),
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
