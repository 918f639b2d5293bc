/**
 * Two-thread model runs: the adapter that starts the workers (`node:worker_threads`), the only
 * part of the model that is not pure. The sites split into two halves (`splitByTick`); each
 * worker runs its half's engines, probes and exchange (`makeSitePart`) in windows of a quarter of
 * `lookaheadMillis` (the smallest link-state delay: nothing one site does reaches another
 * sooner), and at the end of each window hands the messages its sites sent to the other half's
 * sites over a MessagePort and raises its window counter in a SharedArrayBuffer; a worker starts
 * window k once the other has finished window k − 4 (`Atomics.wait`; `WINDOWS_PER_LOOKAHEAD`).
 * Install logs go to the calling thread, which replays them in time order through the observer
 * (forwarding, loops, reaction, blackholes, stretch). The run is the same as on one thread, report
 * for report (`test/model/Threads.test.ts`): same random streams per site and origin, same order
 * within a millisecond (see `LaneQueue`).
 *
 * The call is synchronous like `runModel`: the calling thread blocks in `Atomics.wait` and reads
 * the workers' ports with `receiveMessageOnPort`. Workers are terminated on return and on error.
 * A worker is rebuilt from data (scenario + engine settings), so only `runScenario` offers it.
 * The worker script is `ModelWorker.js` next to this module (the built `dist`, which the bench runs
 * from); from the sources (vitest) the built one under `dist/` (`npm test` builds first); or the
 * file named by `NET_PERF_MODEL_WORKER` (e.g. next to an esbuild bundle).
 */
import { existsSync } from "node:fs"
import { fileURLToPath, pathToFileURL } from "node:url"
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads"
import type { LinkStateMessage } from "@net-perf/engine"
import { type Crossing, decodeCrossings, encodeCrossings } from "./CrossingCodec.js"
import type { EngineSettings } from "./EngineRouters.js"
import { firstTicks, lookaheadMillis, makeObserver, makeSitePart, type Sent } from "./ModelRun.js"
import type { ReportAccumulators, RunReport } from "./Report.js"
import { type Scenario, scenarioRunConfig } from "./Scenarios.js"

/** Slots of the shared control array (Int32; `ModelWorker.ts` uses PROGRESS and FAILED by number). */
const DONE = 0 // + worker: windows finished
const SENT = 2 // + worker: batches posted to the other worker
const PROGRESS = 4 // bumped on every log batch and on failure (the caller waits on it)
const FAILED = 5
const CONTROL_SLOTS = 8

/**
 * Windows per lookahead. A message sent in window j arrives one lookahead later at the earliest,
 * i.e. in window j + WINDOWS_PER_LOOKAHEAD, so a worker runs window k once the other finished
 * window k − WINDOWS_PER_LOOKAHEAD: the two may drift up to a lookahead apart at any moment, where
 * windows of a whole lookahead made each window cost the slower half's time. The 600 s N = 200
 * run (README, session 13): waits per worker 17.5 s with 1, ≈ 10.5 s with 4, ≈ 11.4 s with 10.
 */
const WINDOWS_PER_LOOKAHEAD = 4

/** Simulated time between two install-log batches (both workers flush at the same window ends). */
const LOG_EVERY_MILLIS = 1000
/**
 * The calling thread gives up when no worker reported for this long: a worker that died without a
 * word (e.g. out of memory). Workers log every simulated second; at N = 200 the longest gap seen
 * was a few seconds (start-up, failure bursts).
 */
const STALL_MILLIS = 60_000

export interface ModelWorkerData {
  readonly netPerfModelWorker: true
  readonly scenario: Scenario
  readonly settings: EngineSettings
  readonly keepEventDetails: boolean
  readonly index: 0 | 1
  readonly owns: Uint8Array
  readonly control: SharedArrayBuffer
  readonly peerPort: MessagePort
  readonly logPort: MessagePort
}

type LogBatch =
  | { readonly kind: "installs"; readonly untilMillis: number; readonly installs: Float64Array }
  | { readonly kind: "done"; readonly acc: ReportAccumulators }
  | { readonly kind: "failed"; readonly error: string }

const workerUrl = (): URL => {
  const named = process.env.NET_PERF_MODEL_WORKER
  if (named !== undefined && named !== "") {
    if (!existsSync(named)) throw new Error(`model threads: NET_PERF_MODEL_WORKER=${named} does not exist`)
    return pathToFileURL(named)
  }
  const sibling = new URL("./ModelWorker.js", import.meta.url)
  if (existsSync(fileURLToPath(sibling))) return sibling
  const built = new URL("../../dist/src/model/ModelWorker.js", import.meta.url)
  if (existsSync(fileURLToPath(built))) return built
  throw new Error(
    `model threads: no worker script (looked for ${fileURLToPath(sibling)} and ${fileURLToPath(built)}; build with tsc -b or set NET_PERF_MODEL_WORKER)`,
  )
}

