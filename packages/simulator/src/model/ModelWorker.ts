/**
 * Entry of a model worker thread (started by `ModelThreads.ts`): runs its half of the sites. The
 * model is imported inside the try, so a worker that cannot load it says so to the caller, which
 * is blocked in `Atomics.wait` and would otherwise only notice a silent worker after its timeout.
 */
import { workerData } from "node:worker_threads"
import type { ModelWorkerData } from "./ModelThreads.js"

const data = workerData as ModelWorkerData
try {
  const { runModelWorker } = await import("./ModelThreads.js")
  runModelWorker(data)
} catch (e) {
  const control = new Int32Array(data.control)
  Atomics.store(control, 5, 1)
  data.logPort.postMessage({
    kind: "failed",
    error: `worker ${data.index}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  })
  Atomics.add(control, 4, 1)
  Atomics.notify(control, 4)
  Atomics.notify(control, data.index)
}
