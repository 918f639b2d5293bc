/**
 * Child-process entry for Sysctl.test.ts: /proc/sys/net belongs to the namespace of the process
 * that reads it, so the test runs the real `Sysctl` service *inside* its namespace
 * (`ip netns exec <ns> vite-node applyInNetns.ts <config-json>`) and reads the JSON report.
 */
import { Effect, Logger, LogLevel, Schema } from "effect"
import { makeSysctl, SysctlConfig } from "../../src/sysctl/Sysctl.js"

const config = Schema.decodeUnknownSync(SysctlConfig)(JSON.parse(process.argv[2] ?? "{}"))
const results = await Effect.runPromise(makeSysctl(config).apply().pipe(Logger.withMinimumLogLevel(LogLevel.None)))
process.stdout.write(`${JSON.stringify(results)}\n`)