/**
 * The parent's Node options without its export conditions, or undefined (inherit them all) when
 * it has none: the worker script is built JavaScript, and a `source` condition (vitest sets it)
 * would make it import the TypeScript sources. Only when needed, because Node rejects some
 * inherited options when they are passed explicitly (e.g. `--max-old-space-size`).
 */
const workerExecArgv = (): string[] | undefined => {
  const out: string[] = []
  const argv = process.execArgv
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--conditions" || a === "-C") i++
    else if (!a.startsWith("--conditions=")) out.push(a)
  }
  return out.length === argv.length ? undefined : out
}

/**
 * Waits until `control[slot] >= value`. No spinning first: 2 ms (session 10) changed nothing in
 * wall time at N = 100–200 while it doubled the CPU the V8 collector's helper threads need, and
 * 0.3 ms (session 13) made the 600 s N = 200 run slower (93 s against 84 s, one run each).
 */
const waitAtLeast = (control: Int32Array, slot: number, value: number): void => {
  for (;;) {
    const now = Atomics.load(control, slot)
    if (now >= value) return
    if (Atomics.load(control, FAILED) !== 0) throw new Error("model threads: the other worker failed")
    Atomics.wait(control, slot, now, 1000)
  }
}

/** The body of a worker thread (`ModelWorker.ts`): runs its half, window by window, until the end. */
export const runModelWorker = (data: ModelWorkerData): void => {
  const control = new Int32Array(data.control)
  const me = data.index
  const peer = 1 - me
  try {
    const config = scenarioRunConfig(data.scenario, data.settings, data.keepEventDetails)
    const lookahead = lookaheadMillis(data.scenario.exchange)
    if (lookahead < 1) throw new Error("model threads: link-state delay below 1 ms, nothing to run ahead")
    const end = config.durationMillis
    // This window's messages to the other half, grouped per message.
    const out = new Map<Sent, { at: number[]; r: number[] }>()
    const part = makeSitePart(config, data.owns, (atMillis, recipient, sent) => {
      let e = out.get(sent)
      if (e === undefined) {
        e = { at: [], r: [] }
        out.set(sent, e)
      }
      e.at.push(atMillis)
      e.r.push(recipient)
    })
    let taken = 0
    let loggedUntil = 0
    const step = lookahead / WINDOWS_PER_LOOKAHEAD
    for (let k = 0, from = 0; from < end; k++) {
      const until = Math.min(end, (k + 1) * step)
      const needed = k - WINDOWS_PER_LOOKAHEAD + 1
      if (needed > 0) {
        // The other half's messages of window k − WINDOWS_PER_LOOKAHEAD arrive in window k at the earliest.
        waitAtLeast(control, DONE + peer, needed)
        const posted = Atomics.load(control, SENT + peer)
        while (taken < posted) {
          const got = receiveMessageOnPort(data.peerPort)
          if (got === undefined) continue // posted before the counter was raised: on its way
          taken++
          for (const c of decodeCrossings(got.message as Float64Array)) {
            const sent: Sent = {
              id: -1,
              pending: 0,
              origin: c.origin,
              seq: c.seq,
              message: c.message,
              changedHop: c.changedHop,
              changedSeqno: c.changedSeqno,
              transitChanged: c.transitChanged,
            }
            for (let j = 0; j < c.recipients.length; j++) part.inject(c.atMillis[j]!, c.recipients[j]!, sent)
          }
        }
      }
      part.runUntil(until)
      if (out.size > 0) {
        const batch: Crossing[] = []
        for (const [sent, e] of out)
          batch.push({
            origin: sent.origin,
            seq: sent.seq,
            // Only engines run on threads (`runScenario` offers them alone); the codec checks.
            message: sent.message as LinkStateMessage,
            changedHop: sent.changedHop,
            changedSeqno: sent.changedSeqno,
            transitChanged: sent.transitChanged,
            atMillis: e.at,
            recipients: e.r,
          })
        out.clear()
        // One array of numbers, moved rather than copied (`CrossingCodec.ts` says why).
        const encoded = encodeCrossings(batch)
        data.peerPort.postMessage(encoded, [encoded.buffer])
        Atomics.add(control, SENT + me, 1)
      }
      if (until - loggedUntil >= LOG_EVERY_MILLIS || until >= end) {
        const installs = Float64Array.from(part.installs)
        part.installs.length = 0
        loggedUntil = until
        data.logPort.postMessage({ kind: "installs", untilMillis: until, installs } satisfies LogBatch, [
          installs.buffer,
        ])
        Atomics.add(control, PROGRESS, 1)
        Atomics.notify(control, PROGRESS)
      }
      Atomics.store(control, DONE + me, k + 1)
      Atomics.notify(control, DONE + me)
      from = until
    }
    data.logPort.postMessage({ kind: "done", acc: part.acc } satisfies LogBatch)
  } catch (e) {
    Atomics.store(control, FAILED, 1)
    data.logPort.postMessage({
      kind: "failed",
      error: `worker ${me}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    } satisfies LogBatch)
    Atomics.notify(control, DONE + me)
  } finally {
    Atomics.add(control, PROGRESS, 1)
    Atomics.notify(control, PROGRESS)
  }
}

/**
 * Which thread runs each site: alternately in the order of their ticks (ties by id), so every
 * stretch of the decide interval holds as many periodic decides and advertisements of one thread
 * as of the other. A quiet second's work is mostly those, and each window costs the slower
 * thread's time; halves by site id left ≈ 2 decides per 20 ms window per thread to chance
 * (the model's sites are otherwise alike, and every message crosses anyway).
 */
export const splitByTick = (ticks: Float64Array): Uint8Array => {
  const order = Array.from(ticks.keys()).sort((a, b) => ticks[a]! - ticks[b]! || a - b)
  const threadOf = new Uint8Array(ticks.length)
  order.forEach((s, rank) => {
    threadOf[s] = rank % 2
  })
  return threadOf
}

/** Runs a scenario on two worker threads (see the module comment); the report equals `runModel`'s. */
export const runScenarioOnThreads = (
  scenario: Scenario,
  settings: EngineSettings,
  keepEventDetails = false,
): RunReport => {
  const config = scenarioRunConfig(scenario, settings, keepEventDetails)
  const control = new SharedArrayBuffer(CONTROL_SLOTS * 4)
  const controlView = new Int32Array(control)
  const url = workerUrl()
  const execArgv = workerExecArgv()
  const peers = new MessageChannel()
  const logChannels = [new MessageChannel(), new MessageChannel()] as const
  const workers: Worker[] = []
  try {
    const threadOf = splitByTick(firstTicks(config))
    for (const index of [0, 1] as const) {
      const owns = Uint8Array.from(threadOf, (t) => (t === index ? 1 : 0))
      const peerPort = index === 0 ? peers.port1 : peers.port2
      const logPort = logChannels[index].port2
      const workerData: ModelWorkerData = {
        netPerfModelWorker: true,
        scenario,
        settings,
        keepEventDetails,
        index,
        owns,
        control,
        peerPort,
        logPort,
      }
      const w = new Worker(url, {
        workerData,
        transferList: [peerPort, logPort],
        ...(execArgv === undefined ? {} : { execArgv }),
      })
      // A worker that hangs must not keep the process alive; it is terminated below anyway.
      w.unref()
      workers.push(w)
    }
    const observer = makeObserver(config)
    const pending: [LogBatch[], LogBatch[]] = [[], []]
    let quietSince = Date.now()
    for (;;) {
      const seen = Atomics.load(controlView, PROGRESS)
      let got = false
      for (const index of [0, 1] as const) {
        for (let m = receiveMessageOnPort(logChannels[index].port1); m !== undefined; ) {
          const batch = m.message as LogBatch
          if (batch.kind === "failed") throw new Error(`model threads: ${batch.error}`)
          pending[index].push(batch)
          got = true
          m = receiveMessageOnPort(logChannels[index].port1)
        }
      }
      // Both workers log at the same window ends: replay one pair of batches at a time.
      while (pending[0].length > 0 && pending[1].length > 0) {
        const a = pending[0][0]!
        const b = pending[1][0]!
        if (a.kind === "done" && b.kind === "done") return observer.finish([a.acc, b.acc])
        if (a.kind !== "installs" || b.kind !== "installs" || a.untilMillis !== b.untilMillis)
          throw new Error("model threads: the workers' logs are out of step")
        observer.advance(a.untilMillis, [a.installs, b.installs])
        pending[0].shift()
        pending[1].shift()
      }
      if (got) quietSince = Date.now()
      else {
        if (Date.now() - quietSince > STALL_MILLIS)
          throw new Error(`model threads: no word from the workers for ${STALL_MILLIS / 1000} s`)
        Atomics.wait(controlView, PROGRESS, seen, 1000)
      }
    }
  } finally {
    Atomics.store(controlView, FAILED, 1)
    for (const w of workers) void w.terminate()
    for (const c of logChannels) c.port1.close()
  }
}
